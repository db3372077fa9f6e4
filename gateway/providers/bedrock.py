"""Canonical (OpenAI) ⇄ AWS Bedrock Converse / ConverseStream, signed with SigV4 by botocore.

botocore is an optional extra (``pip install 'gateway[bedrock]'``), imported only when a Bedrock
deployment is used. Credentials: ``options.aws_access_key_id`` with the secret access key in
``api_key`` (a secret reference) or ``options.aws_secret_access_key``, optional
``options.aws_session_token``; without an access key id, ``api_key`` is sent as a Bedrock API
key (``Authorization: Bearer``). The stream is AWS event-stream binary framing, decoded by
botocore's ``EventStreamBuffer``. Usage: ``inputTokens`` excludes cache reads/writes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from gateway.errors import InvalidRequestError, ServiceUnavailableError, UpstreamStatusError
from gateway.providers import bedrock_messages as messages
from gateway.providers import canonical as c
from gateway.providers.base import CanonicalResponse, Endpoint, Target, UpstreamRequest
from gateway.types import Usage

PROVIDER_TYPE = "bedrock"
SIGNING_NAME = "bedrock"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

#: Bedrock exception name → (OpenAI error type, status when it arrives inside a stream).
ERROR_TYPES: dict[str, tuple[str, int]] = {
    "ValidationException": ("invalid_request_error", 400),
    "AccessDeniedException": ("permission_error", 403),
    "ResourceNotFoundException": ("not_found_error", 404),
    "ThrottlingException": ("rate_limit_error", 429),
    "ServiceQuotaExceededException": ("rate_limit_error", 429),
    "ModelTimeoutException": ("api_error", 408),
    "ModelNotReadyException": ("api_error", 429),
    "ModelErrorException": ("api_error", 424),
    "ModelStreamErrorException": ("api_error", 424),
    "InternalServerException": ("api_error", 500),
    "ServiceUnavailableException": ("api_error", 503),
}


def require_botocore() -> Any:
    """botocore's modules, or a clear error naming the extra (call at start-up to fail early)."""
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.eventstream
    except ImportError as exc:  # the optional extra is missing
        raise ServiceUnavailableError(
            "Bedrock deployments need botocore: install the gateway with the 'bedrock' extra "
            "(pip install 'gateway[bedrock]')."
        ) from exc
    return botocore


