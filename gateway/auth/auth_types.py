"""Small interfaces the auth components depend on (so tests and stores plug in alike)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from gateway.auth.records import KeyRecord


class KeyLookup(Protocol):
    async def find_key(self, key_hash: str) -> KeyRecord | None: ...


class LastUsedSink(Protocol):
    async def record_last_used(self, seen: Mapping[str, datetime]) -> None: ...
