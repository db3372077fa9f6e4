from __future__ import annotations

import builtins
from typing import Any

import orjson
import pytest

from gateway.errors import ServiceUnavailableError, UnsupportedParameterError, UpstreamStatusError
from gateway.providers.bedrock import BedrockTranslator
from gateway.providers.canonical import JSON_TOOL_NAME
from tests.emulators.bedrock_server import event, frame
from tests.providers.helpers import assemble, every_split, feed_all, fixture_bytes, fixture_json, target

T = BedrockTranslator()
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
SIGV4 = target(
    "bedrock",
    model=MODEL,
    api_key="secret-access-key",
    options={"region": "eu-west-1", "aws_access_key_id": "AKIATEST"},
)


def native(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(
        T.build_request("chat.completions", body, SIGV4, stream=False).body or b""
    )
    return result


def test_url_and_sigv4_headers() -> None:
    request = T.build_request(
        "chat.completions", {"messages": [{"role": "user", "content": "hi"}]}, SIGV4, stream=True
    )
    assert request.url == (
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    )
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIATEST/")
    assert "/eu-west-1/bedrock/aws4_request" in authorization
    assert "X-Amz-Date" in request.headers
    assert "secret-access-key" not in str(request.headers)


def test_session_token_and_bearer_api_key() -> None:
    options = {"region": "us-east-1", "aws_access_key_id": "AKIA", "aws_session_token": "tok"}
    with_token = target("bedrock", model="m", api_key="s", options=options)
    request = T.build_request(
        "chat.completions", {"messages": [{"role": "user", "content": "hi"}]}, with_token, stream=False
    )
    assert request.headers["X-Amz-Security-Token"] == "tok"
    bearer = target("bedrock", model="m", api_key="bedrock-key", options={"region": "us-east-1"})
    request = T.build_request(
        "chat.completions", {"messages": [{"role": "user", "content": "hi"}]}, bearer, stream=False
    )
    assert request.headers["authorization"] == "Bearer bedrock-key"


def test_missing_botocore_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_botocore(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("botocore"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_botocore)
    with pytest.raises(ServiceUnavailableError, match="bedrock' extra"):
        T.build_request(
            "chat.completions", {"messages": [{"role": "user", "content": "hi"}]}, SIGV4, stream=False
        )


def test_request_mapping() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Read this"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                    {
                        "type": "file",
                        "file": {
                            "filename": "q3 report.pdf",
                            "file_data": "data:application/pdf;base64,JVBE",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "Calling.",
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "found"},
        ],
        "max_completion_tokens": 50,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["STOP"],
        "user": "alice",
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
    }
    assert native(body) == {
        "system": [{"text": "Be brief."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "Read this"},
                    {"image": {"format": "jpeg", "source": {"bytes": "/9j/"}}},
                    {"document": {"format": "pdf", "name": "q3 report", "source": {"bytes": "JVBE"}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"text": "Calling."},
                    {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": 1}}},
                ],
            },
            {
                "role": "user",
                "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "found"}]}}],
            },
        ],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.5, "topP": 0.9, "stopSequences": ["STOP"]},
        "requestMetadata": {"user": "alice"},
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}],
            "toolChoice": {"auto": {}},
        },
    }


def test_json_schema_uses_forced_tool() -> None:
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object"}},
        },
    }
    assert native(body)["toolConfig"]["toolChoice"] == {"tool": {"name": JSON_TOOL_NAME}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"seed": 1}, "seed"),
        ({"tool_choice": "none"}, "tool_choice"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url",
        ),
    ],
)
def test_unsupported(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        native({"messages": [{"role": "user", "content": "x"}], **body})
    assert caught.value.param == param


def test_response_mapping() -> None:
    result = T.parse_response(
        "chat.completions", 200, fixture_bytes("bedrock_converse.json"), SIGV4, "claude"
    )
    choice = result.body["choices"][0]
    assert choice["message"]["content"] == "Checking the weather."
    assert choice["message"]["tool_calls"][0]["id"] == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert choice["finish_reason"] == "tool_calls"
    assert result.body["usage"] == {
        "prompt_tokens": 40,
        "completion_tokens": 20,
        "total_tokens": 60,
        "prompt_tokens_details": {"cached_tokens": 8},
    }
    assert result.usage is not None and result.usage.cache_write_tokens == 2


def recorded_stream() -> bytes:
    return b"".join(event(name, payload) for name, payload in fixture_json("bedrock_stream_events.json"))


def test_stream_translation() -> None:
    stream = T.stream("chat.completions", SIGV4, "claude")
    result = assemble(feed_all(stream, [recorded_stream()]))
    assert result.role_first
    assert result.content == "Checking now."
    assert result.tool_calls == {
        0: {"id": "tooluse_1", "name": "get_weather", "arguments": '{"city": "Seattle"}'}
    }
    assert result.finish_reason == "tool_calls"
    assert result.usage is not None and result.usage["prompt_tokens"] == 30


def test_stream_every_byte_split_gives_the_same_chunks() -> None:
    results = every_split(recorded_stream(), lambda: T.stream("chat.completions", SIGV4, "claude"))
    assert all(result == results[0] for result in results)


def test_stream_exception_frame_raises() -> None:
    headers = {
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    data = event("messageStart", {"role": "assistant"}) + frame(headers, b'{"message":"slow down"}')
    with pytest.raises(UpstreamStatusError) as caught:
        T.stream("chat.completions", SIGV4, "claude").feed(data)
    assert (caught.value.status, caught.value.type, caught.value.message) == (
        429,
        "rate_limit_error",
        "slow down",
    )


def test_stream_cut_before_message_stop() -> None:
    stream = T.stream("chat.completions", SIGV4, "claude")
    stream.feed(event("messageStart", {"role": "assistant"}))
    with pytest.raises(UpstreamStatusError):
        stream.close()


@pytest.mark.parametrize(
    ("status", "name", "openai_type"),
    [
        (400, "ValidationException", "invalid_request_error"),
        (403, "AccessDeniedException", "permission_error"),
        (429, "ThrottlingException", "rate_limit_error"),
        (500, "InternalServerException", "api_error"),
        (503, "ServiceUnavailableException", "api_error"),
    ],
)
def test_error_mapping(status: int, name: str, openai_type: str) -> None:
    headers = {"X-Amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    error = T.parse_error(status, headers, b'{"message":"bad"}', SIGV4)
    assert (error.status, error.type, error.code, error.message) == (status, openai_type, name, "bad")
