"""Metrics exposition, the access log line, and label-children caching."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from gateway.observability import Metrics, log_access, metrics_endpoint
from gateway.policy.decision import Decision
from tests.usage.factories import make_pair


@dataclass
class _Ctx:
    upstream_ms: float | None = 80.0
    decision_id: str | None = "dec-1"
    decision_ms: float = 0.7


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_request_metrics_by_model_provider_team_status() -> None:
    metrics = Metrics()
    ok, _ = make_pair(1)  # 200, claude-sonnet-4 / anthropic, team sales
    denied, _ = make_pair(11)  # 429, nothing served: counted under the requested claude-sonnet-4
    ok.ttft_ms = 150.0
    metrics.observe_request(ok, _Ctx())
    metrics.observe_request(ok, _Ctx())
    metrics.observe_request(denied, None, Decision(allow=False, reasons=["over quota"]))
    samples = _samples(metrics)
    labels = (("model", "claude-sonnet-4"), ("provider", "anthropic"), ("status", "200"), ("team", "sales"))
    assert samples[("gateway_requests_total", labels)] == 2
    assert (
        samples[
            (
                "gateway_tokens_total",
                (("kind", "prompt"), ("model", "claude-sonnet-4"), ("provider", "anthropic")),
            )
        ]
        == 2 * ok.prompt_tokens + denied.prompt_tokens
    )
    assert samples[
        (
            "gateway_cost_usd_total",
            (("model", "claude-sonnet-4"), ("provider", "anthropic"), ("team", "sales")),
        )
    ] == pytest.approx(2 * ok.cost)
    assert samples[("gateway_time_to_first_token_seconds_count", (("model", "claude-sonnet-4"),))] == 2
    assert samples[("gateway_upstream_duration_seconds_count", (("provider", "anthropic"),))] == 2
    assert samples[("gateway_policy_decision_seconds_count", ())] == 2
    assert samples[("gateway_policy_denials_total", (("reason", "over quota"),))] == 1
    assert samples[("gateway_requests_total", (*labels[:2], ("status", "429"), ("team", "support")))] == 1
    assert samples[("gateway_request_duration_seconds_count", (("model", "claude-sonnet-4"),))] == 3


def test_two_metrics_objects_do_not_share_state() -> None:
    first, second = Metrics(), Metrics()
    first.limit_rejected("team-tpm", "tokens")
    assert ("gateway_limit_rejections_total", (("kind", "tokens"), ("limit", "team-tpm"))) in _samples(first)
    assert ("gateway_limit_rejections_total", (("kind", "tokens"), ("limit", "team-tpm"))) not in _samples(
        second
    )


async def test_metrics_route_serves_prometheus_text_with_writer_gauges() -> None:
    metrics = Metrics()
    metrics.track_writer(lambda: 7, lambda: 1234)
    app = Starlette(routes=[metrics_endpoint(metrics)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "gateway_usage_writer_queue_depth 7.0" in response.text
    assert "gateway_usage_spool_bytes 1234.0" in response.text


def test_access_log_is_one_json_line_without_payloads(caplog: pytest.LogCaptureFixture) -> None:
    usage, decision = make_pair(4)
    usage.payload = {"request": "my card is [REDACTED]"}
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        log_access(usage, decision)
    assert len(caplog.records) == 1
    line = orjson.loads(caplog.records[0].getMessage())
    assert line["request_id"] == usage.request_id and line["key_id"] == usage.key_id
    assert line["team"] == usage.team and line["user"] == usage.user and line["model"] == usage.served_model
    assert line["prompt_tokens"] == usage.prompt_tokens and line["cost"] == usage.cost
    assert line["allow"] is True and line["decision_id"] == decision.id and line["status"] == 200
    assert "payload" not in line and "REDACTED" not in caplog.records[0].getMessage()


def test_access_log_skipped_when_logger_disabled(caplog: pytest.LogCaptureFixture) -> None:
    usage, _ = make_pair(4)
    with caplog.at_level(logging.WARNING, logger="gateway.access"):
        log_access(usage)
    assert caplog.records == []
