"""Chargeback reports: tokens, requests, cost and errors grouped by key, team, user, model, provider or tag.

Reports read only the rollup tables, never ``usage_records``, so their cost grows with the
number of groups and buckets, not with the number of requests. Each part of the range is read
from the coarsest rollup that answers it exactly (``plan_segments``): whole months from the
monthly rollup (month reports), whole days from the daily one, ragged edges and hour reports
from the hourly one; the pieces are summed per period and group. A ``tag:<name>`` group
reads the tag rollups, which hold one row per tag, so a report can group by at most one tag.

Bounds: ``start`` is inclusive, ``end`` exclusive, at hour resolution (a bucket is counted when
it starts in ``[start, end)``). All times are UTC.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, DateTime, Table, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from gateway.usage.models import (
    usage_daily,
    usage_daily_tags,
    usage_hourly,
    usage_hourly_tags,
    usage_monthly,
    usage_monthly_tags,
)

Granularity = Literal["hour", "day", "month"]
GRANULARITIES: tuple[str, ...] = ("hour", "day", "month")

#: Names accepted in ``group_by`` and the rollup column each reads.
GROUP_COLUMNS = {
    "key": "key_id",
    "team": "team",
    "user": "user_id",
    "model": "model",
    "provider": "provider",
    "deployment": "deployment",
}
MEASURES = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "total_tokens",
    "cost",
)
DEFAULT_DAYS = 30


class ReportError(ValueError):
    """A report parameter that cannot be honoured; the message says which and why."""


@dataclass(frozen=True, slots=True)
class GroupBy:
    fields: tuple[str, ...]
    tag: str | None

    @property
    def names(self) -> list[str]:
        return [f"tag:{self.tag}" if f == "tag" else f for f in self.fields]


def parse_group_by(group_by: list[str]) -> GroupBy:
    fields: list[str] = []
    tag: str | None = None
    for raw in group_by:
        item = raw.strip()
        if not item:
            continue
        if item.startswith("tag:"):
            name = item[4:].strip()
            if not name:
                raise ReportError("group_by: 'tag:' needs a tag name, e.g. tag:cost_center")
            if tag is not None:
                raise ReportError("group_by: at most one tag per report")
            tag = name
            fields.append("tag")
        elif item in GROUP_COLUMNS:
            if item in fields:
                raise ReportError(f"group_by: {item!r} given twice")
            fields.append(item)
        else:
            known = ", ".join([*GROUP_COLUMNS, "tag:<name>"])
            raise ReportError(f"group_by: unknown field {item!r} (known: {known})")
    return GroupBy(tuple(fields), tag)


def _parse_one(text: str, name: str) -> tuple[datetime, bool]:
    """The instant and whether the text was a bare date."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC), True
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"{name}: not an ISO date or date-time: {text!r}") from None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)), False


