"""Two real gateway processes share one database: a key revoked through one replica is refused
by both within 5 seconds (Redis pub/sub when configured, the short cache TTL otherwise)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.db import migrate
from tests.db.fixtures import fresh_pg_database, sqlite_url
from tests.e2e.harness import REPO, GatewayProcess, running_gateway

REDIS_URL = "redis://127.0.0.1:6379/0"
REVOCATION_BOUND_S = 5.0
#: Polling granularity of the test itself, on top of the gateway's bound.
POLL_S = 0.1


def replica_config(database_url: str, workdir: Path, redis_url: str | None) -> dict[str, Any]:
    return {
        "database": {"url": database_url, "auto_upgrade": False},
        "policy": {"engine": "embedded", "paths": [str(REPO / "policies")]},
        "auth": {
            "admin_tokens": ["env:GATEWAY_ADMIN_TOKEN"],
            "server_secret": "env:GATEWAY_SERVER_SECRET",
            "redis_url": redis_url,
        },
        "usage": {"spool_dir": str(workdir / "spool")},
    }


def models_status(replica: GatewayProcess, key: str) -> int:
    return httpx.get(
        replica.base_url + "/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=5
    ).status_code


@pytest.fixture
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    with ExitStack() as stack:
        if request.param == "postgres+redis":
            url, redis_url = stack.enter_context(fresh_pg_database()), REDIS_URL
        else:
            url, redis_url = sqlite_url(tmp_path), None
        migrate.upgrade(url)
        processes = []
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            processes.append(
                stack.enter_context(running_gateway(replica_config(url, workdir, redis_url), workdir))
            )
        yield processes[0], processes[1]


@pytest.mark.parametrize(
    "replicas",
    [pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]), "sqlite+ttl"],
    indirect=True,
)
def test_revocation_reaches_both_replicas_within_five_seconds(
    replicas: tuple[GatewayProcess, GatewayProcess],
) -> None:
    a, b = replicas
    key = a.create_key("shared")
    key_id = a.admin("GET", "/admin/v1/keys", params={"name": "shared"}).json()["data"][0]["id"]
    # Both replicas have now cached the key as valid.
    assert models_status(a, key) == 200
    assert models_status(b, key) == 200

    response = a.admin("POST", f"/admin/v1/keys/{key_id}/revoke")
    assert response.status_code == 200, response.text
    revoked_at = time.monotonic()
    refused: dict[str, float] = {}
    while len(refused) < 2 and time.monotonic() - revoked_at < REVOCATION_BOUND_S + 2:
        for name, replica in (("a", a), ("b", b)):
            if name not in refused and models_status(replica, key) == 401:
                refused[name] = time.monotonic() - revoked_at
        time.sleep(POLL_S)
    assert set(refused) == {"a", "b"}, f"still accepted after {REVOCATION_BOUND_S + 2}s: {refused}"
    assert max(refused.values()) <= REVOCATION_BOUND_S + POLL_S * 3, refused
    body = httpx.get(b.base_url + "/v1/models", headers={"x-api-key": key}, timeout=5).json()
    assert body["error"]["code"] == "revoked_api_key"
    assert key not in b.logs() and key not in a.logs()
