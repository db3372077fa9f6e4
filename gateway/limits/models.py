"""Persisted spend: one row per scope and period, so budgets survive restarts.

Rows hold what was actually spent (reconciled usage, never reservations). Each replica adds
its own increments in batches, so the row is the total across replicas.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base


class LimitSpend(Base):
    __tablename__ = "limit_spend"

    #: ``key:<key_id>``, ``team:<team>`` … (see docs/limits.md).
    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: ``day:2026-11-27``, ``month:2026-11`` or ``w<seconds>:<index>``.
    period: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    spend_usd: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
