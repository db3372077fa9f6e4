"""The official Anthropic SDK reads both the Anthropic emulator and the inbound encoder's output:
evidence that both follow the wire format the SDK was built for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import orjson
import pytest
from aiohttp import web

from gateway.providers import anthropic_inbound as inbound
from gateway.providers.anthropic import AnthropicTranslator
from tests.emulators.anthropic_server import serve_anthropic
from tests.emulators.script import Emulator, Reply, ToolCall, serve
from tests.providers.helpers import feed_all, fixture_bytes, target

ARGS = {"city": "Oslo", "days": [1, 2]}


async def test_sdk_reads_the_emulator_json_and_stream() -> None:
    async with serve_anthropic() as emulator:
        client = anthropic.AsyncAnthropic(api_key="test-key", base_url=emulator.base_url, max_retries=0)
        emulator.push(Reply(text="Hi there.", tool_calls=[ToolCall("get_weather", ARGS)]))
        message = await client.messages.create(
            model="claude-emulated", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text" and message.content[0].text == "Hi there."
        assert message.content[1].type == "tool_use" and message.content[1].input == ARGS
        assert message.stop_reason == "tool_use"

        emulator.push(Reply(text="Streaming words.", tool_calls=[ToolCall("get_weather", ARGS)], fragment=3))
        async with client.messages.stream(
            model="claude-emulated", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = await stream.get_final_message()
        assert final.content[0].type == "text" and final.content[0].text == "Streaming words."
        assert final.content[1].type == "tool_use" and final.content[1].input == ARGS
        assert final.usage.output_tokens == 7

        emulator.push(Reply(error_status=529, error_message="Overloaded"))
        with pytest.raises(anthropic.InternalServerError) as caught:
            await client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert caught.value.status_code == 529
        await client.close()


class EncodedStream(Emulator):
    """Serves, as /v1/messages, the inbound encoder's rendering of recorded canonical chunks."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        super().__init__()
        self.chunks = chunks

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        return app

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append({"canonical": inbound.to_canonical(body)})
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        encoder = inbound.AnthropicEventEncoder(body["model"])
        for chunk in self.chunks:
            await response.write(encoder.feed(chunk))
        await response.write(encoder.close())
        await response.write_eof()
        return response


@asynccontextmanager
async def serve_encoded(chunks: list[dict[str, Any]]) -> AsyncIterator[EncodedStream]:
    async with serve(EncodedStream(chunks)) as server:
        assert isinstance(server, EncodedStream)
        yield server


async def test_sdk_reads_the_inbound_encoder_stream() -> None:
    chunks = feed_all(
        AnthropicTranslator().stream("chat.completions", target("anthropic"), "p"),
        [fixture_bytes("anthropic_tool_stream.sse")],
    )
    async with serve_encoded(chunks) as server:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
        async with client.messages.stream(
            model="claude-public",
            max_tokens=100,
            messages=[{"role": "user", "content": "weather?"}],
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
        ) as stream:
            final = await stream.get_final_message()
        await client.close()
        assert server.requests[0]["canonical"]["stream_options"] == {"include_usage": True}
    assert final.model == "claude-public"
    assert final.content[0].type == "text"
    assert final.content[0].text == "Okay, let's check the weather for San Francisco, CA:"
    assert final.content[1].type == "tool_use"
    assert final.content[1].input == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == 89 and final.usage.cache_read_input_tokens == 128
