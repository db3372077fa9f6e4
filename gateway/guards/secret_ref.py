"""Resolve the guards' secret references (``env:NAME``, ``file:/path``).

A stand-in until the gateway's secrets module exists; errors name the reference, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from gateway.errors import ConfigError


def resolve_secret_ref(reference: str, environ: Mapping[str, str] | None = None) -> str:
    scheme, _, target = reference.partition(":")
    if scheme == "env":
        env = os.environ if environ is None else environ
        value = env.get(target)
        if value is None:
            raise ConfigError(f"guards: secret reference {reference!r}: environment variable is not set")
        return value
    if scheme == "file":
        try:
            return Path(target).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"guards: secret reference {reference!r}: cannot read file: {exc.strerror}"
            ) from None
    raise ConfigError(f"guards: secret reference {reference!r}: unsupported scheme (use env: or file:)")
