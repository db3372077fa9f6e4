"""The gateway is wire-compatible with OpenAI: the official SDK works unchanged, sync and async."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.e2e.harness import GatewayProcess
from tests.emulators.openai_server import Failure, OpenAIEmulator

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(autouse=True)
def _key(api_key: str) -> None:
    global KEY
    KEY = api_key


KEY = ""


def client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=KEY, max_retries=0)


def async_client(gateway: GatewayProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url + "/v1", api_key=KEY, max_retries=0)


def test_chat_completion_sync(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == upstream.reply
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-request-id"]
    assert raw.headers["x-gateway-decision-id"]
    sent = upstream.received[-1]
    assert sent.body["model"] == "gpt-4o-mini-2024-07-18"
    assert sent.headers["authorization"] == f"Bearer {upstream.api_key}"


async def test_chat_stream_async_hides_usage_chunk_not_asked_for(
    gateway: GatewayProcess, upstream: OpenAIEmulator
) -> None:
    stream = await async_client(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == upstream.reply
    assert all(c.choices for c in chunks), "a usage-only chunk reached a client that did not ask for it"
    assert all(getattr(c, "usage", None) is None for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The gateway asked the upstream for usage anyway, for accounting.
    assert upstream.received[-1].body["stream_options"] == {"include_usage": True}


def test_chat_stream_sync_with_usage(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    stream = client(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(upstream.stream_pieces())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == upstream.reply


def test_stream_is_relayed_chunk_by_chunk(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    # The upstream sends two pieces and then stalls: a buffering proxy would show nothing. The
    # default policy screens answers for card numbers, which holds back at most the last
    # partial word, so the first piece is what must arrive while the upstream stalls.
    upstream.chunks = ["one", " two", " three", " four"]
    upstream.hang_after_chunks = 2
    http = httpx.Client(timeout=httpx.Timeout(10.0, read=5.0))
    headers = {"authorization": f"Bearer {KEY}"}
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    pieces: list[str] = []
    with http.stream(
        "POST", gateway.base_url + "/v1/chat/completions", json=body, headers=headers
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    pieces.append(choice["delta"].get("content") or "")
            if "".join(pieces).startswith("one"):
                break
    http.close()
    assert "".join(pieces).strip() == "one"


def test_embeddings(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    result = client(gateway).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 3
    assert result.usage.prompt_tokens > 0


async def test_models_list(gateway: GatewayProcess) -> None:
    models = await async_client(gateway).models.list()
    ids = {m.id async for m in models}
    assert {"gpt-4o-mini", "azure-gpt", "text-embedding-3-small"} <= ids


def test_azure_flavour(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    completion = client(gateway).chat.completions.create(model="azure-gpt", messages=MESSAGES)
    assert completion.choices[0].message.content == upstream.reply
    sent = upstream.received[-1]
    assert sent.path == "/openai/deployments/my-azure-deployment/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == upstream.api_key
    assert "authorization" not in sent.headers
    assert "model" not in sent.body


def test_mistral_flavour_stream_usage(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    upstream.mistral_usage = True
    chunks = list(
        client(gateway).chat.completions.create(
            model="mistral-small",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=50,
            seed=7,
        )
    )
    sent = upstream.received[-1].body
    assert "stream_options" not in sent and "max_completion_tokens" not in sent and "seed" not in sent
    assert sent["max_tokens"] == 50 and sent["random_seed"] == 7
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_openai_compatible_flavour(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    completion = client(gateway).chat.completions.create(model="local-llama", messages=MESSAGES)
    assert completion.choices[0].message.content == upstream.reply
    assert upstream.received[-1].body["model"] == "llama3.1:8b"


def test_request_id_is_taken_from_client(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-request-id": "req-from-client-42"}
    )
    assert raw.headers["x-request-id"] == "req-from-client-42"


# -- errors ---------------------------------------------------------------------------------


def _post(gateway: GatewayProcess, content: bytes, path: str = "/v1/chat/completions") -> httpx.Response:
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    return httpx.post(gateway.base_url + path, content=content, headers=headers)


def _error_shape(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]
    return body["error"]


def test_invalid_json_is_400(gateway: GatewayProcess) -> None:
    response = _post(gateway, b'{"model": "gpt-4o-mini", "messages": [')
    assert response.status_code == 400
    assert _error_shape(response)["type"] == "invalid_request_error"


def test_schema_error_is_400_naming_the_parameter(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "wizard", "content": "hi"}]
        )
    assert info.value.status_code == 400
    assert info.value.param == "messages[0].role"


def test_unknown_model_is_404(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(gateway).chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert info.value.code == "model_not_found"


def test_body_over_limit_is_413(gateway: GatewayProcess) -> None:
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"x" * 70000 + b'"}]}'
    response = _post(gateway, big)
    assert response.status_code == 413
    assert _error_shape(response)["code"] == "request_too_large"


def test_upstream_unreachable_is_502(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway).chat.completions.create(model="unreachable", messages=MESSAGES)
    assert info.value.status_code == 502
    assert info.value.code == "upstream_unreachable"


def test_upstream_timeout_is_504(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    upstream.delay_s = 2.0
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway).chat.completions.create(model="slow-model", messages=MESSAGES)
    assert info.value.status_code == 504


def test_upstream_client_error_passes_through_without_failover(
    gateway: GatewayProcess, upstream: OpenAIEmulator
) -> None:
    upstream.failures.append(
        Failure(400, type="invalid_request_error", message="Invalid 'temperature'.", code="invalid_value")
    )
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(model="two-emus", messages=MESSAGES)
    assert info.value.message.endswith("Invalid 'temperature'.")
    assert info.value.code == "invalid_value"
    assert len(upstream.received) == 1, "a 4xx other than 429 must not fail over"


def test_upstream_429_passes_through_with_status(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    upstream.failures.extend(
        Failure(
            429,
            type="rate_limit_error",
            message="Rate limit reached",
            code="rate_limit_exceeded",
            retry_after="0",
        )
        for _ in range(5)
    )
    with pytest.raises(openai.RateLimitError) as info:
        client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert info.value.status_code == 429


def test_failover_past_unreachable_deployment(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    completion = client(gateway).chat.completions.create(model="failover", messages=MESSAGES)
    assert completion.choices[0].message.content == upstream.reply


def test_failover_on_5xx(gateway: GatewayProcess, upstream: OpenAIEmulator) -> None:
    upstream.failures.append(Failure(500))
    completion = client(gateway).chat.completions.create(model="two-emus", messages=MESSAGES)
    assert completion.choices[0].message.content == upstream.reply
    assert len(upstream.received) == 2


def test_health_endpoints(gateway: GatewayProcess) -> None:
    assert httpx.get(gateway.base_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.base_url + "/readyz")
    assert ready.status_code == 200
    assert all(check["ok"] for check in ready.json()["checks"].values())


def test_endpoint_and_model_kind_must_match(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).embeddings.create(model="gpt-4o-mini", input="hi")
    assert info.value.param == "model" and info.value.code == "model_not_supported"
    with pytest.raises(openai.BadRequestError):
        client(gateway).chat.completions.create(model="text-embedding-3-small", messages=MESSAGES)
