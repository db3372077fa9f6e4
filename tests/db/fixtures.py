"""Database fixtures shared by the identity tests: a fresh SQLite file or PostgreSQL database.

PostgreSQL: one uniquely named database per test session (created on 127.0.0.1:5432 as
``postgres``, dropped at the end), migrated once and emptied before each test.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.auth.keys import KeyHasher
from gateway.auth.store import IdentityStore
from gateway.db import migrate
from gateway.db.engine import create_sessionmaker, engine_for_url
from gateway.secrets import Secret

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
IDENTITY_TABLES = ("api_keys", "teams", "admin_audit")


async def _pg_execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    name = f"gw_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_execute(PG_ADMIN_DSN, f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_pg_execute(PG_ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'gateway.db'}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with fresh_pg_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        migrate.upgrade(url)
        return url
    url: str = request.getfixturevalue("pg_database")
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    asyncio.run(_pg_execute(dsn, f"TRUNCATE {', '.join(IDENTITY_TABLES)} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = engine_for_url(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def hasher() -> KeyHasher:
    return KeyHasher(Secret("test-server-secret-" + "x" * 32))


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher) -> IdentityStore:
    return IdentityStore(sessions, hasher)
