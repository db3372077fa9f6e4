from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import InvalidRequestError, UnsupportedParameterError, UpstreamStatusError
from gateway.providers.gemini import GeminiTranslator, VertexTranslator
from tests.providers.helpers import assemble, every_split, feed_all, fixture_bytes, target

T = GeminiTranslator()
V = VertexTranslator()
TARGET = target("gemini", model="gemini-2.5-flash")
VERTEX = target("vertex", model="gemini-2.5-pro", options={"project": "acme", "location": "europe-west4"})
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {}},
    },
}


def native(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(
        T.build_request("chat.completions", body, TARGET, stream=False).body or b""
    )
    return result


def test_ai_studio_urls_and_key_header() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    plain = T.build_request("chat.completions", body, TARGET, stream=False)
    streamed = T.build_request("chat.completions", body, TARGET, stream=True)
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    assert plain.url == base + ":generateContent"
    assert streamed.url == base + ":streamGenerateContent?alt=sse"
    assert plain.headers["x-goog-api-key"] == "test-key"
    assert "authorization" not in plain.headers


def test_vertex_urls_and_bearer_token() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    request = V.build_request("chat.completions", body, VERTEX, stream=True)
    assert request.url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/acme/locations/europe-west4/"
        "publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert request.headers["authorization"] == "Bearer test-key"
    assert "x-goog-api-key" not in request.headers
    global_target = target("vertex", model="m", options={"project": "acme", "location": "global"})
    assert V.build_request("chat.completions", body, global_target, stream=False).url.startswith(
        "https://aiplatform.googleapis.com/v1/projects/acme/locations/global/"
    )
    with pytest.raises(InvalidRequestError):
        V.build_request("chat.completions", body, target("vertex", model="m"), stream=False)


def test_request_mapping_full() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 5}'},
            {"role": "tool", "tool_call_id": "c1", "content": "plain text"},
        ],
        "temperature": 0.1,
        "top_p": 0.8,
        "max_tokens": 100,
        "stop": ["END"],
        "seed": 3,
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    assert native(body) == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather here?"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/sky.png"}},
                ],
            },
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 5}}},
                    {"functionResponse": {"name": "get_weather", "response": {"content": "plain text"}}},
                ],
            },
        ],
        "generationConfig": {
            "temperature": 0.1,
            "topP": 0.8,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
            "seed": 3,
        },
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather",
                        "parametersJsonSchema": {"type": "object", "properties": {}},
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    }


@pytest.mark.parametrize(("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")])
def test_tool_choice_modes(choice: str, mode: str) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tools": [TOOL], "tool_choice": choice}
    assert native(body)["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    assert native(body)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    json_object = {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}
    assert native(json_object)["generationConfig"] == {"responseMimeType": "application/json"}


def test_tool_result_without_matching_call_is_a_400() -> None:
    with pytest.raises(InvalidRequestError):
        native(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "nope", "content": "r"},
                ]
            }
        )


@pytest.mark.parametrize(
    ("field", "value"), [("n", 3), ("logprobs", True), ("user", "u1"), ("logit_bias", {"1": 2})]
)
def test_unsupported_fields(field: str, value: Any) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        native({"messages": [{"role": "user", "content": "x"}], field: value})
    assert caught.value.param == field


def test_response_text_function_call_and_usage() -> None:
    result = T.parse_response("chat.completions", 200, fixture_bytes("gemini_response.json"), TARGET, "flash")
    choice = result.body["choices"][0]
    assert choice["message"]["content"] == "I'll look that up."
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert call["id"].startswith("call_")
    assert choice["finish_reason"] == "tool_calls"
    # thinking tokens are billed as output; the prompt count already includes cached tokens
    assert result.body["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 25,
        "total_tokens": 145,
        "prompt_tokens_details": {"cached_tokens": 64},
    }


def test_blocked_prompt_is_content_filter() -> None:
    result = T.parse_response("chat.completions", 200, fixture_bytes("gemini_blocked.json"), TARGET, "flash")
    assert result.body["choices"][0]["finish_reason"] == "content_filter"
    assert result.body["choices"][0]["message"]["content"] == ""


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    answer = {
        "candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": reason}]
    }
    result = T.parse_response("chat.completions", 200, orjson.dumps(answer), TARGET, "p")
    assert result.body["choices"][0]["finish_reason"] == finish


