"""The usage writer: batched, never blocking the caller, nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.observability import Metrics
from gateway.usage.config import UsageConfig
from gateway.usage.spool import Spool
from gateway.usage.store import write_batch
from gateway.usage.writer import UsageWriter
from tests.usage.conftest import create_usage_tables
from tests.usage.factories import assert_consistent, expected_sums, make_pair
from tests.usage.pg import PrivatePostgres


def _config(tmp_path: Path, **overrides: object) -> UsageConfig:
    values: dict[str, object] = {
        "batch_size": 50,
        "flush_interval_s": 0.02,
        "spool_dir": str(tmp_path / "spool"),
        "write_timeout_s": 2.0,
        "retry_interval_s": 0.1,
    }
    values.update(overrides)
    return UsageConfig.model_validate(values)


async def _wait_for(condition, limit_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_every_record_written_once_with_rollups(engine: AsyncEngine, tmp_path: Path) -> None:
    metrics = Metrics()
    writer = UsageWriter(engine, _config(tmp_path), metrics)
    await writer.start()
    pairs = [make_pair(i) for i in range(400)]
    for usage, decision in pairs:
        writer.record(usage, decision)
    await writer.close()

    await assert_consistent(engine, {u.request_id for u, _ in pairs})
    expected = expected_sums([u for u, _ in pairs], lambda r: [r.team])
    async with engine.connect() as c:
        rows = await c.execute(
            text("SELECT team, sum(requests), sum(prompt_tokens) FROM usage_daily GROUP BY team")
        )
        got = {team: (int(n), int(p)) for team, n, p in rows}
    assert got == {t: (int(s["requests"]), int(s["prompt_tokens"])) for t, s in expected.items()}
    assert metrics.records_written._value.get() == 400
    assert not writer.spool.pending()


async def test_batch_written_twice_is_counted_once(engine: AsyncEngine) -> None:
    pairs = [make_pair(i) for i in range(30)]
    async with engine.begin() as c:
        assert await write_batch(c, pairs[:20]) == 20
    # A replay of a batch whose commit landed, plus new records: only the new ones count.
    async with engine.begin() as c:
        assert await write_batch(c, pairs) == 10
    await assert_consistent(engine, {u.request_id for u, _ in pairs})
    async with engine.connect() as c:
        tags = await c.execute(
            text(
                "SELECT tag_value, sum(requests) FROM usage_daily_tags "
                "WHERE tag_name = 'cost_center' GROUP BY 1"
            )
        )
        got = {value: int(n) for value, n in tags}
    expected = expected_sums([u for u, _ in pairs], lambda r: list(r.tags.values()))
    assert got == {k: int(v["requests"]) for k, v in expected.items()}


async def test_unreachable_database_spools_then_replays(tmp_path: Path) -> None:
    db_dir = tmp_path / "not-yet"
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_dir / 'usage.db'}")
    metrics = Metrics()
    writer = UsageWriter(engine, _config(tmp_path), metrics)
    await writer.start()
    pairs = [make_pair(i) for i in range(120)]
    for usage, decision in pairs[:60]:
        writer.record(usage, decision)
    await _wait_for(lambda: metrics.records_spooled._value.get() == 60)
    assert writer.spool.size_bytes() > 0

    db_dir.mkdir()
    await create_usage_tables(engine)
    for usage, decision in pairs[60:]:
        writer.record(usage, decision)
    await _wait_for(lambda: not writer.spool.pending() and writer.queue_depth == 0)
    await writer.close()
    await assert_consistent(engine, {u.request_id for u, _ in pairs})
    async with engine.connect() as c:  # spooled batches first, then the newer ones: arrival order kept
        stored = [
            row[0] for row in await c.execute(text("SELECT request_id FROM usage_records ORDER BY rowid"))
        ]
    assert stored == [u.request_id for u, _ in pairs]
    await engine.dispose()


async def test_payload_is_stored_only_when_enabled(sqlite_engine: AsyncEngine, tmp_path: Path) -> None:
    for enabled in (False, True):
        writer = UsageWriter(sqlite_engine, _config(tmp_path, log_payloads=enabled))
        await writer.start()
        usage, decision = make_pair(1, prefix=f"payload-{enabled}")
        usage.payload = {"request": "my card is <CREDIT_CARD>"}
        writer.record(usage, decision)
        await writer.close()
        async with sqlite_engine.connect() as c:
            stored = (
                await c.execute(
                    text("SELECT payload FROM usage_records WHERE request_id = :id"), {"id": usage.request_id}
                )
            ).scalar_one()
        assert (stored is not None) is enabled


async def test_close_spools_when_down_and_next_start_replays(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_dir / 'usage.db'}")
    writer = UsageWriter(engine, _config(tmp_path, flush_interval_s=5.0))
    await writer.start()
    pairs = [make_pair(i) for i in range(75)]
    for usage, decision in pairs:
        writer.record(usage, decision)
    await writer.close()  # the database does not exist: everything goes to disk
    assert sum(len(Spool(tmp_path / "spool").read(s)) for s in Spool(tmp_path / "spool").segments()) == 75

    db_dir.mkdir()
    await create_usage_tables(engine)
    restarted = UsageWriter(engine, _config(tmp_path))
    await restarted.start()
    await _wait_for(lambda: not restarted.spool.pending())
    await restarted.close()
    await assert_consistent(engine, {u.request_id for u, _ in pairs})
    await engine.dispose()


async def test_full_queue_spills_to_spool_instead_of_dropping(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    writer = UsageWriter(sqlite_engine, _config(tmp_path, queue_max=10, batch_size=5))
    pairs = [make_pair(i) for i in range(43)]
    for usage, decision in pairs:  # no writer task yet: nothing drains the queue
        writer.record(usage, decision)
    spooled = sum(len(writer.spool.read(s)) for s in writer.spool.segments())
    assert spooled == 30  # 33 overflowed; spilled in whole batches of 5, 3 still buffered
    assert writer.queue_depth == 13
    await writer.start()
    await _wait_for(lambda: not writer.spool.pending() and writer.queue_depth == 0)
    await writer.close()
    await assert_consistent(sqlite_engine, {u.request_id for u, _ in pairs})


def test_torn_spool_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([make_pair(1), make_pair(2)])
    segment = spool.segments()[0]
    with segment.open("ab") as f:
        f.write(b'{"u": {"request_id": "torn", "ti')
    assert [u.request_id for u, _ in spool.read(segment)] == ["req-1", "req-2"]


async def test_slow_database_times_out_into_spool(pg_url: str, tmp_path: Path) -> None:
    engine = create_async_engine(pg_url, pool_pre_ping=True)
    metrics = Metrics()
    writer = UsageWriter(engine, _config(tmp_path, write_timeout_s=0.3), metrics)
    await writer.start()
    blocker = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
    lock = blocker.transaction()
    await lock.start()
    await blocker.execute("LOCK TABLE usage_records IN ACCESS EXCLUSIVE MODE")
    pairs = [make_pair(i) for i in range(80)]
    for usage, decision in pairs[:40]:
        writer.record(usage, decision)
    await _wait_for(lambda: metrics.records_spooled._value.get() >= 40)
    assert metrics.write_failures._value.get() >= 1
    await lock.rollback()
    await blocker.close()
    for usage, decision in pairs[40:]:
        writer.record(usage, decision)
    await _wait_for(lambda: not writer.spool.pending() and writer.queue_depth == 0)
    await writer.close()
    await assert_consistent(engine, {u.request_id for u, _ in pairs})
    await engine.dispose()


async def test_postgres_stopped_mid_load_loses_and_duplicates_nothing(
    private_pg: PrivatePostgres, pg_url: str, tmp_path: Path
) -> None:
    engine = create_async_engine(pg_url, pool_pre_ping=True)
    metrics = Metrics()
    writer = UsageWriter(engine, _config(tmp_path, batch_size=100, write_timeout_s=2.0), metrics)
    await writer.start()
    total = 3000
    pairs = [make_pair(i, prefix="load") for i in range(total)]
    try:
        for i, (usage, decision) in enumerate(pairs):
            writer.record(usage, decision)
            if i % 50 == 0:
                await asyncio.sleep(0.01)  # a steady stream of requests, not one burst
            if i == 1000:
                await asyncio.to_thread(private_pg.stop)
            if i == 2000:
                await asyncio.to_thread(private_pg.start)
    finally:
        if not _running(private_pg):
            private_pg.start()
    await _wait_for(lambda: not writer.spool.pending() and writer.queue_depth == 0, limit_s=60)
    await writer.close()

    assert metrics.records_spooled._value.get() > 0, "the database outage was not exercised"
    assert metrics.write_failures._value.get() > 0
    await assert_consistent(engine, {u.request_id for u, _ in pairs})
    await engine.dispose()


def _running(pg: PrivatePostgres) -> bool:
    return (pg.data / "postmaster.pid").exists()


async def test_a_backlog_is_written_in_larger_batches(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under load every await of a write waits for the whole event loop: fixed-size batches would
    # fall behind, so with more than a batch waiting the writer takes up to CATCH_UP batches.
    from gateway.usage import writer as writer_module

    sizes: list[int] = []
    real_write_batch = writer_module.write_batch

    async def recording_write_batch(connection, batch):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        return await real_write_batch(connection, batch)

    monkeypatch.setattr(writer_module, "write_batch", recording_write_batch)
    writer = UsageWriter(engine, _config(tmp_path, batch_size=10))
    pairs = [make_pair(i, prefix="backlog") for i in range(95)]
    for usage, decision in pairs:
        writer.record(usage, decision)  # queued before the writer runs: a backlog of 95
    await writer.start()
    await _wait_for(lambda: writer.queue_depth == 0)
    await writer.close()

    assert sizes[0] == 10 * writer_module.CATCH_UP
    assert max(sizes) <= 10 * writer_module.CATCH_UP
    assert sum(sizes) == 95
    await assert_consistent(engine, {u.request_id for u, _ in pairs})
