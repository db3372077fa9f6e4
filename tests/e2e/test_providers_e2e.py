"""Switching provider is changing the model name: OpenAI and Anthropic SDKs through the gateway
to emulated Anthropic, Gemini and OpenAI upstreams, with failover across providers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from tests.e2e.conftest import UPSTREAM_ENV, gateway_config
from tests.e2e.harness import BackgroundLoop, GatewayProcess, running_gateway
from tests.emulators.anthropic_server import AnthropicEmulator, serve_anthropic
from tests.emulators.gemini_server import GeminiEmulator, serve_gemini
from tests.emulators.openai_server import OpenAIEmulator
from tests.emulators.script import Reply, ToolCall

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def anthropic_upstream(background_loop: BackgroundLoop) -> AnthropicEmulator:
    return background_loop.enter(lambda: serve_anthropic("anthropic-upstream-key-123"))


@pytest.fixture(scope="module")
def gemini_upstream(background_loop: BackgroundLoop) -> GeminiEmulator:
    return background_loop.enter(lambda: serve_gemini("gemini-upstream-key-456"))


@pytest.fixture(scope="module")
def multi_gateway(
    openai_upstream: OpenAIEmulator,
    anthropic_upstream: AnthropicEmulator,
    gemini_upstream: GeminiEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    workdir: Path = tmp_path_factory.mktemp("multi")
    config = gateway_config(openai_upstream.base_url, workdir)
    config["providers"]["anthropic-emu"] = {
        "type": "anthropic",
        "api_base": anthropic_upstream.base_url,
        "api_key": "env:EMU_ANTHROPIC_KEY",
    }
    config["providers"]["gemini-emu"] = {
        "type": "gemini",
        "api_base": gemini_upstream.base_url,
        "api_key": "env:EMU_GEMINI_KEY",
    }
    config["models"]["claude"] = {
        "deployments": [{"provider": "anthropic-emu", "model": "claude-sonnet-4-5"}]
    }
    config["models"]["gemini-flash"] = {
        "deployments": [{"provider": "gemini-emu", "model": "gemini-2.5-flash"}]
    }
    config["models"]["claude-or-gpt"] = {
        "deployments": [
            {"provider": "anthropic-emu", "model": "claude-sonnet-4-5", "name": "claude-primary"},
            {"provider": "openai-emu", "model": "gpt-4o-mini", "name": "openai-fallback"},
        ]
    }
    env = {
        **UPSTREAM_ENV,
        "EMU_ANTHROPIC_KEY": "anthropic-upstream-key-123",
        "EMU_GEMINI_KEY": "gemini-upstream-key-456",
    }
    with running_gateway(config, workdir, env) as process:
        yield process


@pytest.fixture(scope="module")
def key(multi_gateway: GatewayProcess) -> str:
    return multi_gateway.create_key("providers-e2e")


@pytest.fixture(autouse=True)
def _fresh(
    anthropic_upstream: AnthropicEmulator, gemini_upstream: GeminiEmulator, upstream: OpenAIEmulator
) -> None:
    anthropic_upstream.replies.clear()
    anthropic_upstream.requests.clear()
    gemini_upstream.replies.clear()
    gemini_upstream.requests.clear()


def oai(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def test_openai_sdk_to_anthropic(
    multi_gateway: GatewayProcess, key: str, anthropic_upstream: AnthropicEmulator
) -> None:
    anthropic_upstream.push(
        Reply(text="Bonjour from Claude", input_tokens=21, output_tokens=5, cache_read_tokens=4)
    )
    completion = oai(multi_gateway, key).chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=100,
    )
    assert completion.choices[0].message.content == "Bonjour from Claude"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 4
    sent = anthropic_upstream.requests[-1]["body"]
    assert anthropic_upstream.requests[-1]["headers"]["x-api-key"] == "anthropic-upstream-key-123"
    assert sent["system"] == "Be brief." or sent["system"][0]["text"] == "Be brief."
    assert sent["model"] == "claude-sonnet-4-5"


def test_openai_sdk_stream_tool_call_from_anthropic(
    multi_gateway: GatewayProcess, key: str, anthropic_upstream: AnthropicEmulator
) -> None:
    arguments = {"city": "Lisbon", "units": "metric", "detail": "x" * 40}
    anthropic_upstream.push(
        Reply(text="", tool_calls=[ToolCall("get_weather", arguments, id="toolu_01")], fragment=3)
    )
    stream = oai(multi_gateway, key).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL], stream=True
    )
    pieces: list[str] = []
    names: list[str] = []
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                if call.function and call.function.name:
                    names.append(call.function.name)
                if call.function and call.function.arguments:
                    pieces.append(call.function.arguments)
            finish = choice.finish_reason or finish
    assert names == ["get_weather"]
    assert json.loads("".join(pieces)) == arguments
    assert finish == "tool_calls"


def test_openai_sdk_to_gemini(
    multi_gateway: GatewayProcess, key: str, gemini_upstream: GeminiEmulator
) -> None:
    gemini_upstream.push(Reply(text="Hello from Gemini"))
    completion = oai(multi_gateway, key).chat.completions.create(
        model="gemini-flash", messages=[{"role": "user", "content": "Hi"}]
    )
    assert completion.choices[0].message.content == "Hello from Gemini"


def test_anthropic_sdk_messages_routed_to_openai(
    multi_gateway: GatewayProcess, key: str, upstream: OpenAIEmulator
) -> None:
    client = anthropic.Anthropic(base_url=multi_gateway.base_url, api_key=key, max_retries=0)
    message = client.messages.create(
        model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == upstream.reply
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0


async def test_anthropic_sdk_stream_to_anthropic_upstream(
    multi_gateway: GatewayProcess, key: str, anthropic_upstream: AnthropicEmulator
) -> None:
    anthropic_upstream.push(Reply(text="Streaming through the gateway", fragment=5))
    client = anthropic.AsyncAnthropic(base_url=multi_gateway.base_url, api_key=key, max_retries=0)
    async with client.messages.stream(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "Go"}]
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Streaming through the gateway"
    assert final.stop_reason == "end_turn"


def test_anthropic_sdk_error_shape(multi_gateway: GatewayProcess, key: str) -> None:
    client = anthropic.Anthropic(base_url=multi_gateway.base_url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_failover_from_overloaded_anthropic_to_openai(
    multi_gateway: GatewayProcess, key: str, anthropic_upstream: AnthropicEmulator, upstream: OpenAIEmulator
) -> None:
    anthropic_upstream.push(Reply(error_status=529, error_message="Overloaded"))
    completion = oai(multi_gateway, key).chat.completions.create(
        model="claude-or-gpt", messages=[{"role": "user", "content": "Hi"}]
    )
    assert completion.choices[0].message.content == upstream.reply
    assert len(anthropic_upstream.requests) == 1


def test_stream_fails_over_before_first_byte(
    multi_gateway: GatewayProcess, key: str, anthropic_upstream: AnthropicEmulator, upstream: OpenAIEmulator
) -> None:
    anthropic_upstream.push(Reply(error_status=500, error_message="boom"))
    chunks = list(
        oai(multi_gateway, key).chat.completions.create(
            model="claude-or-gpt", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == upstream.reply


def test_error_after_first_byte_is_a_final_sse_error_event(
    multi_gateway: GatewayProcess, key: str, anthropic_upstream: AnthropicEmulator
) -> None:
    # Events spaced out, so the first ones reach the client before the error event exists.
    anthropic_upstream.push(
        Reply(text="partial answer that breaks", stream_error_after=4, fragment=4, delay_s=0.05)
    )
    stream = oai(multi_gateway, key).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)

    assert received, "the first chunks reached the client before the error"
    assert len(anthropic_upstream.requests) == 1, "no failover once bytes reached the client"