class BedrockTranslator:
    def build_request(
        self, endpoint: Endpoint, body: dict[str, Any], target: Target, *, stream: bool
    ) -> UpstreamRequest:
        if endpoint != "chat.completions":
            raise c.unsupported("endpoint", PROVIDER_TYPE, f"no '{endpoint}' API")
        region = target.options.get("region")
        if not region:
            raise InvalidRequestError(f"Deployment '{target.deployment}' needs options.region for Bedrock.")
        base = (target.base_url or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        url = f"{base}/model/{quote(target.model, safe='')}/{'converse-stream' if stream else 'converse'}"
        payload = orjson.dumps(messages.to_native(body))
        headers = {"content-type": "application/json", **target.headers}
        return UpstreamRequest("POST", url, self._auth(headers, url, payload, target, region), payload)

    def _auth(
        self, headers: dict[str, str], url: str, payload: bytes, target: Target, region: str
    ) -> dict[str, str]:
        access_key = target.options.get("aws_access_key_id")
        if not access_key:
            if target.api_key:
                headers["authorization"] = f"Bearer {target.api_key}"
            return headers
        secret = target.options.get("aws_secret_access_key") or target.api_key
        if not secret:
            raise InvalidRequestError(
                f"Deployment '{target.deployment}' has an AWS access key id but no secret."
            )
        botocore = require_botocore()
        credentials = botocore.credentials.Credentials(
            access_key, secret, target.options.get("aws_session_token")
        )
        request = botocore.awsrequest.AWSRequest(method="POST", url=url, data=payload, headers=headers)
        botocore.auth.SigV4Auth(credentials, SIGNING_NAME, region).add_auth(request)
        return dict(request.headers.items())

    def parse_response(
        self, endpoint: Endpoint, status: int, body: bytes, target: Target, public_model: str
    ) -> CanonicalResponse:
        return from_native(orjson.loads(body), public_model)

    def stream(self, endpoint: Endpoint, target: Target, public_model: str) -> BedrockStream:
        return BedrockStream(public_model)

    def parse_error(
        self, status: int, headers: dict[str, str], body: bytes, target: Target
    ) -> UpstreamStatusError:
        lowered = {k.lower(): v for k, v in headers.items()}
        name = lowered.get("x-amzn-errortype", "").split(":", 1)[0]
        try:
            message = str(orjson.loads(body).get("message") or "")
        except (orjson.JSONDecodeError, AttributeError):
            message = ""
        return native_error(name, message, status, lowered.get("retry-after"))


def native_error(
    name: str, message: str, status: int | None, retry_after: str | None = None
) -> UpstreamStatusError:
    # Stream exceptions name the union member (``throttlingException``), HTTP errors the shape.
    name = name[:1].upper() + name[1:]
    openai_type, default_status = ERROR_TYPES.get(name, ("", 500))
    status = status or default_status
    headers = {"retry-after": retry_after} if retry_after else None
    return UpstreamStatusError(
        message or f"Bedrock returned {name or status}",
        status=status,
        type=openai_type or c.error_type_for_status(status),
        code=name or None,
        headers=headers,
    )


def usage_of(native: dict[str, Any]) -> Usage:
    cache_read = int(native.get("cacheReadInputTokens") or 0)
    cache_write = int(native.get("cacheWriteInputTokens") or 0)
    return Usage(
        prompt_tokens=int(native.get("inputTokens") or 0) + cache_read + cache_write,
        completion_tokens=int(native.get("outputTokens") or 0),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def from_native(native: dict[str, Any], public_model: str) -> CanonicalResponse:
    message = (native.get("output") or {}).get("message") or {}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    json_answer = False
    for block in message.get("content") or []:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            if use.get("name") == c.JSON_TOOL_NAME:
                texts.append(c.dumps(use.get("input", {})))
                json_answer = True
            else:
                calls.append(
                    c.tool_call(use.get("toolUseId", ""), use.get("name", ""), c.dumps(use.get("input", {})))
                )
    finish = FINISH_REASONS.get(native.get("stopReason") or "end_turn", "stop")
    if json_answer and finish == "tool_calls":
        finish = "stop"
    usage = usage_of(native.get("usage") or {})
    content = "".join(texts) if texts or not calls else None
    body = c.chat_completion("chatcmpl-" + c.new_call_id()[5:], public_model, content, calls, finish, usage)
    return CanonicalResponse(body=body, usage=usage)


class BedrockStream:
    """ConverseStream event-stream frames → OpenAI chunks, fed raw bytes in any split."""

    def __init__(self, public_model: str) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._buffer = require_botocore().eventstream.EventStreamBuffer()
        self._chunks = c.ChunkFactory(public_model)
        self._stopped = False
        self._usage_sent = False
        self._tool_blocks: dict[int, int | None] = {}
        self._tool_count = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self._buffer.add_data(data)
        for message in self._buffer:
            self._message(message.headers, message.payload, out)
        return out

    def close(self) -> list[dict[str, Any]]:
        if not self._stopped:
            raise UpstreamStatusError(
                "Bedrock stream ended before messageStop.", status=502, type="api_error"
            )
        out: list[dict[str, Any]] = []
        if self.usage is not None and not self._usage_sent:
            out.append(self._chunks.usage(self.usage))
        return out

    def _message(self, headers: dict[str, Any], payload: bytes, out: list[dict[str, Any]]) -> None:
        kind = headers.get(":message-type")
        if kind == "exception":
            body = orjson.loads(payload) if payload else {}
            raise native_error(str(headers.get(":exception-type", "")), str(body.get("message", "")), None)
        if kind == "error":
            raise native_error(
                str(headers.get(":error-code", "")), str(headers.get(":error-message", "")), None
            )
        event = str(headers.get(":event-type", ""))
        body = orjson.loads(payload) if payload else {}
        if event == "messageStart":
            out.append(self._chunks.role())
        elif event == "contentBlockStart":
            use = (body.get("start") or {}).get("toolUse")
            if use is not None:
                self._tool_start(int(body.get("contentBlockIndex", 0)), use, out)
        elif event == "contentBlockDelta":
            self._delta(int(body.get("contentBlockIndex", 0)), body.get("delta") or {}, out)
        elif event == "messageStop":
            finish = FINISH_REASONS.get(body.get("stopReason") or "end_turn", "stop")
            if finish == "tool_calls" and self._tool_count == 0:
                finish = "stop"  # only the JSON-answer tool was used
            self.finish_reason = finish
            self._stopped = True
            out.append(self._chunks.finish(finish))
        elif event == "metadata":
            self.usage = usage_of(body.get("usage") or {})
            if self._stopped:
                self._usage_sent = True
                out.append(self._chunks.usage(self.usage))

    def _tool_start(self, block_index: int, use: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if use.get("name") == c.JSON_TOOL_NAME:
            self._tool_blocks[block_index] = None
            return
        index = self._tool_count
        self._tool_count += 1
        self._tool_blocks[block_index] = index
        out.append(self._chunks.tool_call_start(index, use.get("toolUseId", ""), use.get("name", "")))

    def _delta(self, block_index: int, delta: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if delta.get("text"):
            out.append(self._chunks.content(delta["text"]))
        elif "toolUse" in delta:
            fragment = (delta["toolUse"] or {}).get("input") or ""
            if not fragment:
                return
            tool_index = self._tool_blocks.get(block_index)
            if tool_index is None:
                out.append(self._chunks.content(fragment))
            else:
                out.append(self._chunks.tool_call_arguments(tool_index, fragment))
