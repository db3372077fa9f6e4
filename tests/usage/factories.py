"""Usage records for tests, and the sums a report over them must give."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.usage.records import DecisionRecord, UsageRecord

BASE_TIME = datetime(2026, 3, 30, 22, 0, tzinfo=UTC)
TEAMS = ("research", "sales", "support")
MODELS = (("gpt-4o", "openai"), ("claude-sonnet-4", "anthropic"))


def make_pair(i: int, prefix: str = "req", at: datetime | None = None) -> tuple[UsageRecord, DecisionRecord]:
    model, provider = MODELS[i % len(MODELS)]
    status = 429 if i % 11 == 0 else 200
    usage = UsageRecord(
        request_id=f"{prefix}-{i}",
        time=at or BASE_TIME + timedelta(minutes=17 * i),
        key_id=f"key-{i % 5}",
        team=TEAMS[i % len(TEAMS)],
        user=f"user-{i % 7}",
        tags={"cost_center": f"cc-{i % 4}"} if i % 3 else {},
        requested_model=model,
        served_model=model if status == 200 else None,
        provider=provider,
        deployment=f"{provider}-main",
        prompt_tokens=100 + i,
        completion_tokens=0 if status != 200 else 10 + i % 13,
        cached_tokens=i % 3,
        cost=round(0.001 * (i % 17), 6),
        status=status,
        error_type="rate_limit_exceeded" if status != 200 else None,
        latency_ms=12.5,
        decision_id=f"{prefix}-dec-{i}",
    )
    decision = DecisionRecord(
        id=f"{prefix}-dec-{i}",
        request_id=usage.request_id,
        time=usage.time,
        allow=status == 200,
        reasons=[] if status == 200 else ["over quota"],
        policy_revision="rev1",
        eval_ms=0.4,
        engine="embedded",
    )
    return usage, decision


def expected_sums(records: list[UsageRecord], key: Any) -> dict[Any, dict[str, float]]:
    sums: dict[Any, dict[str, float]] = defaultdict(
        lambda: {
            "requests": 0,
            "errors": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_tokens": 0,
            "cost": 0.0,
        }
    )
    for r in records:
        for k in key(r) if callable(key) else [key]:
            s = sums[k]
            s["requests"] += 1
            s["errors"] += 1 if r.status >= 400 else 0
            s["prompt_tokens"] += r.prompt_tokens
            s["completion_tokens"] += r.completion_tokens
            s["cached_tokens"] += r.cached_tokens
            s["cost"] += r.cost
    return dict(sums)


async def assert_consistent(engine: AsyncEngine, expected_ids: set[str]) -> None:
    """Every record once, every decision once, and every rollup equal to the sum of the records."""
    async with engine.connect() as c:
        ids = [row[0] for row in await c.execute(text("SELECT request_id FROM usage_records"))]
        assert len(ids) == len(set(ids))
        assert set(ids) == expected_ids
        decisions = (await c.execute(text("SELECT count(*) FROM decision_records"))).scalar_one()
        assert decisions == len(expected_ids)
        record_sums = (
            await c.execute(
                text(
                    "SELECT count(*), sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END), sum(prompt_tokens), "
                    "sum(completion_tokens), sum(cached_tokens), sum(cost) FROM usage_records"
                )
            )
        ).one()
        for table in ("usage_hourly", "usage_daily", "usage_monthly"):
            rollup = (
                await c.execute(
                    text(
                        f"SELECT sum(requests), sum(errors), sum(prompt_tokens), sum(completion_tokens), "
                        f"sum(cached_tokens), sum(cost) FROM {table}"
                    )
                )
            ).one()
            assert [int(v) for v in rollup[:5]] == [int(v) for v in record_sums[:5]], table
            assert abs(float(rollup[5]) - float(record_sums[5])) < 1e-6, table
