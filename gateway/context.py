"""The request context: what one request has learned so far, carried forward stage by stage.

Stages fill it in order and never reach back; the last stage turns it into the usage record,
the decision record, the access-log line and the metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.policy.decision import Decision
from gateway.routing import Deployment, Route
from gateway.types import Principal, Usage


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str
    path: str
    source_ip: str | None
    #: The ``x-request-id`` the client sent (echoed back), if any.
    client_request_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    stream: bool = False
    client_wants_usage: bool = False
    principal: Principal | None = None
    requested_model: str | None = None
    route: Route | None = None
    prompt_estimate: int = 0
    max_output: int | None = None
    decision: Decision | None = None
    decision_id: str | None = None
    decision_ms: float = 0.0
    policy_failed_open: bool = False
    reservation: Any = None
    deployment: Deployment | None = None
    upstream_ms: float | None = None
    usage: Usage | None = None
    cost: float = 0.0
    status: int = 200
    error_type: str | None = None
    ttft_ms: float | None = None
    completion_text_chars: int = 0
    extra_headers: dict[str, str] = field(default_factory=dict)
    #: The OpenTelemetry span of the provider call (a no-op handle when tracing is off).
    span: Any = None

    @property
    def latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    @property
    def served_model(self) -> str | None:
        return self.deployment.target.model if self.deployment else None

    def response_headers(self) -> dict[str, str]:
        headers = {"x-request-id": self.client_request_id or self.request_id}
        if self.decision_id is not None:
            headers["x-gateway-decision-id"] = self.decision_id
        if self.reservation is not None:
            headers.update(self.reservation.headers())
        headers.update(self.extra_headers)
        return headers
