"""Run the Alembic migrations and compare them with the models, from the CLI, the app and tests.

The sync functions run Alembic (which drives its own event loop for the async engine); from
inside a running loop use the ``*_async`` variants, which run them in a worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from gateway.db.engine import engine_for_url, resolve_url
from gateway.db.models import load_metadata

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: URLs may hold '%' that configparser would eat.
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    revision: str | None = asyncio.run(
        _with_connection(url, lambda c: MigrationContext.configure(c).get_current_revision())
    )
    return revision


def check_models_match(url: str) -> list[Any]:
    """Differences between the migrated database and the models (empty when they agree)."""
    return asyncio.run(_with_connection(url, _diff))


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


async def check_models_match_async(url: str) -> list[Any]:
    return await asyncio.to_thread(check_models_match, url)


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"}
    )
    return list(compare_metadata(context, load_metadata()))


async def _with_connection(url: str, work: Any) -> Any:
    engine = engine_for_url(resolve_url(url, None))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()
