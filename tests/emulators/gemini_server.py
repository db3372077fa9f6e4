"""A local Gemini API (AI Studio paths) and Vertex AI (project/location paths).

Serves ``:generateContent``, ``:streamGenerateContent?alt=sse``, ``:embedContent``,
``:batchEmbedContents`` and Vertex ``:predict``; errors as google.rpc.Status bodies. AI Studio
checks ``x-goog-api-key``; Vertex checks ``Authorization: Bearer``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from tests.emulators.script import Emulator, Reply, fragments, serve

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}


def vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(digest[i % len(digest)] / 255.0, 6) for i in range(dimensions)]


class GeminiEmulator(Emulator):
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.dispatch)
        return app

    def error(self, status: int, message: str, retry_after: str | None = None) -> web.Response:
        headers = {"retry-after": retry_after} if retry_after else None
        return web.Response(
            body=orjson.dumps(status_body(status, message)),
            status=status,
            headers=headers,
            content_type="application/json",
        )

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body = orjson.loads(await request.read() or b"null")
        vertex = "/projects/" in path
        self.requests.append(
            {"path": path, "query": dict(request.query), "headers": dict(request.headers), "body": body}
        )
        if vertex and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Request had invalid authentication credentials.")
        if not vertex and request.headers.get("x-goog-api-key") != self.api_key:
            return self.error(400, "API key not valid. Please pass a valid API key.")
        model_path, _, method = path.rpartition(":")
        if "/models/" not in model_path:
            return self.error(404, f"Requested entity was not found: {path}")
        reply = self.next_reply()
        if reply.error_status:
            return self.error(reply.error_status, reply.error_message, reply.retry_after)
        if method == "generateContent":
            problem = self.validate(body)
            return (
                self.error(400, problem)
                if problem
                else web.json_response(self.response(reply, final=True, text=reply.text))
            )
        if method == "streamGenerateContent":
            if request.query.get("alt") != "sse":
                return self.error(400, "this emulator serves streamGenerateContent with alt=sse only")
            problem = self.validate(body)
            return (
                self.error(400, problem)
                if problem
                else await self.send_events(request, reply, self.events(reply), "text/event-stream")
            )
        if method == "embedContent":
            dims = body.get("outputDimensionality") or 8
            return web.json_response(
                {"embedding": {"values": vector(body["content"]["parts"][0]["text"], dims)}}
            )
        if method == "batchEmbedContents":
            out = [
                {"values": vector(r["content"]["parts"][0]["text"], r.get("outputDimensionality") or 8)}
                for r in body["requests"]
            ]
            return web.json_response({"embeddings": out})
        if method == "predict" and vertex:
            dims = (body.get("parameters") or {}).get("outputDimensionality") or 8
            predictions = [
                {
                    "embeddings": {
                        "values": vector(i["content"], dims),
                        "statistics": {"token_count": len(i["content"].split()), "truncated": False},
                    }
                }
                for i in body["instances"]
            ]
            return web.json_response({"predictions": predictions})
        return self.error(404, f"Method not found: {method}")

    def validate(self, body: Any) -> str | None:
        contents = body.get("contents") if isinstance(body, dict) else None
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        for i, content in enumerate(contents):
            if content.get("role") not in ("user", "model"):
                return f"* GenerateContentRequest.contents[{i}].role: must be user or model"
            if not content.get("parts"):
                return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        return None

    def stream_error(self, reply: Reply) -> bytes:
        return (
            b"data: "
            + orjson.dumps(status_body(503, "The model is overloaded. Please try again later."))
            + b"\r\n\r\n"
        )

    def _usage(self, reply: Reply) -> dict[str, Any]:
        usage = {
            "promptTokenCount": reply.input_tokens + reply.cache_read_tokens,
            "candidatesTokenCount": reply.output_tokens,
            "totalTokenCount": reply.input_tokens + reply.cache_read_tokens + reply.output_tokens,
        }
        if reply.cache_read_tokens:
            usage["cachedContentTokenCount"] = reply.cache_read_tokens
        return usage

    def response(self, reply: Reply, *, final: bool, text: str | None, calls: bool = True) -> dict[str, Any]:
        base: dict[str, Any] = {
            "modelVersion": "gemini-emulated",
            "responseId": "resp-" + uuid.uuid4().hex[:12],
        }
        if reply.prompt_blocked:
            return base | {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": self._usage(reply)}
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        if calls:
            parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in reply.tool_calls]
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = reply.stop_reason or "STOP"
        return base | {"candidates": [candidate], "usageMetadata": self._usage(reply)}

    def events(self, reply: Reply) -> list[bytes]:
        if reply.prompt_blocked:
            return [b"data: " + orjson.dumps(self.response(reply, final=True, text=None)) + b"\r\n\r\n"]
        pieces = fragments(reply.text, reply.fragment) if reply.text else []
        payloads = [self.response(reply, final=False, text=piece, calls=False) for piece in pieces]
        payloads.append(self.response(reply, final=True, text=None))
        return [b"data: " + orjson.dumps(p) + b"\r\n\r\n" for p in payloads]


@asynccontextmanager
async def serve_gemini(api_key: str = "test-key") -> AsyncIterator[GeminiEmulator]:
    async with serve(GeminiEmulator(api_key)) as emulator:
        assert isinstance(emulator, GeminiEmulator)
        yield emulator
