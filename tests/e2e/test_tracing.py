"""OpenTelemetry: with ``usage.tracing`` on, each provider call is one GenAI CLIENT span."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.config import GatewayConfig
from tests.e2e.conftest import gateway_config
from tests.e2e.harness import ADMIN_TOKEN, SERVER_SECRET, TIKTOKEN_DIR
from tests.emulators.openai_server import API_KEY, serve_openai
from tests.tls.servers import serve_asgi


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: OpenTelemetry allows one global provider
    yield exporter
    provider.shutdown()


async def test_provider_call_becomes_a_genai_span(
    exporter: InMemorySpanExporter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMU_OPENAI_KEY", API_KEY)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("GATEWAY_SERVER_SECRET", SERVER_SECRET)
    async with serve_openai() as upstream:
        raw = gateway_config(
            upstream.base_url, tmp_path, usage={"spool_dir": str(tmp_path / "spool"), "tracing": True}
        )
        raw["auth"]["allow_anonymous"] = True
        raw["tokenizer"] = {"data_dir": TIKTOKEN_DIR}
        config = GatewayConfig.model_validate(raw)
        async with serve_asgi(create_app(config), lifespan="on") as port:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:  # anonymous
                response = await client.post(
                    "/v1/chat/completions",
                    json={
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": "hi"}],
                        "max_tokens": 20,
                    },
                )
            assert response.status_code == 200, response.text
    spans = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-4o-mini"]
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert spans[0].kind == trace.SpanKind.CLIENT
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.request.max_tokens"] == 20
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gateway.deployment"] == "gpt-4o-mini/openai-emu/0"
    assert "hi" not in str(attributes.values()), "prompt text never goes on spans"
