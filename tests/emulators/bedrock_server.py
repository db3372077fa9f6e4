"""A local Bedrock Runtime: ``POST /model/{modelId}/converse`` and ``/converse-stream``.

Requests must carry a SigV4 signature that this server re-derives with botocore from the
emulator's credentials (or a Bedrock API key as a bearer token). The stream is written in the
AWS event-stream binary framing (prelude, headers, payload, CRC32s), which botocore's decoder
reads; botocore has no encoder, so the small one here follows the documented layout.
"""

from __future__ import annotations

import binascii
import itertools
import struct
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.emulators.script import Emulator, Reply, fragments, serve

ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: string-typed headers (type 7), CRC32 of prelude and message."""
    encoded = b"".join(
        struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value)) + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, orjson.dumps(payload))


class BedrockEmulator(Emulator):
    def __init__(
        self, access_key: str = "AKIDEMULATOR", secret_key: str = "emulator-secret", region: str = "us-east-1"
    ) -> None:
        super().__init__(api_key="bedrock-api-key")
        self.access_key, self.secret_key, self.region = access_key, secret_key, region

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/model/{model}/converse", self.converse)
        app.router.add_post("/model/{model}/converse-stream", self.converse)
        return app

    def error(self, status: int, message: str, retry_after: str | None = None) -> web.Response:
        name = ERRORS.get(status, "InternalServerException")
        headers = {"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
        if retry_after:
            headers["retry-after"] = retry_after
        return web.Response(
            body=orjson.dumps({"message": message}),
            status=status,
            headers=headers,
            content_type="application/json",
        )

    def signature_ok(self, request: web.Request, body: bytes) -> bool:
        authorization = request.headers.get("authorization", "")
        if authorization == f"Bearer {self.api_key}":
            return True
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return False
        fields = dict(
            item.strip().split("=", 1) for item in authorization[len("AWS4-HMAC-SHA256 ") :].split(",")
        )
        signed = fields.get("SignedHeaders", "").split(";")
        headers = {name: request.headers[name] for name in signed if name in request.headers}
        url = f"http://{request.headers['host']}{request.raw_path}"
        aws_request = AWSRequest(method=request.method, url=url, data=body, headers=headers)
        aws_request.context["timestamp"] = request.headers.get("x-amz-date", "")
        signer = SigV4Auth(
            Credentials(self.access_key, self.secret_key, request.headers.get("x-amz-security-token")),
            "bedrock",
            self.region,
        )
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        return bool(
            fields.get("Signature") == expected
            and fields.get("Credential", "").startswith(self.access_key + "/")
        )

    async def converse(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw or b"null")
        self.requests.append({"path": request.raw_path, "headers": dict(request.headers), "body": body})
        if not self.signature_ok(request, raw):
            return self.error(
                403, "The request signature we calculated does not match the signature you provided."
            )
        problem = self.validate(body)
        if problem:
            return self.error(400, problem)
        reply = self.next_reply()
        if reply.error_status:
            return self.error(reply.error_status, reply.error_message, reply.retry_after)
        if request.path.endswith("/converse-stream"):
            return await self.send_events(
                request, reply, self.events(reply), "application/vnd.amazon.eventstream"
            )
        return web.json_response(self.response(reply))

    def validate(self, body: Any) -> str | None:
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return "1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must not be null"  # noqa: E501
        if messages[0].get("role") != "user":
            return "A conversation must start with a user message."
        for previous, current in itertools.pairwise(messages):
            if previous.get("role") == current.get("role"):
                return "A conversation must alternate between user and assistant roles."
        return None

    def stream_error(self, reply: Reply) -> bytes:
        headers = {
            ":exception-type": "throttlingException",
            ":content-type": "application/json",
            ":message-type": "exception",
        }
        return frame(
            headers, orjson.dumps({"message": "Too many requests, please wait before trying again."})
        )

    def _usage(self, reply: Reply) -> dict[str, Any]:
        usage = {
            "inputTokens": reply.input_tokens,
            "outputTokens": reply.output_tokens,
            "totalTokens": reply.input_tokens
            + reply.output_tokens
            + reply.cache_read_tokens
            + reply.cache_write_tokens,
        }
        if reply.cache_read_tokens or reply.cache_write_tokens:
            usage |= {
                "cacheReadInputTokens": reply.cache_read_tokens,
                "cacheWriteInputTokens": reply.cache_write_tokens,
            }
        return usage

    def _stop(self, reply: Reply) -> str:
        return reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")

    def response(self, reply: Reply) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
        for call in reply.tool_calls:
            use = {
                "toolUseId": call.id or "tooluse_" + uuid.uuid4().hex[:22],
                "name": call.name,
                "input": call.arguments,
            }
            content.append({"toolUse": use})
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self._stop(reply),
            "usage": self._usage(reply),
            "metrics": {"latencyMs": 42},
        }

    def events(self, reply: Reply) -> list[bytes]:
        events = [event("messageStart", {"role": "assistant"})]
        index = 0
        if reply.text:
            for piece in fragments(reply.text, reply.fragment):
                events.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
            events.append(event("contentBlockStop", {"contentBlockIndex": 0}))
            index = 1
        for call in reply.tool_calls:
            start = {
                "toolUse": {"toolUseId": call.id or "tooluse_" + uuid.uuid4().hex[:22], "name": call.name}
            }
            events.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            for piece in fragments(orjson.dumps(call.arguments).decode(), reply.fragment):
                events.append(
                    event(
                        "contentBlockDelta",
                        {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}},
                    )
                )
            events.append(event("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        events.append(event("messageStop", {"stopReason": self._stop(reply)}))
        events.append(event("metadata", {"usage": self._usage(reply), "metrics": {"latencyMs": 42}}))
        return events


@asynccontextmanager
async def serve_bedrock(
    access_key: str = "AKIDEMULATOR", secret_key: str = "emulator-secret", region: str = "us-east-1"
) -> AsyncIterator[BedrockEmulator]:
    async with serve(BedrockEmulator(access_key, secret_key, region)) as emulator:
        assert isinstance(emulator, BedrockEmulator)
        yield emulator
