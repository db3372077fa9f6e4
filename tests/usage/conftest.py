from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.db.base import Base
from gateway.usage import models
from tests.usage.pg import PrivatePostgres

USAGE_TABLES = [
    models.usage_records,
    models.decision_records,
    models.usage_hourly,
    models.usage_daily,
    models.usage_monthly,
    models.usage_hourly_tags,
    models.usage_daily_tags,
    models.usage_monthly_tags,
]


async def create_usage_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: Base.metadata.create_all(c, tables=USAGE_TABLES))


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
async def pg_url(private_pg: PrivatePostgres) -> AsyncIterator[str]:
    """A fresh database with the usage tables on the private cluster."""
    name = f"usage_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(private_pg.url().replace("+asyncpg", ""))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = private_pg.url(name)
    engine = create_async_engine(url)
    await create_usage_tables(engine)
    await engine.dispose()
    yield url


@pytest.fixture
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(pg_url, pool_pre_ping=True)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sqlite_engine(tmp_path) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    from gateway.db.engine import engine_for_url

    engine = engine_for_url(f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}")
    await create_usage_tables(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """Both stores: the embedded default and PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)
