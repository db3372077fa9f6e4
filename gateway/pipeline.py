"""The request pipeline: the only orchestrator, one readable sequence of stage calls.

    authenticate → build input → decide → enforce (transform, redact, reserve) → route and
    call upstream → screen the answer → reconcile limits → record decision and usage

Each stage is a call into a module with one job; data moves forward on the ``RequestContext``.
Denials and failures are ``GatewayError``s: they stop the sequence, become an OpenAI-style
error response, and are still recorded (a usage record is written for every request).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope

from gateway.context import RequestContext
from gateway.dialects import Dialect
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    PolicyDeniedError,
    PolicyUnavailableError,
    RateLimitError,
)
from gateway.guards.guard import prompt_texts
from gateway.middleware import IdSource
from gateway.policy.decision import Decision
from gateway.policy.enforce import apply_transform
from gateway.policy.engine import PolicyEngineError
from gateway.services import Services
from gateway.streaming import StreamRelay
from gateway.tokens import max_output
from gateway.validation import parse_json_object, read_body, validate_chat, validate_embeddings

log = logging.getLogger("gateway.pipeline")

JSON = "application/json"


def json_response(status: int, body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def error_response(ctx: RequestContext, exc: GatewayError, dialect: Dialect) -> Response:
    ctx.status = exc.status
    ctx.error_type = ctx.error_type or exc.error_type
    return json_response(exc.status, dialect.error(exc), {**ctx.response_headers(), **exc.headers})


class Pipeline:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.new_id = IdSource()

    def _context(self, scope: Scope, endpoint: str) -> RequestContext:
        state = scope.get("state") or {}
        client = scope.get("client")
        return RequestContext(
            request_id=state.get("request_id") or self.new_id(),
            client_request_id=state.get("client_request_id"),
            endpoint=endpoint,
            path=scope["path"],
            source_ip=client[0] if client else None,
        )

    async def handle(
        self, scope: Scope, receive: Receive, endpoint: str, dialect: Dialect
    ) -> Response | StreamRelay:
        """Answer one call to a proxy endpoint; ``endpoint`` is the canonical endpoint kind."""
        ctx = self._context(scope, endpoint)
        try:
            raw = await read_body(scope, receive, self.s.config.server.max_body_bytes)
            body = dialect.to_canonical(parse_json_object(raw))
            if endpoint == "chat.completions":
                validate_chat(body)
            else:
                validate_embeddings(body)
            return await self._run(ctx, scope, body, dialect)
        except GatewayError as exc:
            response = error_response(ctx, exc, dialect)
        except Exception:
            # A bug, not a client error: log it with the request id, answer in the client's
            # error format, and still record the request.
            log.exception("unhandled error in request %s", ctx.request_id)
            ctx.error_type = "internal_error"
            response = error_response(
                ctx, GatewayError("The gateway failed to process the request."), dialect
            )
        self.s.finish(ctx)
        return response

    async def _run(
        self, ctx: RequestContext, scope: Scope, body: dict[str, Any], dialect: Dialect
    ) -> Response | StreamRelay:
        s = self.s
        ctx.stream = bool(body.get("stream"))
        ctx.client_wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        ctx.requested_model = body["model"]

        ctx.principal = await s.auth.authenticate(scope)
        ctx.route = s.router.route(body["model"])
        wanted_kind = "chat" if ctx.endpoint == "chat.completions" else "embeddings"
        if ctx.route.kind != wanted_kind:
            raise InvalidRequestError(
                f"The model `{ctx.route.public_model}` is a {ctx.route.kind} model; "
                f"it cannot serve {ctx.endpoint}.",
                param="model",
                code="model_not_supported",
            )
        texts = prompt_texts(body)
        features = s.guard.features(texts)
        if ctx.endpoint == "chat.completions":
            ctx.prompt_estimate = s.tokens.estimate_chat(body, ctx.route.encoding or body["model"])
            ctx.max_output = max_output(body)
        else:
            ctx.prompt_estimate = s.tokens.estimate_embeddings_input(
                body["input"], ctx.route.encoding or body["model"]
            )
        usage_so_far = await s.limiter.usage_snapshot(ctx.principal.key_id, ctx.principal.team)
        usage_so_far["anomaly"] = s.anomaly.score(ctx.principal.key_id) if ctx.principal.key_id else 0.0

        decision = await self._decide(ctx, scope, body, features, usage_so_far)
        if not decision.allow:
            reasons = "; ".join(decision.reasons) or "no reason given"
            ctx.error_type = "policy_denied"
            raise PolicyDeniedError(f"Request denied by policy: {reasons}", status=decision.status)

        body = apply_transform(body, decision.transform)
        if body["model"] != ctx.route.public_model:
            ctx.route = s.router.route(body["model"])
        restorer = None
        if decision.transform.redact:
            body, restorer = s.guard.redact_request(body, decision.transform.redact)
        try:
            ctx.reservation = await s.limiter.reserve(s.limit_context(ctx, decision))
        except RateLimitError as exc:
            s.metrics.limit_rejected(exc.limit_name, exc.limit_kind)
            raise

        ctx.span = s.start_span(ctx, body)
        try:
            dispatched = await s.router.dispatch(
                ctx.route, ctx.endpoint, body, stream=ctx.stream, extra_headers=decision.transform.headers
            )
        except GatewayError:
            await s.limiter.release(ctx.reservation)
            raise
        ctx.deployment = dispatched.deployment
        ctx.upstream_ms = dispatched.upstream_ms
        if ctx.stream:
            encoder = dialect.stream_encoder(ctx.route.public_model, ctx.client_wants_usage)
            return StreamRelay(s, ctx, dispatched, decision, restorer, encoder)

        response_body = dispatched.body or {}
        try:
            s.screen_response(response_body, decision.response, restorer, decision.status)
        finally:
            ctx.usage = dispatched.usage or s.estimated_usage(ctx, response_body)
            await s.settle(ctx)
        payload = dialect.response(response_body, ctx.route.public_model, ctx.usage)
        response = json_response(200, payload, ctx.response_headers())
        s.finish(ctx)
        return response

    async def _decide(
        self,
        ctx: RequestContext,
        scope: Scope,
        body: dict[str, Any],
        features: dict[str, Any],
        usage_so_far: dict[str, Any],
    ) -> Decision:
        s = self.s
        assert ctx.route is not None and ctx.principal is not None
        input_doc = s.build_input(ctx, scope, body, features, usage_so_far)
        ctx.decision_id = self.new_id()
        started = time.perf_counter()
        try:
            decision = await s.policy.decide(input_doc)
        except PolicyEngineError as exc:
            ctx.decision_ms = (time.perf_counter() - started) * 1000
            if any(d.policy_fail_open for d in ctx.route.deployments):
                log.warning(
                    "policy engine failed, failing open for model %s: %s", ctx.route.public_model, exc
                )
                ctx.policy_failed_open = True
                ctx.decision = Decision(allow=True, reasons=["policy engine failed; fail-open deployment"])
                return ctx.decision
            log.error("policy engine failed, denying (fail closed): %s", exc)
            ctx.error_type = "policy_unavailable"
            raise PolicyUnavailableError(
                "The policy engine could not decide on this request, so it was refused (fail closed). "
                "Try again shortly; if it persists, contact the gateway operators."
            ) from None
        ctx.decision_ms = (time.perf_counter() - started) * 1000
        ctx.decision = decision
        return decision
