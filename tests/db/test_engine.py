"""The engine factory: SQLite paths, WAL and busy timeout; PostgreSQL pooling."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.config import DatabaseConfig
from gateway.db.engine import SQLITE_BUSY_TIMEOUT_MS, create_engine, database_url, resolve_url


async def test_relative_sqlite_path_resolves_against_config_folder_and_uses_wal(tmp_path: Path) -> None:
    engine = create_engine(DatabaseConfig(url="sqlite+aiosqlite:///state/gw.db"), tmp_path)
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
    finally:
        await engine.dispose()
    assert (tmp_path / "state" / "gw.db").exists()
    assert mode == "wal"
    assert timeout == SQLITE_BUSY_TIMEOUT_MS
    assert foreign_keys == 1


def test_sync_driver_names_become_async() -> None:
    assert resolve_url("sqlite:////tmp/x.db", None).drivername == "sqlite+aiosqlite"
    assert resolve_url("postgresql://u:p@h/db", None).drivername == "postgresql+asyncpg"
    assert database_url(DatabaseConfig(url="postgresql://u:p%40ss@h/db"), None) == (
        "postgresql+asyncpg://u:p%40ss@h/db"
    )


@pytest.mark.postgres
async def test_postgres_engine_is_pooled(pg_database: str) -> None:
    engine = create_engine(DatabaseConfig(url=pg_database), None)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("select 1"))).scalar() == 1
        assert engine.pool.size() == 10  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
