"""Concurrent clients never push a limit past N plus what in-flight requests add on reconcile.

Two Limiter instances on one Redis stand in for two gateway replicas. The clock is frozen so
nothing refills during the run and the bound is exact.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.errors import RateLimitError
from gateway.limits.limiter import Limiter
from tests.limits.conftest import FakeClock, make_backend
from tests.limits.helpers import build_limiter, ctx, limits_config, usage

N = 20_000
CLIENTS = 64
PROMPT, MAX_OUT = 100, 200


async def _client(limiter: Limiter, rng: random.Random, extra_completion: int, admitted: list[int]) -> None:
    for _ in range(6):
        try:
            res = await limiter.reserve(ctx("shared-key", prompt=PROMPT, max_out=MAX_OUT))
        except RateLimitError:
            await asyncio.sleep(0)
            continue
        await asyncio.sleep(rng.random() * 0.002)  # the upstream call
        completion = rng.randint(0, MAX_OUT) + extra_completion
        await limiter.reconcile(res, usage(PROMPT, completion), 0.0)
        admitted.append(PROMPT + completion)


async def _run(limiters: list[Limiter], extra_completion: int) -> list[int]:
    rng = random.Random(7)
    admitted: list[int] = []
    await asyncio.gather(
        *(
            _client(limiters[i % len(limiters)], random.Random(rng.random()), extra_completion, admitted)
            for i in range(CLIENTS)
        )
    )
    return admitted


def _limiters(kind: str, prefix: str, clock: FakeClock, replicas: int) -> list[Limiter]:
    config = limits_config(
        defaults=[{"name": "shared-tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": N}]
    )
    return [build_limiter(config, make_backend(kind, prefix), clock) for _ in range(replicas)]


@pytest.mark.parametrize("replicas", [1, 2])
async def test_token_limit_holds_under_64_concurrent_clients_redis(
    redis_prefix: str, clock: FakeClock, replicas: int
) -> None:
    limiters = _limiters("redis", redis_prefix, clock, replicas)
    try:
        admitted = await _run(limiters, extra_completion=0)
    finally:
        for limiter in limiters:
            await limiter.close()
    # Usage never exceeds its reservation here, so the limit holds exactly...
    assert sum(admitted) <= N
    # ...and it is actually used: the run asked for far more than N.
    assert sum(admitted) > N // 2
    assert len(admitted) < CLIENTS * 6


async def test_token_limit_holds_with_memory_backend(clock: FakeClock) -> None:
    limiters = _limiters("memory", "", clock, 1)
    admitted = await _run(limiters, extra_completion=0)
    await limiters[0].close()
    assert N // 2 < sum(admitted) <= N


async def test_underestimated_usage_overshoots_by_at_most_the_in_flight_requests(
    redis_prefix: str, clock: FakeClock
) -> None:
    # Every call uses 10 tokens more than it reserved (a prompt estimate that was too low).
    limiters = _limiters("redis", redis_prefix, clock, 2)
    try:
        admitted = await _run(limiters, extra_completion=10)
    finally:
        for limiter in limiters:
            await limiter.close()
    assert sum(admitted) <= N + CLIENTS * 10


async def test_a_replica_sees_another_replicas_refund_without_further_traffic(
    redis_prefix: str, clock: FakeClock
) -> None:
    # Replica A's reconciliation is queued to ride on its next reservation; with no next
    # reservation it is sent on its own shortly after, so replica B sees the refund.
    a, b = _limiters("redis", redis_prefix, clock, 2)
    try:
        res = await a.reserve(ctx("shared-key", prompt=N - 1000, max_out=1000))
        with pytest.raises(RateLimitError):
            await b.reserve(ctx("shared-key", prompt=5000, max_out=0))
        await a.reconcile(res, usage(100, 0), 0.0)
        await asyncio.sleep(0.1)
        await b.reserve(ctx("shared-key", prompt=N - 100, max_out=0))
    finally:
        await a.close()
        await b.close()
