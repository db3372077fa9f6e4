"""A planted gateway key and a planted provider key appear nowhere: not in logs (SQL included),
error bodies, admin responses (other than the one-time creation answer) or the database."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth.keys import KeyHasher
from gateway.auth.store import IdentityStore
from gateway.errors import AuthenticationError, ConfigError
from gateway.secrets import SecretResolver, SecretsConfig, VaultConfig
from tests.admin.harness import ADMIN_HEADERS, ADMIN_TOKEN, admin_harness

PROVIDER_KEY = "sk-proj-PLANTED-provider-9c1d7e55aa"

log = logging.getLogger("gateway.test")


async def dump_database(engine: AsyncEngine) -> str:
    metadata = MetaData()
    rows: list[str] = []
    async with engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        for table in metadata.sorted_tables:
            for row in (await connection.execute(select(table))).all():
                rows.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(rows)


async def test_planted_secrets_never_leak(
    store: IdentityStore, hasher: KeyHasher, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every SQL statement and its parameters
    seen: list[str] = []  # every response body and error message a client or admin could see

    resolver = SecretResolver(
        SecretsConfig(vault=VaultConfig(url="http://127.0.0.1:1", token="env:VAULT_TOKEN", timeout_s=1)),
        environ={"OPENAI_API_KEY": PROVIDER_KEY, "VAULT_TOKEN": PROVIDER_KEY},
    )
    provider_secret = await resolver.resolve("env:OPENAI_API_KEY")
    log.info("resolved provider credential %s (%r)", provider_secret, provider_secret)
    with pytest.raises(ConfigError) as vault_error:
        await resolver.resolve("vault:providers/openai#api_key")
    seen.append(str(vault_error.value))

    async with admin_harness(store, hasher) as admin:
        c = admin.client
        seen.append((await c.post("/admin/v1/teams", json={"name": "t1"}, headers=ADMIN_HEADERS)).text)
        created = (
            await c.post("/admin/v1/keys", json={"name": "planted", "team": "t1"}, headers=ADMIN_HEADERS)
        ).json()
        gateway_key = created["key"]
        key_id = created["id"]
        headers = {"Authorization": f"Bearer {gateway_key}"}
        principal = await admin.authenticator.authenticate(headers)
        log.info("authenticated %s", principal)

        for response in (
            await c.get("/admin/v1/keys", headers=ADMIN_HEADERS),
            await c.get(f"/admin/v1/keys/{key_id}", headers=ADMIN_HEADERS),
            await c.patch(f"/admin/v1/keys/{key_id}", json={"metadata": {"x": 1}}, headers=ADMIN_HEADERS),
            await c.get("/admin/v1/keys", headers=headers),  # a gateway key on the admin API: 403
            await c.get("/admin/v1/keys", headers={"Authorization": f"Bearer {gateway_key}x"}),
        ):
            seen.append(response.text)
        rotated = (
            await c.post(f"/admin/v1/keys/{key_id}/rotate", json={"grace_period_s": 0}, headers=ADMIN_HEADERS)
        ).json()
        seen.append(str(rotated["rotated"]))
        seen.append((await c.get("/admin/v1/audit", headers=ADMIN_HEADERS)).text)

        for attempt in (headers, {"x-api-key": gateway_key[:-1]}, {"x-api-key": gateway_key + "A"}):
            with pytest.raises(AuthenticationError) as info:
                await admin.authenticator.authenticate(attempt)
            seen.append(info.value.body_bytes().decode())

    database = await dump_database(engine)
    assert "planted" in database and key_id in database  # the dump is real
    secret_part = gateway_key.split("_", 1)[1]
    for planted in (gateway_key, secret_part, PROVIDER_KEY, ADMIN_TOKEN):
        assert planted not in caplog.text
        assert planted not in database
        for text in seen:
            assert planted not in text
    assert "INSERT INTO api_keys" in caplog.text  # the SQL log was captured
