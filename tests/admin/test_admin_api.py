"""The admin REST API: keys, teams, audit, admin authentication and the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from openapi_spec_validator import validate

from gateway.admin.security import AdminAuth, token_digest
from gateway.auth.config import AuthConfig
from gateway.auth.keys import KeyHasher
from gateway.auth.store import IdentityStore
from gateway.errors import AuthenticationError
from gateway.secrets import SecretResolver
from tests.admin.harness import ADMIN_HEADERS, ADMIN_TOKEN, AdminHarness, admin_harness


@pytest.fixture
async def admin(store: IdentityStore, hasher: KeyHasher) -> AsyncIterator[AdminHarness]:
    async with admin_harness(store, hasher) as harness:
        yield harness


async def test_key_lifecycle(admin: AdminHarness) -> None:
    c = admin.client
    r = await c.post(
        "/admin/v1/teams", json={"name": "research", "metadata": {"cost_center": "R1"}}, headers=ADMIN_HEADERS
    )
    assert r.status_code == 201, r.text
    team = r.json()
    assert team["name"] == "research" and team["metadata"] == {"cost_center": "R1"}

    r = await c.post(
        "/admin/v1/keys",
        json={"name": "notebook", "team": "research", "user": "ana", "metadata": {"models": ["gpt-4o"]}},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["key"]
    assert secret.startswith(created["prefix"] + "_")
    assert created["revoked"] is False and created["team"] == "research"
    headers = {"Authorization": f"Bearer {secret}"}
    principal = await admin.authenticator.authenticate(headers)
    assert principal.metadata == {"cost_center": "R1", "models": ["gpt-4o"]}

    r = await c.get(f"/admin/v1/keys/{created['id']}", headers=ADMIN_HEADERS)
    assert r.status_code == 200 and "key" not in r.json() and secret not in r.text

    r = await c.patch(
        f"/admin/v1/keys/{created['id']}",
        json={"metadata": {"models": ["gpt-4o-mini"]}},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 200 and r.json()["metadata"] == {"models": ["gpt-4o-mini"]}
    # The change is visible at once: the admin API invalidated the cached key.
    assert (await admin.authenticator.authenticate(headers)).metadata["models"] == ["gpt-4o-mini"]

    r = await c.patch(
        f"/admin/v1/teams/{team['id']}", json={"metadata": {"cost_center": "R2"}}, headers=ADMIN_HEADERS
    )
    assert r.status_code == 200
    assert (await admin.authenticator.authenticate(headers)).metadata["cost_center"] == "R2"

    r = await c.post(f"/admin/v1/keys/{created['id']}/revoke", headers=ADMIN_HEADERS)
    assert r.status_code == 200 and r.json()["revoked"] is True
    with pytest.raises(AuthenticationError, match="revoked"):
        await admin.authenticator.authenticate(headers)


async def test_rotation_with_grace_period(admin: AdminHarness) -> None:
    c = admin.client
    old = (await c.post("/admin/v1/keys", json={"name": "svc"}, headers=ADMIN_HEADERS)).json()
    old_headers = {"x-api-key": old["key"]}
    await admin.authenticator.authenticate(old_headers)  # cached before the rotation
    r = await c.post(f"/admin/v1/keys/{old['id']}/rotate", json={"grace_period_s": 1}, headers=ADMIN_HEADERS)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["rotated_from"] == old["id"] and new["key"] != old["key"]
    assert new["rotated"]["grace_until"] is not None
    assert (await admin.authenticator.authenticate(old_headers)).key_id == old["id"]
    assert (await admin.authenticator.authenticate({"x-api-key": new["key"]})).key_id == new["id"]
    await asyncio.sleep(1.1)
    with pytest.raises(AuthenticationError, match="rotated"):
        await admin.authenticator.authenticate(old_headers)
    r = await c.post(f"/admin/v1/keys/{old['id']}/rotate", json={}, headers=ADMIN_HEADERS)
    assert r.status_code == 400 and "already rotated" in r.json()["error"]["message"]


async def test_search_and_pagination(admin: AdminHarness) -> None:
    c = admin.client
    await c.post("/admin/v1/teams", json={"name": "blue"}, headers=ADMIN_HEADERS)
    for i in range(5):
        body = {"name": f"batch-{i}", "team": "blue" if i % 2 else None, "user": "bob" if i < 2 else "eve"}
        assert (await c.post("/admin/v1/keys", json=body, headers=ADMIN_HEADERS)).status_code == 201
    await c.post("/admin/v1/keys", json={"name": "other_50%"}, headers=ADMIN_HEADERS)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"name": "BATCH", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await c.get("/admin/v1/keys", params=params, headers=ADMIN_HEADERS)).json()
        seen += [k["name"] for k in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert sorted(seen) == [f"batch-{i}" for i in range(5)] and len(seen) == 5

    teams = (await c.get("/admin/v1/keys", params={"team": "blue"}, headers=ADMIN_HEADERS)).json()["data"]
    assert sorted(k["name"] for k in teams) == ["batch-1", "batch-3"]
    bobs = (await c.get("/admin/v1/keys", params={"user": "bob"}, headers=ADMIN_HEADERS)).json()["data"]
    assert sorted(k["name"] for k in bobs) == ["batch-0", "batch-1"]
    # LIKE wildcards in the search text are literal.
    odd = (await c.get("/admin/v1/keys", params={"name": "_50%"}, headers=ADMIN_HEADERS)).json()["data"]
    assert [k["name"] for k in odd] == ["other_50%"]
    assert all("key" not in k for k in teams + bobs + odd)


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("post", "/admin/v1/keys", {}, "name"),
        ("post", "/admin/v1/keys", {"name": "x", "team": "nope"}, "team"),
        ("post", "/admin/v1/keys", {"name": "x", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ("post", "/admin/v1/keys", {"name": "x", "colour": "red"}, "colour"),
        ("post", "/admin/v1/teams", {"name": "has space"}, "name"),
        ("get", "/admin/v1/keys?limit=0", None, "limit"),
        ("get", "/admin/v1/keys?cursor=%%%", None, "cursor"),
    ],
)
async def test_bad_input_is_a_400_openai_error(
    admin: AdminHarness, method: str, path: str, body: dict[str, object] | None, param: str
) -> None:
    r = await admin.client.request(method.upper(), path, json=body, headers=ADMIN_HEADERS)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


async def test_not_json_unknown_ids_and_duplicate_teams(admin: AdminHarness) -> None:
    c = admin.client
    r = await c.post("/admin/v1/keys", content=b"{not json", headers=ADMIN_HEADERS)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    assert (await c.get("/admin/v1/keys/key_missing", headers=ADMIN_HEADERS)).status_code == 404
    assert (await c.post("/admin/v1/keys/key_missing/revoke", headers=ADMIN_HEADERS)).status_code == 404
    assert (await c.post("/admin/v1/teams", json={"name": "dup"}, headers=ADMIN_HEADERS)).status_code == 201
    r = await c.post("/admin/v1/teams", json={"name": "dup"}, headers=ADMIN_HEADERS)
    assert r.status_code == 400 and "already exists" in r.json()["error"]["message"]
    teams = (await c.get("/admin/v1/teams", headers=ADMIN_HEADERS)).json()["data"]
    assert [t["name"] for t in teams] == ["dup"]
    assert (await c.get("/admin/v1/teams/dup", headers=ADMIN_HEADERS)).json()["name"] == "dup"


async def test_admin_authentication(admin: AdminHarness) -> None:
    c = admin.client
    key = (await c.post("/admin/v1/keys", json={"name": "k"}, headers=ADMIN_HEADERS)).json()["key"]
    r = await c.get("/admin/v1/keys")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    r = await c.get("/admin/v1/keys", headers={"Authorization": "Bearer wrong-token"})
    assert r.status_code == 401 and "wrong-token" not in r.text
    r = await c.get("/admin/v1/keys", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_denied"
    assert key not in r.text


async def test_audit_trail_records_who_did_what(admin: AdminHarness) -> None:
    c = admin.client
    await c.post("/admin/v1/teams", json={"name": "ops"}, headers=ADMIN_HEADERS)
    created = (
        await c.post("/admin/v1/keys", json={"name": "a", "team": "ops"}, headers=ADMIN_HEADERS)
    ).json()
    await c.post(f"/admin/v1/keys/{created['id']}/revoke", headers=ADMIN_HEADERS)
    r = await c.get("/admin/v1/audit", headers=ADMIN_HEADERS)
    entries = r.json()["data"]
    assert [e["action"] for e in entries] == ["key.revoke", "key.create", "team.create"]
    actor = f"token:{token_digest(ADMIN_TOKEN)[:12]}"
    assert {e["actor"] for e in entries} == {actor}
    assert ADMIN_TOKEN not in r.text and created["key"] not in r.text
    one = (
        await c.get("/admin/v1/audit", params={"target_id": created["id"], "limit": 1}, headers=ADMIN_HEADERS)
    ).json()
    assert [e["action"] for e in one["data"]] == ["key.revoke"] and one["has_more"]
    rest = (
        await c.get(
            "/admin/v1/audit",
            params={"target_id": created["id"], "cursor": one["next_cursor"]},
            headers=ADMIN_HEADERS,
        )
    ).json()
    assert [e["action"] for e in rest["data"]] == ["key.create"] and not rest["has_more"]


async def test_openapi_document_is_valid_and_covers_every_route(admin: AdminHarness) -> None:
    r = await admin.client.get("/admin/v1/openapi.json")
    assert r.status_code == 200
    document = r.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/admin/v1/keys",
        "/admin/v1/keys/{key_id}",
        "/admin/v1/keys/{key_id}/revoke",
        "/admin/v1/keys/{key_id}/rotate",
        "/admin/v1/teams",
        "/admin/v1/teams/{team_id}",
        "/admin/v1/audit",
        "/admin/v1/openapi.json",
    }
    assert set(document["paths"]["/admin/v1/keys/{key_id}"]) >= {"get", "patch"}


async def test_admin_tokens_from_config_by_hash_or_reference() -> None:
    digest = token_digest("first-admin-token")
    config = AuthConfig(admin_tokens=[f"sha256:{digest}", "env:SECOND_ADMIN_TOKEN"])
    auth = await AdminAuth.from_config(
        config, SecretResolver(environ={"SECOND_ADMIN_TOKEN": "second-one"}), None
    )
    assert await auth.authorize({"authorization": "Bearer first-admin-token"}) == f"token:{digest[:12]}"
    assert (await auth.authorize({"authorization": "Bearer second-one"})).startswith("token:")
    with pytest.raises(ValueError, match="never the token itself"):
        AuthConfig(admin_tokens=["plain-token"])


async def test_jwt_admins_need_the_admin_role(store: IdentityStore, hasher: KeyHasher) -> None:
    from gateway.auth.config import JwtConfig
    from gateway.auth.jwt import JwtVerifier
    from tests.auth.jwks_server import jwks_server, rsa_key
    from tests.auth.test_jwt import ISSUER, claims, issuer_config, sign

    with jwks_server() as jwks:
        key = rsa_key()
        jwks.publish(("k1", key))
        verifier = JwtVerifier(JwtConfig(issuers=[issuer_config(jwks)]))
        async with admin_harness(store, hasher, verifier) as admin:
            reader = sign(key, "k1", claims())
            r = await admin.client.get("/admin/v1/keys", headers={"Authorization": f"Bearer {reader}"})
            assert r.status_code == 403 and "admin role" in r.json()["error"]["message"]
            boss = sign(key, "k1", claims(sub="boss", realm_access={"roles": ["gateway-admin"]}))
            r = await admin.client.post(
                "/admin/v1/teams", json={"name": "t"}, headers={"Authorization": f"Bearer {boss}"}
            )
            assert r.status_code == 201
            audit = (await admin.client.get("/admin/v1/audit", headers=ADMIN_HEADERS)).json()["data"]
            assert audit[0]["actor"] == f"jwt:{ISSUER}:boss"
            expired = sign(key, "k1", claims(exp=1, realm_access={"roles": ["gateway-admin"]}))
            r = await admin.client.get("/admin/v1/keys", headers={"Authorization": f"Bearer {expired}"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "expired_token"
