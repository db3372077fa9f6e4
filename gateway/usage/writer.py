"""Batched, non-blocking usage writer with a disk spool: nothing on the request path waits on SQL.

``record()`` only puts the record pair on an in-process queue (or, when the queue is full, on a
small overflow buffer that goes to the spool). One background task takes batches off the queue
and writes each in one transaction (``gateway.usage.store.write_batch``). When a write fails or
takes longer than ``write_timeout_s``, the batch is appended to the spool and the writer sends
further batches to the spool for ``retry_interval_s`` before trying the database again.

Order: while the spool holds anything, new batches are appended behind it rather than written
directly, and the spool is replayed oldest segment first before any new batch is written, so
records reach the database in the order they were recorded. Replays are idempotent (see
``store.py``), so a segment replayed twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.observability import Metrics
from gateway.usage.config import UsageConfig
from gateway.usage.records import DecisionRecord, UsageRecord
from gateway.usage.spool import RecordPair, Spool
from gateway.usage.store import write_batch

#: While a backlog is waiting, a write takes up to this many batches' worth of records.
CATCH_UP = 4

logger = logging.getLogger("gateway.usage.writer")


class UsageWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        config: UsageConfig,
        metrics: Metrics | None = None,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """``spool_dir`` overrides ``config.spool_dir`` (the app passes it resolved against its config)."""
        self._engine = engine
        self._config = config
        self._metrics = metrics
        self._spool = Spool(Path(spool_dir) if spool_dir is not None else Path(config.spool_dir))
        self._queue: asyncio.Queue[RecordPair] = asyncio.Queue(maxsize=config.queue_max)
        self._overflow: list[RecordPair] = []
        self._spool_pending = self._spool.pending()
        self._retry_at = 0.0
        self._db_ok = True
        self._stopping = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        if metrics is not None:
            metrics.track_writer(self._queue.qsize, self._spool.size_bytes)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() + len(self._overflow)

    @property
    def spool(self) -> Spool:
        return self._spool

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    def record(self, usage: UsageRecord, decision: DecisionRecord | None = None) -> None:
        """Queue a request's records; never blocks on I/O in the common case and never raises."""
        try:
            if usage.payload is not None and not self._config.log_payloads:
                usage.payload = None  # payload logging is off: text never reaches disk or SQL
            pair = (usage, decision)
            if self._closed:
                self._spool_now([pair])
                return
            try:
                self._queue.put_nowait(pair)
            except asyncio.QueueFull:
                # The database cannot keep up: keep memory bounded by spilling to disk in batches.
                self._overflow.append(pair)
                if len(self._overflow) >= self._config.batch_size:
                    overflow, self._overflow = self._overflow, []
                    self._spool_now(overflow)
        except Exception:
            logger.exception("could not queue usage record %s", getattr(usage, "request_id", "?"))

    async def close(self) -> None:
        """Stop the background task and write out everything queued (to the database or the spool)."""
        self._stopping = True
        if self._task is not None:
            await self._task
            self._task = None
        while not self._queue.empty():
            await self._flush(self._take(self._config.batch_size))
        # No await since the queue was last seen empty: from here on record() spools directly.
        self._closed = True
        if self._overflow:
            overflow, self._overflow = self._overflow, []
            await self._to_spool(overflow)

    # -- background task ---------------------------------------------------------------------

    def _take(self, limit: int) -> list[RecordPair]:
        batch: list[RecordPair] = []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    async def _next_batch(self) -> list[RecordPair]:
        """Up to ``batch_size`` records, waiting at most ``flush_interval_s`` after the first;
        up to ``CATCH_UP`` times that while a backlog of more than a batch is waiting."""
        interval = self._config.flush_interval_s
        batch: list[RecordPair] = []
        try:
            batch.append(await asyncio.wait_for(self._queue.get(), timeout=interval))
        except TimeoutError:
            return batch
        deadline = time.monotonic() + interval
        while len(batch) < self._config.batch_size and not self._stopping:
            batch.extend(self._take(self._config.batch_size - len(batch)))
            remaining = deadline - time.monotonic()
            if len(batch) >= self._config.batch_size or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), timeout=remaining))
            except TimeoutError:
                break
        if len(batch) >= self._config.batch_size and self._queue.qsize() >= self._config.batch_size:
            # A write costs a fixed number of awaits, and under load each await waits behind
            # every request the event loop is serving, so a fixed batch size caps the records
            # written per second below the request rate at high concurrency: larger batches
            # drain the backlog instead of letting it grow.
            batch.extend(self._take(self._config.batch_size * (CATCH_UP - 1)))
        return batch

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._flush(await self._next_batch())
            except asyncio.CancelledError:
                raise
            except Exception:
                # The loop must survive anything: losing the writer would lose every later record.
                logger.exception("usage writer iteration failed")

    async def _flush(self, batch: list[RecordPair]) -> None:
        if self._overflow:
            overflow, self._overflow = self._overflow, []
            await self._to_spool(overflow)
        if self._spool_pending and self._database_due():
            await self._replay()
        if not batch:
            return
        if self._spool_pending or not self._database_due():
            await self._to_spool(batch)
            return
        if not await self._write(batch):
            await self._to_spool(batch)

    def _database_due(self) -> bool:
        return self._db_ok or time.monotonic() >= self._retry_at

    async def _write(self, batch: Sequence[RecordPair]) -> bool:
        try:
            async with asyncio.timeout(self._config.write_timeout_s):
                async with self._engine.begin() as connection:
                    written = await write_batch(connection, batch)
        except Exception as exc:
            if self._metrics is not None:
                self._metrics.write_failures.inc()
            if self._db_ok:
                logger.warning("usage database unavailable, spooling records: %s", type(exc).__name__)
            self._db_ok = False
            self._retry_at = time.monotonic() + self._config.retry_interval_s
            return False
        if not self._db_ok:
            logger.info("usage database is back")
        self._db_ok = True
        if self._metrics is not None:
            self._metrics.records_written.inc(written)
        return True

    async def _replay(self) -> None:
        for segment in self._spool.segments():
            pairs = await asyncio.to_thread(self._spool.read, segment)
            for start in range(0, len(pairs), self._config.batch_size):
                if not await self._write(pairs[start : start + self._config.batch_size]):
                    return
            self._spool.remove(segment)
            logger.info("replayed %d spooled usage records from %s", len(pairs), segment.name)
        self._spool_pending = self._spool.pending()

    async def _to_spool(self, pairs: list[RecordPair]) -> None:
        await asyncio.to_thread(self._spool_now, pairs)

    def _spool_now(self, pairs: list[RecordPair]) -> None:
        """Append to the spool (fsync'd); called in a worker thread by ``_to_spool``, and directly
        for the overflow and after-close paths (rare: the database is far behind)."""
        try:
            written = self._spool.append(pairs)
        except OSError:
            logger.exception("could not spool %d usage records", len(pairs))
            return
        self._spool_pending = True
        if self._metrics is not None:
            self._metrics.records_spooled.inc(written)
