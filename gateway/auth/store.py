"""Identity storage: keys and teams in SQL, each admin change audited in the same transaction.

Used by the admin REST API, the CLI and (for lookups and last-used times) the authenticator.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.keys import IssuedKey, KeyHasher
from gateway.auth.models import AdminAudit, ApiKey, Team, utcnow
from gateway.auth.records import KeyRecord, KeyView, TeamView
from gateway.errors import InvalidRequestError, NotFoundError

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def _encode_cursor(at: datetime, ident: str | int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{ident}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, ident = raw.split("|", 1)
        return datetime.fromisoformat(at), ident
    except ValueError:
        raise InvalidRequestError("cursor is not one returned by this API", param="cursor") from None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class IdentityStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher) -> None:
        self._sessions = sessions
        self._hasher = hasher

    # -- authenticator ------------------------------------------------------------------------

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ApiKey, Team)
                    .outerjoin(Team, ApiKey.team_id == Team.id)
                    .where(ApiKey.key_hash == key_hash)
                )
            ).first()
        return KeyRecord.from_row(row[0], row[1]) if row else None

    async def record_last_used(self, seen: Mapping[str, datetime]) -> None:
        if not seen:
            return
        async with self._sessions.begin() as session:
            for key_id, at in seen.items():
                await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))

    # -- keys ---------------------------------------------------------------------------------

    async def create_key(
        self,
        actor: str,
        *,
        name: str,
        team: str | None = None,
        user: str | None = None,
        metadata: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[KeyView, IssuedKey]:
        issued = self._hasher.mint()
        now = utcnow()
        async with self._sessions.begin() as session:
            team_row = await self._team_by_name(session, team) if team is not None else None
            key = ApiKey(
                id=f"key_{secrets.token_hex(8)}",
                prefix=issued.prefix,
                key_hash=issued.key_hash,
                name=name,
                team_id=team_row.id if team_row else None,
                user=user,
                key_metadata=metadata or {},
                created_at=now,
                updated_at=now,
                expires_at=expires_at,
            )
            session.add(key)
            self._audit(
                session, actor, "key.create", "key", key.id, {"name": name, "team": team, "user": user}
            )
            return KeyView.from_row(key, team_row), issued

    async def list_keys(
        self,
        *,
        name: str | None = None,
        team: str | None = None,
        user: str | None = None,
        include_revoked: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        query = select(ApiKey, Team).outerjoin(Team, ApiKey.team_id == Team.id)
        if name:
            query = query.where(ApiKey.name.ilike(_like(name), escape="\\"))
        if team:
            query = query.where(Team.name == team)
        if user:
            query = query.where(ApiKey.user == user)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        if cursor:
            at, ident = _decode_cursor(cursor)
            query = query.where(or_(ApiKey.created_at < at, and_(ApiKey.created_at == at, ApiKey.id < ident)))
        query = query.order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        views = [KeyView.from_row(k, t) for k, t in rows[:limit]]
        more = len(rows) > limit
        return Page(views, _encode_cursor(views[-1].created_at, views[-1].id) if more and views else None)

    async def get_key(self, key_id: str) -> KeyView:
        async with self._sessions() as session:
            key, team = await self._key_with_team(session, key_id)
            return KeyView.from_row(key, team)

    async def update_key(
        self,
        actor: str,
        key_id: str,
        *,
        name: str = _UNSET,
        metadata: dict[str, Any] = _UNSET,
        expires_at: datetime | None = _UNSET,
    ) -> KeyView:
        async with self._sessions.begin() as session:
            key, team = await self._key_with_team(session, key_id)
            changed: list[str] = []
            if name is not _UNSET:
                key.name, changed = name, [*changed, "name"]
            if metadata is not _UNSET:
                key.key_metadata, changed = metadata, [*changed, "metadata"]
            if expires_at is not _UNSET:
                key.expires_at, changed = expires_at, [*changed, "expires_at"]
            key.updated_at = utcnow()
            self._audit(session, actor, "key.update", "key", key.id, {"fields": changed})
            return KeyView.from_row(key, team)

    async def revoke_key(self, actor: str, key_id: str) -> KeyView:
        async with self._sessions.begin() as session:
            key, team = await self._key_with_team(session, key_id)
            if key.revoked_at is None:
                key.revoked_at = key.updated_at = utcnow()
            self._audit(session, actor, "key.revoke", "key", key.id, {})
            return KeyView.from_row(key, team)

    async def rotate_key(
        self, actor: str, key_id: str, grace_period_s: int
    ) -> tuple[KeyView, KeyView, IssuedKey]:
        """A new key with the old one's identity; the old one works ``grace_period_s`` more."""
        issued = self._hasher.mint()
        now = utcnow()
        async with self._sessions.begin() as session:
            old, team = await self._key_with_team(session, key_id)
            if old.revoked_at is not None:
                raise InvalidRequestError(f"key {key_id} is revoked and cannot be rotated")
            if old.grace_until is not None:
                raise InvalidRequestError(f"key {key_id} was already rotated; rotate its replacement instead")
            old.grace_until = now + timedelta(seconds=grace_period_s)
            old.updated_at = now
            new = ApiKey(
                id=f"key_{secrets.token_hex(8)}",
                prefix=issued.prefix,
                key_hash=issued.key_hash,
                name=old.name,
                team_id=old.team_id,
                user=old.user,
                key_metadata=dict(old.key_metadata or {}),
                created_at=now,
                updated_at=now,
                expires_at=old.expires_at,
                rotated_from_id=old.id,
            )
            session.add(new)
            self._audit(
                session,
                actor,
                "key.rotate",
                "key",
                old.id,
                {"new_key_id": new.id, "grace_period_s": grace_period_s},
            )
            return KeyView.from_row(new, team), KeyView.from_row(old, team), issued

    # -- teams --------------------------------------------------------------------------------

    async def create_team(self, actor: str, *, name: str, metadata: dict[str, Any] | None = None) -> TeamView:
        now = utcnow()
        try:
            async with self._sessions.begin() as session:
                team = Team(
                    id=f"team_{secrets.token_hex(6)}",
                    name=name,
                    team_metadata=metadata or {},
                    created_at=now,
                    updated_at=now,
                )
                session.add(team)
                await session.flush()
                self._audit(session, actor, "team.create", "team", team.id, {"name": name})
                return TeamView.from_row(team)
        except IntegrityError:
            raise InvalidRequestError(f"a team named {name!r} already exists", param="name") from None

    async def list_teams(self, *, limit: int = 50, cursor: str | None = None) -> Page:
        query = select(Team)
        if cursor:
            at, ident = _decode_cursor(cursor)
            query = query.where(or_(Team.created_at < at, and_(Team.created_at == at, Team.id < ident)))
        query = query.order_by(Team.created_at.desc(), Team.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        views = [TeamView.from_row(t) for t in rows[:limit]]
        more = len(rows) > limit
        return Page(views, _encode_cursor(views[-1].created_at, views[-1].id) if more and views else None)

    async def get_team(self, team_ref: str) -> TeamView:
        async with self._sessions() as session:
            return TeamView.from_row(await self._team_by_ref(session, team_ref))

    async def update_team(
        self, actor: str, team_ref: str, *, name: str = _UNSET, metadata: dict[str, Any] = _UNSET
    ) -> TeamView:
        try:
            async with self._sessions.begin() as session:
                team = await self._team_by_ref(session, team_ref)
                changed: list[str] = []
                if name is not _UNSET:
                    team.name, changed = name, [*changed, "name"]
                if metadata is not _UNSET:
                    team.team_metadata, changed = metadata, [*changed, "metadata"]
                team.updated_at = utcnow()
                await session.flush()
                self._audit(session, actor, "team.update", "team", team.id, {"fields": changed})
                return TeamView.from_row(team)
        except IntegrityError:
            raise InvalidRequestError(f"a team named {name!r} already exists", param="name") from None

    # -- audit --------------------------------------------------------------------------------

    async def list_audit(
        self, *, target_id: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        query = select(AdminAudit)
        if target_id:
            query = query.where(AdminAudit.target_id == target_id)
        if cursor:
            _, ident = _decode_cursor(cursor)
            if not ident.isdigit():
                raise InvalidRequestError("cursor is not one returned by this API", param="cursor")
            query = query.where(AdminAudit.id < int(ident))
        query = query.order_by(AdminAudit.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        items = [
            {
                "id": r.id,
                "at": r.at.isoformat().replace("+00:00", "Z"),
                "actor": r.actor,
                "action": r.action,
                "target_type": r.target_type,
                "target_id": r.target_id,
                "details": r.details,
            }
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return Page(items, _encode_cursor(rows[limit - 1].at, rows[limit - 1].id) if more and items else None)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _audit(
        session: AsyncSession,
        actor: str,
        action: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any],
    ) -> None:
        session.add(
            AdminAudit(
                at=utcnow(),
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
        )

    @staticmethod
    async def _key_with_team(session: AsyncSession, key_id: str) -> tuple[ApiKey, Team | None]:
        key = await session.get(ApiKey, key_id)
        if key is None:
            raise NotFoundError(f"no key with id {key_id!r}")
        team = await session.get(Team, key.team_id) if key.team_id else None
        return key, team

    @staticmethod
    async def _team_by_name(session: AsyncSession, name: str) -> Team:
        team = (await session.scalars(select(Team).where(Team.name == name))).first()
        if team is None:
            raise InvalidRequestError(
                f"unknown team {name!r}; create it first (POST /admin/v1/teams)", param="team"
            )
        return team

    @staticmethod
    async def _team_by_ref(session: AsyncSession, ref: str) -> Team:
        team = (
            await session.get(Team, ref)
            or (await session.scalars(select(Team).where(Team.name == ref))).first()
        )
        if team is None:
            raise NotFoundError(f"no team with id or name {ref!r}")
        return team
