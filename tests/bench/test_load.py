"""The load generator counts what it measures and never hides errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from bench.load import LoadSpec, percentiles, run_load
from bench.procs import cpu_seconds, free_port, memory_mb, process_tree
from bench.upstream import Settings, serve_raw


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    server = await serve_raw("127.0.0.1", 0, Settings(chunks=4))
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()
        await server.wait_closed()


def test_percentiles_are_nearest_rank_over_all_samples() -> None:
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms, shuffled order must not matter
    result = percentiles(list(reversed(samples)))
    assert result["p50"] == 50.0
    assert result["p90"] == 90.0
    assert result["p99"] == 99.0
    assert result["max"] == 100.0
    assert percentiles([]) == {}


@pytest.mark.parametrize("stream", [False, True])
async def test_measures_exactly_the_requested_count_after_warmup(upstream: str, stream: bool) -> None:
    calls = []
    spec = LoadSpec(base_url=upstream, stream=stream, concurrency=4, requests=50, warmup=10, duration_s=30)
    result = await run_load(spec, on_measure_start=lambda: calls.append(1))
    assert calls == [1]
    assert result.ok == 50
    assert result.errors == {}
    assert result.rps > 0
    assert result.latency_ms["p50"] <= result.latency_ms["p99"] <= result.latency_ms["max"]
    if stream:
        assert result.ttfb_ms is not None and result.ttfb_ms["p50"] <= result.latency_ms["p50"]
    else:
        assert result.ttfb_ms is None


async def test_counts_http_errors_by_status(upstream: str) -> None:
    spec = LoadSpec(base_url=upstream + "/missing", concurrency=2, requests=20, warmup=0)
    result = await run_load(spec)
    assert result.ok == 0
    assert result.errors == {"404": 20}
    assert result.latency_ms == {}


async def test_counts_connection_failures_and_stops_by_itself() -> None:
    spec = LoadSpec(
        base_url=f"http://127.0.0.1:{free_port()}/v1", concurrency=3, requests=9, warmup=0, timeout_s=2
    )
    result = await run_load(spec)
    assert result.ok == 0
    assert sum(result.errors.values()) == 9
    assert list(result.errors) == ["ClientConnectorError"]


async def test_duration_bounds_the_run(upstream: str) -> None:
    spec = LoadSpec(base_url=upstream, concurrency=2, requests=10**9, warmup=0, duration_s=0.3)
    result = await run_load(spec)
    assert 0 < result.ok < 10**9
    assert result.elapsed_s < 2


def test_process_tree_cpu_and_memory_include_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; sum(range(3_000_000)); time.sleep(5)"])
    try:
        while cpu_seconds(child.pid) == 0 and child.poll() is None:
            os.sched_yield()
        assert child.pid in process_tree(os.getpid())
        assert cpu_seconds(os.getpid()) >= cpu_seconds(child.pid) > 0
        memory = memory_mb(os.getpid())
        assert memory["hwm"] >= memory["rss"] > 0
    finally:
        child.kill()
        child.wait()
