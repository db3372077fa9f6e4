"""Run the Alembic migrations and compare them with the models, from the CLI, the app and tests.

The sync functions run Alembic (which drives its own event loop for the async engine); from
inside a running loop use the ``*_async`` variants, which run them in a worker thread.

Alembic (with Mako and Pygments, about 11 MB resident) is imported only when a migration runs:
``ensure_schema`` first reads the database's revision with the app's own engine, and a gateway
starting on an up-to-date database never loads it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.engine import engine_for_url, resolve_url
from gateway.db.models import load_metadata

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

#: The newest migration in migrations/versions (a test checks it is Alembic's head).
SCHEMA_REVISION = "0003_limits"


async def stored_revision(engine: AsyncEngine) -> str | None:
    """The revision recorded in ``alembic_version``; None for a database never migrated."""
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    except (OperationalError, ProgrammingError):
        # No alembic_version table yet. An unreachable database raises again in upgrade().
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


async def ensure_schema(engine: AsyncEngine, url: str) -> None:
    """Upgrade the database to SCHEMA_REVISION unless it is there already."""
    if await stored_revision(engine) != SCHEMA_REVISION:
        await upgrade_async(url)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: URLs may hold '%' that configparser would eat.
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.migration import MigrationContext

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
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

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
