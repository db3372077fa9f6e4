"""A local server that speaks OpenAI's chat completions and embeddings wire format.

Built from OpenAI's API reference: JSON responses with ``usage``, ``chat.completion.chunk`` SSE
events ending in ``data: [DONE]``, a usage chunk with ``choices: []`` when
``stream_options.include_usage`` is set (other chunks then carry ``"usage": null``), and error
bodies ``{"error": {"message", "type", "param", "code"}}``. The same app answers Azure OpenAI's
deployment URLs (``api-key`` header, ``api-version`` query) and Mistral-style requests.

Behaviour is scripted per test through ``OpenAIEmulator``: queue failures (status, body,
Retry-After), delays, tool calls, or hang mid-stream. Every request received is kept for
assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

API_KEY = "sk-upstream-test-key-0123456789"


@dataclass
class Failure:
    status: int
    type: str = "server_error"
    message: str = "The server had an error while processing your request."
    code: str | None = None
    retry_after: str | None = None
    raw: bytes | None = None


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class OpenAIEmulator:
    api_key: str = API_KEY
    reply: str = "Hello! How can I help you today?"
    chunks: list[str] | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    tool_call: dict[str, Any] | None = None
    hang_after_chunks: int | None = None
    mistral_usage: bool = False
    #: Answer with the last user message, as a model quoting its prompt would.
    echo: bool = False
    received: list[Received] = field(default_factory=list)
    base_url: str = ""

    def stream_pieces(self) -> list[str]:
        if self.chunks is not None:
            return self.chunks
        words = self.reply.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _error(failure: Failure) -> web.Response:
    headers = {"retry-after": failure.retry_after} if failure.retry_after else {}
    if failure.raw is not None:
        return web.Response(status=failure.status, body=failure.raw, headers=headers)
    body = {"error": {"message": failure.message, "type": failure.type, "param": None, "code": failure.code}}
    return web.json_response(body, status=failure.status, headers=headers)


def _unauthorized() -> web.Response:
    return _error(
        Failure(
            401,
            type="invalid_request_error",
            message="Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    )


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _prompt_tokens(body: dict[str, Any]) -> int:
    text = orjson.dumps(body.get("messages") or body.get("input") or "")
    return max(1, len(text) // 4)


def build_app(emulator: OpenAIEmulator) -> web.Application:
    async def authorized(request: web.Request) -> bool:
        if request.path.startswith("/openai/deployments/"):
            return request.headers.get("api-key") == emulator.api_key
        return request.headers.get("Authorization") == f"Bearer {emulator.api_key}"

    async def record(request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            return _error(
                Failure(400, type="invalid_request_error", message="We could not parse the JSON body.")
            )
        emulator.received.append(
            Received(
                request.path, dict(request.query), {k.lower(): v for k, v in request.headers.items()}, body
            )
        )
        return body

    async def admit(request: web.Request) -> dict[str, Any] | web.Response:
        """Record the request, then answer it with 400/401 or a scripted failure if due."""
        body = await record(request)
        if isinstance(body, web.Response):
            return body
        if not await authorized(request):
            return _unauthorized()
        if emulator.failures:
            return _error(emulator.failures.pop(0))
        return body

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await admit(request)
        if isinstance(body, web.Response):
            return body
        if emulator.delay_s:
            await asyncio.sleep(emulator.delay_s)
        model = body.get("model") or request.match_info.get("deployment", "")
        created = int(time.time())
        prompt = _prompt_tokens(body)
        if body.get("stream"):
            return await _stream(request, body, model, created, prompt)
        reply = emulator.reply
        if emulator.echo:
            reply = next(
                (m.get("content") for m in reversed(body.get("messages") or []) if m.get("role") == "user"),
                "",
            )
        message: dict[str, Any] = {"role": "assistant", "content": reply, "refusal": None}
        finish = "stop"
        if emulator.tool_call is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [emulator.tool_call]}
            finish = "tool_calls"
        completion = max(1, len(emulator.reply) // 4)
        return web.json_response(
            {
                "id": "chatcmpl-emu123",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_emulator",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": _usage(prompt, completion),
            }
        )

    async def _stream(
        request: web.Request, body: dict[str, Any], model: str, created: int, prompt: int
    ) -> web.StreamResponse:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        base = {
            "id": "chatcmpl-emu123",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        if include_usage:
            base["usage"] = None

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            await response.write(b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n")

        await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        pieces = emulator.stream_pieces()
        for i, piece in enumerate(pieces):
            if emulator.hang_after_chunks is not None and i >= emulator.hang_after_chunks:
                await asyncio.sleep(3600)
            if emulator.chunk_delay_s:
                await asyncio.sleep(emulator.chunk_delay_s)
            await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        completion = len(pieces)
        if emulator.mistral_usage:
            await send([{"index": 0, "delta": {}, "finish_reason": "stop"}], usage=_usage(prompt, completion))
        else:
            await send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if include_usage:
                await send([], usage=_usage(prompt, completion))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def embeddings(request: web.Request) -> web.Response:
        body = await admit(request)
        if isinstance(body, web.Response):
            return body
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, -0.3]}
            for i in range(len(inputs))
        ]
        prompt = _prompt_tokens(body)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", embeddings)
    return app


@contextlib.asynccontextmanager
async def serve_openai(emulator: OpenAIEmulator | None = None) -> AsyncIterator[OpenAIEmulator]:
    """Serve the emulator on a free 127.0.0.1 port; ``emulator.base_url`` ends in ``/v1``."""
    emulator = emulator or OpenAIEmulator()
    # A short shutdown: scripted stalls (hang_after_chunks) must not hold up the teardown.
    runner = web.AppRunner(build_app(emulator), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emulator.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield emulator
    finally:
        await runner.cleanup()
