"""A local Anthropic Messages API (``POST /v1/messages``), JSON and SSE, as documented.

Usage::

    async with serve_anthropic() as anthropic:
        anthropic.push(Reply(text="Hi", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
        ... anthropic.base_url ... anthropic.requests[-1]["body"] ...
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from tests.emulators.script import Emulator, Reply, fragments, serve

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def sse(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_" + uuid.uuid4().hex[:20],
    }


class AnthropicEmulator(Emulator):
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        return app

    def error(self, status: int, message: str, retry_after: str | None = None) -> web.Response:
        headers = {"retry-after": retry_after} if retry_after else None
        return web.json_response(
            error_body(status, message),
            status=status,
            headers=headers,
            dumps=lambda v: orjson.dumps(v).decode(),
        )

    def validate(self, headers: Any, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body: must be a JSON object"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: Field required"
        if messages[0].get("role") != "user":
            return 'messages: first message must use the "user" role'
        for previous, current in itertools.pairwise(messages):
            if previous.get("role") == current.get("role"):
                return 'messages: roles must alternate between "user" and "assistant"'
        if "system" in body and not isinstance(body["system"], str | list):
            return "system: Input should be a valid string or list"
        return None

    async def messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        self.requests.append({"headers": dict(request.headers), "body": body})
        # The documented x-api-key, or a bearer token (what recent official SDKs send).
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key not in (request.headers.get("x-api-key"), bearer):
            return self.error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        problem = self.validate(request.headers, body)
        if problem:
            return self.error(400, problem)
        reply = self.next_reply()
        if reply.error_status:
            return self.error(reply.error_status, reply.error_message, reply.retry_after)
        if body.get("stream"):
            return await self.send_events(request, reply, self.events(body, reply), "text/event-stream")
        return web.Response(body=orjson.dumps(self.message(body, reply)), content_type="application/json")

    def stream_error(self, reply: Reply) -> bytes:
        return sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    def _stop_reason(self, reply: Reply) -> str:
        return reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")

    def _usage(self, reply: Reply, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": reply.input_tokens,
            "cache_creation_input_tokens": reply.cache_write_tokens,
            "cache_read_input_tokens": reply.cache_read_tokens,
            "output_tokens": output_tokens,
        }

    def _tool_ids(self, reply: Reply) -> list[str]:
        return [call.id or "toolu_" + uuid.uuid4().hex[:24] for call in reply.tool_calls]

    def message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        for call, call_id in zip(reply.tool_calls, self._tool_ids(reply), strict=True):
            content.append({"type": "tool_use", "id": call_id, "name": call.name, "input": call.arguments})
        return {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": self._stop_reason(reply),
            "stop_sequence": None,
            "usage": self._usage(reply, reply.output_tokens),
        }

    def events(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        start = self.message(body, reply) | {
            "content": [],
            "stop_reason": None,
            "usage": self._usage(reply, 1),
        }
        events = [sse("message_start", {"type": "message_start", "message": start})]
        index = 0
        if reply.text:
            block = {"type": "text", "text": ""}
            events.append(
                sse(
                    "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
                )
            )
            events.append(sse("ping", {"type": "ping"}))
            for piece in fragments(reply.text, reply.fragment):
                delta = {"type": "text_delta", "text": piece}
                events.append(
                    sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
                )
            events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        for call, call_id in zip(reply.tool_calls, self._tool_ids(reply), strict=True):
            block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
            events.append(
                sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
            for piece in fragments(orjson.dumps(call.arguments).decode(), reply.fragment):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    sse(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
                )
            events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        final = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(reply), "stop_sequence": None},
        }
        final["usage"] = {"output_tokens": reply.output_tokens}
        events.append(sse("message_delta", final))
        events.append(sse("message_stop", {"type": "message_stop"}))
        return events


@asynccontextmanager
async def serve_anthropic(api_key: str = "test-key") -> AsyncIterator[AnthropicEmulator]:
    async with serve(AnthropicEmulator(api_key)) as emulator:
        assert isinstance(emulator, AnthropicEmulator)
        yield emulator
