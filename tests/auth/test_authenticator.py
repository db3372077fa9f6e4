"""Authenticating gateway keys: headers, every failure's distinct 401, caching and invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.authenticator import Authenticator
from gateway.auth.cache import KeyCache, KeyInvalidator, LastUsedRecorder
from gateway.auth.keys import KeyHasher
from gateway.auth.models import ApiKey
from gateway.auth.records import KeyRecord
from gateway.auth.store import IdentityStore
from gateway.errors import AuthenticationError

ADMIN = "test:admin"


class CountingLookup:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store
        self.calls = 0

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        self.calls += 1
        await asyncio.sleep(0.01)
        return await self.store.find_key(key_hash)


def make_authenticator(
    store: IdentityStore, hasher: KeyHasher, *, ttl: float = 5.0, allow_anonymous: bool = False
) -> tuple[Authenticator, KeyCache]:
    cache = KeyCache(ttl, 1000)
    return Authenticator(lookup=store, hasher=hasher, cache=cache, allow_anonymous=allow_anonymous), cache


async def expect_401(auth: Authenticator, headers: Mapping[str, str], code: str, words: str) -> str:
    with pytest.raises(AuthenticationError) as info:
        await auth.authenticate(headers)
    error = info.value
    assert error.status == 401
    assert error.body()["error"]["code"] == code
    assert words in error.message
    return error.message


async def test_valid_key_by_bearer_or_x_api_key_gives_the_principal(
    store: IdentityStore, hasher: KeyHasher
) -> None:
    await store.create_team(ADMIN, name="research", metadata={"tier": "gold", "cost_center": "R1"})
    view, issued = await store.create_key(
        ADMIN, name="notebook", team="research", user="ana", metadata={"models": ["gpt-4o"], "tier": "silver"}
    )
    auth, _ = make_authenticator(store, hasher)
    token = issued.plaintext.reveal()
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"x-api-key": token},
        {"authorization": f"bearer {token}"},
    ):
        principal = await auth.authenticate(headers)
        assert principal.auth == "api_key"
        assert principal.key_id == view.id
        assert principal.key_name == "notebook"
        assert principal.team == "research"
        assert principal.user == "ana"
        # Key metadata is merged over the team's: the key's tier wins, the team's cost centre stays.
        assert principal.metadata == {"models": ["gpt-4o"], "tier": "silver", "cost_center": "R1"}
        assert principal.claims == {}


async def test_each_failure_has_its_own_message_and_never_echoes_the_secret(
    store: IdentityStore, hasher: KeyHasher
) -> None:
    auth, _ = make_authenticator(store, hasher)
    _, revoked = await store.create_key(ADMIN, name="r")
    revoked_view = (await store.list_keys(name="r")).items[0]
    await store.revoke_key(ADMIN, revoked_view.id)
    _, expired = await store.create_key(ADMIN, name="e", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    unknown = hasher.mint().plaintext.reveal()

    messages = {
        await expect_401(auth, {}, "missing_api_key", "didn't provide an API key"),
        await expect_401(auth, {"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_api_key", "Bearer scheme"),
        await expect_401(auth, {"x-api-key": "sk-not-ours-123"}, "invalid_api_key", "malformed"),
        await expect_401(auth, {"x-api-key": unknown}, "invalid_api_key", "Incorrect API key"),
        await expect_401(auth, {"x-api-key": revoked.plaintext.reveal()}, "revoked_api_key", "revoked"),
        await expect_401(auth, {"x-api-key": expired.plaintext.reveal()}, "expired_api_key", "expired"),
    }
    assert len(messages) == 6
    for token in (unknown, revoked.plaintext.reveal(), expired.plaintext.reveal()):
        secret_part = token.split("_", 1)[1]
        assert all(secret_part not in m for m in messages)


async def test_anonymous_only_when_allowed(store: IdentityStore, hasher: KeyHasher) -> None:
    auth, _ = make_authenticator(store, hasher, allow_anonymous=True)
    assert (await auth.authenticate({})).auth == "anonymous"
    auth, _ = make_authenticator(store, hasher)
    await expect_401(auth, {}, "missing_api_key", "API key")


async def test_rotated_key_works_during_grace_then_stops(store: IdentityStore, hasher: KeyHasher) -> None:
    old_view, old = await store.create_key(ADMIN, name="svc", metadata={"a": 1})
    new_view, _, new = await store.rotate_key(ADMIN, old_view.id, grace_period_s=1)
    assert new_view.rotated_from == old_view.id and new_view.metadata == {"a": 1}
    auth, _ = make_authenticator(store, hasher)
    assert (await auth.authenticate({"x-api-key": old.plaintext.reveal()})).key_id == old_view.id
    assert (await auth.authenticate({"x-api-key": new.plaintext.reveal()})).key_id == new_view.id
    await asyncio.sleep(1.1)
    # The grace deadline is checked on the cached record itself: no invalidation needed.
    await expect_401(auth, {"x-api-key": old.plaintext.reveal()}, "expired_api_key", "rotated")
    assert (await auth.authenticate({"x-api-key": new.plaintext.reveal()})).key_id == new_view.id


async def test_revocation_reaches_a_cached_key_by_ttl_or_invalidation(
    store: IdentityStore, hasher: KeyHasher
) -> None:
    view, issued = await store.create_key(ADMIN, name="cached")
    headers = {"x-api-key": issued.plaintext.reveal()}

    ttl_auth, _ = make_authenticator(store, hasher, ttl=0.3)
    pushed_auth, pushed_cache = make_authenticator(store, hasher, ttl=60)
    await ttl_auth.authenticate(headers)
    await pushed_auth.authenticate(headers)

    await store.revoke_key(ADMIN, view.id)
    # Cached: still accepted until its TTL runs out or it is invalidated.
    await ttl_auth.authenticate(headers)
    await pushed_auth.authenticate(headers)
    await KeyInvalidator(None, pushed_cache).invalidate([view.key_hash])
    await expect_401(pushed_auth, headers, "revoked_api_key", "revoked")
    await asyncio.sleep(0.35)
    await expect_401(ttl_auth, headers, "revoked_api_key", "revoked")


async def test_concurrent_misses_read_the_database_once(store: IdentityStore, hasher: KeyHasher) -> None:
    _, issued = await store.create_key(ADMIN, name="burst")
    lookup = CountingLookup(store)
    auth = Authenticator(lookup=lookup, hasher=hasher, cache=KeyCache(5, 100))
    headers = {"x-api-key": issued.plaintext.reveal()}
    principals = await asyncio.gather(*(auth.authenticate(headers) for _ in range(20)))
    assert {p.key_name for p in principals} == {"burst"}
    assert lookup.calls == 1
    unknown = {"x-api-key": hasher.mint().plaintext.reveal()}
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await auth.authenticate(unknown)
    assert lookup.calls == 2  # the unknown key is remembered (negative entry)


def test_cache_is_bounded() -> None:
    cache = KeyCache(60, 16)
    for i in range(40):
        cache.put(f"h{i}", None)
    assert len(cache) == 16
    assert cache.get("h39") == (True, None)
    assert cache.get("h0") == (False, None)


async def test_last_used_is_batched_and_throttled(
    store: IdentityStore, hasher: KeyHasher, sessions: async_sessionmaker[AsyncSession]
) -> None:
    view, issued = await store.create_key(ADMIN, name="busy")
    recorder = LastUsedRecorder(store, interval_s=60, flush_every_s=3600)
    cache = KeyCache(5, 100)
    auth = Authenticator(lookup=store, hasher=hasher, cache=cache, last_used=recorder)
    for _ in range(5):
        await auth.authenticate({"x-api-key": issued.plaintext.reveal()})

    async def last_used() -> datetime | None:
        async with sessions() as session:
            return (await session.scalars(select(ApiKey.last_used_at).where(ApiKey.id == view.id))).one()

    assert await last_used() is None  # nothing written on the request path
    await recorder.flush()
    first = await last_used()
    assert first is not None
    await auth.authenticate({"x-api-key": issued.plaintext.reveal()})
    await recorder.flush()
    assert await last_used() == first  # within the interval: not written again
    recorder.start()
    await recorder.aclose()
