"""The components one gateway process runs with, built in the app's lifespan and passed in.

Nothing here is global: ``Services`` is created by ``gateway.app``'s lifespan, handed to the
pipeline, and closed when the app stops. Its methods are the pipeline's closing stages that
several endpoints share (turning a finished request into cost, counters and records).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.observability import log_access
from gateway.policy.decision import Decision
from gateway.policy.input import build_input, prompt_messages, select_headers
from gateway.routing import Router
from gateway.types import Usage
from gateway.usage.records import DecisionRecord, UsageRecord

log = logging.getLogger("gateway.services")

#: Request headers a policy may see (never Authorization or x-api-key).
INPUT_HEADERS = (
    "user-agent",
    "x-request-id",
    "content-type",
    "openai-organization",
    "openai-project",
    "x-gateway-tags",
)


@dataclass
class Services:
    config: GatewayConfig
    router: Router
    auth: Any
    policy: Any
    tokens: Any
    guard: Any
    limiter: Any
    prices: Any
    writer: Any
    metrics: Any
    anomaly: Any
    tracer: Any
    db: Any
    deferred_router: Any
    started_at: float = 0.0

    # -- input ---------------------------------------------------------------------------

    def build_input(
        self,
        ctx: RequestContext,
        scope: Scope,
        body: dict[str, Any],
        features: dict[str, Any],
        usage_so_far: dict[str, Any],
    ) -> dict[str, Any]:
        assert ctx.route is not None and ctx.principal is not None
        first = ctx.route.deployments[0]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        scoped_usage = {k: v for k, v in usage_so_far.items() if isinstance(v, dict)}
        document = dict(
            build_input(
                request_id=ctx.request_id,
                endpoint=ctx.endpoint,
                method=scope.get("method", "POST"),
                path=ctx.path,
                source_ip=ctx.source_ip,
                time=ctx.time,
                stream=ctx.stream,
                headers=select_headers(headers, self.config.policy.input_headers),
                principal=ctx.principal,
                model_requested=ctx.requested_model,
                provider=first.target.provider,
                deployment=first.name,
                prompt_estimate=ctx.prompt_estimate,
                max_output=ctx.max_output,
                messages=prompt_messages(body),
                features=features,
                usage=scoped_usage,
                include_prompt=self.config.policy.include_prompt,
            )
        )
        # The anomaly score is a number beside the per-scope counters: usage.anomaly.
        document["usage"]["anomaly"] = usage_so_far.get("anomaly", 0.0)
        return document

    def limit_context(self, ctx: RequestContext, decision: Decision) -> Any:
        from gateway.limits.limiter import LimitContext

        assert ctx.principal is not None and ctx.route is not None
        first = ctx.route.deployments[0]
        return LimitContext(
            key_id=ctx.principal.key_id,
            team=ctx.principal.team,
            user=ctx.principal.user,
            model=ctx.route.public_model,
            provider=first.target.provider,
            deployment=first.name,
            limits=decision.limits,
            prompt_tokens=ctx.prompt_estimate,
            max_output_tokens=ctx.max_output or 0,
        )

    # -- the answer ----------------------------------------------------------------------

    def screen_response(self, body: dict[str, Any], rules: Any, restorer: Any, status: int) -> None:
        """Redact (or deny on) entities in a JSON answer's message texts, restoring placeholders."""
        if not (rules.redact or rules.deny_on or restorer is not None):
            return
        for choice in body.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                message["content"] = self.guard.screen_response_text(
                    message["content"], rules, restorer, status=status
                )

    async def readiness(self) -> dict[str, dict[str, Any]]:
        """Dependencies reachable: database, policy engine, limits backend."""
        from sqlalchemy import text

        checks: dict[str, dict[str, Any]] = {}
        try:
            async with self.db.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
        except Exception as exc:
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        try:
            checks["policy"] = {"ok": bool(await self.policy.healthy()), "engine": self.policy.name}
        except Exception as exc:
            checks["policy"] = {"ok": False, "error": type(exc).__name__}
        checks["limits"] = {"ok": not self.limiter.backend_down, "backend": self.config.limits.backend}
        return checks

    def start_span(self, ctx: RequestContext, body: dict[str, Any]) -> Any:
        """The provider call's span; ended with the request in ``finish``."""
        if not self.tracer.enabled:
            return None
        assert ctx.route is not None
        principal = ctx.principal
        return self.tracer.start_llm_span(
            operation="chat" if ctx.endpoint == "chat.completions" else "embeddings",
            provider_type=ctx.route.deployments[0].target.provider_type,
            request_model=body["model"],
            max_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            stream=ctx.stream,
            key_id=principal.key_id if principal else None,
            team=principal.team if principal else None,
            decision_id=ctx.decision_id,
        )

    @staticmethod
    def end_span(ctx: RequestContext, usage: Usage) -> None:
        span = ctx.span
        if span is None:
            return
        if ctx.deployment is not None:
            span.set_attributes({"gateway.deployment": ctx.deployment.name})
        span.set_response(model=ctx.served_model, usage=usage)
        if ctx.error_type is not None:
            span.set_error(ctx.error_type)
        span.end()

    # -- closing stages ------------------------------------------------------------------

    def estimated_usage(self, ctx: RequestContext, response_body: dict[str, Any]) -> Usage:
        text = "".join(
            (c.get("message") or {}).get("content") or ""
            for c in response_body.get("choices") or []
            if isinstance(c, dict)
        )
        return self.estimated_usage_from_text(ctx, text)

    def estimated_usage_from_text(self, ctx: RequestContext, text: str) -> Usage:
        model = (ctx.route.encoding if ctx.route else None) or ctx.requested_model or ""
        completion = self.tokens.estimate_texts([text], model) if text else 0
        return Usage(prompt_tokens=ctx.prompt_estimate, completion_tokens=completion, estimated=True)

    async def settle(self, ctx: RequestContext) -> None:
        """Price the call and reconcile the reserved limits with what was really used."""
        usage = ctx.usage or Usage()
        if ctx.deployment is not None:
            ctx.cost = self.prices.cost(
                ctx.deployment.target.model,
                ctx.deployment.name,
                usage,
                public_model=ctx.route.public_model if ctx.route else None,
            )
        if ctx.reservation is not None:
            await self.limiter.reconcile(ctx.reservation, usage, ctx.cost)

    def finish(self, ctx: RequestContext) -> None:
        """Record the decision and the usage, count it, log it. Never raises, never blocks."""
        try:
            usage = ctx.usage or Usage()
            principal = ctx.principal
            decision = ctx.decision
            record = UsageRecord(
                request_id=ctx.request_id,
                client_request_id=ctx.client_request_id,
                time=ctx.time,
                endpoint=ctx.endpoint,
                key_id=principal.key_id if principal else None,
                team=principal.team if principal else None,
                user=principal.user if principal else None,
                tags=dict(decision.tags) if decision else {},
                requested_model=ctx.requested_model,
                served_model=ctx.served_model,
                provider=ctx.deployment.target.provider if ctx.deployment else None,
                deployment=ctx.deployment.name if ctx.deployment else None,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                tokens_estimated=usage.estimated,
                cost=ctx.cost,
                status=ctx.status,
                error_type=ctx.error_type,
                latency_ms=ctx.latency_ms,
                ttft_ms=ctx.ttft_ms,
                stream=ctx.stream,
                decision_id=ctx.decision_id,
            )
            decision_record = None
            if ctx.decision_id is not None:
                decision_record = DecisionRecord(
                    id=ctx.decision_id,
                    request_id=ctx.request_id,
                    time=ctx.time,
                    allow=bool(decision and decision.allow),
                    reasons=list(decision.reasons) if decision else ["policy engine error"],
                    policy_revision=self.policy.revision,
                    eval_ms=ctx.decision_ms,
                    engine=self.policy.name,
                )
            self.end_span(ctx, usage)
            self.writer.record(record, decision_record)
            if self.config.server.access_log:
                log_access(record, decision_record)
            if principal is not None and principal.key_id and ctx.status < 400:
                self.anomaly.observe(principal.key_id, usage.total_tokens)
            self.metrics.observe_request(record, ctx, decision)
        except Exception:  # recording must never break the answer already given
            log.exception("failed to record request %s", ctx.request_id)
