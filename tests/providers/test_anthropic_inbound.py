from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import RateLimitError, UnsupportedParameterError, UpstreamStatusError
from gateway.providers import anthropic_inbound as inbound
from gateway.providers.anthropic import AnthropicTranslator
from gateway.providers.sse import SSEDecoder
from gateway.types import Usage
from tests.providers.helpers import assemble, feed_all, fixture_bytes, target


def test_request_to_canonical() -> None:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found it"},
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.7,
        "metadata": {"user_id": "u-1"},
        "tools": [{"name": "lookup", "description": "Search", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stream": True,
    }
    assert inbound.to_canonical(request) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q":"x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "found it"},
            {"role": "user", "content": "thanks"},
        ],
        "stop": ["END"],
        "temperature": 0.3,
        "top_p": 0.7,
        "user": "u-1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {"name": "lookup", "parameters": {"type": "object"}, "description": "Search"},
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tool_choice": choice,
    }
    assert inbound.to_canonical(body)["tool_choice"] == expected


@pytest.mark.parametrize(
    ("field", "value"), [("top_k", 5), ("thinking", {"type": "enabled", "budget_tokens": 1024})]
)
def test_unsupported_inbound_fields(field: str, value: Any) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        inbound.to_canonical(
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], field: value}
        )
    assert caught.value.param == field


def test_response_from_canonical() -> None:
    canonical = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sure.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 9,
            "total_tokens": 109,
            "prompt_tokens_details": {"cached_tokens": 40},
        },
    }
    message = inbound.from_canonical(canonical, "claude-public")
    assert message["id"].startswith("msg_")
    assert (message["type"], message["role"], message["model"]) == ("message", "assistant", "claude-public")
    assert message["content"] == [
        {"type": "text", "text": "Sure."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 60,
        "output_tokens": 9,
        "cache_read_input_tokens": 40,
        "cache_creation_input_tokens": 0,
    }
    with_write = inbound.from_canonical(
        canonical, "p", Usage(prompt_tokens=100, completion_tokens=9, cached_tokens=40, cache_write_tokens=10)
    )
    assert (
        with_write["usage"]["input_tokens"] == 50 and with_write["usage"]["cache_creation_input_tokens"] == 10
    )


@pytest.mark.parametrize(
    ("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")]
)
def test_stop_reasons(finish: str, stop: str) -> None:
    canonical = {"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert inbound.from_canonical(canonical, "p")["stop_reason"] == stop


def events_of(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    decoder = SSEDecoder()
    return [(e.event, orjson.loads(e.data)) for e in decoder.feed(data) + decoder.close()]


def test_encoder_event_sequence_and_round_trip() -> None:
    # Anthropic SSE → canonical chunks → Anthropic SSE → canonical chunks: nothing lost.
    native = fixture_bytes("anthropic_tool_stream.sse")
    chunks = feed_all(AnthropicTranslator().stream("chat.completions", target("anthropic"), "p"), [native])
    encoder = inbound.AnthropicEventEncoder("claude-public")
    encoded = b"".join(encoder.feed(chunk) for chunk in chunks) + encoder.close()
    names = [name for name, _ in events_of(encoded)]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    events = events_of(encoded)
    assert all(payload["type"] == name for name, payload in events)
    assert events[5][1]["content_block"]["type"] == "tool_use" and events[5][1]["index"] == 1
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"]["cache_read_input_tokens"] == 128
    again = assemble(
        feed_all(AnthropicTranslator().stream("chat.completions", target("anthropic"), "p"), [encoded])
    )
    first = assemble(chunks)
    assert (again.content, again.finish_reason, again.usage) == (
        first.content,
        first.finish_reason,
        first.usage,
    )
    assert [(c["name"], c["arguments"]) for c in again.tool_calls.values()] == [
        (c["name"], c["arguments"]) for c in first.tool_calls.values()
    ]


def test_encoder_with_no_chunks_still_sends_a_complete_message() -> None:
    names = [name for name, _ in events_of(inbound.AnthropicEventEncoder("p").close())]
    assert names == ["message_start", "message_delta", "message_stop"]


def test_errors_in_anthropic_shape() -> None:
    assert inbound.error_body(RateLimitError("slow down")) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
    overloaded = UpstreamStatusError("Overloaded", status=529)
    assert events_of(inbound.error_event(overloaded)) == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    ]
