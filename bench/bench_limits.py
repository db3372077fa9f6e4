"""Limiter overhead per request: reserve + reconcile, in-process and with Redis on loopback.

    python bench/bench_limits.py [--requests 5000] [--redis redis://127.0.0.1:6379/0]

The configuration is a realistic one: two default limits (key requests+tokens per minute, team
tokens per minute), a daily key budget, a monthly team budget and a price table, so each
request touches 2 rate counters and 4 spend counters. Reported per request: sequential wall
time (what one request waits for) and CPU time at concurrency 64 (what a core can sustain).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, like run.py

import argparse
import asyncio
import json
import statistics
import time
import uuid

import redis.asyncio as aioredis

from gateway.limits.config import LimitsConfig
from gateway.limits.limiter import LimitContext, Limiter
from gateway.limits.memory import MemoryBackend
from gateway.limits.pricing import PriceTable
from gateway.limits.redis_backend import RedisBackend
from gateway.types import Usage

CONFIG = LimitsConfig.model_validate(
    {
        "prices": {"gpt-4o": {"input": 2.5, "output": 10}},
        "defaults": [
            {
                "name": "key-minute",
                "scope": "key:{key_id}",
                "window_s": 60,
                "requests": 10**9,
                "tokens": 10**12,
            },
            {"name": "team-tpm", "scope": "team:{team}", "window_s": 60, "tokens": 10**12},
        ],
        "budgets": [
            {"name": "key-daily", "scope": "key:{key_id}", "amount_usd": 10**9, "period": "day"},
            {"name": "team-monthly", "scope": "team:{team}", "amount_usd": 10**9, "period": "month"},
        ],
    }
)
USAGE = Usage(prompt_tokens=812, completion_tokens=300)


def _ctx(i: int) -> LimitContext:
    return LimitContext(
        key_id=f"key-{i % 50}",
        team=f"team-{i % 5}",
        user=None,
        model="gpt-4o",
        provider="openai",
        prompt_tokens=812,
        max_output_tokens=1024,
    )


async def _one(limiter: Limiter, i: int) -> None:
    res = await limiter.reserve(_ctx(i))
    res.headers()
    await limiter.reconcile(res, USAGE, 0.005)


async def _measure(limiter: Limiter, n: int) -> tuple[float, float, float, float]:
    for i in range(200):  # warm up: scripts loaded, connections open
        await _one(limiter, i)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        await _one(limiter, i)
        samples.append(time.perf_counter() - t0)
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99)]
    mean = statistics.fmean(samples)

    async def worker(start: int) -> None:
        for i in range(start, n, 64):
            await _one(limiter, i)

    c0 = time.process_time()
    w0 = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in range(64)))
    cpu = (time.process_time() - c0) / n
    _ = time.perf_counter() - w0
    return mean, p50, p99, cpu


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}

    def row(name: str, r: tuple[float, float, float, float]) -> None:
        mean, p50, p99, cpu = (x * 1e3 for x in r)
        results[name] = {"mean_ms": mean, "p50_ms": p50, "p99_ms": p99, "cpu_ms_at_64": cpu}
        print(
            f"{name:<8} mean {mean:.3f} ms  p50 {p50:.3f} ms  p99 {p99:.3f} ms  CPU/request @64: {cpu:.3f} ms"
        )

    memory = Limiter(CONFIG, MemoryBackend(), PriceTable.from_config(CONFIG), None)
    row("memory", await _measure(memory, args.requests))
    await memory.close()

    # The floor: one bare round trip to the same Redis.
    ping_client = aioredis.Redis.from_url(args.redis)
    pings = []
    for _ in range(2000):
        t0 = time.perf_counter()
        await ping_client.ping()
        pings.append(time.perf_counter() - t0)
    await ping_client.aclose()
    pings.sort()
    print(f"redis PING round trip p50 {pings[len(pings) // 2] * 1e3:.3f} ms (the floor for one check)")
    results["redis_ping"] = {"p50_ms": pings[len(pings) // 2] * 1e3}

    prefix = f"bench-limits:{uuid.uuid4().hex[:8]}:"
    backend = RedisBackend.from_url(args.redis, prefix=prefix, timeout_s=1.0)
    redis_limiter = Limiter(CONFIG, backend, PriceTable.from_config(CONFIG), None)
    try:
        row("redis", await _measure(redis_limiter, args.requests))
    finally:
        await redis_limiter.close()
        client = aioredis.Redis.from_url(args.redis)
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    _write(results)


def _write(results: dict[str, dict[str, float]]) -> None:
    out = Path(__file__).resolve().parent / "results" / "limits.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    try:
        import uvloop  # the server runs on uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
