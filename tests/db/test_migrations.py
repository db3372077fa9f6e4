"""Migrations build the schema the models describe, on SQLite and PostgreSQL, and undo cleanly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from gateway.db import migrate
from gateway.db.engine import engine_for_url
from tests.db.fixtures import fresh_pg_database, sqlite_url

REPO = Path(__file__).resolve().parents[2]


def head_revision() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def table_names(url: str) -> set[str]:
    engine = engine_for_url(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def check_round_trip(url: str) -> None:
    migrate.upgrade(url)
    assert migrate.current_revision(url) == head_revision()
    assert migrate.check_models_match(url) == []
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    migrate.upgrade(url, "0001_identity")
    assert migrate.current_revision(url) == "0001_identity"
    migrate.upgrade(url)
    assert migrate.check_models_match(url) == []


async def test_sqlite_fresh_file_migrates_matches_models_and_downgrades(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    await migrate.upgrade_async(url)
    assert {"teams", "api_keys", "admin_audit"} <= await table_names(url)
    assert await migrate.check_models_match_async(url) == []
    await migrate.upgrade_async(url, "0001_identity")  # idempotent at or past a revision
    await asyncio.to_thread(migrate.downgrade, url, "base")
    assert await table_names(url) == {"alembic_version"}


def test_sqlite_round_trip(tmp_path: Path) -> None:
    check_round_trip(sqlite_url(tmp_path))


@pytest.mark.postgres
def test_postgres_fresh_database_round_trip() -> None:
    with fresh_pg_database() as url:
        check_round_trip(url)


def test_models_differing_from_migrations_are_reported(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate.upgrade(url, "0001_identity")
    migrate.downgrade(url, "base")
    # An empty database (only alembic_version) differs from the models: every table is missing.
    diff = migrate.check_models_match(url)
    added = {entry[1].name for entry in diff if entry[0] == "add_table"}
    assert {"teams", "api_keys", "admin_audit"} <= added


def test_alembic_command_line_takes_url_from_gateway_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("database:\n  url: sqlite+aiosqlite:///data/from-config.db\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(REPO / "alembic.ini"),
            "-x",
            f"config={config}",
            "upgrade",
            "head",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    db_file = tmp_path / "data" / "from-config.db"
    assert db_file.exists()
    assert migrate.current_revision(f"sqlite+aiosqlite:///{db_file}") == head_revision()


def test_cli_db_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from gateway.admin.cli import add_key_commands

    config = tmp_path / "gateway.yaml"
    config.write_text("database:\n  url: sqlite:///gw.db\n  auto_upgrade: false\n")
    parser = argparse.ArgumentParser()
    add_key_commands(parser.add_subparsers())
    args = parser.parse_args(["db", "upgrade", "--config", str(config)])
    assert args.func(args) == 0
    assert head_revision() in capsys.readouterr().out
    assert (tmp_path / "gw.db").exists()


def upgrade_concurrently(url: str, processes: int = 3) -> None:
    # Separate processes, as replicas starting together with auto_upgrade would be.
    code = f"from gateway.db import migrate; migrate.upgrade({url!r})"
    children = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for child in children:
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr


def test_replicas_upgrading_a_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    upgrade_concurrently(url)
    assert migrate.current_revision(url) == head_revision()
    assert migrate.check_models_match(url) == []


@pytest.mark.postgres
def test_replicas_upgrading_a_fresh_postgres_database_at_once_all_succeed() -> None:
    with fresh_pg_database() as url:
        upgrade_concurrently(url)
        assert migrate.current_revision(url) == head_revision()
        assert migrate.check_models_match(url) == []


def test_schema_revision_constant_is_alembics_head() -> None:
    # ensure_schema trusts this constant to skip Alembic: a new migration must move it.
    assert migrate.SCHEMA_REVISION == head_revision()


async def check_ensure_schema(url: str) -> None:
    engine = engine_for_url(url)
    try:
        assert await migrate.stored_revision(engine) is None
        await migrate.ensure_schema(engine, url)  # fresh: migrates
        assert await migrate.stored_revision(engine) == head_revision()
        await asyncio.to_thread(migrate.downgrade, url, "0001_identity")
        assert await migrate.stored_revision(engine) == "0001_identity"
        await migrate.ensure_schema(engine, url)  # behind: upgrades
        assert await migrate.stored_revision(engine) == head_revision()
        await migrate.ensure_schema(engine, url)  # at head: nothing to do
        assert await migrate.check_models_match_async(url) == []
    finally:
        await engine.dispose()


async def test_ensure_schema_migrates_fresh_and_older_sqlite(tmp_path: Path) -> None:
    await check_ensure_schema(sqlite_url(tmp_path))


@pytest.mark.postgres
def test_ensure_schema_migrates_fresh_and_older_postgres() -> None:
    with fresh_pg_database() as url:
        asyncio.run(check_ensure_schema(url))


def test_gateway_on_an_up_to_date_database_never_imports_alembic(tmp_path: Path) -> None:
    # Alembic is ~11 MB resident: only a start that has something to migrate may load it.
    url = sqlite_url(tmp_path)
    migrate.upgrade(url)
    script = (
        "import asyncio, sys\n"
        "from gateway.db import migrate\n"
        "from gateway.db.engine import engine_for_url\n"
        "async def main():\n"
        f"    engine = engine_for_url({url!r})\n"
        f"    await migrate.ensure_schema(engine, {url!r})\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
        "import gateway.app, gateway.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'jwt', 'opa_client')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
