"""Tables of usage and decision records and the rollups that make chargeback reports fast.

``usage_records`` and ``decision_records`` hold one row per request and per decision. The six
rollup tables hold running sums per time bucket and dimension set, updated by the writer in the
same transaction as the records they count:

- ``usage_hourly`` / ``usage_daily`` / ``usage_monthly``: per (bucket, key, team, user, model,
  provider, deployment);
- ``usage_hourly_tags`` / ``usage_daily_tags`` / ``usage_monthly_tags``: the same plus one
  (tag_name, tag_value) per row, so ``group_by=tag:<name>`` reads only the rows of that tag.

Dimension columns of the rollups are NOT NULL with ``''`` for "none": NULLs never collide in a
unique key, so ``ON CONFLICT`` would never find the row to add to.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Double, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base

#: The dimensions of every rollup row, in primary-key order after the bucket.
ROLLUP_DIMENSIONS = ("key_id", "team", "user_id", "model", "provider", "deployment")
#: The sums every rollup row carries.
ROLLUP_MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost")


class UsageRecordRow(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_time", "time"),
        Index("ix_usage_records_key_id_time", "key_id", "time"),
        Index("ix_usage_records_team_time", "team", "time"),
    )

    #: The gateway's own id for the request: unique, so records are never deduplicated by mistake.
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: The ``x-request-id`` the client sent, if any (clients may reuse theirs, e.g. on retries).
    client_request_id: Mapped[str | None] = mapped_column(String(128))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    endpoint: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(256))
    tags: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_model: Mapped[str | None] = mapped_column(String(128))
    served_model: Mapped[str | None] = mapped_column(String(128))
    provider: Mapped[str | None] = mapped_column(String(64))
    deployment: Mapped[str | None] = mapped_column(String(128))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cached_tokens: Mapped[int] = mapped_column(Integer)
    tokens_estimated: Mapped[bool] = mapped_column(Boolean)
    cost: Mapped[float] = mapped_column(Double)
    status: Mapped[int] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[float] = mapped_column(Double)
    ttft_ms: Mapped[float | None] = mapped_column(Double)
    stream: Mapped[bool] = mapped_column(Boolean)
    cache_hit: Mapped[bool] = mapped_column(Boolean)
    decision_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class DecisionRecordRow(Base):
    __tablename__ = "decision_records"
    __table_args__ = (
        Index("ix_decision_records_time", "time"),
        Index("ix_decision_records_request_id", "request_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    allow: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    policy_revision: Mapped[str | None] = mapped_column(String(128))
    eval_ms: Mapped[float] = mapped_column(Double)
    engine: Mapped[str] = mapped_column(String(32))


class _RollupColumns:
    """Dimensions and sums shared by the four rollup tables."""

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    team: Mapped[str] = mapped_column(String(128), primary_key=True, server_default="")
    user_id: Mapped[str] = mapped_column(String(256), primary_key=True, server_default="")
    model: Mapped[str] = mapped_column(String(128), primary_key=True, server_default="")
    provider: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    deployment: Mapped[str] = mapped_column(String(128), primary_key=True, server_default="")
    requests: Mapped[int] = mapped_column(BigInteger, server_default="0")
    errors: Mapped[int] = mapped_column(BigInteger, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cached_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost: Mapped[float] = mapped_column(Double, server_default="0")


class UsageHourly(_RollupColumns, Base):
    __tablename__ = "usage_hourly"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, sort_order=-1)


class UsageDaily(_RollupColumns, Base):
    __tablename__ = "usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-1)


class UsageMonthly(_RollupColumns, Base):
    __tablename__ = "usage_monthly"

    #: The first day of the month.
    month: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-1)


class UsageHourlyTags(_RollupColumns, Base):
    __tablename__ = "usage_hourly_tags"
    __table_args__ = (Index("ix_usage_hourly_tags_tag_name_hour", "tag_name", "hour"),)

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, sort_order=-2)
    tag_name: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=-1)
    tag_value: Mapped[str] = mapped_column(String(256), primary_key=True, sort_order=-1)


class UsageDailyTags(_RollupColumns, Base):
    __tablename__ = "usage_daily_tags"
    __table_args__ = (Index("ix_usage_daily_tags_tag_name_day", "tag_name", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-2)
    tag_name: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=-1)
    tag_value: Mapped[str] = mapped_column(String(256), primary_key=True, sort_order=-1)


class UsageMonthlyTags(_RollupColumns, Base):
    __tablename__ = "usage_monthly_tags"
    __table_args__ = (Index("ix_usage_monthly_tags_tag_name_month", "tag_name", "month"),)

    month: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-2)
    tag_name: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=-1)
    tag_value: Mapped[str] = mapped_column(String(256), primary_key=True, sort_order=-1)


usage_records: Table = UsageRecordRow.__table__  # type: ignore[assignment]
decision_records: Table = DecisionRecordRow.__table__  # type: ignore[assignment]
usage_hourly: Table = UsageHourly.__table__  # type: ignore[assignment]
usage_daily: Table = UsageDaily.__table__  # type: ignore[assignment]
usage_hourly_tags: Table = UsageHourlyTags.__table__  # type: ignore[assignment]
usage_daily_tags: Table = UsageDailyTags.__table__  # type: ignore[assignment]
usage_monthly: Table = UsageMonthly.__table__  # type: ignore[assignment]
usage_monthly_tags: Table = UsageMonthlyTags.__table__  # type: ignore[assignment]
