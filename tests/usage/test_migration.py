"""Revision 0002_usage creates exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.db.base import NAMING_CONVENTION
from tests.usage.conftest import USAGE_TABLES

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0002_usage.py"


def _migration() -> Any:
    spec = importlib.util.spec_from_file_location("usage_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _upgrade_and_diff(connection: Connection) -> list[Any]:
    module = _migration()
    assert (module.revision, module.down_revision) == ("0002_usage", "0001_identity")
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"}
    )
    with Operations.context(context):
        module.upgrade()
    usage_only = MetaData(naming_convention=NAMING_CONVENTION)
    for table in USAGE_TABLES:
        table.to_metadata(usage_only)
    return compare_metadata(context, usage_only)


def _downgrade(connection: Connection) -> list[str]:
    context = MigrationContext.configure(connection)
    with Operations.context(context):
        _migration().downgrade()
    return inspect(connection).get_table_names()


async def _check(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        assert await connection.run_sync(_upgrade_and_diff) == []
        assert await connection.run_sync(_downgrade) == []


async def test_migration_matches_models_on_sqlite(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await _check(engine)
    await engine.dispose()


async def test_migration_matches_models_on_postgresql(private_pg) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    admin = await asyncpg.connect(private_pg.url().replace("+asyncpg", ""))
    await admin.execute('CREATE DATABASE "usage_migration"')
    await admin.close()
    engine = create_async_engine(private_pg.url("usage_migration"))
    await _check(engine)
    await engine.dispose()
