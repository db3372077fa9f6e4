"""GenAI-convention spans through the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.errors import UpstreamTimeoutError
from gateway.tracing import GenAITracer
from gateway.types import Usage


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> GenAITracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return GenAITracer(provider)


def test_chat_span_has_genai_attributes(tracer: GenAITracer, exporter: InMemorySpanExporter) -> None:
    with tracer.llm_call(
        operation="chat", provider_type="azure", request_model="gpt-4o", max_tokens=256, temperature=0.2,
        server_address="example.openai.azure.com", server_port=443, key_id="k1", team="research",
    ) as span:  # fmt: skip
        span.set_response(model="gpt-4o-2024-08-06", response_id="chatcmpl-1", finish_reasons=["stop"],
                          usage=Usage(prompt_tokens=12, completion_tokens=5))  # fmt: skip
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "chat gpt-4o" and finished.kind == SpanKind.CLIENT
    attrs = dict(finished.attributes or {})
    assert attrs["gen_ai.system"] == "az.ai.openai" and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-4o" and attrs["gen_ai.request.max_tokens"] == 256
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 12 and attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["server.address"] == "example.openai.azure.com" and attrs["gateway.team"] == "research"
    assert "gen_ai.request.top_p" not in attrs  # unset values are left out, not recorded as None


def test_error_marks_span(tracer: GenAITracer, exporter: InMemorySpanExporter) -> None:
    with (
        pytest.raises(UpstreamTimeoutError),
        tracer.llm_call(operation="chat", provider_type="openai", request_model="m"),
    ):
        raise UpstreamTimeoutError("upstream took too long")
    (finished,) = exporter.get_finished_spans()
    assert finished.status.status_code == StatusCode.ERROR
    assert finished.attributes["error.type"] == "upstream_timeout"


def test_stream_span_ends_when_told(tracer: GenAITracer, exporter: InMemorySpanExporter) -> None:
    span = tracer.start_llm_span(
        operation="chat", provider_type="anthropic", request_model="claude", stream=True
    )
    assert span.recording and exporter.get_finished_spans() == ()
    span.end()
    assert exporter.get_finished_spans()[0].attributes["gen_ai.system"] == "anthropic"


def test_disabled_tracer_is_a_noop(exporter: InMemorySpanExporter) -> None:
    tracer = GenAITracer(enabled=False)
    with tracer.llm_call(operation="chat", provider_type="openai", request_model="m") as span:
        span.set_response(model="m", usage=Usage(1, 1))
    assert not tracer.enabled and not span.recording
