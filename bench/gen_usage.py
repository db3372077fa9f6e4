"""Load N synthetic usage records (default 10 million) into PostgreSQL, rollups included.

Each chunk is COPYed into a staging table, then moved into ``usage_records`` and summed into
the four rollup tables with ``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` — the same
sums the usage writer maintains record by record.

    python bench/gen_usage.py --url postgresql://postgres@127.0.0.1:5432/gateway_bench -n 10000000

The database must exist; the usage tables are created if missing (``--reset`` empties them).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.db.base import Base
from gateway.usage import models

#: (model, provider, deployments, USD per 1M prompt tokens, per 1M completion tokens)
MODELS = (
    ("gpt-4o", "openai", ("openai-us", "azure-eu"), 2.5, 10.0),
    ("gpt-4o-mini", "openai", ("openai-us",), 0.15, 0.6),
    ("claude-sonnet-4", "anthropic", ("anthropic",), 3.0, 15.0),
    ("gemini-2.0-flash", "gemini", ("gemini",), 0.1, 0.4),
    ("mistral-large", "mistral", ("mistral",), 2.0, 6.0),
)
COLUMNS = (
    "request_id", "time", "endpoint", "key_id", "team", "user_id", "tags", "requested_model",
    "served_model", "provider", "deployment", "prompt_tokens", "completion_tokens", "cached_tokens",
    "tokens_estimated", "cost", "status", "error_type", "latency_ms", "ttft_ms", "stream", "cache_hit",
    "decision_id", "payload",
)  # fmt: skip

DIMS = "coalesce(key_id, ''), coalesce(team, ''), coalesce(user_id, ''), coalesce(served_model, requested_model, ''), coalesce(provider, ''), coalesce(deployment, '')"  # noqa: E501
SUMS = "count(*), count(*) FILTER (WHERE status >= 400), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost)"  # noqa: E501
ROLLUP_COLS = "key_id, team, user_id, model, provider, deployment, requests, errors, prompt_tokens, completion_tokens, cached_tokens, cost"  # noqa: E501
UPDATE = ", ".join(f"{m} = {{t}}.{m} + excluded.{m}" for m in models.ROLLUP_MEASURES)
DIM_KEYS = "key_id, team, user_id, model, provider, deployment"
HOUR = "date_trunc('hour', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
DAY = "(time AT TIME ZONE 'UTC')::date"

MONTH = "date_trunc('month', time AT TIME ZONE 'UTC')::date"


def _rollup_sql(table: str, bucket_column: str, bucket: str) -> tuple[str, str]:
    plain = (
        f"INSERT INTO {table} ({bucket_column}, {ROLLUP_COLS}) "
        f"SELECT {bucket}, {DIMS}, {SUMS} FROM usage_stage GROUP BY 1,2,3,4,5,6,7 "
        f"ON CONFLICT ({bucket_column}, {DIM_KEYS}) DO UPDATE SET {UPDATE.format(t=table)}"
    )
    tagged = (
        f"INSERT INTO {table}_tags ({bucket_column}, tag_name, tag_value, {ROLLUP_COLS}) "
        f"SELECT {bucket}, t.key, t.value, {DIMS}, {SUMS} FROM usage_stage, jsonb_each_text(tags::jsonb) t "
        f"GROUP BY 1,2,3,4,5,6,7,8,9 ON CONFLICT ({bucket_column}, tag_name, tag_value, {DIM_KEYS}) "
        f"DO UPDATE SET {UPDATE.format(t=table + '_tags')}"
    )
    return plain, tagged


ROLLUP_SQL = (
    *_rollup_sql("usage_hourly", "hour", HOUR),
    *_rollup_sql("usage_daily", "day", DAY),
    *_rollup_sql("usage_monthly", "month", MONTH),
)


def make_rows(
    rng: random.Random, count: int, start: datetime, span_s: float, args: argparse.Namespace
) -> list:
    """``count`` records spread over ``[start, start + span_s)``, in time order, as a gateway writes them."""
    times = sorted(start + timedelta(seconds=rng.random() * span_s) for _ in range(count))
    rows = []
    for at in times:
        key = rng.randrange(args.keys)
        team = key % args.teams
        model, provider, deployments, price_in, price_out = MODELS[rng.randrange(len(MODELS))]
        prompt = rng.randint(20, 4000)
        completion = rng.randint(0, 1500)
        failed = rng.random() < 0.02
        status = rng.choice((429, 500, 403)) if failed else 200
        if failed:
            completion = 0
        cost = 0.0 if failed else (prompt * price_in + completion * price_out) / 1_000_000
        # Time-ordered ids (like UUIDv7): the primary key index grows at its right edge.
        request_id = f"{int(at.timestamp() * 1000):012x}{rng.getrandbits(64):016x}"
        rows.append(
            (
                request_id,
                at,
                "chat.completions",
                f"key-{key:05d}",
                f"team-{team:03d}",
                f"user-{key:05d}-{rng.randrange(args.users_per_key)}",
                orjson.dumps(
                    {"cost_center": f"cc-{team % 15:02d}", "env": "prod" if key % 4 else "dev"}
                ).decode(),
                model,
                None if status == 403 else model,
                provider,
                deployments[rng.randrange(len(deployments))],
                prompt,
                completion,
                0,
                False,
                cost,
                status,
                {429: "rate_limit_exceeded", 500: "upstream_500", 403: "policy_denied"}.get(status),
                rng.uniform(50, 8000),
                None,
                False,
                False,
                request_id,
                None,
            )
        )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/gateway_bench")
    parser.add_argument("-n", "--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--teams", type=int, default=40)
    parser.add_argument("--users-per-key", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reset", action="store_true", help="empty the usage tables first")
    args = parser.parse_args()

    engine = create_async_engine(args.url.replace("postgresql://", "postgresql+asyncpg://", 1))
    tables = [models.usage_records, models.decision_records, models.usage_hourly, models.usage_daily]
    tables += [
        models.usage_monthly,
        models.usage_hourly_tags,
        models.usage_daily_tags,
        models.usage_monthly_tags,
    ]
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=tables))
    await engine.dispose()

    conn = await asyncpg.connect(args.url)
    await conn.execute("SET synchronous_commit = off")  # a bulk load; durability per chunk is not the point
    if args.reset:
        await conn.execute("TRUNCATE " + ", ".join(t.name for t in tables))
    await conn.execute("CREATE UNLOGGED TABLE IF NOT EXISTS usage_stage (LIKE usage_records)")
    await conn.execute("TRUNCATE usage_stage")

    rng = random.Random(args.seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    span_s = (end - start).total_seconds()
    began = time.perf_counter()
    with Progress(
        TextColumn("[bold]usage records"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("load", total=args.records)
        done = 0
        while done < args.records:
            count = min(args.chunk, args.records - done)
            # Chunks follow the clock: each covers its share of the period, so rollup upserts
            # touch the newest pages only (the bucket leads every rollup primary key).
            chunk_start = start + timedelta(seconds=span_s * done / args.records)
            rows = make_rows(rng, count, chunk_start, span_s * count / args.records, args)
            async with conn.transaction():
                await conn.copy_records_to_table("usage_stage", records=rows, columns=COLUMNS)
                await conn.execute(f"INSERT INTO usage_records SELECT {', '.join(COLUMNS)} FROM usage_stage")
                for sql in ROLLUP_SQL:
                    await conn.execute(sql)
                await conn.execute("TRUNCATE usage_stage")
            done += count
            progress.update(task, completed=done)
    await conn.execute("DROP TABLE usage_stage")
    # Set hint bits and the visibility map now, not during the first reports.
    await conn.execute("VACUUM ANALYZE")
    counts = {t.name: await conn.fetchval(f"SELECT count(*) FROM {t.name}") for t in tables}
    await conn.close()
    elapsed = time.perf_counter() - began
    print(f"loaded {args.records:,} records in {elapsed:.0f} s ({args.records / elapsed:,.0f}/s)")
    for name, count in counts.items():
        print(f"  {name:20} {count:>12,} rows")


if __name__ == "__main__":
    asyncio.run(main())
