"""Alembic environment: metadata from every model module, URL from the gateway config.

The URL is taken, in order, from ``config.attributes["url"]`` (``gateway.db.migrate``), from
``-x url=...``, or from the gateway config file (``-x config=FILE`` or ``GATEWAY_CONFIG``).
Migrations run on an async engine through ``run_sync`` (Alembic's asyncio cookbook); SQLite
uses batch mode so ALTERs work there too.
"""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway.db.engine import engine_for_url, resolve_url, sqlite_file
from gateway.db.models import load_metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = load_metadata()

#: Arbitrary constant naming the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 7_262_001


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return resolve_url(url, None).render_as_string(hide_password=False)
    from pathlib import Path

    from gateway.config import load_config

    gateway_config = load_config(context.get_x_argument(as_dictionary=True).get("config"))
    base_dir = Path(gateway_config.source).parent if gateway_config.source else None
    return resolve_url(gateway_config.database.url, base_dir).render_as_string(hide_password=False)


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else (url or "").split(":")[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=dialect.startswith("sqlite"),
        compare_type=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    locked = connection.dialect.name == "postgresql"
    if locked:
        # Replicas starting together with auto_upgrade: one migrates, the others wait here and
        # then find the database already at head. Released when the transaction commits.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
    if locked and connection.in_transaction():
        connection.commit()


async def run_async_migrations(url: str) -> None:
    engine = engine_for_url(url)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """The same one-at-a-time guarantee for a SQLite file, with a lock file beside it."""
    db_file = sqlite_file(url)
    if db_file is None:
        yield
        return
    db_file.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db_file}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = _url()
    with _sqlite_file_lock(url):
        asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
