"""Plain views of identity rows: what the authenticator caches and what the admin API returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gateway.auth.models import ApiKey, Team

KeyState = Literal["active", "revoked", "expired", "rotated"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A gateway key as the authenticator sees it; cached in memory, so it holds no secret."""

    id: str
    key_hash: str
    prefix: str
    name: str
    team: str | None
    user: str | None
    #: Key metadata merged over the team's metadata.
    metadata: dict[str, Any]
    expires_at: datetime | None
    revoked_at: datetime | None
    grace_until: datetime | None

    def state(self, now: datetime) -> KeyState:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.grace_until is not None and self.grace_until <= now:
            return "rotated"
        return "active"

    @classmethod
    def from_row(cls, key: ApiKey, team: Team | None) -> KeyRecord:
        metadata = {**(team.team_metadata if team else {}), **(key.key_metadata or {})}
        return cls(
            id=key.id,
            key_hash=key.key_hash,
            prefix=key.prefix,
            name=key.name,
            team=team.name if team else None,
            user=key.user,
            metadata=metadata,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            grace_until=key.grace_until,
        )


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key for admins: everything but the hash (and never the secret)."""

    id: str
    prefix: str
    name: str
    team: str | None
    user: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    rotated_from: str | None
    grace_until: datetime | None
    key_hash: str = field(repr=False)

    @classmethod
    def from_row(cls, key: ApiKey, team: Team | None) -> KeyView:
        return cls(
            id=key.id,
            prefix=key.prefix,
            name=key.name,
            team=team.name if team else None,
            user=key.user,
            metadata=dict(key.key_metadata or {}),
            created_at=key.created_at,
            updated_at=key.updated_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            rotated_from=key.rotated_from_id,
            grace_until=key.grace_until,
            key_hash=key.key_hash,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "gateway.key",
            "prefix": self.prefix,
            "name": self.name,
            "team": self.team,
            "user": self.user,
            "metadata": self.metadata,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "expires_at": _iso(self.expires_at),
            "last_used_at": _iso(self.last_used_at),
            "revoked": self.revoked_at is not None,
            "revoked_at": _iso(self.revoked_at),
            "rotated_from": self.rotated_from,
            "grace_until": _iso(self.grace_until),
        }


@dataclass(frozen=True, slots=True)
class TeamView:
    id: str
    name: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, team: Team) -> TeamView:
        return cls(team.id, team.name, dict(team.team_metadata or {}), team.created_at, team.updated_at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "gateway.team",
            "name": self.name,
            "metadata": self.metadata,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
