"""Spend in SQL: increments written in batches, totals read back to seed the counters.

Only this module touches the database for consumption control, and never on the request
path: the limiter queues increments, a background task writes them every
``flush_interval_s`` and reads back the current periods' totals (which include the other
replicas' spend). If the database is down the increments stay queued and are retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.backend import SpendTotals
from gateway.limits.models import LimitSpend

log = logging.getLogger(__name__)

SpendKey = tuple[str, str]  # (scope, period id)


class SpendStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"spend store supports postgresql and sqlite, not {dialect!r}")
        # Both dialects spell the upsert the same way (INSERT … ON CONFLICT DO UPDATE).
        self._insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert

    async def add(self, increments: dict[SpendKey, SpendTotals]) -> None:
        """Add increments to the stored totals (one statement, one transaction)."""
        if not increments:
            return
        now = datetime.now(UTC)
        # Sorted, so concurrent replicas lock rows in the same order and cannot deadlock.
        rows = [
            {
                "scope": s,
                "period": p,
                "spend_usd": t.spend,
                "tokens": t.tokens,
                "requests": t.requests,
                "updated_at": now,
            }
            for (s, p), t in sorted(increments.items())
        ]
        table = cast(Table, LimitSpend.__table__)
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.period],
            set_={
                "spend_usd": table.c.spend_usd + stmt.excluded.spend_usd,
                "tokens": table.c.tokens + stmt.excluded.tokens,
                "requests": table.c.requests + stmt.excluded.requests,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt, rows)

    async def load(self, periods: Collection[str]) -> dict[SpendKey, SpendTotals]:
        """Totals of every scope in the given periods."""
        if not periods:
            return {}
        t = cast(Table, LimitSpend.__table__)
        query = select(t.c.scope, t.c.period, t.c.spend_usd, t.c.tokens, t.c.requests).where(
            t.c.period.in_(sorted(periods))
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return {(r.scope, r.period): SpendTotals(r.spend_usd, r.tokens, r.requests) for r in result}


class SpendFlusher:
    """Queues increments; a task writes them and refreshes the floors from SQL."""

    def __init__(
        self,
        store: SpendStore,
        interval_s: float,
        periods: Callable[[], Collection[str]],
        on_totals: Callable[[dict[SpendKey, SpendTotals]], None],
    ) -> None:
        self._store = store
        self._interval_s = interval_s
        self._periods = periods
        self._on_totals = on_totals
        self._pending: dict[SpendKey, SpendTotals] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.write_errors = 0

    def add(self, key: SpendKey, amount: SpendTotals) -> None:
        prior = self._pending.get(key)
        self._pending[key] = amount if prior is None else prior + amount

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def load(self) -> None:
        self._on_totals(await self._store.load(self._periods()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="limits-spend-flusher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        try:
            await self._store.add(batch)
        except (SQLAlchemyError, OSError) as exc:
            # Put the batch back (merged with what arrived meanwhile) and retry next time.
            for key, amount in batch.items():
                self.add(key, amount)
            self.write_errors += 1
            if not self._failing:
                self._failing = True
                log.error(
                    "cannot write spend to the database (%s); keeping %d increments queued", exc, len(batch)
                )
            return
        if self._failing:
            self._failing = False
            log.warning("spend writes to the database recovered")
        try:
            totals = await self._store.load(self._periods())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cannot read spend totals from the database: %s", exc)
            return
        self._on_totals(totals)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()
