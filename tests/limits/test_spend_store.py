"""The spend table on SQLite and PostgreSQL, created by the 0003 migration itself."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.db.base import NAMING_CONVENTION
from gateway.limits.backend import SpendTotals
from gateway.limits.models import LimitSpend
from gateway.limits.spend_store import SpendFlusher, SpendStore

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0003_limits.py"


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0003_limits", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _upgrade(conn: Connection) -> list[object]:
    module = _migration()
    context = MigrationContext.configure(conn)
    with Operations.context(context):
        module.upgrade()
    # The migration creates exactly what the model declares.
    only_spend = MetaData(naming_convention=NAMING_CONVENTION)
    LimitSpend.__table__.to_metadata(only_spend)
    return list(compare_metadata(MigrationContext.configure(conn), only_spend))


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}")
    yield engine
    await engine.dispose()


@pytest.fixture
async def postgres_engine() -> AsyncIterator[AsyncEngine]:
    name = f"gw_limits_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    try:
        yield engine
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated_engine(request: pytest.FixtureRequest) -> AsyncEngine:
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


async def test_migration_matches_model_and_store_adds_up(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.begin() as conn:
        diffs = await conn.run_sync(_upgrade)
    assert diffs == []
    store = SpendStore(migrated_engine)
    key_day, team_month = ("key:k1", "day:2026-11-27"), ("team:research", "month:2026-11")
    await store.add({key_day: SpendTotals(0.5, 100, 1), team_month: SpendTotals(1.25, 300, 2)})
    # Two replicas writing at once: increments add up, nothing is lost.
    await asyncio.gather(
        store.add({key_day: SpendTotals(0.25, 10, 1)}),
        store.add({key_day: SpendTotals(0.25, 10, 1), team_month: SpendTotals(1.0, 1, 1)}),
    )
    totals = await store.load(["day:2026-11-27", "month:2026-11"])
    assert totals == {key_day: SpendTotals(1.0, 120, 3), team_month: SpendTotals(2.25, 301, 3)}
    assert await store.load(["day:2026-11-28"]) == {}


class _FailingOnce(SpendStore):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.fail = True

    async def add(self, increments: dict[tuple[str, str], SpendTotals]) -> None:
        if self.fail:
            self.fail = False
            raise OSError("database unreachable")
        await super().add(increments)


async def test_flusher_keeps_increments_while_the_database_is_down(engine: AsyncEngine) -> None:
    store = _FailingOnce(engine)
    seen: list[dict[tuple[str, str], SpendTotals]] = []
    flusher = SpendFlusher(store, 3600, lambda: ["day:2026-11-27"], seen.append)
    key = ("key:k1", "day:2026-11-27")
    flusher.add(key, SpendTotals(0.1, 10, 1))
    await flusher.flush()
    assert flusher.write_errors == 1 and flusher.pending == 1 and seen == []
    flusher.add(key, SpendTotals(0.2, 20, 1))
    await flusher.flush()
    assert flusher.pending == 0
    assert seen[-1][key].tokens == 30 and seen[-1][key].requests == 2
    assert seen[-1][key].spend == pytest.approx(0.3)
