"""The async SQLAlchemy engine and session factory, created in the app lifespan (never at import).

SQLite gets WAL (readers do not block the batched writer), a busy timeout and foreign keys;
relative SQLite paths are resolved against the config file's folder. PostgreSQL gets a pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from gateway.config import DatabaseConfig

SQLITE_BUSY_TIMEOUT_MS = 5000
POOL_SIZE = 10
POOL_MAX_OVERFLOW = 10

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def resolve_url(url: str, base_dir: str | Path | None) -> URL:
    """The URL with an async driver and, for SQLite files, an absolute path."""
    parsed = make_url(url)
    if parsed.drivername in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            path = Path(base_dir or Path.cwd()) / path
        parsed = parsed.set(database=str(path.resolve()))
    return parsed


def database_url(config: DatabaseConfig, base_dir: str | Path | None) -> str:
    """The resolved URL as a string (with password) for Alembic and the CLI."""
    return resolve_url(config.url, base_dir).render_as_string(hide_password=False)


def sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _json_text(value: Any) -> str:
    # JSON columns (usage tags, decision reasons) are written for every record: orjson instead
    # of the stdlib encoder SQLAlchemy uses by default.
    return orjson.dumps(value).decode()


def engine_for_url(url: str | URL, *, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed.render_as_string(hide_password=False))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, echo=echo, json_serializer=_json_text)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(
        parsed,
        echo=echo,
        json_serializer=_json_text,
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_pre_ping=True,
    )


def create_engine(config: DatabaseConfig, base_dir: str | Path | None) -> AsyncEngine:
    """The engine for ``database.url``; ``base_dir`` is the config file's folder."""
    return engine_for_url(resolve_url(config.url, base_dir), echo=config.echo)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
