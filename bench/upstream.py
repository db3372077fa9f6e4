"""A fast local OpenAI-compatible upstream for benchmarks.

It answers the three calls a gateway makes with fixed, small, valid bodies in the OpenAI wire
format:

- ``POST /v1/chat/completions``: a ``chat.completion`` with ``usage``; with ``"stream": true``
  ``--chunks`` ``chat.completion.chunk`` events (the first carries the role, the last the
  ``finish_reason``), a usage chunk (``"choices": []``) when ``stream_options.include_usage``
  is set, then ``data: [DONE]``;
- ``POST /v1/embeddings``: one small embedding per input (``encoding_format`` float or base64);
- ``GET /v1/models``: one model.

The response echoes the requested model name, as providers do. It must cost far less CPU than the
gateway under test, so the default implementation is a raw asyncio protocol on uvloop with the
httptools parser (the same parser uvicorn uses) and bodies encoded once and cached; ``--impl
aiohttp`` serves the same bodies through aiohttp.web for comparison (measured: 4-5x the CPU per call).

    python bench/upstream.py --port 9100 --chunks 20 --chunk-delay-ms 0
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import signal
import struct
import time
from dataclasses import dataclass
from typing import cast

import httptools
import orjson
import uvloop

UPSTREAM_MODEL_ID = "bench-upstream-model"
EMBEDDING_DIMENSIONS = 8
#: Distinct (model, kind) bodies kept encoded; a benchmark uses one or two models.
_CACHE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class Settings:
    chunks: int = 20
    chunk_delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: a complete body, or a list of SSE events written one by one."""

    status: int
    content_type: bytes
    body: bytes = b""
    events: tuple[bytes, ...] = ()


def _error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    body = orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
    return Reply(status, b"application/json", body)