def test_stream_chunks() -> None:
    stream = T.stream("chat.completions", TARGET, "flash")
    result = assemble(feed_all(stream, [fixture_bytes("gemini_stream.sse")]))
    assert result.role_first
    assert result.content == "The weather in Paris is"
    assert [(c["name"], orjson.loads(c["arguments"])) for c in result.tool_calls.values()] == [
        ("get_weather", {"location": "Paris", "unit": "celsius"})
    ]
    assert result.finish_reason == "tool_calls"
    assert result.usage == {
        "prompt_tokens": 20,
        "completion_tokens": 12,
        "total_tokens": 32,
        "prompt_tokens_details": {"cached_tokens": 8},
    }


def test_stream_every_byte_split_gives_the_same_chunks() -> None:
    data = fixture_bytes("gemini_stream.sse")
    results = every_split(data, lambda: T.stream("chat.completions", TARGET, "flash"))
    # tool call ids are generated per stream when Gemini sends none; compare without them
    for result in results:
        for choices, *_ in result:
            for call in ((choices or [{}])[0].get("delta") or {}).get("tool_calls") or []:
                call.pop("id", None)
    assert all(result == results[0] for result in results)


def test_stream_error_payload_and_truncation() -> None:
    status = {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}
    error = b"data: " + orjson.dumps({"error": status}) + b"\r\n\r\n"
    with pytest.raises(UpstreamStatusError) as caught:
        T.stream("chat.completions", TARGET, "p").feed(error)
    assert (caught.value.status, caught.value.type) == (429, "rate_limit_error")
    stream = T.stream("chat.completions", TARGET, "p")
    data = fixture_bytes("gemini_stream.sse")
    stream.feed(data[: data.index(b"data:", 10)])
    with pytest.raises(UpstreamStatusError):
        stream.close()


@pytest.mark.parametrize(
    ("status", "name", "openai_type"),
    [
        (400, "INVALID_ARGUMENT", "invalid_request_error"),
        (403, "PERMISSION_DENIED", "permission_error"),
        (404, "NOT_FOUND", "not_found_error"),
        (429, "RESOURCE_EXHAUSTED", "rate_limit_error"),
        (500, "INTERNAL", "api_error"),
        (503, "UNAVAILABLE", "api_error"),
    ],
)
def test_error_mapping(status: int, name: str, openai_type: str) -> None:
    body = orjson.dumps({"error": {"code": status, "message": "nope", "status": name}})
    error = T.parse_error(status, {}, body, TARGET)
    assert (error.status, error.type, error.code, error.message) == (status, openai_type, name, "nope")


def test_embeddings_requests_and_responses() -> None:
    single = T.build_request("embeddings", {"input": "hello", "dimensions": 4}, TARGET, stream=False)
    assert single.url.endswith("/models/gemini-2.5-flash:embedContent")
    assert orjson.loads(single.body or b"") == {
        "content": {"parts": [{"text": "hello"}]},
        "outputDimensionality": 4,
    }
    batch = T.build_request("embeddings", {"input": ["a", "b"]}, TARGET, stream=False)
    assert batch.url.endswith(":batchEmbedContents")
    assert orjson.loads(batch.body or b"")["requests"][1] == {
        "model": "models/gemini-2.5-flash",
        "content": {"parts": [{"text": "b"}]},
    }
    answer = orjson.dumps({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]})
    result = T.parse_response("embeddings", 200, answer, TARGET, "embed")
    assert result.body["object"] == "list" and result.body["model"] == "embed"
    assert [d["embedding"] for d in result.body["data"]] == [[0.1, 0.2], [0.3, 0.4]]
    assert [d["index"] for d in result.body["data"]] == [0, 1]
    assert result.usage is None  # AI Studio reports no counts: the pipeline estimates


def test_vertex_embeddings_use_predict_and_report_tokens() -> None:
    request = V.build_request("embeddings", {"input": ["a b"], "dimensions": 2}, VERTEX, stream=False)
    assert request.url.endswith("/publishers/google/models/gemini-2.5-pro:predict")
    assert orjson.loads(request.body or b"") == {
        "instances": [{"content": "a b"}],
        "parameters": {"outputDimensionality": 2},
    }
    answer = orjson.dumps(
        {"predictions": [{"embeddings": {"values": [1.0, 0.0], "statistics": {"token_count": 2}}}]}
    )
    result = V.parse_response("embeddings", 200, answer, VERTEX, "embed")
    assert result.body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


@pytest.mark.parametrize(
    ("body", "param"),
    [({"input": [[1, 2]]}, "input"), ({"input": "x", "encoding_format": "base64"}, "encoding_format")],
)
def test_embeddings_unsupported(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        T.build_request("embeddings", body, TARGET, stream=False)
    assert caught.value.param == param
