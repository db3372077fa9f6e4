"""Builds the identity components in the app lifespan and closes them again.

identity = await open_identity(config, sessions, resolver)   # lifespan start
principal = await identity.authenticator.authenticate(headers)  # per request
await identity.aclose()                                      # lifespan end
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth.authenticator import Authenticator
from gateway.auth.cache import InvalidationListener, KeyCache, KeyInvalidator, LastUsedRecorder
from gateway.auth.jwt import JwtVerifier
from gateway.auth.keys import KeyHasher, load_server_secret, server_secret_dir
from gateway.auth.store import IdentityStore
from gateway.config import GatewayConfig
from gateway.db.engine import database_url
from gateway.secrets import SecretResolver


@dataclass
class Identity:
    hasher: KeyHasher
    store: IdentityStore
    cache: KeyCache
    invalidator: KeyInvalidator
    jwt_verifier: JwtVerifier
    authenticator: Authenticator
    last_used: LastUsedRecorder | None
    listener: InvalidationListener | None

    async def aclose(self) -> None:
        if self.last_used is not None:
            await self.last_used.aclose()
        if self.listener is not None:
            await self.listener.aclose()
        await self.invalidator.aclose()


def config_dir(config: GatewayConfig) -> Path | None:
    return Path(config.source).parent if config.source else None


async def open_hasher(config: GatewayConfig, resolver: SecretResolver) -> KeyHasher:
    url = database_url(config.database, config_dir(config))
    secret = await load_server_secret(
        config.auth.server_secret, resolver, server_secret_dir(url, config_dir(config))
    )
    return KeyHasher(secret)


async def open_identity(
    config: GatewayConfig,
    sessions: async_sessionmaker[AsyncSession],
    resolver: SecretResolver,
    *,
    background: bool = True,
) -> Identity:
    """``background=False`` (CLI) skips the last-used writer and the Redis subscription."""
    auth = config.auth
    hasher = await open_hasher(config, resolver)
    store = IdentityStore(sessions, hasher)
    cache = KeyCache(auth.effective_cache_ttl_s, auth.cache_max_entries)
    last_used = LastUsedRecorder(store, auth.last_used_interval_s) if background else None
    listener = (
        InvalidationListener(auth.redis_url, cache, auth.effective_cache_ttl_s)
        if background and auth.redis_url
        else None
    )
    jwt_verifier = JwtVerifier(auth.jwt)
    authenticator = Authenticator(
        lookup=store,
        hasher=hasher,
        cache=cache,
        last_used=last_used,
        jwt_verifier=jwt_verifier,
        allow_anonymous=auth.allow_anonymous,
    )
    if last_used is not None:
        last_used.start()
    if listener is not None:
        listener.start()
    return Identity(
        hasher=hasher,
        store=store,
        cache=cache,
        invalidator=KeyInvalidator(auth.redis_url, cache),
        jwt_verifier=jwt_verifier,
        authenticator=authenticator,
        last_used=last_used,
        listener=listener,
    )
