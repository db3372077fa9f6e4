"""OpenTelemetry spans for provider calls, following the GenAI semantic conventions.

Optional: install the ``otel`` extra (``pip install opa-ai-gateway[otel]``) and configure a tracer
provider the usual way (``opentelemetry-instrument``, or the SDK in your own start-up code). Without
opentelemetry installed every call here is a cheap no-op.

One CLIENT span per upstream call, named ``"{gen_ai.operation.name} {gen_ai.request.model}"``:

    gen_ai.operation.name          chat | embeddings | text_completion
    gen_ai.system                  openai, anthropic, az.ai.openai, aws.bedrock, gcp.vertex_ai, …
    gen_ai.provider.name           same value (the newer name of the attribute)
    gen_ai.request.model / max_tokens / temperature / top_p
    gen_ai.response.model / id / finish_reasons
    gen_ai.usage.input_tokens / output_tokens
    server.address, server.port, error.type
    gateway.deployment, gateway.key_id, gateway.team, gateway.decision_id, gateway.stream

Prompt and completion text are never put on spans.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.types import Usage

try:  # the optional extra
    from opentelemetry import trace as _otel_trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised where the extra is absent
    _otel_trace = None  # type: ignore[assignment]

#: Our provider types → the ``gen_ai.system`` values the conventions define.
GEN_AI_SYSTEMS = {
    "openai": "openai",
    "openai_compatible": "openai",
    "azure": "az.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
}

TRACER_NAME = "gateway"


def otel_available() -> bool:
    return _otel_trace is not None


class LLMSpan:
    """A started span; a no-op when tracing is off."""

    __slots__ = ("_span",)

    def __init__(self, span: Any | None) -> None:
        self._span = span

    @property
    def recording(self) -> bool:
        return self._span is not None and self._span.is_recording()

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        if self._span is not None:
            self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def set_response(
        self,
        *,
        model: str | None = None,
        response_id: str | None = None,
        finish_reasons: list[str] | None = None,
        usage: Usage | None = None,
    ) -> None:
        if self._span is None:
            return
        attributes: dict[str, Any] = {
            "gen_ai.response.model": model,
            "gen_ai.response.id": response_id,
            "gen_ai.response.finish_reasons": finish_reasons,
        }
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
        self.set_attributes(attributes)

    def set_error(self, error_type: str, message: str | None = None) -> None:
        if self._span is None:
            return
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR, message))

    def end(self) -> None:
        if self._span is not None:
            self._span.end()


class GenAITracer:
    """Created in the app lifespan; ``tracer_provider`` defaults to OpenTelemetry's global one."""

    def __init__(self, tracer_provider: Any | None = None, *, enabled: bool = True) -> None:
        self._tracer = None
        if enabled and _otel_trace is not None:
            self._tracer = _otel_trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def start_llm_span(
        self,
        *,
        operation: str,
        provider_type: str,
        request_model: str,
        server_address: str | None = None,
        server_port: int | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stream: bool = False,
        deployment: str | None = None,
        key_id: str | None = None,
        team: str | None = None,
        decision_id: str | None = None,
    ) -> LLMSpan:
        """Start a span for one upstream call; end it with ``end()`` (streams: after the last chunk)."""
        if self._tracer is None:
            return LLMSpan(None)
        system = GEN_AI_SYSTEMS.get(provider_type, provider_type)
        span = self._tracer.start_span(f"{operation} {request_model}", kind=SpanKind.CLIENT)
        handle = LLMSpan(span)
        handle.set_attributes(
            {
                "gen_ai.operation.name": operation,
                "gen_ai.system": system,
                "gen_ai.provider.name": system,
                "gen_ai.request.model": request_model,
                "gen_ai.request.max_tokens": max_tokens,
                "gen_ai.request.temperature": temperature,
                "gen_ai.request.top_p": top_p,
                "server.address": server_address,
                "server.port": server_port,
                "gateway.stream": stream,
                "gateway.deployment": deployment,
                "gateway.key_id": key_id,
                "gateway.team": team,
                "gateway.decision_id": decision_id,
            }
        )
        return handle

    @contextmanager
    def llm_call(self, **attributes: Any) -> Iterator[LLMSpan]:
        """``start_llm_span`` as a context manager; an escaping exception marks the span as an error."""
        span = self.start_llm_span(**attributes)
        try:
            yield span
        except BaseException as exc:
            span.set_error(getattr(exc, "error_type", type(exc).__name__), str(exc) or None)
            raise
        finally:
            span.end()
