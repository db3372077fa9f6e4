"""Property tests: supported canonical requests survive translation; unsupported ones are refused;
streams of any content, cut anywhere, reassemble to exactly what the provider sent."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import UnsupportedParameterError
from gateway.providers import anthropic_inbound as inbound
from gateway.providers.anthropic import AnthropicTranslator, to_native
from gateway.providers.base import StreamTranslator
from gateway.providers.bedrock import BedrockTranslator
from gateway.providers.gemini import GeminiTranslator
from tests.emulators.anthropic_server import AnthropicEmulator
from tests.emulators.bedrock_server import BedrockEmulator
from tests.emulators.gemini_server import GeminiEmulator
from tests.emulators.script import Reply, ToolCall
from tests.providers.helpers import assemble, feed_all, split_at, target

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(min_size=1, max_size=40)
name = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
arguments = st.dictionaries(name, json_value, max_size=4)


@st.composite
def tool_turn(draw: st.DrawFn, tools: list[str]) -> list[dict[str, Any]]:
    """An assistant turn calling tools, followed by one tool message per call."""
    count = draw(st.integers(1, 3))
    calls = [
        {
            "id": f"call_{draw(name)}_{i}",
            "type": "function",
            "function": {
                "name": draw(st.sampled_from(tools)),
                "arguments": orjson.dumps(draw(arguments)).decode(),
            },
        }
        for i in range(count)
    ]
    assistant: dict[str, Any] = {"role": "assistant", "content": draw(st.none() | text), "tool_calls": calls}
    return [assistant] + [{"role": "tool", "tool_call_id": c["id"], "content": draw(text)} for c in calls]


@st.composite
def canonical_request(draw: st.DrawFn) -> dict[str, Any]:
    tool_names = draw(st.lists(name, min_size=1, max_size=3, unique=True))
    with_tools = draw(st.booleans())
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(text)})
        if with_tools and draw(st.booleans()):
            messages.extend(draw(tool_turn(tool_names)))
            messages.append({"role": "assistant", "content": draw(text)})
        else:
            messages.append({"role": "assistant", "content": draw(text)})
    messages.append({"role": "user", "content": draw(text)})
    body: dict[str, Any] = {"model": "public", "messages": messages}
    optional = {
        "temperature": st.floats(0, 1, allow_nan=False),
        "top_p": st.floats(0, 1, allow_nan=False),
        "max_tokens": st.integers(1, 8192),
        "stop": st.lists(text, min_size=1, max_size=3),
        "user": text,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    if with_tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": n, "description": draw(text), "parameters": {"type": "object"}},
            }
            for n in tool_names
        ]
        body["tool_choice"] = draw(
            st.sampled_from(["auto", "none", "required"])
            | st.sampled_from(tool_names).map(lambda n: {"type": "function", "function": {"name": n}})
        )
        if draw(st.booleans()):
            body["parallel_tool_calls"] = False
    return body


def normalized(body: dict[str, Any]) -> dict[str, Any]:
    """The supported fields, in one spelling (content None and "" are the same; stop is a list)."""
    messages = []
    for message in body["messages"]:
        entry = {"role": message["role"], "content": message.get("content") or None}
        if message.get("tool_calls"):
            entry["tool_calls"] = [
                (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
                for c in message["tool_calls"]
            ]
        if message["role"] == "tool":
            entry["tool_call_id"] = message["tool_call_id"]
        messages.append(entry)
    out = {
        k: body[k]
        for k in ("temperature", "top_p", "max_tokens", "stop", "user", "tool_choice", "parallel_tool_calls")
        if k in body
    }
    out["messages"] = messages
    out["tools"] = [(t["function"]["name"], t["function"].get("description")) for t in body.get("tools", [])]
    return out


@SETTINGS
@given(canonical_request())
def test_anthropic_request_survives_the_round_trip(body: dict[str, Any]) -> None:
    back = inbound.to_canonical(to_native(body, "public"))
    expected = normalized(body)
    if "max_tokens" not in body:
        expected["max_tokens"] = 4096  # the documented default when the client sends none
    assert normalized(back) == expected


@SETTINGS
@given(canonical_request())
def test_gemini_and_bedrock_keep_every_text_and_argument(body: dict[str, Any]) -> None:
    texts = []
    for message in body["messages"]:
        if isinstance(message.get("content"), str):
            texts.append(message["content"])
        for call in message.get("tool_calls") or []:
            texts.append(orjson.dumps(orjson.loads(call["function"]["arguments"])).decode())
    body.pop("user", None)  # Gemini cannot honour it (tested to be refused elsewhere)
    body.pop("parallel_tool_calls", None)  # neither can turn parallel calls off
    if body.get("tool_choice") == "none":
        body.pop("tool_choice")  # Converse has no 'none' (tested to be refused elsewhere)
    for translator, provider in ((GeminiTranslator(), "gemini"), (BedrockTranslator(), "bedrock")):
        options = {"region": "us-east-1"} if provider == "bedrock" else {}
        request = translator.build_request(
            "chat.completions", body, target(provider, options=options), stream=False
        )
        sent = (request.body or b"").decode()
        decoded = orjson.dumps(orjson.loads(sent)).decode()
        for piece in texts:
            assert orjson.dumps(piece).decode()[1:-1] in decoded or piece in decoded


UNSUPPORTED = {
    "anthropic": [
        "n",
        "logprobs",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "audio",
        "modalities",
    ],
    "gemini": ["n", "logprobs", "user", "logit_bias", "audio", "modalities"],
    "bedrock": ["n", "logprobs", "seed", "presence_penalty", "logit_bias", "audio", "modalities"],
}
TRANSLATORS = {
    "anthropic": AnthropicTranslator(),
    "gemini": GeminiTranslator(),
    "bedrock": BedrockTranslator(),
}


@SETTINGS
@given(
    st.sampled_from(sorted(UNSUPPORTED)).flatmap(
        lambda p: st.tuples(st.just(p), st.sampled_from(UNSUPPORTED[p]))
    ),
    st.integers(2, 5) | st.just(True) | st.just({"x": 1}),
)
def test_unsupported_fields_are_refused(provider_and_field: tuple[str, str], value: Any) -> None:
    provider, field = provider_and_field
    body = {"model": "public", "messages": [{"role": "user", "content": "hi"}], field: value}
    options = {"region": "us-east-1"} if provider == "bedrock" else {}
    with pytest.raises(UnsupportedParameterError) as caught:
        TRANSLATORS[provider].build_request(
            "chat.completions", body, target(provider, options=options), stream=False
        )
    assert caught.value.param == field and caught.value.status == 400


def native_stream(provider: str, reply: Reply) -> bytes:
    if provider == "anthropic":
        return b"".join(AnthropicEmulator().events({"model": "m"}, reply))
    if provider == "gemini":
        return b"".join(GeminiEmulator().events(reply))
    return b"".join(BedrockEmulator().events(reply))


def stream_of(provider: str) -> StreamTranslator:
    options = {"region": "us-east-1"} if provider == "bedrock" else {}
    return TRANSLATORS[provider].stream("chat.completions", target(provider, options=options), "p")


@SETTINGS
@given(
    st.sampled_from(sorted(TRANSLATORS)),
    st.text(max_size=60),
    st.lists(st.tuples(name, arguments), max_size=3),
    st.integers(1, 9),
    st.lists(st.integers(0, 10_000), max_size=6),
)
def test_streams_cut_anywhere_reassemble_exactly(
    provider: str, content: str, calls: list[tuple[str, dict[str, Any]]], fragment: int, cuts: list[int]
) -> None:
    reply = Reply(text=content, tool_calls=[ToolCall(n, a) for n, a in calls], fragment=fragment)
    data = native_stream(provider, reply)
    result = assemble(feed_all(stream_of(provider), split_at(data, *(c % (len(data) + 1) for c in cuts))))
    assert result.role_first
    assert result.content == content
    assert [(c["name"], orjson.loads(c["arguments"])) for c in result.tool_calls.values()] == calls
    assert result.finish_reason == ("tool_calls" if calls else "stop")
    assert result.usage is not None and result.usage["completion_tokens"] == reply.output_tokens