class Responder:
    """Builds replies from request bodies; encodes each distinct reply once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._cache: dict[tuple[str, str, int], Reply] = {}
        self._created = int(time.time())
        models = {"object": "list", "data": [self._model_entry()]}
        self._models = Reply(200, b"application/json", orjson.dumps(models))

    def _model_entry(self) -> dict[str, object]:
        return {"id": UPSTREAM_MODEL_ID, "object": "model", "created": self._created, "owned_by": "bench"}

    def handle(self, method: bytes, path: bytes, body: bytes) -> Reply:
        path = path.split(b"?", 1)[0]
        if path == b"/v1/models" and method == b"GET":
            return self._models
        if method != b"POST" or path not in (b"/v1/chat/completions", b"/v1/embeddings"):
            return _error(404, f"Unknown request URL: {method.decode()} {path.decode()}")
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.")
        if not isinstance(request, dict) or not isinstance(request.get("model"), str):
            return _error(400, "you must provide a model parameter")
        model: str = request["model"]
        if path == b"/v1/embeddings":
            return self._embeddings(model, request)
        if request.get("stream") is True:
            options = request.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            return self._cached((model, "stream", int(include_usage)), self._stream, model, include_usage)
        return self._cached((model, "chat", 0), self._completion, model)

    def _cached(self, key: tuple[str, str, int], build, *args) -> Reply:  # type: ignore[no-untyped-def]
        reply = self._cache.get(key)
        if reply is None:
            reply = build(*args)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = reply
        return reply

    def _usage(self, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": 12,
            "completion_tokens": completion_tokens,
            "total_tokens": 12 + completion_tokens,
        }

    def _completion(self, model: str) -> Reply:
        body = {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": self._created,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Hello from the bench upstream.",
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": self._usage(7),
        }
        return Reply(200, b"application/json", orjson.dumps(body))

    def _stream(self, model: str, include_usage: bool) -> Reply:
        n = max(1, self._settings.chunks)
        events: list[bytes] = []
        for i in range(n):
            if i == 0:
                delta: dict[str, str] = {"role": "assistant", "content": ""}
            elif i == n - 1:
                delta = {}
            else:
                delta = {"content": f"tok{i} "}
            chunk: dict[str, object] = {
                "id": "chatcmpl-bench0001",
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": model,
                "system_fingerprint": "fp_bench",
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": "stop" if i == n - 1 else None,
                    }
                ],
            }
            if include_usage:
                chunk["usage"] = None
            events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if include_usage:
            usage_chunk = {
                "id": "chatcmpl-bench0001",
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": model,
                "system_fingerprint": "fp_bench",
                "choices": [],
                "usage": self._usage(max(0, n - 2)),
            }
            events.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        return Reply(200, b"text/event-stream", events=tuple(events))

    def _embeddings(self, model: str, request: dict[str, object]) -> Reply:
        raw = request.get("input")
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            inputs: list[object] = [raw]
        elif isinstance(raw, list) and raw:
            inputs = raw
        else:
            return _error(400, "'input' must be a non-empty string or array")
        vector = [round(0.01 * (i + 1), 4) for i in range(EMBEDDING_DIMENSIONS)]
        embedding: object = vector
        if request.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        tokens = 4 * len(inputs)
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": embedding} for i in range(len(inputs))],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Reply(200, b"application/json", orjson.dumps(body))


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


def _head(reply: Reply, keep_alive: bool) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    if reply.events:
        length = b"Transfer-Encoding: chunked\r\nCache-Control: no-cache"
    else:
        length = b"Content-Length: " + str(len(reply.body)).encode()
    return b"".join(
        (
            b"HTTP/1.1 ",
            str(reply.status).encode(),
            b" ",
            _REASONS.get(reply.status, b"Error"),
            b"\r\nContent-Type: ",
            reply.content_type,
            b"\r\n",
            length,
            b"\r\nConnection: ",
            connection,
            b"\r\n\r\n",
        )
    )


def _chunked(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection. Requests are answered in order."""

    def __init__(self, responder: Responder, settings: Settings) -> None:
        self._responder = responder
        self._settings = settings
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._pending: list[tuple[bytes, bytes, bytes, bool]] = []
        self._streaming: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._streaming is not None:
            self._streaming.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(_error(400, "malformed HTTP request"), keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = (
            self._parser.get_method(),
            self._url,
            b"".join(self._body),
            self._parser.should_keep_alive(),
        )
        if self._streaming is not None:
            self._pending.append(request)
        else:
            self._answer(*request)

    def _answer(self, method: bytes, url: bytes, body: bytes, keep_alive: bool) -> None:
        reply = self._responder.handle(method, url, body)
        if reply.events and self._settings.chunk_delay_s > 0:
            assert self._transport is not None
            self._transport.pause_reading()
            self._streaming = asyncio.get_running_loop().create_task(self._send_slowly(reply, keep_alive))
        else:
            self._send(reply, keep_alive)

    def _send(self, reply: Reply, keep_alive: bool) -> None:
        if self._transport is None:
            return
        if reply.events:
            # No delay: the whole stream in one write; the gateway still decodes event by event.
            payload = b"".join(_chunked(e) for e in reply.events)
            self._transport.write(_head(reply, keep_alive) + payload + b"0\r\n\r\n")
        else:
            self._transport.write(_head(reply, keep_alive) + reply.body)
        if not keep_alive:
            self._transport.close()

    async def _send_slowly(self, reply: Reply, keep_alive: bool) -> None:
        transport = self._transport
        assert transport is not None
        transport.write(_head(reply, keep_alive))
        for i, event in enumerate(reply.events):
            if i:
                await asyncio.sleep(self._settings.chunk_delay_s)
            if self._transport is None:
                return
            transport.write(_chunked(event))
        transport.write(b"0\r\n\r\n")
        self._streaming = None
        if not keep_alive:
            transport.close()
            return
        transport.resume_reading()
        while self._pending and self._streaming is None:
            self._answer(*self._pending.pop(0))


async def serve_raw(host: str, port: int, settings: Settings) -> asyncio.Server:
    responder = Responder(settings)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: UpstreamProtocol(responder, settings), host, port, backlog=1024)


async def serve_aiohttp(host: str, port: int, settings: Settings):  # type: ignore[no-untyped-def]
    """The same answers through aiohttp.web, to compare against the raw protocol."""
    from aiohttp import web

    responder = Responder(settings)

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        reply = responder.handle(request.method.encode(), request.path_qs.encode(), body)
        content_type = reply.content_type.decode()
        if not reply.events:
            return web.Response(status=reply.status, body=reply.body, content_type=content_type)
        response = web.StreamResponse(status=reply.status, headers={"Content-Type": content_type})
        await response.prepare(request)
        for i, event in enumerate(reply.events):
            if i and settings.chunk_delay_s > 0:
                await asyncio.sleep(settings.chunk_delay_s)
            await response.write(event)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    return runner


async def _main(args: argparse.Namespace) -> None:
    settings = Settings(chunks=args.chunks, chunk_delay_s=args.chunk_delay_ms / 1000.0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.impl == "raw":
        server = await serve_raw(args.host, args.port, settings)
        port = server.sockets[0].getsockname()[1]
        print(f"bench upstream (raw) listening on http://{args.host}:{port}/v1", flush=True)
        await stop.wait()
        server.close()
        await server.wait_closed()
    else:
        runner = await serve_aiohttp(args.host, args.port, settings)
        port = runner.addresses[0][1]
        print(f"bench upstream (aiohttp) listening on http://{args.host}:{port}/v1", flush=True)
        await stop.wait()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100, help="0 picks a free port (printed)")
    parser.add_argument("--chunks", type=int, default=20, help="chat.completion.chunk events per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between stream events")
    parser.add_argument("--impl", choices=("raw", "aiohttp"), default="raw")
    uvloop.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
