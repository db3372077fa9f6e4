"""The limiter's behaviour, run against both backends (in-process and the shared Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.errors import BudgetExceededError, RateLimitError
from gateway.limits.limiter import Limiter
from gateway.policy.decision import LimitSpec
from tests.limits.conftest import FakeClock, make_backend
from tests.limits.helpers import GPT4O, build_limiter, ctx, limits_config, usage

MakeLimiter = Callable[..., Limiter]


@pytest.fixture
async def make_limiter(backend_kind: str, redis_prefix: str, clock: FakeClock) -> AsyncIterator[MakeLimiter]:
    created: list[Limiter] = []

    def make(**config: Any) -> Limiter:
        limiter = build_limiter(limits_config(**config), make_backend(backend_kind, redis_prefix), clock)
        created.append(limiter)
        return limiter

    yield make
    for limiter in created:
        await limiter.close()


RPM3 = {"name": "key-rpm", "scope": "key:{key_id}", "window_s": 60, "requests": 3}


async def test_request_limit_refuses_the_fourth_request_naming_the_limit(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(defaults=[RPM3])
    for _ in range(3):
        await limiter.reserve(ctx())
    with pytest.raises(RateLimitError) as caught:
        await limiter.reserve(ctx())
    err = caught.value
    assert err.status == 429
    assert err.body()["error"]["code"] == "rate_limit_exceeded"
    assert "'key-rpm'" in err.message and "key:k1" in err.message
    # GCRA: 3 per 60 s frees one request every 20 s.
    assert err.headers["retry-after"] == "20"
    assert err.headers["retry-after-ms"] == "20000"
    assert err.headers["x-ratelimit-limit-requests"] == "3"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.headers["x-ratelimit-reset-requests"] == "1m0s"


async def test_capacity_refills_continuously(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(defaults=[RPM3])
    for _ in range(3):
        await limiter.reserve(ctx())
    clock.advance(19.9)
    with pytest.raises(RateLimitError):
        await limiter.reserve(ctx())
    clock.advance(0.1)
    await limiter.reserve(ctx())
    with pytest.raises(RateLimitError):
        await limiter.reserve(ctx())


async def test_limits_are_per_scope(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(defaults=[RPM3])
    for _ in range(3):
        await limiter.reserve(ctx("k1"))
    await limiter.reserve(ctx("k2"))


async def test_a_limit_whose_scope_field_is_missing_does_not_apply(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        defaults=[{"name": "team-rpm", "scope": "team:{team}", "window_s": 60, "requests": 1}]
    )
    first = await limiter.reserve(ctx(team=None))
    second = await limiter.reserve(ctx(team=None))
    assert first.headers() == {} and second.headers() == {}


async def test_headers_report_the_most_restrictive_limit(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        defaults=[
            {"name": "key-minute", "scope": "key:{key_id}", "window_s": 60, "requests": 10, "tokens": 1000},
            {"name": "team-hour", "scope": "team:{team}", "window_s": 3600, "requests": 5, "tokens": 100_000},
        ]
    )
    res = await limiter.reserve(ctx(prompt=100, max_out=50))
    assert res.headers() == {
        # requests: team-hour has 4 left (of 5), fewer than key-minute's 9.
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "12m0s",
        # tokens: key-minute has 850 left, refilled in 150 * 60 / 1000 = 9 s.
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "850",
        "x-ratelimit-reset-tokens": "9s",
    }


async def test_reservation_is_all_or_nothing_across_limits(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        defaults=[
            {"name": "key-tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": 1000},
            {"name": "team-tpm", "scope": "team:{team}", "window_s": 60, "tokens": 300},
        ]
    )
    await limiter.reserve(ctx(team="a", prompt=200, max_out=0))
    with pytest.raises(RateLimitError, match="team-tpm"):
        await limiter.reserve(ctx(team="a", prompt=200, max_out=0))
    # The refused request took nothing from key-tpm: 800 of its 1000 tokens are still there.
    await limiter.reserve(ctx(team="b", prompt=200, max_out=0))
    await limiter.reserve(ctx(team="c", prompt=200, max_out=0))
    await limiter.reserve(ctx(team="d", prompt=200, max_out=0))
    await limiter.reserve(ctx(team="e", prompt=200, max_out=0))
    with pytest.raises(RateLimitError, match="key-tpm"):
        await limiter.reserve(ctx(team="f", prompt=1, max_out=0))


async def test_decision_limits_apply_and_replace_a_default_of_the_same_name(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(
        defaults=[{"name": "team-rpm", "scope": "team:{team}", "window_s": 60, "requests": 1}]
    )
    decided = [LimitSpec(name="team-rpm", scope="team:research", window_s=60, requests=2)]
    await limiter.reserve(ctx(limits=decided))
    await limiter.reserve(ctx(limits=decided))
    with pytest.raises(RateLimitError, match="team-rpm"):
        await limiter.reserve(ctx(limits=decided))
    # A policy limit on a scope of its own choosing (here per model).
    per_model = [LimitSpec(name="model-rpm", scope="model:gpt-4o", window_s=10, requests=1)]
    await limiter.reserve(ctx(team="other", limits=per_model))
    with pytest.raises(RateLimitError, match="model:gpt-4o"):
        await limiter.reserve(ctx(team="another", limits=per_model))


async def test_reconcile_refunds_unused_reserved_tokens(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        defaults=[{"name": "tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": 1000}]
    )
    res = await limiter.reserve(ctx(prompt=100, max_out=400))
    assert res.headers()["x-ratelimit-remaining-tokens"] == "500"
    await limiter.reconcile(res, usage(100, 50), 0.0)
    # 150 used, so exactly 850 fit and one more token does not.
    with pytest.raises(RateLimitError):
        await limiter.reserve(ctx(prompt=851, max_out=0))
    res = await limiter.reserve(ctx(prompt=850, max_out=0))
    assert res.headers()["x-ratelimit-remaining-tokens"] == "0"


async def test_reconcile_charges_usage_beyond_the_reservation(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        defaults=[{"name": "tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": 1000}]
    )
    res = await limiter.reserve(ctx(prompt=100, max_out=0))
    await limiter.reconcile(res, usage(100, 300), 0.0)
    with pytest.raises(RateLimitError):
        await limiter.reserve(ctx(prompt=601, max_out=0))
    await limiter.reserve(ctx(prompt=600, max_out=0))


async def test_reconcile_twice_counts_once(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(prices=GPT4O)
    res = await limiter.reserve(ctx(prompt=1000, max_out=1000))
    await limiter.reconcile(res, usage(1000, 10), 0.0026)
    await limiter.reconcile(res, usage(1000, 10), 0.0026)
    snap = await limiter.usage_snapshot("k1", "research")
    assert snap["key"] == {
        "tokens_today": 1010,
        "requests_today": 1,
        "spend_day": 0.0026,
        "spend_month": 0.0026,
    }


async def test_stream_cut_short_is_charged_what_was_generated(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        prices=GPT4O, defaults=[{"name": "tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": 5000}]
    )
    res = await limiter.reserve(ctx(prompt=1000, max_out=4000))
    # The client went away after 120 generated tokens: the pipeline reconciles with those.
    generated = usage(1000, 120)
    await limiter.reconcile(res, generated, limiter._prices.cost("gpt-4o", None, generated))
    snap = await limiter.usage_snapshot("k1", None)
    assert snap["key"]["tokens_today"] == 1120
    assert snap["key"]["spend_day"] == pytest.approx(0.0025 + 0.0012)
    assert snap["team"] == {"tokens_today": 0, "requests_today": 0, "spend_day": 0.0, "spend_month": 0.0}
    await limiter.reserve(ctx(prompt=3880, max_out=0))


async def test_a_request_larger_than_the_whole_limit_says_so(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        defaults=[{"name": "tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": 1000}]
    )
    with pytest.raises(RateLimitError) as caught:
        await limiter.reserve(ctx(prompt=500, max_out=4096))
    assert "needs 4596 tokens" in caught.value.message
    assert caught.value.headers["retry-after"] == "60"


async def test_cost_limit_from_the_decision(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(prices=GPT4O)
    hourly = [LimitSpec(name="key-dollars-per-hour", scope="key:k1", window_s=3600, cost=0.05)]
    for _ in range(4):  # 4 x $0.0125 estimated
        await limiter.reserve(ctx(prompt=1000, max_out=1000, limits=hourly))
    with pytest.raises(RateLimitError, match="USD of cost"):
        await limiter.reserve(ctx(prompt=1000, max_out=1000, limits=hourly))


BUDGET_DAY = {"name": "key-daily", "scope": "key:{key_id}", "amount_usd": 0.03, "period": "day"}


@pytest.mark.parametrize("status", [429, 402])
async def test_budget_refuses_with_budget_exceeded(make_limiter: MakeLimiter, status: int) -> None:
    limiter = make_limiter(prices=GPT4O, budgets=[BUDGET_DAY], budget_status=status)
    for _ in range(2):  # 2 x $0.0125 reserved, then settled at that cost
        res = await limiter.reserve(ctx(prompt=1000, max_out=1000))
        await limiter.reconcile(res, usage(1000, 1000), 0.0125)
    with pytest.raises(BudgetExceededError) as caught:
        await limiter.reserve(ctx(prompt=1000, max_out=1000))
    err = caught.value
    assert err.status == status
    assert err.body()["error"]["code"] == "budget_exceeded"
    assert "'key-daily'" in err.message and "key:k1" in err.message
    assert err.headers["retry-after"] == str(12 * 3600)  # midnight UTC
    # A cheaper request still fits in the $0.005 left.
    await limiter.reserve(ctx(prompt=1000, max_out=200))


async def test_budget_counts_in_flight_reservations(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(prices=GPT4O, budgets=[BUDGET_DAY])
    await limiter.reserve(ctx(prompt=1000, max_out=1000))
    await limiter.reserve(ctx(prompt=1000, max_out=1000))
    with pytest.raises(BudgetExceededError):
        await limiter.reserve(ctx(prompt=1000, max_out=1000))


async def test_monthly_budget_renews_at_the_calendar_month(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    clock.now = 1_796_083_140.0  # 2026-11-30 23:59:00 UTC
    limiter = make_limiter(
        prices=GPT4O,
        budgets=[{"name": "team-monthly", "scope": "team:{team}", "amount_usd": 0.02, "period": "month"}],
    )
    res = await limiter.reserve(ctx(prompt=1000, max_out=1000))
    await limiter.reconcile(res, usage(1000, 1000), 0.0125)
    with pytest.raises(BudgetExceededError) as caught:
        await limiter.reserve(ctx(prompt=1000, max_out=1000))
    assert caught.value.headers["retry-after"] == "60"
    assert "renews in 1m0s" in caught.value.message
    clock.advance(60)  # 2026-12-01 00:00:00 UTC
    await limiter.reserve(ctx(prompt=1000, max_out=1000))
    snap = await limiter.usage_snapshot("k1", "research")
    assert snap["team"]["spend_month"] == pytest.approx(0.0125)  # December's reservation


async def test_budget_over_any_window_longer_than_a_day(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    week = 7 * 86400
    clock.now = float((int(clock.now) // week) * week)  # the start of a window
    limiter = make_limiter(
        prices=GPT4O,
        budgets=[{"name": "weekly", "scope": "key:{key_id}", "amount_usd": 0.0125, "window_s": week}],
    )
    res = await limiter.reserve(ctx(prompt=1000, max_out=1000))
    await limiter.reconcile(res, usage(1000, 1000), 0.0125)
    clock.advance(3 * 86400)
    with pytest.raises(BudgetExceededError) as caught:
        await limiter.reserve(ctx(prompt=10, max_out=0))
    assert caught.value.headers["retry-after"] == str(4 * 86400)
    clock.advance(4 * 86400)
    await limiter.reserve(ctx(prompt=10, max_out=0))


async def test_usage_snapshot_is_cached_briefly(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(prices=GPT4O)
    before = await limiter.usage_snapshot("k1", "research")
    res = await limiter.reserve(ctx(prompt=1000, max_out=0))
    await limiter.reconcile(res, usage(1000, 0), 0.0025)
    assert await limiter.usage_snapshot("k1", "research") == before
    clock.advance(1.0)
    after = await limiter.usage_snapshot("k1", "research")
    assert after["key"] == {
        "tokens_today": 1000,
        "requests_today": 1,
        "spend_day": 0.0025,
        "spend_month": 0.0025,
    }
    assert after["team"] == after["key"]


async def test_release_refunds_tokens_but_keeps_the_request_counted(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        defaults=[
            {"name": "key-minute", "scope": "key:{key_id}", "window_s": 60, "requests": 2, "tokens": 1000}
        ]
    )
    res = await limiter.reserve(ctx(prompt=500, max_out=400))
    await limiter.release(res)  # the upstream call failed
    res = await limiter.reserve(ctx(prompt=900, max_out=100))
    assert res.headers()["x-ratelimit-remaining-requests"] == "0"
    assert res.headers()["x-ratelimit-remaining-tokens"] == "0"


async def test_a_request_without_max_tokens_reserves_the_default_output(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(
        default_output_reserve=1024,
        defaults=[{"name": "tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": 10_000}],
    )
    res = await limiter.reserve(ctx(prompt=100, max_out=0))
    assert res.headers()["x-ratelimit-remaining-tokens"] == str(10_000 - 1124)
    await limiter.reconcile(res, usage(100, 20), 0.0)
    res = await limiter.reserve(ctx(prompt=100, max_out=500))
    assert res.headers()["x-ratelimit-remaining-tokens"] == str(10_000 - 120 - 600)
