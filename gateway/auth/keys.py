"""Gateway key format and keyed hashing.

A key is ``gw-<prefix>_<secret>``: an 8-character hex prefix shown in listings and a
43-character URL-safe secret (256 bits from ``secrets``). The database keeps only
HMAC-SHA256(server secret, full key) and ``gw-<prefix>``; losing the server secret invalidates
every key, so it is loaded by reference and, in development, generated once into a 0600 file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from gateway.secrets import Secret, SecretResolver

log = logging.getLogger(__name__)

KEY_MARKER = "gw-"
PREFIX_CHARS = 8
SECRET_BYTES = 32
SERVER_SECRET_FILE = "gateway-server-secret"

_KEY_RE = re.compile(r"^gw-([0-9a-f]{8})_([A-Za-z0-9_-]{32,128})$")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly minted key: ``plaintext`` is shown to the caller once and never stored."""

    plaintext: Secret
    prefix: str
    key_hash: str


def looks_like_gateway_key(token: str) -> bool:
    return token.startswith(KEY_MARKER)


def is_well_formed(token: str) -> bool:
    return _KEY_RE.match(token) is not None


def display_prefix(token: str) -> str:
    return token[: len(KEY_MARKER) + PREFIX_CHARS]


class KeyHasher:
    """Mints keys and computes their keyed hash with the server secret."""

    def __init__(self, server_secret: Secret) -> None:
        self._mac_key = server_secret.reveal().encode("utf-8")

    def hash(self, token: str) -> str:
        return hmac.new(self._mac_key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def mint(self) -> IssuedKey:
        token = f"{KEY_MARKER}{secrets.token_hex(PREFIX_CHARS // 2)}_{secrets.token_urlsafe(SECRET_BYTES)}"
        return IssuedKey(plaintext=Secret(token), prefix=display_prefix(token), key_hash=self.hash(token))


async def load_server_secret(reference: str | None, resolver: SecretResolver, secret_dir: Path) -> Secret:
    """The configured server secret, or (development) one generated once beside the database."""
    if reference is not None:
        return await resolver.resolve(reference)
    return await asyncio.to_thread(_server_secret_file, secret_dir)


def _server_secret_file(secret_dir: Path) -> Secret:
    path = secret_dir / SERVER_SECRET_FILE
    if path.exists():
        return Secret(path.read_text(encoding="utf-8").strip())
    secret_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # Written whole to a private temp file, then linked into place: link() fails if another
    # process won the race, and nobody ever reads a half-written secret.
    tmp = secret_dir / f".{SERVER_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return Secret(path.read_text(encoding="utf-8").strip())
    finally:
        tmp.unlink()
    log.warning(
        "auth.server_secret is not set: generated one into %s (keep it; losing it invalidates every "
        "gateway key). In production set auth.server_secret: env:GATEWAY_SERVER_SECRET",
        path,
    )
    return Secret(value)


def server_secret_dir(database_url: str, config_dir: Path | None) -> Path:
    """Beside the SQLite file; for server databases, beside the config file."""
    from gateway.db.engine import sqlite_file

    db_file = sqlite_file(database_url)
    if db_file is not None:
        return db_file.parent
    return config_dir or Path.cwd()
