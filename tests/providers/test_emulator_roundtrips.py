"""Translators against the local provider emulators over real HTTP (aiohttp client)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from gateway.errors import UpstreamStatusError
from gateway.providers.anthropic import AnthropicTranslator
from gateway.providers.base import Endpoint, Target, Translator
from gateway.providers.bedrock import BedrockTranslator
from gateway.providers.canonical import JSON_TOOL_NAME
from gateway.providers.gemini import GeminiTranslator, VertexTranslator
from tests.emulators.anthropic_server import serve_anthropic
from tests.emulators.bedrock_server import serve_bedrock
from tests.emulators.gemini_server import serve_gemini
from tests.emulators.script import Reply, ToolCall
from tests.providers.helpers import Assembled, assemble, target

CHAT: dict[str, Any] = {
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}],
    "max_tokens": 64,
}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
ARGS = {"city": "Oslo", "days": [1, 2, 3], "note": 'snow \u2744 "quoted"'}


def wire_url(url: str) -> URL:
    # Sent exactly as built: re-quoting would turn the model id's %3A into ':' and break SigV4.
    return URL(url, encoded=True)


async def call(
    translator: Translator, tgt: Target, body: dict[str, Any], endpoint: Endpoint = "chat.completions"
) -> dict[str, Any]:
    request = translator.build_request(endpoint, body, tgt, stream=False)
    async with aiohttp.ClientSession() as session:
        async with session.request(
            request.method, wire_url(request.url), headers=request.headers, data=request.body
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                raise translator.parse_error(
                    response.status, {k.lower(): v for k, v in response.headers.items()}, raw, tgt
                )
            return translator.parse_response(endpoint, response.status, raw, tgt, "public-model").body


async def call_stream(translator: Translator, tgt: Target, body: dict[str, Any]) -> Assembled:
    request = translator.build_request("chat.completions", body, tgt, stream=True)
    stream = translator.stream("chat.completions", tgt, "public-model")
    chunks: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        async with session.request(
            request.method, wire_url(request.url), headers=request.headers, data=request.body
        ) as response:
            if response.status >= 400:
                raw = await response.read()
                raise translator.parse_error(response.status, dict(response.headers), raw, tgt)
            async for piece in response.content.iter_chunked(7):  # small reads: splits land anywhere
                chunks.extend(stream.feed(piece))
    chunks.extend(stream.close())
    return assemble(chunks)


# --------------------------------------------------------------------------- Anthropic


async def test_anthropic_text_and_tool_call_round_trip() -> None:
    async with serve_anthropic() as emulator:
        tgt = target("anthropic", emulator.base_url, model="claude-sonnet-4-5")
        emulator.push(
            Reply(text="Cold.", tool_calls=[ToolCall("get_weather", ARGS, id="toolu_1")], cache_read_tokens=5)
        )
        body = await call(AnthropicTranslator(), tgt, CHAT | {"tools": TOOLS})
        sent = emulator.requests[-1]
        assert sent["headers"]["x-api-key"] == "test-key"
        assert sent["body"]["system"] == [{"type": "text", "text": "Be brief."}]
    message = body["choices"][0]["message"]
    assert message["content"] == "Cold."
    assert orjson.loads(message["tool_calls"][0]["function"]["arguments"]) == ARGS
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert (
        body["usage"]["prompt_tokens"] == 16 and body["usage"]["prompt_tokens_details"]["cached_tokens"] == 5
    )


async def test_anthropic_stream_with_tools_and_json_answer() -> None:
    async with serve_anthropic() as emulator:
        tgt = target("anthropic", emulator.base_url)
        emulator.push(
            Reply(
                text="Let me check.",
                tool_calls=[ToolCall("get_weather", ARGS), ToolCall("get_weather", {"city": "Rome"})],
            )
        )
        result = await call_stream(AnthropicTranslator(), tgt, CHAT | {"tools": TOOLS})
        assert result.role_first and result.content == "Let me check."
        assert [orjson.loads(c["arguments"]) for c in result.tool_calls.values()] == [ARGS, {"city": "Rome"}]
        assert result.finish_reason == "tool_calls" and result.usage is not None

        emulator.push(Reply(text="", tool_calls=[ToolCall(JSON_TOOL_NAME, {"answer": 42})]))
        schema_body = CHAT | {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {"type": "object"}},
            }
        }
        answer = await call_stream(AnthropicTranslator(), tgt, schema_body)
        assert orjson.loads(answer.content) == {"answer": 42} and answer.tool_calls == {}
        assert answer.finish_reason == "stop"


@pytest.mark.parametrize(
    ("status", "openai_type"), [(429, "rate_limit_error"), (529, "api_error"), (400, "invalid_request_error")]
)
async def test_anthropic_http_errors(status: int, openai_type: str) -> None:
    async with serve_anthropic() as emulator:
        emulator.push(Reply(error_status=status, error_message="scripted", retry_after="2"))
        with pytest.raises(UpstreamStatusError) as caught:
            await call(AnthropicTranslator(), target("anthropic", emulator.base_url), CHAT)
    assert (caught.value.status, caught.value.type, caught.value.message) == (status, openai_type, "scripted")
    assert caught.value.headers.get("retry-after") == "2"


async def test_anthropic_wrong_key_and_stream_failures() -> None:
    async with serve_anthropic() as emulator:
        with pytest.raises(UpstreamStatusError) as caught:
            await call(AnthropicTranslator(), target("anthropic", emulator.base_url, api_key="wrong"), CHAT)
        assert (caught.value.status, caught.value.type) == (401, "authentication_error")
        tgt = target("anthropic", emulator.base_url)
        emulator.push(Reply(text="a long answer", stream_error_after=3))
        with pytest.raises(UpstreamStatusError) as caught:
            await call_stream(AnthropicTranslator(), tgt, CHAT)
        assert caught.value.status == 529
        emulator.push(Reply(text="a long answer", truncate_after=4))
        with pytest.raises(UpstreamStatusError, match="before message_stop"):
            await call_stream(AnthropicTranslator(), tgt, CHAT)


async def test_anthropic_tool_history_is_accepted_by_the_alternation_rule() -> None:
    history = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "5C"},
            {"role": "tool", "tool_call_id": "b", "content": "20C"},
            {"role": "user", "content": "Which is warmer?"},
        ],
        "tools": TOOLS,
    }
    async with serve_anthropic() as emulator:
        body = await call(AnthropicTranslator(), target("anthropic", emulator.base_url), history)
        assert [m["role"] for m in emulator.requests[-1]["body"]["messages"]] == ["user", "assistant", "user"]
    assert body["choices"][0]["message"]["content"] == "Hello from the emulator."


# --------------------------------------------------------------------------- Gemini / Vertex


async def test_gemini_chat_stream_and_errors() -> None:
    async with serve_gemini() as emulator:
        tgt = target("gemini", emulator.base_url, model="gemini-2.5-flash")
        emulator.push(Reply(text="Sunny.", tool_calls=[ToolCall("get_weather", ARGS)]))
        body = await call(GeminiTranslator(), tgt, CHAT | {"tools": TOOLS})
        assert emulator.requests[-1]["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert body["choices"][0]["message"]["content"] == "Sunny."
        assert orjson.loads(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == ARGS

        emulator.push(
            Reply(
                text="It is sunny in Oslo today.",
                tool_calls=[ToolCall("get_weather", ARGS)],
                cache_read_tokens=3,
            )
        )
        result = await call_stream(GeminiTranslator(), tgt, CHAT | {"tools": TOOLS})
        assert emulator.requests[-1]["query"] == {"alt": "sse"}
        assert result.content == "It is sunny in Oslo today."
        assert [orjson.loads(c["arguments"]) for c in result.tool_calls.values()] == [ARGS]
        assert result.finish_reason == "tool_calls"
        assert result.usage is not None and result.usage["prompt_tokens_details"] == {"cached_tokens": 3}

        emulator.push(Reply(prompt_blocked=True))
        blocked = await call_stream(GeminiTranslator(), tgt, CHAT)
        assert blocked.finish_reason == "content_filter"

        emulator.push(Reply(error_status=429, error_message="Quota exceeded"))
        with pytest.raises(UpstreamStatusError) as caught:
            await call(GeminiTranslator(), tgt, CHAT)
        assert (caught.value.status, caught.value.type, caught.value.code) == (
            429,
            "rate_limit_error",
            "RESOURCE_EXHAUSTED",
        )

        emulator.push(Reply(text="partial answer here", stream_error_after=1))
        with pytest.raises(UpstreamStatusError) as caught:
            await call_stream(GeminiTranslator(), tgt, CHAT)
        assert caught.value.status == 503


async def test_gemini_embeddings() -> None:
    async with serve_gemini() as emulator:
        tgt = target("gemini", emulator.base_url, model="gemini-embedding-001")
        one = await call(GeminiTranslator(), tgt, {"input": "hello", "dimensions": 4}, "embeddings")
        many = await call(
            GeminiTranslator(), tgt, {"input": ["hello", "world"], "dimensions": 4}, "embeddings"
        )
    assert len(one["data"]) == 1 and len(one["data"][0]["embedding"]) == 4
    assert [d["index"] for d in many["data"]] == [0, 1]
    assert many["data"][0]["embedding"] == one["data"][0]["embedding"] != many["data"][1]["embedding"]


async def test_vertex_chat_and_predict_embeddings() -> None:
    async with serve_gemini(api_key="ya29.token") as emulator:
        options = {"project": "acme", "location": "us-central1"}
        tgt = target(
            "vertex", emulator.base_url, model="gemini-2.5-pro", api_key="ya29.token", options=options
        )
        body = await call(VertexTranslator(), tgt, CHAT)
        assert emulator.requests[-1]["path"] == (
            "/v1/projects/acme/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        )
        assert body["choices"][0]["finish_reason"] == "stop"
        embedded = await call(VertexTranslator(), tgt, {"input": ["a b c"]}, "embeddings")
        assert embedded["usage"]["prompt_tokens"] == 3
        with pytest.raises(UpstreamStatusError) as caught:
            await call(
                VertexTranslator(), target("vertex", emulator.base_url, api_key="bad", options=options), CHAT
            )
        assert (caught.value.status, caught.value.type) == (401, "authentication_error")


# --------------------------------------------------------------------------- Bedrock


def bedrock_target(base_url: str, secret: str = "emulator-secret") -> Target:
    options = {"region": "us-east-1", "aws_access_key_id": "AKIDEMULATOR"}
    return target(
        "bedrock", base_url, model="anthropic.claude-3-haiku-20240307-v1:0", api_key=secret, options=options
    )


async def test_bedrock_sigv4_converse_and_stream() -> None:
    async with serve_bedrock() as emulator:
        tgt = bedrock_target(emulator.base_url)
        emulator.push(Reply(text="Chilly.", tool_calls=[ToolCall("get_weather", ARGS)]))
        body = await call(BedrockTranslator(), tgt, CHAT | {"tools": TOOLS})
        assert emulator.requests[-1]["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        assert body["choices"][0]["message"]["content"] == "Chilly."
        assert orjson.loads(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == ARGS

        emulator.push(
            Reply(
                text="Let me see.",
                tool_calls=[ToolCall("get_weather", ARGS), ToolCall("get_weather", {"c": 2})],
            )
        )
        result = await call_stream(BedrockTranslator(), tgt, CHAT | {"tools": TOOLS})
        assert result.content == "Let me see."
        assert [orjson.loads(c["arguments"]) for c in result.tool_calls.values()] == [ARGS, {"c": 2}]
        assert result.finish_reason == "tool_calls" and result.usage is not None


async def test_bedrock_bad_signature_bearer_key_and_stream_exception() -> None:
    async with serve_bedrock() as emulator:
        with pytest.raises(UpstreamStatusError) as caught:
            await call(BedrockTranslator(), bedrock_target(emulator.base_url, secret="wrong"), CHAT)
        assert (caught.value.status, caught.value.type) == (403, "permission_error")

        bearer = target(
            "bedrock",
            emulator.base_url,
            model="m",
            api_key="bedrock-api-key",
            options={"region": "us-east-1"},
        )
        assert (await call(BedrockTranslator(), bearer, CHAT))["choices"][0]["message"][
            "content"
        ] == "Hello from the emulator."

        emulator.push(Reply(text="some words", stream_error_after=2))
        with pytest.raises(UpstreamStatusError) as caught:
            await call_stream(BedrockTranslator(), bedrock_target(emulator.base_url), CHAT)
        assert (caught.value.status, caught.value.type) == (429, "rate_limit_error")

        emulator.push(Reply(error_status=429, retry_after="1"))
        with pytest.raises(UpstreamStatusError) as caught:
            await call(BedrockTranslator(), bedrock_target(emulator.base_url), CHAT)
        assert caught.value.code == "ThrottlingException" and caught.value.retryable
