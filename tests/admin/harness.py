"""An admin API app over a real store, and a client for it (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette

from gateway.admin.audit import audit_routes
from gateway.admin.keys import key_routes
from gateway.admin.openapi import openapi_routes
from gateway.admin.security import AdminAuth, AdminServices, token_digest
from gateway.admin.teams import team_routes
from gateway.auth.authenticator import Authenticator
from gateway.auth.cache import KeyCache, KeyInvalidator
from gateway.auth.jwt import JwtVerifier
from gateway.auth.keys import KeyHasher
from gateway.auth.store import IdentityStore

ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class AdminHarness:
    client: httpx.AsyncClient
    authenticator: Authenticator
    cache: KeyCache


@asynccontextmanager
async def admin_harness(
    store: IdentityStore, hasher: KeyHasher, jwt_verifier: JwtVerifier | None = None
) -> AsyncIterator[AdminHarness]:
    cache = KeyCache(60, 1000)
    invalidator = KeyInvalidator(None, cache)
    services = AdminServices(store, invalidator, AdminAuth([token_digest(ADMIN_TOKEN)], jwt_verifier))
    app = Starlette(
        routes=[*key_routes(services), *team_routes(services), *audit_routes(services), *openapi_routes()]
    )
    authenticator = Authenticator(lookup=store, hasher=hasher, cache=cache, jwt_verifier=jwt_verifier)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield AdminHarness(client, authenticator, cache)
