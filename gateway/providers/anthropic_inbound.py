"""The inbound Anthropic Messages API (``POST /v1/messages``) over the canonical model.

An Anthropic SDK request becomes a canonical OpenAI request (so policy, limits, routing and any
provider apply unchanged); the canonical answer becomes an Anthropic ``message``, and canonical
stream chunks become Anthropic SSE events through ``AnthropicEventEncoder``, an incremental
state machine (one per response). Prompt-caching hints (``cache_control``) are accepted and
not forwarded; thinking blocks in the history are dropped (other providers cannot replay them).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from gateway.errors import GatewayError, InvalidRequestError, UpstreamStatusError
from gateway.providers import canonical as c
from gateway.providers.sse import encode_event
from gateway.types import Usage

SUPPORTED = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p",
        "tools", "tool_choice", "metadata", "stream",
    }
)  # fmt: skip

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

#: Gateway error type (OpenAI) → Anthropic error type, for bodies and stream ``error`` events.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# --------------------------------------------------------------------------- requests


def to_canonical(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request → canonical OpenAI chat request."""
    for key, value in body.items():
        if key not in SUPPORTED and value is not None:
            raise c.unsupported(key, "openai (inbound Anthropic API)")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidRequestError("messages: field required and must be a non-empty array.", param="messages")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = (
            system
            if isinstance(system, str)
            else "".join(b.get("text", "") for b in system if b.get("type") == "text")
        )
        messages.append({"role": "system", "content": text})
    for i, message in enumerate(body["messages"]):
        role = message.get("role")
        if role == "user":
            messages.extend(_user_messages(message.get("content"), i))
        elif role == "assistant":
            messages.append(_assistant_message(message.get("content")))
        else:
            raise InvalidRequestError(
                f"messages.{i}.role: must be 'user' or 'assistant'.", param=f"messages.{i}.role"
            )
    canonical: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        canonical["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            canonical[name] = body[name]
    if body.get("stop_sequences"):
        canonical["stop"] = list(body["stop_sequences"])
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        canonical["user"] = user_id
    if body.get("stream"):
        canonical["stream"] = True
        canonical["stream_options"] = {"include_usage": True}
    _tools(canonical, body)
    return canonical


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    raise InvalidRequestError(
        "message content must be a string or an array of content blocks.", param="messages"
    )


def _user_messages(content: Any, index: int) -> list[dict[str, Any]]:
    # tool_result blocks become OpenAI `tool` messages, which must come first (right after the
    # assistant turn that made the calls); the remaining blocks form one user message.
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "tool_result":
            result = block.get("content")
            text = (
                result
                if isinstance(result, str)
                else "".join(b.get("text", "") for b in (result or []) if b.get("type") == "text")
            )
            if block.get("is_error"):
                text = f"Error: {text}"
            tool_messages.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
            )
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(
                {"type": "image_url", "image_url": {"url": _source_url(block.get("source") or {}, index)}}
            )
        elif kind == "document":
            parts.append(_document_part(block.get("source") or {}, index))
        else:
            raise c.unsupported(
                f"messages.{index}.content.{kind}", "openai (inbound Anthropic API)", "block type"
            )
    messages = tool_messages
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        messages.append(
            {"role": "user", "content": "".join(p["text"] for p in parts) if only_text else parts}
        )
    return messages


def _source_url(source: dict[str, Any], index: int) -> str:
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'application/octet-stream')};base64,{source.get('data', '')}"
    if source.get("type") == "url":
        return str(source.get("url", ""))
    raise c.unsupported(
        f"messages.{index}.content.source.{source.get('type')}", "openai (inbound Anthropic API)"
    )


def _document_part(source: dict[str, Any], index: int) -> dict[str, Any]:
    if source.get("type") == "text":
        data = base64.b64encode(str(source.get("data", "")).encode()).decode()
        return {"type": "file", "file": {"file_data": f"data:text/plain;base64,{data}"}}
    if source.get("type") == "base64":
        return {"type": "file", "file": {"file_data": _source_url(source, index)}}
    raise c.unsupported(
        f"messages.{index}.content.document", "openai (inbound Anthropic API)", "only inline documents"
    )


