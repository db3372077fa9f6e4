"""Limits and budgets as clients see them, and a token limit that holds across two replicas."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.e2e.conftest import UPSTREAM_ENV, gateway_config
from tests.e2e.harness import GatewayProcess, running_gateway
from tests.emulators.openai_server import OpenAIEmulator

RATE_HEADERS = {
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def limited_gateway(
    openai_upstream: OpenAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    workdir: Path = tmp_path_factory.mktemp("limited")
    config = gateway_config(
        openai_upstream.base_url,
        workdir,
        limits={
            "defaults": [
                {"name": "key-rpm", "scope": "key:{key_id}", "window_s": 60, "requests": 3, "tokens": 100000},
            ],
            "prices": {"gpt-4o-mini*": {"input": 1_000_000, "output": 1_000_000}},  # $1 per token
            "budgets": [{"name": "team-daily", "scope": "team:{team}", "amount_usd": 60, "period": "day"}],
        },
    )
    with running_gateway(config, workdir, UPSTREAM_ENV) as process:
        for team in ("limited", "spender"):
            process.admin("POST", "/admin/v1/teams", json={"name": team})
        yield process


def test_request_limit_429_with_openai_headers(
    limited_gateway: GatewayProcess, upstream: OpenAIEmulator
) -> None:
    key = limited_gateway.create_key("rpm", team="limited")
    client = openai.OpenAI(base_url=limited_gateway.base_url + "/v1", api_key=key, max_retries=0)
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="local-llama", messages=HI, max_tokens=5)
        assert RATE_HEADERS <= set(raw.headers), "every response a limit applies to carries the headers"
    assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="local-llama", messages=HI, max_tokens=5)
    response = info.value.response
    assert "key-rpm" in info.value.message
    assert int(response.headers["retry-after"]) >= 1
    assert RATE_HEADERS <= set(response.headers)
    assert info.value.code == "rate_limit_exceeded"


def test_budget_exhausted_is_429_budget_exceeded(
    limited_gateway: GatewayProcess, upstream: OpenAIEmulator
) -> None:
    upstream.reply = "ok"
    # Each call reserves (prompt estimate + max_tokens) dollars and settles on the actual usage.
    outcomes: list[str] = []
    for i in range(12):
        key = limited_gateway.create_key(f"spender-{i}", team="spender")  # fresh key: only the budget binds
        client = openai.OpenAI(base_url=limited_gateway.base_url + "/v1", api_key=key, max_retries=0)
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=5)
            outcomes.append("ok")
        except openai.RateLimitError as exc:
            assert exc.code == "budget_exceeded"
            outcomes.append("budget")
            break
    assert outcomes[0] == "ok" and outcomes[-1] == "budget"
    # The spend so far is visible to the policy input; at $1/token a $60 budget lasts a few calls.
    assert 2 <= outcomes.count("ok") <= 8


# -- two replicas sharing Redis ---------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"gwtest-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


async def _hammer(base_urls: list[str], key: str, clients: int, deadline_s: float) -> dict[str, Any]:
    admitted_tokens = 0
    statuses: dict[int, int] = {}
    per_gateway = dict.fromkeys(base_urls, 0)
    stop_at = time.monotonic() + deadline_s
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "local-llama", "messages": HI, "max_tokens": 5}

    async def client(index: int) -> None:
        nonlocal admitted_tokens
        base = base_urls[index % len(base_urls)]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while time.monotonic() < stop_at:
                response = await http.post("/v1/chat/completions", json=body, headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code != 200:
                    return
                admitted_tokens += response.json()["usage"]["total_tokens"]
                per_gateway[base] += 1

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return {
        "tokens": admitted_tokens,
        "statuses": statuses,
        "per_gateway": per_gateway,
        "elapsed": time.monotonic() - started,
    }


@pytest.mark.redis
async def test_token_limit_holds_across_two_gateway_processes(
    openai_upstream: OpenAIEmulator, upstream: OpenAIEmulator, tmp_path: Path, redis_prefix: str
) -> None:
    upstream.reply = "ok"
    limit = 3000
    config = gateway_config(
        openai_upstream.base_url,
        tmp_path,
        limits={
            "backend": "redis",
            "redis_prefix": redis_prefix,
            "defaults": [{"name": "key-tpm", "scope": "key:{key_id}", "window_s": 60, "tokens": limit}],
        },
    )
    # Both replicas share one database (keys) and one Redis (counters).
    with (
        running_gateway(config, tmp_path, UPSTREAM_ENV) as first,
        running_gateway(config, tmp_path, UPSTREAM_ENV) as second,
    ):
        key = first.create_key("shared")
        result = await _hammer([first.base_url, second.base_url], key, clients=64, deadline_s=20)
    assert result["statuses"].get(429, 0) > 0, result
    assert all(count > 0 for count in result["per_gateway"].values()), result
    # Reservation per request: the prompt estimate (~8) plus max_tokens (5), bounded by 16.
    in_flight_allowance = 64 * 16
    refill = limit * result["elapsed"] / 60
    assert result["tokens"] <= limit + in_flight_allowance + refill, result
    # Without a shared counter each replica would admit `limit` on its own.
    assert result["tokens"] < 2 * limit, result


# -- reconciliation after a client disconnects mid-stream ----------------------------------------


@pytest.fixture
def token_limited_gateway(openai_upstream: OpenAIEmulator, tmp_path: Path) -> Iterator[GatewayProcess]:
    config = gateway_config(
        openai_upstream.base_url,
        tmp_path,
        limits={
            "defaults": [{"name": "key-tpm", "scope": "key:{key_id}", "window_s": 3600, "tokens": 10_000}]
        },
    )
    with running_gateway(config, tmp_path, UPSTREAM_ENV) as process:
        yield process


def test_client_disconnect_mid_stream_charges_what_was_generated(
    token_limited_gateway: GatewayProcess, upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    upstream.chunks = [f"piece{i} " for i in range(40)]
    upstream.chunk_delay_s = 0.1
    key = token_limited_gateway.create_key("disconnect")
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "local-llama", "messages": HI, "max_tokens": 3000, "stream": True}
    with httpx.Client(base_url=token_limited_gateway.base_url, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            assert response.status_code == 200
            seen = 0
            for line in response.iter_lines():
                if line.startswith("data: ") and "piece" in line:
                    seen += 1
                    if seen == 3:
                        break  # the client goes away mid-stream
    time.sleep(1.0)
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        status, error_type, completion, estimated = db.execute(
            "SELECT status, error_type, completion_tokens, tokens_estimated FROM usage_records "
            "WHERE key_id IS NOT NULL ORDER BY time DESC LIMIT 1"
        ).fetchone()
    assert (status, error_type) == (499, "client_disconnected")
    assert 3 <= completion < 3000, "charged what was generated, not the reservation"
    assert estimated == 1, "the provider sent no usage for a stream cut short: the estimate is flagged"
    # The reservation (prompt + 3000) was reconciled: the next request sees the refund.
    upstream.chunks = None
    upstream.chunk_delay_s = 0
    nxt = httpx.post(
        token_limited_gateway.base_url + "/v1/chat/completions",
        json={"model": "local-llama", "messages": HI, "max_tokens": 10},
        headers=headers,
    )
    assert nxt.status_code == 200
    assert int(nxt.headers["x-ratelimit-remaining-tokens"]) > 10_000 - 3000
