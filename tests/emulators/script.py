"""Scripting shared by the provider emulators: what the next answer should be, and a server
runner binding a free 127.0.0.1 port for the life of an ``async with`` block."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass
class Reply:
    """One scripted answer. Defaults give a short successful text answer."""

    text: str = "Hello from the emulator."
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: Native stop/finish reason; None picks the natural one (end of turn, or tool use).
    stop_reason: str | None = None
    input_tokens: int = 11
    output_tokens: int = 7
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: Answer with this HTTP error status instead (native error body for the provider).
    error_status: int | None = None
    error_message: str = "scripted failure"
    retry_after: str | None = None
    #: Streams: pause before each event, send an error event after N events, or just stop after N.
    delay_s: float = 0.0
    stream_error_after: int | None = None
    truncate_after: int | None = None
    #: Size of text / JSON-argument fragments in streams.
    fragment: int = 4
    #: Gemini: the prompt is blocked (promptFeedback.blockReason), no candidates.
    prompt_blocked: bool = False


def fragments(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class Emulator:
    """Base for the emulators: a reply queue, a record of requests, the served base URL."""

    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        return self.replies.popleft() if self.replies else Reply()

    def app(self) -> web.Application:
        raise NotImplementedError

    async def send_events(
        self, request: web.Request, reply: Reply, events: list[bytes], content_type: str
    ) -> web.StreamResponse:
        """Write events one by one, honouring the reply's delay / error / truncation script."""
        response = web.StreamResponse(status=200, headers={"content-type": content_type})
        await response.prepare(request)
        for n, event in enumerate(events):
            if reply.truncate_after is not None and n >= reply.truncate_after:
                break
            if reply.stream_error_after is not None and n == reply.stream_error_after:
                await response.write(self.stream_error(reply))
                break
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            await response.write(event)
        await response.write_eof()
        return response

    def stream_error(self, reply: Reply) -> bytes:
        raise NotImplementedError


@asynccontextmanager
async def serve(emulator: Emulator) -> AsyncIterator[Emulator]:
    runner = web.AppRunner(emulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    emulator.base_url = f"http://127.0.0.1:{port}"
    try:
        yield emulator
    finally:
        await runner.cleanup()
