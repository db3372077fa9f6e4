"""``gateway keys …``, ``gateway teams …`` and ``gateway db upgrade``: admin work from a shell.

They read the same config file as the server, talk to the database directly, audit as
``cli:<os user>`` and, when Redis is configured, tell running replicas to drop cached keys.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from gateway.auth.cache import KeyInvalidator
from gateway.auth.service import config_dir, open_hasher
from gateway.auth.store import IdentityStore
from gateway.config import GatewayConfig, load_config
from gateway.db import migrate
from gateway.db.engine import create_engine, create_sessionmaker, database_url
from gateway.errors import ConfigError, GatewayError
from gateway.secrets import SecretResolver

Command = Callable[[argparse.Namespace], int]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _resolver(config: GatewayConfig) -> SecretResolver:
    return SecretResolver(getattr(config, "secrets", None), base_dir=config_dir(config))


def _json_arg(text: str | None, name: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ConfigError(f"{name}: not valid JSON") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a JSON object")
    return value


def _run(work: Callable[[GatewayConfig, IdentityStore, KeyInvalidator], Awaitable[int]]) -> Command:
    """Opens config, database and invalidator around ``work``; errors become exit code 1."""

    def command(args: argparse.Namespace) -> int:
        try:
            config = load_config(getattr(args, "config", None))
            return asyncio.run(_with_store(config, work))
        except (ConfigError, GatewayError) as exc:
            print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 1

    return command


async def _with_store(
    config: GatewayConfig, work: Callable[[GatewayConfig, IdentityStore, KeyInvalidator], Awaitable[int]]
) -> int:
    engine = create_engine(config.database, config_dir(config))
    if config.database.auto_upgrade:
        await migrate.ensure_schema(engine, database_url(config.database, config_dir(config)))
    invalidator = KeyInvalidator(config.auth.redis_url)
    try:
        store = IdentityStore(create_sessionmaker(engine), await open_hasher(config, _resolver(config)))
        return await work(config, store, invalidator)
    finally:
        await invalidator.aclose()
        await engine.dispose()


def _console() -> Console:
    console = Console()
    # Piped into grep or a file: do not wrap ids across lines at 80 columns.
    return console if console.is_terminal else Console(width=220)


def _expiry(args: argparse.Namespace) -> datetime | None:
    if args.expires_in is not None:
        return datetime.now(UTC) + timedelta(seconds=args.expires_in)
    if args.expires_at is not None:
        parsed = datetime.fromisoformat(args.expires_at)
        if parsed.tzinfo is None:
            raise ConfigError("--expires-at needs a timezone, e.g. 2026-12-31T00:00:00Z")
        return parsed
    return None


def _keys_create(args: argparse.Namespace) -> Command:
    async def work(config: GatewayConfig, store: IdentityStore, inv: KeyInvalidator) -> int:
        view, issued = await store.create_key(
            _actor(),
            name=args.name,
            team=args.team,
            user=args.user,
            metadata=_json_arg(args.metadata, "--metadata"),
            expires_at=_expiry(args),
        )
        print(f"created {view.id} ({view.prefix}); the key is shown only now:", file=sys.stderr)
        print(issued.plaintext.reveal())
        return 0

    return _run(work)


def _keys_list(args: argparse.Namespace) -> Command:
    async def work(config: GatewayConfig, store: IdentityStore, inv: KeyInvalidator) -> int:
        page = await store.list_keys(name=args.name, team=args.team, user=args.user, limit=args.limit)
        table = Table("id", "prefix", "name", "team", "user", "created", "expires", "last used", "state")
        now = datetime.now(UTC)
        for v in page.items:
            state = (
                "revoked" if v.revoked_at else "expired" if v.expires_at and v.expires_at <= now else "active"
            )
            if state == "active" and v.grace_until:
                state = "rotated" if v.grace_until <= now else f"grace until {v.grace_until:%Y-%m-%d %H:%M}"
            table.add_row(
                v.id,
                v.prefix,
                v.name,
                v.team or "",
                v.user or "",
                f"{v.created_at:%Y-%m-%d %H:%M}",
                f"{v.expires_at:%Y-%m-%d %H:%M}" if v.expires_at else "",
                f"{v.last_used_at:%Y-%m-%d %H:%M}" if v.last_used_at else "",
                state,
            )
        _console().print(table)
        return 0

    return _run(work)


def _keys_revoke(args: argparse.Namespace) -> Command:
    async def work(config: GatewayConfig, store: IdentityStore, inv: KeyInvalidator) -> int:
        view = await store.revoke_key(_actor(), args.key_id)
        await inv.invalidate([view.key_hash])
        print(f"revoked {view.id} ({view.prefix})")
        return 0

    return _run(work)


def _keys_rotate(args: argparse.Namespace) -> Command:
    async def work(config: GatewayConfig, store: IdentityStore, inv: KeyInvalidator) -> int:
        new, old, issued = await store.rotate_key(_actor(), args.key_id, args.grace_period)
        await inv.invalidate([old.key_hash])
        print(
            f"rotated {old.id} -> {new.id} ({new.prefix}); old key works until {old.grace_until}",
            file=sys.stderr,
        )
        print(issued.plaintext.reveal())
        return 0

    return _run(work)


def _teams_create(args: argparse.Namespace) -> Command:
    async def work(config: GatewayConfig, store: IdentityStore, inv: KeyInvalidator) -> int:
        team = await store.create_team(
            _actor(), name=args.name, metadata=_json_arg(args.metadata, "--metadata")
        )
        print(f"created team {team.id} ({team.name})")
        return 0

    return _run(work)


def _teams_list(args: argparse.Namespace) -> Command:
    async def work(config: GatewayConfig, store: IdentityStore, inv: KeyInvalidator) -> int:
        page = await store.list_teams(limit=args.limit)
        table = Table("id", "name", "metadata", "created")
        for t in page.items:
            table.add_row(t.id, t.name, orjson.dumps(t.metadata).decode(), f"{t.created_at:%Y-%m-%d %H:%M}")
        _console().print(table)
        return 0

    return _run(work)


def _teams_update(args: argparse.Namespace) -> Command:
    async def work(config: GatewayConfig, store: IdentityStore, inv: KeyInvalidator) -> int:
        changes: dict[str, Any] = {}
        if args.name is not None:
            changes["name"] = args.name
        if args.metadata is not None:
            changes["metadata"] = _json_arg(args.metadata, "--metadata")
        team = await store.update_team(_actor(), args.team, **changes)
        await inv.invalidate(None)
        print(f"updated team {team.id} ({team.name})")
        return 0

    return _run(work)


def _db_upgrade(args: argparse.Namespace) -> int:
    try:
        config = load_config(getattr(args, "config", None))
        url = database_url(config.database, config_dir(config))
        migrate.upgrade(url, args.revision)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"database at revision {migrate.current_revision(url)}")
    return 0


def _lazy(make: Callable[[argparse.Namespace], Command]) -> Command:
    return lambda args: make(args)(args)


def add_key_commands(subparsers: Any) -> None:
    """Registers ``keys``, ``teams`` and ``db`` on the top-level CLI's subparsers."""

    def parser(parent: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        # SUPPRESS: do not clobber a --config given before the subcommand.
        p.add_argument(
            "--config", "-c", default=argparse.SUPPRESS, help="config file (default: $GATEWAY_CONFIG)"
        )
        return p

    keys = subparsers.add_parser("keys", help="manage gateway API keys").add_subparsers(
        dest="keys_command", required=True
    )
    p = parser(keys, "create", "create a key and print it (shown only once)")
    p.add_argument("--name", required=True)
    p.add_argument("--team")
    p.add_argument("--user")
    p.add_argument("--metadata", help='JSON object, e.g. \'{"models": ["gpt-4o"]}\'')
    p.add_argument("--expires-in", type=int, help="seconds from now")
    p.add_argument("--expires-at", help="ISO 8601 time with timezone")
    p.set_defaults(func=_lazy(_keys_create))
    p = parser(keys, "list", "list keys")
    p.add_argument("--name")
    p.add_argument("--team")
    p.add_argument("--user")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=_lazy(_keys_list))
    p = parser(keys, "revoke", "revoke a key")
    p.add_argument("key_id")
    p.set_defaults(func=_lazy(_keys_revoke))
    p = parser(keys, "rotate", "issue a replacement key and print it")
    p.add_argument("key_id")
    p.add_argument("--grace-period", type=int, default=0, help="seconds the old key keeps working")
    p.set_defaults(func=_lazy(_keys_rotate))

    teams = subparsers.add_parser("teams", help="manage teams").add_subparsers(
        dest="teams_command", required=True
    )
    p = parser(teams, "create", "create a team")
    p.add_argument("name")
    p.add_argument("--metadata")
    p.set_defaults(func=_lazy(_teams_create))
    p = parser(teams, "list", "list teams")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=_lazy(_teams_list))
    p = parser(teams, "update", "change a team's name or metadata")
    p.add_argument("team", help="team id or name")
    p.add_argument("--name")
    p.add_argument("--metadata")
    p.set_defaults(func=_lazy(_teams_update))

    db = subparsers.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    p = parser(db, "upgrade", "apply migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=_db_upgrade)
