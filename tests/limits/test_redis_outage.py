"""A private redis-server is stopped and restarted under the limiter.

Budgets fail closed and limits fail open by default; both are settings. After Redis comes back
empty, budgets still know the spend (re-seeded from SQL), and so does a restarted gateway.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import BudgetExceededError, ServiceUnavailableError
from gateway.limits.limiter import Limiter
from gateway.limits.memory import MemoryBackend
from gateway.limits.redis_backend import RedisBackend
from tests.limits.conftest import FakeClock, PrivateRedis
from tests.limits.helpers import GPT4O, build_limiter, ctx, limits_config, usage

CONFIG = {
    "prices": GPT4O,
    "defaults": [{"name": "key-rpm", "scope": "key:{key_id}", "window_s": 60, "requests": 100}],
    "budgets": [{"name": "team-daily", "scope": "team:{team}", "amount_usd": 0.025, "period": "day"}],
}


def _limiter(server: PrivateRedis, clock: FakeClock, engine: AsyncEngine, **overrides: object) -> Limiter:
    config = limits_config(**{**CONFIG, **overrides})
    return build_limiter(
        config, RedisBackend.from_url(server.url, prefix="gw:", timeout_s=0.5), clock, engine
    )


async def _spend(limiter: Limiter, team: str | None = "research") -> None:
    res = await limiter.reserve(ctx(team=team, prompt=1000, max_out=1000))
    await limiter.reconcile(res, usage(1000, 1000), 0.0125)


async def test_outage_and_restart(private_redis: PrivateRedis, clock: FakeClock, engine: AsyncEngine) -> None:
    limiter = _limiter(private_redis, clock, engine)
    await limiter.start()
    try:
        await _spend(limiter)
        await limiter.flush()  # the flusher's periodic write, done now

        private_redis.stop()
        # Budgets fail closed: a request a budget applies to is refused with 503.
        with pytest.raises(ServiceUnavailableError) as caught:
            await limiter.reserve(ctx(team="research"))
        assert caught.value.status == 503 and "Budgets" in caught.value.message
        assert limiter.backend_down and limiter.backend_errors >= 1
        # Limits fail open: with no budget in play the request goes through, without headers.
        res = await limiter.reserve(ctx(team=None))
        assert res.degraded and res.headers() == {}
        await limiter.reconcile(res, usage(10, 10), 0.0)
        # The policy input still gets the spend SQL knows.
        snap = await limiter.usage_snapshot("k1", "research")
        assert snap["team"]["spend_day"] == pytest.approx(0.0125)

        private_redis.start()  # empty: no persistence
        clock.advance(1.0)
        snap = await limiter.usage_snapshot("k1", "research")
        assert snap["team"]["spend_day"] == pytest.approx(0.0125)  # re-seeded from SQL
        assert not limiter.backend_down
        res = await limiter.reserve(ctx(team="research", prompt=1000, max_out=1000))
        assert res.headers()["x-ratelimit-limit-requests"] == "100"
        await limiter.reconcile(res, usage(1000, 1000), 0.0125)
        # $0.025 of $0.025 spent: the budget holds across the Redis restart.
        with pytest.raises(BudgetExceededError):
            await limiter.reserve(ctx(team="research", prompt=10, max_out=0))
    finally:
        await limiter.close()


async def test_limits_fail_closed_and_budgets_open_when_configured(
    private_redis: PrivateRedis, clock: FakeClock, engine: AsyncEngine
) -> None:
    limiter = _limiter(private_redis, clock, engine, on_backend_error={"limits": "closed", "budgets": "open"})
    try:
        private_redis.stop()
        with pytest.raises(ServiceUnavailableError, match="Rate limits"):
            await limiter.reserve(ctx(team=None))
        config = limits_config(**{**CONFIG, "defaults": [], "on_backend_error": {"budgets": "open"}})
        budget_only = build_limiter(
            config, RedisBackend.from_url(private_redis.url, timeout_s=0.5), clock, engine
        )
        try:
            res = await budget_only.reserve(ctx(team="research"))
            assert res.degraded
        finally:
            await budget_only.close()
    finally:
        await limiter.close()


async def test_budget_survives_a_gateway_restart(clock: FakeClock, engine: AsyncEngine) -> None:
    config = limits_config(**CONFIG)
    first = build_limiter(config, MemoryBackend(), clock, engine)
    await first.start()
    await _spend(first)
    await _spend(first)
    await first.close()  # writes the queued spend

    second = build_limiter(config, MemoryBackend(), clock, engine)
    await second.start()
    try:
        snap = await second.usage_snapshot("k1", "research")
        assert snap["team"]["spend_day"] == pytest.approx(0.025)
        assert snap["key"]["requests_today"] == 2
        with pytest.raises(BudgetExceededError):
            await second.reserve(ctx(team="research", prompt=10, max_out=0))
    finally:
        await second.close()
