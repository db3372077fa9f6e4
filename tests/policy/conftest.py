from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.policy.config import PolicyConfig
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.engine import PolicyEngine
from gateway.policy.sidecar import OpaSidecarEngine
from tests.policy.cases import POLICIES, REPO
from tests.policy.opa_server import FakeOpa

ENGINE_KINDS = ["embedded", "sidecar", "opa-binary"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_healthy(url: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"OPA at {url} did not become healthy")
            await asyncio.sleep(0.05)


@pytest.fixture
async def fake_opa() -> AsyncIterator[tuple[FakeOpa, str]]:
    server = FakeOpa([POLICIES])
    url = await server.start()
    yield server, url
    await server.stop()


@pytest.fixture(params=ENGINE_KINDS)
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[PolicyEngine]:
    """The same policies behind each engine's code path."""
    kind = request.param
    if kind == "embedded":
        built: PolicyEngine = EmbeddedEngine(PolicyConfig(paths=[str(POLICIES)], watch=False), REPO)
        await built.start()
        yield built
        await built.close()
        return
    if kind == "sidecar":
        server = FakeOpa([POLICIES])
        url = await server.start()
        built = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url, timeout_s=5), REPO)
        await built.start()
        yield built
        await built.close()
        await server.stop()
        return
    opa = shutil.which("opa")
    if opa is None:
        pytest.skip("no `opa` binary on PATH: the real-OPA run of these cases needs one")
    port = _free_port()
    process = subprocess.Popen(  # noqa: ASYNC220
        [opa, "run", "--server", "--disable-telemetry", f"--addr=127.0.0.1:{port}", str(POLICIES)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_healthy(url)
        built = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url, timeout_s=5), REPO)
        await built.start()
        yield built
        await built.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A private copy of policies/ that a test may edit."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target