def parse_bounds(
    start: str | None, end: str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``from``/``to`` as given by a user: a bare ``to`` date includes that whole day.

    Defaults: the last ``DEFAULT_DAYS`` days, today included.
    """
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    if end:
        end_at, bare = _parse_one(end, "to")
        if bare:
            end_at += timedelta(days=1)
    else:
        end_at = datetime.combine(today + timedelta(days=1), time(), UTC)
    if start:
        start_at, _ = _parse_one(start, "from")
    else:
        start_at = datetime.combine(today - timedelta(days=DEFAULT_DAYS - 1), time(), UTC)
    if start_at >= end_at:
        raise ReportError("from: must be before to")
    return start_at, end_at


def _ceil_day(value: datetime) -> datetime:
    floor = value.replace(hour=0, minute=0, second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(days=1)


def _floor_day(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_month(value: datetime) -> datetime:
    floor = _floor_day(value).replace(day=1)
    if floor == value:
        return floor
    return (floor + timedelta(days=32)).replace(day=1)


def _floor_month(value: datetime) -> datetime:
    return _floor_day(value).replace(day=1)


def plan_segments(granularity: str, start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """Split ``[start, end)`` into (bucket, from, to) pieces, each read from the coarsest rollup.

    Ragged edges of a day report come from the hourly rollup and the whole days between from the
    daily one; a month report also reads whole months from the monthly rollup.
    """
    if granularity == "hour":
        return [("hour", start, end)]
    first_day, last_day = _ceil_day(start), _floor_day(end)
    if first_day >= last_day:
        return [("hour", start, end)]
    middle: list[tuple[str, datetime, datetime]] = [("day", first_day, last_day)]
    if granularity == "month":
        first_month, last_month = _ceil_month(first_day), _floor_month(last_day)
        if first_month < last_month:
            middle = [
                ("day", first_day, first_month),
                ("month", first_month, last_month),
                ("day", last_month, last_day),
            ]
    segments = [("hour", start, first_day), *middle, ("hour", last_day, end)]
    return [(bucket, lo, hi) for bucket, lo, hi in segments if lo < hi]


_TABLES = {
    ("hour", False): usage_hourly,
    ("day", False): usage_daily,
    ("month", False): usage_monthly,
    ("hour", True): usage_hourly_tags,
    ("day", True): usage_daily_tags,
    ("month", True): usage_monthly_tags,
}


def _bucket(table: Table, bucket: str, granularity: str, dialect: str) -> ColumnElement[Any]:
    column = table.c[bucket]
    if bucket == granularity:
        return column
    if dialect == "postgresql":
        # date_trunc on a date or timestamptz works in the session's time zone; make it UTC-naive first.
        naive = func.timezone("UTC", column) if bucket == "hour" else cast(column, DateTime())
        return func.date_trunc(granularity, naive)
    return func.strftime("%Y-%m-01" if granularity == "month" else "%Y-%m-%d", column)


def _period_text(value: Any, granularity: str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
    if granularity == "hour":
        if isinstance(value, datetime):
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            return value.isoformat()
        return datetime.combine(value, time(), UTC).isoformat()
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat()


async def _execute(source: AsyncEngine | AsyncConnection | AsyncSession, stmt: Any) -> list[Any]:
    if isinstance(source, AsyncEngine):
        async with source.connect() as connection:
            return list((await connection.execute(stmt)).all())
    return list((await source.execute(stmt)).all())


def _dialect(source: AsyncEngine | AsyncConnection | AsyncSession) -> str:
    if isinstance(source, AsyncSession):
        bind = source.bind
        if bind is None:
            raise ReportError("the session is not bound to a database")
        return bind.dialect.name
    return source.dialect.name


async def usage_report(
    source: AsyncEngine | AsyncConnection | AsyncSession,
    group_by: list[str],
    start: datetime,
    end: datetime,
    granularity: Granularity | str = "day",
) -> list[dict[str, Any]]:
    """One dict per (period, group): ``period``, the group fields, then the sums in ``MEASURES``."""
    if granularity not in GRANULARITIES:
        raise ReportError(f"granularity: must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    groups = parse_group_by(group_by)
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
    if start >= end:
        raise ReportError("from: must be before to")

    dialect = _dialect(source)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for bucket_column, lo, hi in plan_segments(granularity, start, end):
        stmt = _segment_query(groups, bucket_column, granularity, lo, hi, dialect)
        for row in await _execute(source, stmt):
            values = row._mapping
            period = _period_text(values["period"], granularity)
            key = (period, *(values[name] or None for name in groups.names))
            item = merged.get(key)
            if item is None:
                item = {"period": period, **{name: key[i + 1] for i, name in enumerate(groups.names)}}
                item.update(dict.fromkeys(MEASURES, 0))
                merged[key] = item
            for measure in ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens"):
                item[measure] += int(values[measure] or 0)
            item["cost"] += float(values["cost"] or 0.0)

    report = [merged[key] for key in sorted(merged, key=lambda k: tuple((v is None, v or "") for v in k))]
    for item in report:
        item["total_tokens"] = item["prompt_tokens"] + item["completion_tokens"]
        item["cost"] = round(item["cost"], 10)
    return report


def _segment_query(
    groups: GroupBy, bucket_column: str, granularity: str, start: datetime, end: datetime, dialect: str
) -> Any:
    table = _TABLES[(bucket_column, groups.tag is not None)]
    bucket = _bucket(table, bucket_column, granularity, dialect).label("period")
    group_columns: list[ColumnElement[Any]] = []
    for name, field in zip(groups.names, groups.fields, strict=True):
        column = table.c.tag_value if field == "tag" else table.c[GROUP_COLUMNS[field]]
        group_columns.append(column.label(name))
    sums = [func.sum(table.c[m]).label(m) for m in MEASURES if m != "total_tokens"]
    stmt = select(bucket, *group_columns, *sums).group_by(bucket, *group_columns)
    if bucket_column == "hour":
        first_hour = start.replace(minute=0, second=0, microsecond=0)
        stmt = stmt.where(table.c.hour >= first_hour, table.c.hour < end)
    else:
        stmt = stmt.where(table.c[bucket_column] >= start.date(), table.c[bucket_column] < end.date())
    if groups.tag is not None:
        stmt = stmt.where(table.c.tag_name == groups.tag)
    return stmt


def report_columns(group_by: list[str]) -> list[str]:
    return ["period", *parse_group_by(group_by).names, *MEASURES]


def report_csv(report: list[dict[str, Any]], group_by: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=report_columns(group_by), lineterminator="\n")
    writer.writeheader()
    for row in report:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
