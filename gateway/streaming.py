"""Relaying a translated stream to the client, chunk by chunk as it arrives.

A plain ASGI response rather than Starlette's ``StreamingResponse``: no anyio task group per
stream (measured cost), and the relay needs the end of the stream for accounting. Client
disconnects are noticed by one small watcher task that closes the upstream response, so the
provider stops generating and what was generated is charged.

The upstream is always asked for usage; the usage chunk reaches the client only when the
client asked for it (``stream_options.include_usage``). Errors after the first byte become a
final OpenAI-style SSE error event: the HTTP status is already sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from gateway.errors import GatewayError
from gateway.policy.decision import ResponseRules

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.dialects import StreamEncoder
    from gateway.policy.decision import Decision
    from gateway.routing import Dispatched
    from gateway.services import Services

log = logging.getLogger("gateway.streaming")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamRelay:
    def __init__(
        self,
        services: Services,
        ctx: RequestContext,
        dispatched: Dispatched,
        decision: Decision,
        restorer: Any,
        encoder: StreamEncoder,
    ) -> None:
        self.s = services
        self.ctx = ctx
        self.dispatched = dispatched
        self.encoder = encoder
        self.screeners = ChoiceScreeners(services.guard, decision.response, restorer, decision.status)
        self.usage_chunk: dict[str, Any] | None = None
        self.disconnected = False
        self.emitted_text: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.ctx
        headers = SSE_HEADERS + [(k.encode(), v.encode()) for k, v in ctx.response_headers().items()]
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await self._relay(send)
        finally:
            watcher.cancel()
            if self.dispatched.response is not None:
                self.dispatched.response.close()
            await self._account()

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self.dispatched.response is not None:
                    self.dispatched.response.close()
                return

    async def _relay(self, send: Send) -> None:
        translator = self.dispatched.stream
        assert translator is not None and self.dispatched.chunks is not None
        try:
            await self._emit_all(self.dispatched.first_chunks, send)
            async for raw in self.dispatched.chunks:
                if self.disconnected:
                    break
                await self._emit_all(translator.feed(raw), send)
            if self.disconnected:
                self._mark_disconnected()
                return
            await self._emit_all(translator.close(), send)
            await self._write(send, self._flush_screeners(None, None), more=True)
            await self._write(send, self.encoder.close(self.usage_chunk, translator.usage), more=False)
        except GatewayError as exc:
            if self.disconnected:
                self._mark_disconnected()
                return
            self.ctx.status = exc.status
            self.ctx.error_type = exc.error_type
            log.warning("stream %s ended with an error: %s", self.ctx.request_id, exc.error_type)
            await self._write(send, self.encoder.error(exc), more=False)

    def _mark_disconnected(self) -> None:
        self.ctx.error_type = "client_disconnected"
        self.ctx.status = 499

    @staticmethod
    async def _write(send: Send, body: bytes, *, more: bool) -> None:
        if body or not more:
            await send({"type": "http.response.body", "body": body, "more_body": more})

    async def _emit_all(self, chunks: list[dict[str, Any]], send: Send) -> None:
        # Chunks that arrived in one upstream read leave in one write: no added delay, and one
        # ASGI send instead of many (measured per-chunk cost on streams).
        out = b""
        try:
            for chunk in chunks:
                out += self._chunk_bytes(chunk)
        finally:
            # Also when a guard ends the stream: what was screened before it still goes out.
            if out:
                if self.ctx.ttft_ms is None:
                    self.ctx.ttft_ms = (time.perf_counter() - self.ctx.started) * 1000
                await self._write(send, out, more=True)

    def _chunk_bytes(self, chunk: dict[str, Any]) -> bytes:
        choices = chunk.get("choices")
        if not choices:
            if "usage" in chunk:
                self.usage_chunk = chunk
            return b""
        out = b""
        for choice in choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            index = choice.get("index", 0)
            if content:
                self.emitted_text.append(content)
                if self.screeners.active:
                    delta["content"] = self.screeners.feed(index, content)
            if choice.get("finish_reason") and self.screeners.active:
                # Text held back for entity detection goes out before the choice ends.
                out += self._flush_screeners(chunk, index)
        return out + self.encoder.feed(chunk)

    def _flush_screeners(self, template: dict[str, Any] | None, index: int | None) -> bytes:
        out = b""
        for choice_index, tail in self.screeners.flush(index):
            base = template or {}
            chunk = {
                "id": base.get("id", ""),
                "object": "chat.completion.chunk",
                "created": base.get("created", 0),
                "model": base.get("model", ""),
                "choices": [{"index": choice_index, "delta": {"content": tail}, "finish_reason": None}],
            }
            out += self.encoder.feed(chunk)
        return out

    async def _account(self) -> None:
        ctx = self.ctx
        translator = self.dispatched.stream
        ctx.usage = translator.usage if translator is not None else None
        if ctx.usage is None:
            ctx.usage = self.s.estimated_usage_from_text(ctx, "".join(self.emitted_text))
        try:
            await self.s.settle(ctx)
        finally:
            self.s.finish(ctx)


class ChoiceScreeners:
    """One response screener per choice index, created on first use; inactive without rules."""

    def __init__(self, guard: Any, rules: ResponseRules, restorer: Any, status: int) -> None:
        self._guard = guard
        self._status = status
        self._rules = rules
        self._restorer = restorer
        self.active = bool(rules.redact or rules.deny_on or restorer is not None)
        self._by_choice: dict[int, Any] = {}

    def feed(self, index: int, text: str) -> str:
        screener = self._by_choice.get(index)
        if screener is None:
            screener = self._by_choice[index] = self._guard.stream_screener(
                self._rules, self._restorer, status=self._status
            )
        return str(screener.feed(text))

    def flush(self, index: int | None) -> list[tuple[int, str]]:
        indexes = list(self._by_choice) if index is None else [index]
        tails = []
        for i in indexes:
            screener = self._by_choice.pop(i, None)
            if screener is not None:
                tail = screener.flush()
                if tail:
                    tails.append((i, tail))
        return tails
