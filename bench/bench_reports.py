"""Time chargeback reports over a database loaded by ``bench/gen_usage.py``.

    python bench/bench_reports.py --url postgresql://postgres@127.0.0.1:5432/gateway_bench

Each report runs ``--repeat`` times after one warm-up run; the table shows median and worst
wall time, the rows returned, and which rollup table answered.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.usage.reports import usage_report


def _reports(end: datetime, days: int) -> list[tuple[str, list[str], datetime, datetime, str]]:
    start = end - timedelta(days=days)
    week = end - timedelta(days=7)
    last_day = end - timedelta(days=1)
    # Whole calendar months inside the loaded period: the monthly rollup answers these.
    first_month = (start + timedelta(days=31)).replace(day=1)
    next_month = (end + timedelta(days=31)).replace(day=1)
    return [
        ("calendar months, by team, per month", ["team"], first_month, next_month, "month"),
        ("calendar months, by user, per month", ["user"], first_month, next_month, "month"),
        ("calendar months, by tag:cost_center", ["tag:cost_center"], first_month, next_month, "month"),
        ("all, by team, per day", ["team"], start, end, "day"),
        ("all, by team, per month", ["team"], start, end, "month"),
        ("all, by key, per month", ["key"], start, end, "month"),
        ("all, by user, per month", ["user"], start, end, "month"),
        ("all, by model+provider, per day", ["model", "provider"], start, end, "day"),
        ("all, by tag:cost_center, per month", ["tag:cost_center"], start, end, "month"),
        ("all, total per month", [], start, end, "month"),
        ("7 days, by team, per day", ["team"], week, end, "day"),
        ("1 day, by team, per hour", ["team"], last_day, end, "hour"),
        ("1 day, by key, per hour", ["key"], last_day, end, "hour"),
        ("7 days 13:00→13:00, by team, per day", ["team"], week + timedelta(hours=13),
         end - timedelta(hours=11), "day"),
    ]  # fmt: skip


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    counts = {}
    async with engine.connect() as c:
        tables = ("usage_records", "usage_hourly", "usage_daily", "usage_monthly")
        for table in (*tables, "usage_hourly_tags", "usage_daily_tags", "usage_monthly_tags"):
            # reltuples after ANALYZE: an exact count(*) over 10M rows would itself take seconds.
            estimate = await c.execute(
                text(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{table}'")
            )
            counts[table] = int(estimate.scalar_one())
    return counts


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/gateway_bench")
    parser.add_argument("--days", type=int, default=90, help="the span gen_usage.py loaded")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    engine = create_async_engine(args.url.replace("postgresql://", "postgresql+asyncpg://", 1))
    console = Console()
    counts = await _counts(engine)
    console.print(", ".join(f"{name} ≈ {count:,}" for name, count in counts.items()))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    end_day = datetime.combine(
        (end - timedelta(hours=1)).date() + timedelta(days=1), datetime.min.time(), UTC
    )

    console.print(f"period: {end_day - timedelta(days=args.days):%Y-%m-%d} to {end_day:%Y-%m-%d} (exclusive)")
    table = Table(title=f"usage reports ({args.repeat} runs each)")
    for column in ("report", "rows", "median ms", "worst ms"):
        table.add_column(column, justify="left" if column == "report" else "right")
    for name, group_by, start, stop, granularity in _reports(end_day, args.days):
        await usage_report(engine, group_by, start, stop, granularity)
        times = []
        rows: list[dict] = []  # type: ignore[type-arg]
        for _ in range(args.repeat):
            began = time.perf_counter()
            rows = await usage_report(engine, group_by, start, stop, granularity)
            times.append((time.perf_counter() - began) * 1000)
        table.add_row(name, f"{len(rows):,}", f"{statistics.median(times):,.0f}", f"{max(times):,.0f}")
    console.print(table)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
