"""What a platform team reads after traffic: usage and decision records for every request
(denied ones too), the chargeback API, metrics, the access log, and no secret anywhere."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import UPSTREAM_ENV, gateway_config
from tests.e2e.harness import ADMIN_TOKEN, SERVER_SECRET, GatewayProcess, running_gateway
from tests.emulators.openai_server import API_KEY as PROVIDER_KEY
from tests.emulators.openai_server import Failure, OpenAIEmulator


@pytest.fixture(scope="module")
def usage_gateway(
    openai_upstream: OpenAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    workdir: Path = tmp_path_factory.mktemp("usage")
    config = gateway_config(openai_upstream.base_url, workdir)
    with running_gateway(config, workdir, UPSTREAM_ENV) as process:
        process.admin("POST", "/admin/v1/teams", json={"name": "billing"})
        yield process


def _rows(gateway: GatewayProcess, sql: str, *args: object) -> list[tuple[object, ...]]:
    db = Path(gateway.config_path).parent / "gateway.db"
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, args).fetchall()


def _wait_for_rows(gateway: GatewayProcess, sql: str, count: int, *args: object) -> list[tuple[object, ...]]:
    deadline = time.monotonic() + 10
    while True:
        rows = _rows(gateway, sql, *args)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_every_request_is_recorded_with_its_decision(
    usage_gateway: GatewayProcess, upstream: OpenAIEmulator
) -> None:
    key = usage_gateway.create_key(
        "usage-e2e", team="billing", user="bob", metadata={"allowed_models": ["gpt-4o*"]}
    )
    client = openai.OpenAI(base_url=usage_gateway.base_url + "/v1", api_key=key, max_retries=0)
    ok = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "same-id"},
    )
    # A client reusing its request id must not lose the second record.
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "same-id"},
    )
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="local-llama", messages=[{"role": "user", "content": "hi"}])
    assert ok.headers["x-request-id"] == "same-id"

    rows = _wait_for_rows(
        usage_gateway,
        "SELECT client_request_id, status, error_type, team, user_id, requested_model, deployment, "
        "prompt_tokens, completion_tokens, tokens_estimated, decision_id FROM usage_records "
        "WHERE team = 'billing' ORDER BY time",
        3,
    )
    assert len(rows) == 3
    first, second, denied = rows
    assert first[0] == second[0] == "same-id"
    assert first[1] == 200 and first[3] == "billing" and first[4] == "bob"
    assert first[6] == "gpt-4o-mini/openai-emu/0"
    assert first[7] > 0 and first[8] > 0 and first[9] == 0, "the provider's numbers, not the estimate"
    assert denied[1] == 403 and denied[2] == "policy_denied" and denied[5] == "local-llama"

    decisions = _wait_for_rows(
        usage_gateway,
        "SELECT id, allow, engine, policy_revision FROM decision_records WHERE id = ?",
        1,
        denied[10],
    )
    assert decisions[0][1] == 0 and decisions[0][2] == "embedded" and decisions[0][3]
    assert ok.headers["x-gateway-decision-id"] == first[10]


def test_chargeback_report_json_and_csv(usage_gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    key = usage_gateway.create_key("report-e2e", team="billing")
    client = openai.OpenAI(base_url=usage_gateway.base_url + "/v1", api_key=key, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    _wait_for_rows(usage_gateway, "SELECT 1 FROM usage_records WHERE key_id IS NOT NULL", 3)
    time.sleep(0.3)
    report = usage_gateway.admin(
        "GET", "/admin/v1/usage", params={"group_by": "team,model", "granularity": "day"}
    )
    assert report.status_code == 200, report.text
    rows = [r for r in report.json()["data"] if r["team"] == "billing"]
    assert rows and sum(r["requests"] for r in rows) >= 3
    as_csv = usage_gateway.admin(
        "GET", "/admin/v1/usage", params={"group_by": "team", "granularity": "day", "format": "csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert any(row["team"] == "billing" for row in csv.DictReader(io.StringIO(as_csv.text)))
    unauthorized = httpx.get(usage_gateway.base_url + "/admin/v1/usage")
    assert unauthorized.status_code == 401


def test_metrics_endpoint(usage_gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    text = httpx.get(usage_gateway.base_url + "/metrics").text
    served = (
        r'gateway_requests_total\{model="[^"]+",provider="openai-emu",status="200",team="billing"\} [1-9]'
    )
    assert re.search(served, text), text[:2000]
    assert 'gateway_requests_total{model="local-llama",provider="",status="403",team="billing"}' in text
    assert "gateway_usage_writer_queue_depth" in text
    assert "gateway_usage_spool_bytes" in text
    assert "gateway_policy_decision_seconds_count" in text


def test_no_secret_in_logs_database_metrics_or_admin_answers(
    usage_gateway: GatewayProcess, upstream: OpenAIEmulator
) -> None:
    key = usage_gateway.create_key("secret-e2e", team="billing")
    client = openai.OpenAI(base_url=usage_gateway.base_url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    upstream.failures.append(Failure(401))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    bad = openai.OpenAI(base_url=usage_gateway.base_url + "/v1", api_key=key + "x", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert key not in str(info.value.body)
    time.sleep(0.5)
    admin_answers = (
        usage_gateway.admin("GET", "/admin/v1/keys").text + usage_gateway.admin("GET", "/admin/v1/audit").text
    )
    places = {
        "gateway log": usage_gateway.logs(),
        "metrics": httpx.get(usage_gateway.base_url + "/metrics").text,
        "admin answers": admin_answers,
        "database": (Path(usage_gateway.config_path).parent / "gateway.db").read_bytes().decode("latin-1"),
    }
    secret_part = key.split("_", 1)[1]
    for where, text in places.items():
        for secret in (PROVIDER_KEY, secret_part, ADMIN_TOKEN, SERVER_SECRET):
            assert secret not in text, f"a secret leaked into the {where}"
