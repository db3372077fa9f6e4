"""Key format, keyed hashing and the server secret."""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
from pathlib import Path

import pytest

from gateway.auth.keys import (
    SERVER_SECRET_FILE,
    KeyHasher,
    is_well_formed,
    load_server_secret,
    server_secret_dir,
)
from gateway.errors import ConfigError
from gateway.secrets import Secret, SecretResolver


def test_minted_key_has_the_documented_shape_and_only_its_hash_is_kept() -> None:
    hasher = KeyHasher(Secret("s" * 40))
    issued = hasher.mint()
    token = issued.plaintext.reveal()
    prefix, _, secret = token.partition("_")
    assert prefix.startswith("gw-") and len(prefix) == 3 + 8
    assert len(secret) >= 32
    assert is_well_formed(token)
    assert issued.prefix == prefix
    assert issued.key_hash == hmac.new(b"s" * 40, token.encode(), hashlib.sha256).hexdigest()
    assert token not in repr(issued)
    assert hasher.mint().plaintext != issued.plaintext


def test_hash_depends_on_the_server_secret() -> None:
    token = KeyHasher(Secret("a" * 40)).mint().plaintext.reveal()
    assert KeyHasher(Secret("a" * 40)).hash(token) != KeyHasher(Secret("b" * 40)).hash(token)


@pytest.mark.parametrize(
    "token",
    [
        "gw-",
        "gw-1234567_" + "a" * 40,
        "gw-zzzzzzzz_" + "a" * 40,
        "gw-12345678_short",
        "sk-12345678_" + "a" * 40,
    ],
)
def test_malformed_keys_are_recognised(token: str) -> None:
    assert not is_well_formed(token)


async def test_dev_server_secret_is_generated_once_with_private_permissions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = SecretResolver()
    with caplog.at_level(logging.WARNING):
        first = await load_server_secret(None, resolver, tmp_path)
    path = tmp_path / SERVER_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "auth.server_secret is not set" in caplog.text
    assert first.reveal() not in caplog.text
    second = await load_server_secret(None, resolver, tmp_path)
    assert second == first
    assert [p.name for p in tmp_path.iterdir()] == [SERVER_SECRET_FILE]  # noqa: ASYNC240 (test body)


async def test_server_secret_by_reference() -> None:
    resolver = SecretResolver(environ={"GATEWAY_SERVER_SECRET": "from-env-" + "z" * 32})
    secret = await load_server_secret("env:GATEWAY_SERVER_SECRET", resolver, Path("/nonexistent"))
    assert secret.reveal() == "from-env-" + "z" * 32
    with pytest.raises(ConfigError, match="GATEWAY_OTHER is not set"):
        await load_server_secret("env:GATEWAY_OTHER", resolver, Path("/nonexistent"))


def test_server_secret_lives_beside_the_sqlite_file(tmp_path: Path) -> None:
    assert server_secret_dir(f"sqlite+aiosqlite:///{tmp_path}/db/gw.db", None) == tmp_path / "db"
    assert server_secret_dir("postgresql+asyncpg://u@h/db", tmp_path) == tmp_path
