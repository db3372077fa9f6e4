from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import InvalidRequestError, UnsupportedParameterError, UpstreamStatusError
from gateway.providers.anthropic import AnthropicTranslator
from gateway.providers.canonical import JSON_TOOL_NAME
from tests.providers.helpers import assemble, every_split, feed_all, fixture_bytes, split_at, target

T = AnthropicTranslator()
TARGET = target("anthropic", "https://api.anthropic.test", model="claude-sonnet-4-5")
PNG = "iVBORw0KGgo="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def native(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    request = T.build_request("chat.completions", body, TARGET, stream=stream)
    result: dict[str, Any] = orjson.loads(request.body or b"")
    return result


def test_request_line_headers_and_auth() -> None:
    request = T.build_request(
        "chat.completions", {"messages": [{"role": "user", "content": "hi"}]}, TARGET, stream=False
    )
    assert (request.method, request.url) == ("POST", "https://api.anthropic.test/v1/messages")
    assert request.headers["x-api-key"] == "test-key"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert native({"messages": [{"role": "user", "content": "hi"}]}, stream=True)["stream"] is True


REQUEST_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "system messages become system blocks, default max_tokens",
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]},
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        },
    ),
    (
        "sampling, stop, user, max_completion_tokens wins",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "user": "u-42",
            "max_tokens": 10,
            "max_completion_tokens": 20,
        },
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 20,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-42"},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        },
    ),
    (
        "images as base64 and URL, PDF documents",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {
                            "type": "file",
                            "file": {
                                "filename": "a.pdf",
                                "file_data": "data:application/pdf;base64,JVBERi0=",
                            },
                        },
                    ],
                }
            ]
        },
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                        },
                    ],
                }
            ],
        },
    ),
    (
        "tool calls and consecutive tool results merge into one user turn",
        {
            "messages": [
                {"role": "user", "content": "weather in Oslo and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "5C"},
                {"role": "tool", "tool_call_id": "c2", "content": "20C"},
            ],
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        },
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "weather in Oslo and Rome?"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Oslo"}},
                        {"type": "tool_use", "id": "c2", "name": "get_weather", "input": {"city": "Rome"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "c1",
                            "content": [{"type": "text", "text": "5C"}],
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "c2",
                            "content": [{"type": "text", "text": "20C"}],
                        },
                    ],
                },
            ],
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        },
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_request_mapping(name: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert native(body) == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL], "tool_choice": choice}
    assert native(body)["tool_choice"] == expected


