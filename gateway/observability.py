"""Prometheus metrics and the structured JSON access log.

``Metrics`` owns its own ``CollectorRegistry`` and is created in the app lifespan (no
module-global registry, so two apps in one process, as in tests, do not collide). Per-request
calls cost a dict lookup per metric: label children are cached by label values instead of going
through ``labels()`` (which validates and locks) every time.

The access log is one JSON line per request on the ``gateway.access`` logger, built only from a
``UsageRecord`` and its ``DecisionRecord``: ids, client context, model, tokens, cost, decision,
status, latency. Records never carry secrets or prompt text, and the payload field is not logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.usage.records import DecisionRecord, UsageRecord, as_utc

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.policy.decision import Decision

ACCESS_LOGGER = logging.getLogger("gateway.access")

#: Seconds; request latencies of LLM calls range from tens of milliseconds to minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class _Children:
    """Label children of one metric, cached by label values."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: Counter | Gauge | Histogram) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def get(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._metric.labels(*values)
            self._cache[values] = child
        return child


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_requests", "Requests answered", ["model", "provider", "team", "status"], registry=r
        )
        self.tokens = Counter("gateway_tokens", "Tokens by kind", ["model", "provider", "kind"], registry=r)
        self.cost = Counter("gateway_cost_usd", "Cost in USD", ["model", "provider", "team"], registry=r)
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request received to last byte answered",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_duration_seconds",
            "Time spent waiting on the provider",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time to the first streamed token",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.decision_time = Histogram(
            "gateway_policy_decision_seconds", "Policy evaluation time", buckets=DECISION_BUCKETS, registry=r
        )
        self.denials = Counter("gateway_policy_denials", "Requests denied by policy", ["reason"], registry=r)
        self.limit_rejections = Counter(
            "gateway_limit_rejections",
            "Requests rejected by a rate limit or budget",
            ["limit", "kind"],
            registry=r,
        )
        self.writer_queue_depth = Gauge(
            "gateway_usage_writer_queue_depth", "Usage records waiting in memory", registry=r
        )
        self.spool_bytes = Gauge("gateway_usage_spool_bytes", "Size of the usage spool on disk", registry=r)
        self.records_written = Counter(
            "gateway_usage_records_written", "Usage records written to the database", registry=r
        )
        self.records_spooled = Counter(
            "gateway_usage_records_spooled", "Usage records written to the spool", registry=r
        )
        self.write_failures = Counter(
            "gateway_usage_write_failures", "Batch writes that failed or timed out", registry=r
        )
        self.anomaly_events = Counter(
            "gateway_anomaly_events", "Keys whose usage crossed the anomaly threshold", ["signal"], registry=r
        )
        self._requests = _Children(self.requests)
        self._tokens = _Children(self.tokens)
        self._cost = _Children(self.cost)
        self._latency = _Children(self.latency)
        self._upstream_latency = _Children(self.upstream_latency)
        self._ttft = _Children(self.ttft)
        self._denials = _Children(self.denials)
        self._limit_rejections = _Children(self.limit_rejections)
        self._anomaly_events = _Children(self.anomaly_events)

    def observe_request(
        self,
        record: UsageRecord,
        ctx: RequestContext | None = None,
        decision: Decision | DecisionRecord | None = None,
    ) -> None:
        """Call once per request, when its usage record is complete.

        ``ctx`` supplies the upstream and policy times (``upstream_ms``, ``decision_ms``);
        ``decision`` (the policy's, or its record) supplies denial reasons.
        """
        model = record.model or ""
        provider = record.provider or ""
        self._requests.get(model, provider, record.team or "", str(record.status)).inc()
        if record.prompt_tokens:
            self._tokens.get(model, provider, "prompt").inc(record.prompt_tokens)
        if record.completion_tokens:
            self._tokens.get(model, provider, "completion").inc(record.completion_tokens)
        if record.cached_tokens:
            self._tokens.get(model, provider, "cached").inc(record.cached_tokens)
        if record.cost:
            self._cost.get(model, provider, record.team or "").inc(record.cost)
        self._latency.get(model).observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            self._ttft.get(model).observe(record.ttft_ms / 1000)
        if ctx is not None:
            if ctx.upstream_ms is not None:
                self._upstream_latency.get(provider).observe(ctx.upstream_ms / 1000)
            if ctx.decision_id is not None:
                self.decision_time.observe(ctx.decision_ms / 1000)
        elif isinstance(decision, DecisionRecord):
            self.decision_time.observe(decision.eval_ms / 1000)
        if decision is not None and not decision.allow:
            for reason in decision.reasons or ["unspecified"]:
                self._denials.get(reason).inc()

    def limit_rejected(self, limit: str, kind: str) -> None:
        """``limit`` is the limit's name from the decision; ``kind`` is requests, tokens or budget."""
        self._limit_rejections.get(limit, kind).inc()

    def anomaly_event(self, signal: str) -> None:
        self._anomaly_events.get(signal).inc()

    def track_writer(self, queue_depth: Callable[[], float], spool_bytes: Callable[[], float]) -> None:
        """Gauges read at scrape time, so the hot path never touches them."""
        self.writer_queue_depth.set_function(queue_depth)
        self.spool_bytes.set_function(spool_bytes)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_endpoint(metrics: Metrics, path: str = "/metrics") -> Route:
    """The Starlette route serving the Prometheus text format."""

    async def endpoint(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route(path, endpoint, methods=["GET"], name="metrics")


def access_log_fields(record: UsageRecord, decision: DecisionRecord | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "time": as_utc(record.time).isoformat(),
        "request_id": record.request_id,
        "endpoint": record.endpoint,
        "key_id": record.key_id,
        "team": record.team,
        "user": record.user,
        "requested_model": record.requested_model,
        "model": record.served_model,
        "provider": record.provider,
        "deployment": record.deployment,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "tokens_estimated": record.tokens_estimated,
        "cost": record.cost,
        "status": record.status,
        "error_type": record.error_type,
        "latency_ms": round(record.latency_ms, 3),
        "ttft_ms": None if record.ttft_ms is None else round(record.ttft_ms, 3),
        "stream": record.stream,
        "cache_hit": record.cache_hit,
        "decision_id": record.decision_id,
        "tags": record.tags,
    }
    if decision is not None:
        fields["allow"] = decision.allow
        fields["reasons"] = decision.reasons
        fields["policy_revision"] = decision.policy_revision
    return fields


def log_access(
    record: UsageRecord, decision: DecisionRecord | None = None, *, logger: logging.Logger = ACCESS_LOGGER
) -> None:
    """One JSON line per request; skipped cheaply when the access logger is off."""
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info(orjson.dumps(access_log_fields(record, decision)).decode())
