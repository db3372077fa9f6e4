"""Run the real gateway (``gateway serve`` in a subprocess) against emulated providers.

The emulators run on an event loop in a background thread, so tests can drive the gateway with
the official SDKs' synchronous clients as well as their async ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-token-for-tests-7f3c9a1b2d4e"
SERVER_SECRET = "server-secret-for-tests-0b1c2d3e4f5a6b7c"
TIKTOKEN_DIR = os.environ.get("GATEWAY_TOKENIZER__DATA_DIR") or str(
    (REPO.parent / "shared" / "tiktoken").resolve()
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackgroundLoop:
    """An asyncio loop in a daemon thread, for servers that must outlive a blocking call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stack: list[Any] = []

    def enter(self, cm_factory: Callable[[], contextlib.AbstractAsyncContextManager[Any]]) -> Any:
        cm = cm_factory()
        value = asyncio.run_coroutine_threadsafe(cm.__aenter__(), self.loop).result(10)
        self._stack.append(cm)
        return value

    def close(self) -> None:
        while self._stack:
            cm = self._stack.pop()
            asyncio.run_coroutine_threadsafe(cm.__aexit__(None, None, None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


class GatewayProcess:
    """``gateway serve`` in a subprocess.

    ``tls`` is for a gateway that terminates TLS itself: the SSL context (trusting the gateway's
    CA, carrying a client certificate when the gateway requires one) that the health check and
    the admin calls connect with; the base URL is then ``https://``.
    """

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        env: dict[str, str] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = free_port()
        self.tls = tls
        self.base_url = f"{'https' if tls is not None else 'http'}://127.0.0.1:{self.port}"
        self.config_path = workdir / f"gateway-{self.port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"gateway-{self.port}.log"
        self.env = {
            **os.environ,
            "GATEWAY_TOKENIZER__DATA_DIR": TIKTOKEN_DIR,
            "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "GATEWAY_SERVER_SECRET": SERVER_SECRET,
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0, command: list[str] | None = None) -> None:
        """Run ``gateway serve`` (or ``command``, e.g. another ASGI server) and wait until healthy."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            command
            or [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--config",
                str(self.config_path),
                "--port",
                str(self.port),
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=0.5, verify=self._verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy in {timeout_s}s:\n{self.logs()}")

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.request(
            method, self.base_url + path, headers=headers, timeout=10, verify=self._verify, **kwargs
        )

    @property
    def _verify(self) -> ssl.SSLContext | bool:
        return self.tls if self.tls is not None else True

    def create_key(self, name: str = "test-key", **fields: Any) -> str:
        """Issue a gateway key through the admin API; returns the secret (shown once)."""
        response = self.admin("POST", "/admin/v1/keys", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.contextmanager
def running_gateway(
    config: dict[str, Any],
    workdir: Path,
    env: dict[str, str] | None = None,
    *,
    tls: ssl.SSLContext | None = None,
) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(config, workdir, env, tls=tls)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
