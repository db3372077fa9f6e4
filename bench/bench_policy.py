"""Decision latency of both policy engines with the default policies.

    python bench/bench_policy.py [-n 5000] [--opa-url http://127.0.0.1:8181]

- embedded: ``EmbeddedEngine.decide`` (JSON to Go, evaluation, validation), inline and through
  a worker thread, plus the bare cost of a thread hop, which is why inline is the default.
- opa: ``OpaSidecarEngine.decide`` over HTTP. Against ``--opa-url`` (a real OPA loaded with
  policies/), else a real ``opa`` binary on PATH started here, else a local server speaking
  OPA's REST Data API that evaluates with the embedded engine (client-side cost only).

Target: embedded p50 under 0.3 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402
from opa_bindings import OpaUndefinedError  # noqa: E402

from gateway.policy.bundle import build_engine, read_source  # noqa: E402
from gateway.policy.config import PolicyConfig  # noqa: E402
from gateway.policy.embedded import EmbeddedEngine  # noqa: E402
from gateway.policy.goruntime import reexec_with_defaults  # noqa: E402
from gateway.policy.sidecar import OpaSidecarEngine  # noqa: E402
from gateway.types import Principal  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from bench_rego_rules import request_input  # noqa: E402

POLICIES = REPO / "policies"


def inputs() -> list[dict[str, Any]]:
    """A mix like production: a team key, a restricted key, a PII hit, an anonymous caller."""
    return [
        request_input(Principal(auth="api_key", key_id="k1", key_name="svc", team="research")),
        request_input(
            Principal(
                auth="api_key",
                key_id="k2",
                key_name="bot",
                team="support",
                metadata={"allowed_models": ["gpt-4o*"]},
            )
        ),
        request_input(
            Principal(auth="api_key", key_id="k3", key_name="app", team="support"),
            pii=[{"type": "CREDIT_CARD", "count": 1}],
        ),
        request_input(Principal(auth="anonymous")),
    ]


async def measure(label: str, call: Callable[[dict[str, Any]], Awaitable[Any]], n: int) -> None:
    docs = inputs()
    for i in range(min(200, n)):
        await call(docs[i % len(docs)])
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(docs[i % len(docs)])
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"{label:<46} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   (n={n})")


async def fake_opa_server() -> tuple[web.AppRunner, str]:
    engine = build_engine(read_source([POLICIES]))

    async def data(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            result = engine.eval_document(request.match_info["path"].replace("/", "."), body.get("input"))
        except OpaUndefinedError:
            return web.json_response({})
        return web.json_response({"result": result})

    app = web.Application()
    app.router.add_post("/v1/data/{path:.*}", data)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def start_real_opa() -> tuple[subprocess.Popen[bytes], str] | None:
    opa = shutil.which("opa")
    if opa is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [opa, "run", "--server", "--disable-telemetry", f"--addr=127.0.0.1:{port}", str(POLICIES)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    return process, f"http://127.0.0.1:{port}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--opa-url", default=None)
    args = parser.parse_args()

    embedded = EmbeddedEngine(PolicyConfig(paths=[str(POLICIES)], watch=False), REPO)
    await embedded.start()
    await measure("embedded decide (inline, default)", embedded.decide, args.n)
    threaded = EmbeddedEngine(PolicyConfig(paths=[str(POLICIES)], watch=False, eval_in_thread=True), REPO)
    await threaded.start()
    await measure("embedded decide (eval_in_thread)", threaded.decide, args.n)

    async def hop(_doc: dict[str, Any]) -> None:
        await asyncio.to_thread(lambda: None)

    await measure("thread hop alone (asyncio.to_thread no-op)", hop, args.n)
    await embedded.close()
    await threaded.close()

    runner = process = None
    url = args.opa_url
    label = "opa sidecar decide (--opa-url)"
    if url is None:
        started = start_real_opa()
        if started is not None:
            process, url = started
            label = "opa sidecar decide (real opa binary)"
        else:
            runner, url = await fake_opa_server()
            label = "opa engine decide (local REST server*)"
    sidecar = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url, timeout_s=2), REPO)
    await sidecar.start()
    try:
        await measure(label, sidecar.decide, max(args.n // 2, 1))
    finally:
        await sidecar.close()
        if runner is not None:
            await runner.cleanup()
            print("* no opa binary on PATH: the server evaluates with the embedded engine in this process")
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    # Measure with the Go runtime settings `gateway serve` runs with (gateway/policy/goruntime.py).
    reexec_with_defaults()
    print(f"Go runtime: GOGC={os.environ['GOGC']} GOMAXPROCS={os.environ['GOMAXPROCS']}")
    asyncio.run(main())
