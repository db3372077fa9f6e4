"""One idempotent database write of a batch of records and their rollup deltas.

Records are inserted with ``ON CONFLICT DO NOTHING … RETURNING`` their ids, and only the ids the
database reports as new are added to the rollups, all in one transaction. So a batch written
twice (spool replay after a commit whose acknowledgement was lost, or a crash during replay)
neither duplicates a record nor counts it twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.usage.models import (
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    decision_records,
    usage_daily,
    usage_daily_tags,
    usage_hourly,
    usage_hourly_tags,
    usage_monthly,
    usage_monthly_tags,
    usage_records,
)
from gateway.usage.records import DecisionRecord, UsageRecord, as_utc

RecordPair = tuple[UsageRecord, DecisionRecord | None]
InsertFactory = Callable[[Table], Any]

_TAG_NAME_MAX = 64
_TAG_VALUE_MAX = 256


_INSERTS: dict[str, InsertFactory] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _insert_for(connection: AsyncConnection) -> InsertFactory:
    name = connection.dialect.name
    if name not in _INSERTS:
        raise RuntimeError(f"usage store supports PostgreSQL and SQLite, not {name}")
    return _INSERTS[name]


def hour_of(time: datetime) -> datetime:
    return as_utc(time).replace(minute=0, second=0, microsecond=0)


def day_of(time: datetime) -> date:
    return as_utc(time).date()


def month_of(time: datetime) -> date:
    return as_utc(time).date().replace(day=1)


def _dimensions(record: UsageRecord) -> tuple[str, ...]:
    return (
        record.key_id or "",
        record.team or "",
        record.user or "",
        record.model or "",
        record.provider or "",
        record.deployment or "",
    )


def _measures(record: UsageRecord) -> tuple[int, int, int, int, int, float]:
    return (
        1,
        1 if record.status >= 400 else 0,
        record.prompt_tokens,
        record.completion_tokens,
        record.cached_tokens,
        record.cost,
    )


def _add(sums: dict[tuple[Any, ...], list[float]], key: tuple[Any, ...], measures: Sequence[float]) -> None:
    current = sums.get(key)
    if current is None:
        sums[key] = list(measures)
    else:
        for i, value in enumerate(measures):
            current[i] += value


def rollup_deltas(records: Iterable[UsageRecord]) -> dict[Table, list[dict[str, Any]]]:
    """Per rollup table, one row of sums per primary key, sorted (a stable lock order on PostgreSQL)."""
    buckets: tuple[tuple[str, Callable[[datetime], Any], Table, Table], ...] = (
        ("hour", hour_of, usage_hourly, usage_hourly_tags),
        ("day", day_of, usage_daily, usage_daily_tags),
        ("month", month_of, usage_monthly, usage_monthly_tags),
    )
    sums: dict[Table, dict[tuple[Any, ...], list[float]]] = {}
    for _, _, plain, tagged in buckets:
        sums[plain], sums[tagged] = {}, {}
    for record in records:
        dims, measures = _dimensions(record), _measures(record)
        tags = [(str(k)[:_TAG_NAME_MAX], str(v)[:_TAG_VALUE_MAX]) for k, v in record.tags.items()]
        for _, bucket_of, plain, tagged in buckets:
            bucket = bucket_of(record.time)
            _add(sums[plain], (bucket, *dims), measures)
            for tag in tags:
                _add(sums[tagged], (bucket, *tag, *dims), measures)

    deltas: dict[Table, list[dict[str, Any]]] = {}
    for bucket_column, _, plain, tagged in buckets:
        deltas[plain] = _rows(sums[plain], (bucket_column, *ROLLUP_DIMENSIONS))
        deltas[tagged] = _rows(sums[tagged], (bucket_column, "tag_name", "tag_value", *ROLLUP_DIMENSIONS))
    return deltas


def _rows(sums: dict[tuple[Any, ...], list[float]], key_columns: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for key in sorted(sums):
        row = dict(zip(key_columns, key, strict=True))
        row.update(zip(ROLLUP_MEASURES, sums[key], strict=True))
        for column in ROLLUP_MEASURES[:-1]:  # every sum but cost is a count
            row[column] = int(row[column])
        out.append(row)
    return out


@functools.cache
def _rollup_upsert(dialect: str, table: Table) -> Any:
    # Statements are immutable and reusable; building this one (its `excluded` column
    # collection) took a few ms per table per batch, on the event loop.
    stmt = _INSERTS[dialect](table)
    return stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={m: table.c[m] + stmt.excluded[m] for m in ROLLUP_MEASURES},
    )


async def _upsert_rollup(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    await connection.execute(_rollup_upsert(connection.dialect.name, table), rows)


def _padded_to_power_of_two(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with its last row repeated up to the next power of two (300 rows → 512).

    An executemany with RETURNING becomes one multi-row ``INSERT … VALUES (…), (…) RETURNING``
    whose SQL text depends on the row count (SQLAlchemy's insertmanyvalues), and the drivers keep
    prepared statements per connection keyed by that text (sqlite3: 128, asyncpg: 100). Batches
    of every size from 1 to 500 filled those caches with large statements: on SQLite up to about
    78 MB per pooled connection, the gateway's RSS growth under load (issue 10,
    bench/leak_probe.py). Power-of-two row counts bound the distinct texts to about ten while
    keeping one statement per batch; the repeated rows are dropped by ON CONFLICT DO NOTHING
    (SQLite and PostgreSQL both allow a key twice in one DO NOTHING insert) and return nothing.
    """
    target = 1 << (len(rows) - 1).bit_length()
    return rows + [rows[-1]] * (target - len(rows))


async def write_batch(connection: AsyncConnection, pairs: Sequence[RecordPair]) -> int:
    """Insert the batch inside the caller's transaction; returns how many usage records were new."""
    insert = _insert_for(connection)
    usage_by_id: dict[str, UsageRecord] = {}
    decisions: dict[str, DecisionRecord] = {}
    for usage, decision in pairs:
        usage_by_id.setdefault(usage.request_id, usage)
        if decision is not None:
            decisions.setdefault(decision.id, decision)
    if not usage_by_id:
        return 0

    stmt = (
        insert(usage_records)
        .on_conflict_do_nothing(index_elements=["request_id"])
        .returning(usage_records.c.request_id)
    )
    # One statement per table and batch: each await here waits behind every request the event
    # loop is serving (about concurrency x CPU per request), so a batch split into several
    # statements made the writer fall behind under load (measured with bench/leak_probe.py).
    rows = _padded_to_power_of_two([u.to_row() for u in usage_by_id.values()])
    result = await connection.execute(stmt, rows)
    new_ids = set(result.scalars().all())

    if decisions:
        await connection.execute(
            insert(decision_records).on_conflict_do_nothing(index_elements=["id"]),
            [d.to_row() for d in decisions.values()],
        )

    new_records = [usage_by_id[request_id] for request_id in new_ids]
    for table, rows in rollup_deltas(new_records).items():
        await _upsert_rollup(connection, table, rows)
    return len(new_ids)