def test_json_schema_response_format_forces_a_tool_and_comes_back_as_content() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    body = {
        "messages": [{"role": "user", "content": "2+2?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "sum", "schema": schema}},
    }
    request = native(body)
    assert request["tools"][0]["input_schema"] == schema
    assert request["tool_choice"] == {"type": "tool", "name": JSON_TOOL_NAME}
    answer = {
        "id": "msg_1",
        "content": [{"type": "tool_use", "id": "t", "name": JSON_TOOL_NAME, "input": {"answer": 4}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    result = T.parse_response("chat.completions", 200, orjson.dumps(answer), TARGET, "public")
    message = result.body["choices"][0]["message"]
    assert orjson.loads(message["content"]) == {"answer": 4}
    assert "tool_calls" not in message
    assert result.body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 2), ("logprobs", True), ("presence_penalty", 0.5), ("seed", 7), ("audio", {"voice": "x"})],
)
def test_unsupported_fields_are_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        native({"messages": [{"role": "user", "content": "hi"}], field: value})
    assert caught.value.param == field
    assert caught.value.status == 400


def test_neutral_values_of_unsupported_fields_pass() -> None:
    assert (
        native({"messages": [{"role": "user", "content": "hi"}], "n": 1, "logprobs": False})["max_tokens"]
        == 4096
    )


def test_audio_parts_and_embeddings_are_refused() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}
    with pytest.raises(UnsupportedParameterError):
        native({"messages": [{"role": "user", "content": [audio]}]})
    with pytest.raises(UnsupportedParameterError):
        T.build_request("embeddings", {"input": "x"}, TARGET, stream=False)
    with pytest.raises(InvalidRequestError):
        native({"messages": []})


def test_response_with_tool_use_and_cache_usage() -> None:
    result = T.parse_response(
        "chat.completions", 200, fixture_bytes("anthropic_message.json"), TARGET, "smart"
    )
    body = result.body
    assert body["object"] == "chat.completion"
    assert body["model"] == "smart"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check the weather."
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}
    # OpenAI counts cached prompt tokens inside prompt_tokens; Anthropic reports them apart.
    assert body["usage"] == {
        "prompt_tokens": 2572,
        "completion_tokens": 89,
        "total_tokens": 2661,
        "prompt_tokens_details": {"cached_tokens": 2000},
    }
    assert result.usage is not None
    assert (result.usage.cached_tokens, result.usage.cache_write_tokens) == (2000, 100)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    answer = {"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason, "usage": {}}
    result = T.parse_response("chat.completions", 200, orjson.dumps(answer), TARGET, "p")
    assert result.body["choices"][0]["finish_reason"] == finish


def test_stream_translates_text_tool_call_finish_and_usage() -> None:
    stream = T.stream("chat.completions", TARGET, "smart")
    chunks = feed_all(stream, [fixture_bytes("anthropic_tool_stream.sse")])
    result = assemble(chunks)
    assert result.role_first
    assert result.content == "Okay, let's check the weather for San Francisco, CA:"
    assert result.tool_calls == {
        0: {
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "arguments": '{"location": "San Francisco, CA", "unit": "fahrenheit"}',
        }
    }
    assert result.finish_reason == "tool_calls"
    assert result.usage == {
        "prompt_tokens": 600,
        "completion_tokens": 89,
        "total_tokens": 689,
        "prompt_tokens_details": {"cached_tokens": 128},
    }
    assert chunks[-1]["usage"] and chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(chunk["model"] == "smart" for chunk in chunks)
    assert stream.finish_reason == "tool_calls" and stream.usage is not None


def test_stream_every_byte_split_gives_the_same_chunks() -> None:
    data = fixture_bytes("anthropic_tool_stream.sse")
    results = every_split(data, lambda: T.stream("chat.completions", TARGET, "smart"))
    assert all(result == results[0] for result in results)
    byte_by_byte = feed_all(
        T.stream("chat.completions", TARGET, "smart"), split_at(data, *range(1, len(data)))
    )
    assert (
        assemble(byte_by_byte).tool_calls[0]["arguments"]
        == '{"location": "San Francisco, CA", "unit": "fahrenheit"}'
    )


def test_stream_error_event_raises_openai_style_error() -> None:
    stream = T.stream("chat.completions", TARGET, "smart")
    with pytest.raises(UpstreamStatusError) as caught:
        stream.feed(fixture_bytes("anthropic_error_stream.sse"))
    assert caught.value.status == 529
    assert caught.value.retryable
    assert caught.value.body()["error"]["message"] == "Overloaded"


def test_stream_cut_before_message_stop_is_an_error() -> None:
    data = fixture_bytes("anthropic_tool_stream.sse")
    stream = T.stream("chat.completions", TARGET, "smart")
    stream.feed(data[: data.index(b"event: message_delta")])
    with pytest.raises(UpstreamStatusError) as caught:
        stream.close()
    assert caught.value.status == 502


@pytest.mark.parametrize(
    ("status", "native_type", "openai_type"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (403, "permission_error", "permission_error"),
        (404, "not_found_error", "not_found_error"),
        (429, "rate_limit_error", "rate_limit_error"),
        (500, "api_error", "api_error"),
        (529, "overloaded_error", "api_error"),
    ],
)
def test_error_mapping(status: int, native_type: str, openai_type: str) -> None:
    body = orjson.dumps(
        {"type": "error", "error": {"type": native_type, "message": "boom"}, "request_id": "req_1"}
    )
    error = T.parse_error(status, {"retry-after": "3"}, body, TARGET)
    assert (error.status, error.type, error.code, error.message) == (status, openai_type, native_type, "boom")
    assert error.headers == {"retry-after": "3"}
    assert error.retryable == (status in (429, 500, 529))


def test_error_with_unparseable_body_keeps_the_status() -> None:
    error = T.parse_error(502, {}, b"<html>bad gateway</html>", TARGET)
    assert error.status == 502 and error.type == "api_error"
