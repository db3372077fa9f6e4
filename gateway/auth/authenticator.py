"""Who is calling: gateway keys (cached), JWTs from configured issuers, or anonymous if allowed.

Called first in the pipeline: ``principal = await authenticator.authenticate(request.headers)``.
A cached key costs one HMAC and a dict lookup; a cache miss reads the database once, however
many concurrent requests carry the same key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.auth.auth_types import KeyLookup
from gateway.auth.cache import KeyCache, LastUsedRecorder
from gateway.auth.jwt import JwtVerifier, VerifiedToken, looks_like_jwt
from gateway.auth.keys import KeyHasher, display_prefix, is_well_formed, looks_like_gateway_key
from gateway.auth.records import KeyRecord
from gateway.errors import AuthenticationError
from gateway.types import Principal

MISSING = (
    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header.",
    "missing_api_key",
)
BAD_SCHEME = (
    "The Authorization header must use the Bearer scheme: 'Authorization: Bearer <key>'.",
    "invalid_api_key",
)
MALFORMED = ("The API key is malformed: gateway keys look like 'gw-<prefix>_<secret>'.", "invalid_api_key")
NO_JWT = ("JWT bearer tokens are not accepted by this gateway.", "invalid_api_key")


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credential from ``Authorization: Bearer`` or ``x-api-key``; raises on a foreign scheme."""
    authorization = _header(headers, "authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError(BAD_SCHEME[0], code=BAD_SCHEME[1])
        return token.strip() or None
    api_key = _header(headers, "x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        # Plain dicts (tests, other frameworks) are not case-insensitive like Starlette's Headers.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


class Authenticator:
    def __init__(
        self,
        *,
        lookup: KeyLookup,
        hasher: KeyHasher,
        cache: KeyCache,
        last_used: LastUsedRecorder | None = None,
        jwt_verifier: JwtVerifier | None = None,
        allow_anonymous: bool = False,
    ) -> None:
        self._lookup = lookup
        self._hasher = hasher
        self._cache = cache
        self._last_used = last_used
        self._jwt = jwt_verifier
        self._allow_anonymous = allow_anonymous
        self._inflight: dict[str, asyncio.Future[KeyRecord | None]] = {}

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = bearer_token(headers)
        if token is None:
            if self._allow_anonymous:
                return Principal(auth="anonymous")
            raise AuthenticationError(MISSING[0], code=MISSING[1])
        if not looks_like_gateway_key(token) and looks_like_jwt(token):
            return (await self.verify_jwt(token)).principal
        return await self.authenticate_key(token)

    async def verify_jwt(self, token: str) -> VerifiedToken:
        if self._jwt is None or not self._jwt.enabled:
            raise AuthenticationError(NO_JWT[0], code=NO_JWT[1])
        return await self._jwt.verify(token)

    async def authenticate_key(self, token: str) -> Principal:
        if not is_well_formed(token):
            raise AuthenticationError(MALFORMED[0], code=MALFORMED[1])
        key_hash = self._hasher.hash(token)
        hit, record = self._cache.get(key_hash)
        if not hit:
            record = await self._load(key_hash)
        shown = display_prefix(token)  # the public prefix only, never the secret part
        if record is None:
            raise AuthenticationError(f"Incorrect API key provided: {shown}…", code="invalid_api_key")
        state = record.state(datetime.now(UTC))
        if state == "revoked":
            raise AuthenticationError(f"The API key {shown}… has been revoked.", code="revoked_api_key")
        if state == "expired":
            raise AuthenticationError(f"The API key {shown}… has expired.", code="expired_api_key")
        if state == "rotated":
            raise AuthenticationError(
                f"The API key {shown}… was rotated and its grace period has ended; use its replacement.",
                code="expired_api_key",
            )
        if self._last_used is not None:
            self._last_used.note(record.id)
        return Principal(
            auth="api_key",
            key_id=record.id,
            key_name=record.name,
            team=record.team,
            user=record.user,
            metadata=dict(record.metadata),
        )

    async def _load(self, key_hash: str) -> KeyRecord | None:
        pending = self._inflight.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            record = await self._lookup.find_key(key_hash)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody logs it twice
            raise
        finally:
            del self._inflight[key_hash]
        self._cache.put(key_hash, record)
        future.set_result(record)
        return record
