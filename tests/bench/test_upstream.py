"""The bench upstream speaks the OpenAI wire format the gateway's translators expect."""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from bench.upstream import EMBEDDING_DIMENSIONS, Settings, serve_aiohttp, serve_raw
from gateway.providers.sse import SSEDecoder


async def _raw(settings: Settings) -> AsyncIterator[str]:
    server = await serve_raw("127.0.0.1", 0, settings)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()
        await server.wait_closed()


async def _aiohttp(settings: Settings) -> AsyncIterator[str]:
    runner = await serve_aiohttp("127.0.0.1", 0, settings)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


@pytest.fixture(params=["raw", "aiohttp"])
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    serve = _raw if request.param == "raw" else _aiohttp
    async for url in serve(Settings(chunks=5)):
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _events(response: aiohttp.ClientResponse) -> list[str]:
    decoder = SSEDecoder()
    events = []
    async for chunk in response.content.iter_any():
        events += [e.data for e in decoder.feed(chunk)]
    return events + [e.data for e in decoder.close()]


async def test_chat_completion_echoes_model_and_reports_usage(
    upstream: str, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{upstream}/chat/completions", json={"model": "gpt-x", "messages": []}) as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        body = await r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-x"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_sends_chunks_then_usage_then_done(
    upstream: str, session: aiohttp.ClientSession, include_usage: bool
) -> None:
    request = {
        "model": "m",
        "messages": [],
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    async with session.post(f"{upstream}/chat/completions", json=request) as r:
        assert r.status == 200
        assert r.content_type == "text/event-stream"
        events = await _events(r)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
    with_choices = [c for c in chunks if c["choices"]]
    assert len(with_choices) == 5
    assert with_choices[0]["choices"][0]["delta"]["role"] == "assistant"
    assert with_choices[-1]["choices"][0]["finish_reason"] == "stop"
    usage_chunks = [c for c in chunks if not c["choices"]]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
        assert usage_chunks[0]["usage"]["completion_tokens"] == 3
        assert all(c["usage"] is None for c in with_choices)
    else:
        assert usage_chunks == []
        assert all("usage" not in c for c in chunks)


async def test_embeddings_one_vector_per_input_in_float_or_base64(
    upstream: str, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{upstream}/embeddings", json={"model": "e", "input": ["a", "b", "c"]}) as r:
        body = await r.json()
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert len(body["data"][0]["embedding"]) == EMBEDDING_DIMENSIONS
    request = {"model": "e", "input": "a", "encoding_format": "base64"}
    async with session.post(f"{upstream}/embeddings", json=request) as r:
        body = await r.json()
    packed = base64.b64decode(body["data"][0]["embedding"])
    assert len(struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", packed)) == EMBEDDING_DIMENSIONS
    assert body["usage"]["prompt_tokens"] > 0


async def test_models_unknown_paths_and_bad_json(upstream: str, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{upstream}/models") as r:
        assert (await r.json())["data"][0]["object"] == "model"
    async with session.get(f"{upstream}/nothing") as r:
        assert r.status == 404
        assert "error" in await r.json()
    async with session.post(f"{upstream}/chat/completions", data=b"{not json") as r:
        assert r.status == 400
        assert (await r.json())["error"]["type"] == "invalid_request_error"


async def test_chunk_delay_spaces_events_and_keeps_the_connection_usable(
    session: aiohttp.ClientSession,
) -> None:
    async for url in _raw(Settings(chunks=3, chunk_delay_s=0.05)):
        request = {"model": "m", "stream": True}
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with session.post(f"{url}/chat/completions", json=request) as r:
            events = await _events(r)
        assert loop.time() - start >= 0.1  # two pauses between three chunks
        assert len(events) == 4 and events[-1] == "[DONE]"
        # The same keep-alive connection answers the next request after a slow stream.
        async with session.post(f"{url}/chat/completions", json={"model": "m"}) as r:
            assert r.status == 200