def _assistant_message(content: Any) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in _blocks(content):
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(
                c.tool_call(block.get("id", ""), block.get("name", ""), c.dumps(block.get("input") or {}))
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(canonical: dict[str, Any], body: dict[str, Any]) -> None:
    tools = body.get("tools") or []
    if tools:
        canonical["tools"] = []
        for tool in tools:
            if tool.get("type") not in (None, "custom"):
                raise c.unsupported(
                    "tools.type", "openai (inbound Anthropic API)", f"server tool '{tool.get('type')}'"
                )
            function: dict[str, Any] = {
                "name": tool.get("name", ""),
                "parameters": tool.get("input_schema") or {},
            }
            if tool.get("description"):
                function["description"] = tool["description"]
            canonical["tools"].append({"type": "function", "function": function})
    choice = body.get("tool_choice")
    if not choice:
        return
    kind = choice.get("type")
    if kind == "tool":
        canonical["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    else:
        canonical["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(kind, "auto")
    if choice.get("disable_parallel_tool_use"):
        canonical["parallel_tool_calls"] = False


# --------------------------------------------------------------------------- responses


def _usage(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens, 0),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def usage_from_body(body: dict[str, Any] | None) -> Usage | None:
    if not body:
        return None
    cached = int((body.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return Usage(
        prompt_tokens=int(body.get("prompt_tokens") or 0),
        completion_tokens=int(body.get("completion_tokens") or 0),
        cached_tokens=cached,
    )


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def from_canonical(body: dict[str, Any], public_model: str, usage: Usage | None = None) -> dict[str, Any]:
    """A canonical chat.completion → an Anthropic ``message``. ``usage`` (the translator's own)
    is preferred to the body's, since it also knows cache writes."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": c.loads_arguments(function.get("arguments")),
            }
        )
    return {
        "id": new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": public_model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(usage or usage_from_body(body.get("usage"))),
    }


def error_body(error: GatewayError) -> dict[str, Any]:
    """Anthropic's error body for a gateway error (same status on the HTTP response)."""
    kind = ERROR_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def error_event(error: GatewayError) -> bytes:
    """A mid-stream failure as Anthropic's SSE ``error`` event."""
    return encode_event("error", error_body(error))


class AnthropicEventEncoder:
    """Canonical chunks → Anthropic SSE events (bytes), one content block at a time.

    A tool call opens a ``tool_use`` block when its id/name chunk arrives; its argument
    fragments become ``input_json_delta`` events. ``message_delta`` (stop reason, usage) and
    ``message_stop`` are held until ``close`` because OpenAI sends usage after the finish chunk.
    """

    def __init__(self, public_model: str) -> None:
        self._model = public_model
        self._started = False
        self._block_index = -1
        self._open: str | None = None  # "text" or "tool:<openai index>"
        self._tool_blocks: dict[int, int] = {}
        self._stop_reason = "end_turn"
        self.usage: Usage | None = None

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        if chunk.get("usage"):
            self.usage = usage_from_body(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text(delta["content"], out)
            for call in delta.get("tool_calls") or []:
                self._tool(call, out)
            if choice.get("finish_reason"):
                self._stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
                self._close_block(out)
        return b"".join(out)

    def close(self, usage: Usage | None = None) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        self._close_block(out)
        final = _usage(usage or self.usage)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason, "stop_sequence": None},
            "usage": final,
        }
        out.append(encode_event("message_delta", delta))
        out.append(encode_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        message: dict[str, Any] = {
            "id": new_message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(encode_event("message_start", {"type": "message_start", "message": message}))

    def _open_block(self, kind: str, block: dict[str, Any], out: list[bytes]) -> None:
        self._close_block(out)
        self._block_index += 1
        self._open = kind
        out.append(
            encode_event(
                "content_block_start",
                {"type": "content_block_start", "index": self._block_index, "content_block": block},
            )
        )

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(
                encode_event("content_block_stop", {"type": "content_block_stop", "index": self._block_index})
            )
            self._open = None

    def _text(self, text: str, out: list[bytes]) -> None:
        if self._open != "text":
            self._open_block("text", {"type": "text", "text": ""}, out)
        delta = {"type": "text_delta", "text": text}
        out.append(
            encode_event(
                "content_block_delta",
                {"type": "content_block_delta", "index": self._block_index, "delta": delta},
            )
        )

    def _tool(self, call: dict[str, Any], out: list[bytes]) -> None:
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if call.get("id") or index not in self._tool_blocks:
            block = {
                "type": "tool_use",
                "id": call.get("id") or c.new_call_id(),
                "name": function.get("name", ""),
                "input": {},
            }
            self._open_block(f"tool:{index}", block, out)
            self._tool_blocks[index] = self._block_index
        fragment = function.get("arguments")
        if fragment:
            if self._open != f"tool:{index}":
                # Anthropic blocks cannot be reopened; OpenAI upstreams finish one call before the next.
                raise UpstreamStatusError(
                    "Interleaved tool-call argument streams cannot be sent as Anthropic events.", status=502
                )
            delta = {"type": "input_json_delta", "partial_json": fragment}
            event = {"type": "content_block_delta", "index": self._block_index, "delta": delta}
            out.append(encode_event("content_block_delta", event))
