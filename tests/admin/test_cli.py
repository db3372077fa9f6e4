"""``gateway keys|teams …`` against a real database, as a platform engineer would run them."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.admin.cli import add_key_commands
from gateway.auth.authenticator import Authenticator
from gateway.auth.cache import KeyCache
from gateway.auth.keys import KeyHasher
from gateway.auth.store import IdentityStore
from gateway.errors import AuthenticationError
from gateway.secrets import Secret

SERVER_SECRET = "cli-test-server-secret-" + "q" * 32


@pytest.fixture
def config_file(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLI_TEST_SERVER_SECRET", SERVER_SECRET)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"database:\n  url: {database_url}\n  auto_upgrade: false\n"
        "auth:\n  server_secret: env:CLI_TEST_SERVER_SECRET\n"
    )
    return path


def run(config: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_key_commands(parser.add_subparsers())
    args = parser.parse_args([*argv, "--config", str(config)])
    return int(args.func(args))


async def test_keys_and_teams_from_the_command_line(
    config_file: Path, sessions: async_sessionmaker[AsyncSession], capfd: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    async def cli(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(run, config_file, *argv)
        out, err = capfd.readouterr()
        return code, out, err

    code, out, _ = await cli("teams", "create", "research", "--metadata", '{"tier": "gold"}')
    assert code == 0 and "research" in out
    code, out, err = await cli(
        "keys",
        "create",
        "--name",
        "nb",
        "--team",
        "research",
        "--user",
        "ana",
        "--metadata",
        '{"models": ["m"]}',
    )
    assert code == 0 and "shown only now" in err
    token = out.strip()
    hasher = KeyHasher(Secret(SERVER_SECRET))  # the CLI hashed with the configured server secret
    store = IdentityStore(sessions, hasher)
    auth = Authenticator(lookup=store, hasher=hasher, cache=KeyCache(0.01, 16))
    principal = await auth.authenticate({"x-api-key": token})
    assert principal.team == "research" and principal.metadata == {"tier": "gold", "models": ["m"]}

    code, out, _ = await cli("keys", "list", "--team", "research")
    assert code == 0 and "nb" in out and principal.key_id in out and token.split("_", 1)[1] not in out

    code, out, err = await cli("keys", "rotate", principal.key_id, "--grace-period", "0")
    assert code == 0
    new_token = out.strip()
    await asyncio.sleep(0.02)
    with pytest.raises(AuthenticationError, match="rotated"):
        await auth.authenticate({"x-api-key": token})
    new_principal = await auth.authenticate({"x-api-key": new_token})

    code, out, _ = await cli("keys", "revoke", new_principal.key_id)
    assert code == 0 and "revoked" in out
    await asyncio.sleep(0.02)
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.authenticate({"x-api-key": new_token})

    code, _, _ = await cli("teams", "update", "research", "--metadata", '{"tier": "silver"}')
    assert code == 0
    code, out, _ = await cli("teams", "list")
    assert "silver" in out

    audit = (await store.list_audit(limit=20)).items
    assert {e["actor"] for e in audit} == {f"cli:{getpass.getuser()}"}
    assert [e["action"] for e in audit] == [
        "team.update",
        "key.revoke",
        "key.rotate",
        "key.create",
        "team.create",
    ]

    code, _, err = await cli("keys", "revoke", "key_nope")
    assert code == 1 and "no key with id" in err
    code, _, err = await cli("keys", "create", "--name", "x", "--metadata", "[1]")
    assert code == 1 and "expected a JSON object" in err
