"""Canonical (OpenAI chat completions) ⇄ Anthropic Messages API.

Request: system messages become ``system``; parts become content blocks; tool calls and tool
results become ``tool_use`` / ``tool_result`` blocks (consecutive results merged into one user
turn, as Anthropic requires alternating roles). Response and stream come back as OpenAI shapes.
``response_format`` is emulated with a forced tool (``canonical.JSON_TOOL_NAME``) whose input is
returned as the message content. Usage: Anthropic's ``input_tokens`` excludes cache reads and
writes, OpenAI's ``prompt_tokens`` includes them, so prompt = input + cache read + cache write.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequestError, UpstreamStatusError
from gateway.providers import canonical as c
from gateway.providers.base import CanonicalResponse, Endpoint, Target, UpstreamRequest
from gateway.providers.sse import SSEDecoder
from gateway.types import Usage

PROVIDER_TYPE = "anthropic"
API_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"

SUPPORTED = frozenset(
    {
        "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools",
        "tool_choice", "parallel_tool_calls", "response_format", "user",
    }
)  # fmt: skip

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Anthropic error type → (OpenAI error type, status used when the body arrives without one).
ERROR_TYPES: dict[str, tuple[str, int]] = {
    "invalid_request_error": ("invalid_request_error", 400),
    "authentication_error": ("authentication_error", 401),
    "billing_error": ("insufficient_quota", 402),
    "permission_error": ("permission_error", 403),
    "not_found_error": ("not_found_error", 404),
    "request_too_large": ("invalid_request_error", 413),
    "rate_limit_error": ("rate_limit_error", 429),
    "timeout_error": ("api_error", 504),
    "api_error": ("api_error", 500),
    "overloaded_error": ("api_error", 529),
}


class AnthropicTranslator:
    def build_request(
        self, endpoint: Endpoint, body: dict[str, Any], target: Target, *, stream: bool
    ) -> UpstreamRequest:
        if endpoint != "chat.completions":
            raise c.unsupported("endpoint", PROVIDER_TYPE, f"no '{endpoint}' API")
        native = to_native(body, target.model)
        if stream:
            native["stream"] = True
        headers = {
            "content-type": "application/json",
            "anthropic-version": target.api_version or API_VERSION,
            **target.headers,
        }
        if target.api_key:
            headers["x-api-key"] = target.api_key
        base = (target.base_url or DEFAULT_BASE_URL).rstrip("/")
        return UpstreamRequest("POST", f"{base}/v1/messages", headers, orjson.dumps(native))

    def parse_response(
        self, endpoint: Endpoint, status: int, body: bytes, target: Target, public_model: str
    ) -> CanonicalResponse:
        return from_native(orjson.loads(body), public_model)

    def stream(self, endpoint: Endpoint, target: Target, public_model: str) -> AnthropicStream:
        return AnthropicStream(public_model)

    def parse_error(
        self, status: int, headers: dict[str, str], body: bytes, target: Target
    ) -> UpstreamStatusError:
        try:
            error = orjson.loads(body).get("error") or {}
        except (orjson.JSONDecodeError, AttributeError):
            error = {}
        return native_error(error, status, retry_after=headers.get("retry-after"))


def native_error(
    error: dict[str, Any], status: int | None, retry_after: str | None = None
) -> UpstreamStatusError:
    """An Anthropic ``error`` object (HTTP body or stream event) as an ``UpstreamStatusError``.

    529 overloaded is passed through: OpenAI SDKs treat any 5xx as a retryable server error.
    """
    native_type = str(error.get("type") or "api_error")
    openai_type, default_status = ERROR_TYPES.get(native_type, ("api_error", 500))
    message = str(error.get("message") or f"Anthropic returned {native_type}")
    headers = {"retry-after": retry_after} if retry_after else None
    return UpstreamStatusError(
        message, status=status or default_status, type=openai_type, code=native_type, headers=headers
    )


# --------------------------------------------------------------------------- requests


def to_native(body: dict[str, Any], model: str) -> dict[str, Any]:
    c.check_supported(body, SUPPORTED, PROVIDER_TYPE)
    messages = c.messages_of(body)
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        if role in ("system", "developer"):
            system.append({"type": "text", "text": c.text_of(message.get("content"))})
        elif role == "user":
            c.append_turn(
                turns, "user", [_block(part, i) for part in c.content_parts(message.get("content"))]
            )
        elif role == "assistant":
            c.append_turn(turns, "assistant", _assistant_blocks(message))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": [_block(part, i) for part in c.content_parts(message.get("content"))],
            }
            c.append_turn(turns, "user", [result])
        else:
            raise InvalidRequestError(f"Unknown message role '{role}'.", param=f"messages[{i}].role")
    native: dict[str, Any] = {"model": model, "max_tokens": c.max_output_tokens(body), "messages": turns}
    if system:
        native["system"] = system
    for canonical_name, native_name in (("temperature", "temperature"), ("top_p", "top_p")):
        if body.get(canonical_name) is not None:
            native[native_name] = body[canonical_name]
    if (stop := c.stop_list(body)) is not None:
        native["stop_sequences"] = stop
    if body.get("user"):
        native["metadata"] = {"user_id": str(body["user"])}
    _add_tools(native, body)
    return native


def _block(part: dict[str, Any], message_index: int) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("text", "")}
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        data = c.parse_data_url(url)
        if data is None:
            return {"type": "image", "source": {"type": "url", "url": url}}
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": data.media_type, "data": data.data},
        }
    if kind == "file":
        data = c.file_part_data(part)
        if data.media_type == "text/plain":
            source = {"type": "text", "media_type": "text/plain", "data": data.raw().decode()}
            return {"type": "document", "source": source}
        return {
            "type": "document",
            "source": {"type": "base64", "media_type": data.media_type, "data": data.data},
        }
    raise c.unsupported(f"messages[{message_index}].content.{kind}", PROVIDER_TYPE, "content part type")


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [
        {"type": "text", "text": part.get("text", "")}
        for part in c.content_parts(message.get("content"))
        if part.get("type") == "text" and part.get("text")
    ]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": c.loads_arguments(function.get("arguments")),
            }
        )
    return blocks


def _add_tools(native: dict[str, Any], body: dict[str, Any]) -> None:
    schema = c.json_response_schema(body)
    tools = body.get("tools") or []
    if schema is not None:
        if tools:
            raise c.unsupported("response_format", PROVIDER_TYPE, "cannot be combined with tools")
        native["tools"] = [
            {
                "name": c.JSON_TOOL_NAME,
                "description": "Answer with JSON matching this schema.",
                "input_schema": schema,
            }
        ]
        native["tool_choice"] = {"type": "tool", "name": c.JSON_TOOL_NAME}
        return
    if tools:
        native["tools"] = [_tool(tool) for tool in tools]
    choice = body.get("tool_choice")
    native_choice: dict[str, Any] | None = None
    if choice == "auto":
        native_choice = {"type": "auto"}
    elif choice == "required":
        native_choice = {"type": "any"}
    elif choice == "none":
        native_choice = {"type": "none"}
    elif isinstance(choice, dict):
        native_choice = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    if body.get("parallel_tool_calls") is False and tools:
        native_choice = native_choice or {"type": "auto"}
        native_choice["disable_parallel_tool_use"] = True
    if native_choice is not None:
        native["tool_choice"] = native_choice


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise c.unsupported("tools.type", PROVIDER_TYPE, f"tool type '{tool.get('type')}'")
    function = tool.get("function") or {}
    native = {
        "name": function.get("name", ""),
        "input_schema": function.get("parameters") or {"type": "object"},
    }
    if function.get("description"):
        native["description"] = function["description"]
    return native


# --------------------------------------------------------------------------- responses


def usage_of(native: dict[str, Any], into: Usage | None = None) -> Usage:
    """Anthropic usage (message_start or message_delta, where fields may be partial) → Usage."""
    usage = into or Usage()
    old_input = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    input_tokens = native.get("input_tokens")
    cache_read = native.get("cache_read_input_tokens")
    cache_write = native.get("cache_creation_input_tokens")
    if cache_read is not None:
        usage.cached_tokens = int(cache_read)
    if cache_write is not None:
        usage.cache_write_tokens = int(cache_write)
    base = int(input_tokens) if input_tokens is not None else old_input
    usage.prompt_tokens = base + usage.cached_tokens + usage.cache_write_tokens
    if native.get("output_tokens") is not None:
        usage.completion_tokens = int(native["output_tokens"])
    return usage


def from_native(native: dict[str, Any], public_model: str) -> CanonicalResponse:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    json_answer = False
    for block in native.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            if block.get("name") == c.JSON_TOOL_NAME:
                texts.append(c.dumps(block.get("input", {})))
                json_answer = True
            else:
                tool_calls.append(
                    c.tool_call(block.get("id", ""), block.get("name", ""), c.dumps(block.get("input", {})))
                )
    finish = FINISH_REASONS.get(native.get("stop_reason") or "end_turn", "stop")
    if json_answer and finish == "tool_calls":
        finish = "stop"
    usage = usage_of(native.get("usage") or {})
    content = "".join(texts) if texts or not tool_calls else None
    body = c.chat_completion(
        "chatcmpl-" + str(native.get("id", "")), public_model, content, tool_calls, finish, usage
    )
    return CanonicalResponse(body=body, usage=usage)


class AnthropicStream:
    """Anthropic SSE events → OpenAI chunks, fed raw bytes in any split."""

    def __init__(self, public_model: str) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._decoder = SSEDecoder()
        self._chunks = c.ChunkFactory(public_model)
        self._started = False
        self._stopped = False
        self._stop_reason: str | None = None
        # content block index → OpenAI tool_calls index (None for the JSON-answer tool)
        self._tool_blocks: dict[int, int | None] = {}
        self._tool_count = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in self._decoder.feed(data):
            self._event(orjson.loads(event.data) if event.data else {}, out)
        return out

    def close(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in self._decoder.close():
            self._event(orjson.loads(event.data) if event.data else {}, out)
        if not self._stopped:
            raise UpstreamStatusError(
                "Anthropic stream ended before message_stop.", status=502, type="api_error"
            )
        return out

    def _event(self, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._chunks.id = "chatcmpl-" + str(message.get("id", ""))
            self.usage = usage_of(message.get("usage") or {})
            self._started = True
            out.append(self._chunks.role())
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tool_start(int(event.get("index", 0)), block, out)
            elif block.get("type") == "text" and block.get("text"):
                out.append(self._chunks.content(block["text"]))
        elif kind == "content_block_delta":
            self._delta(int(event.get("index", 0)), event.get("delta") or {}, out)
        elif kind == "message_delta":
            self._stop_reason = (event.get("delta") or {}).get("stop_reason") or self._stop_reason
            self.usage = usage_of(event.get("usage") or {}, self.usage)
        elif kind == "message_stop":
            self._finish(out)
        elif kind == "error":
            raise native_error(event.get("error") or {}, None)
        # ping, content_block_stop and unknown future events carry nothing to translate

    def _tool_start(self, block_index: int, block: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if block.get("name") == c.JSON_TOOL_NAME:
            self._tool_blocks[block_index] = None
            return
        tool_index = self._tool_count
        self._tool_count += 1
        self._tool_blocks[block_index] = tool_index
        out.append(self._chunks.tool_call_start(tool_index, block.get("id", ""), block.get("name", "")))

    def _delta(self, block_index: int, delta: dict[str, Any], out: list[dict[str, Any]]) -> None:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            out.append(self._chunks.content(delta["text"]))
        elif kind == "input_json_delta" and delta.get("partial_json"):
            tool_index = self._tool_blocks.get(block_index)
            if tool_index is None:
                out.append(self._chunks.content(delta["partial_json"]))
            else:
                out.append(self._chunks.tool_call_arguments(tool_index, delta["partial_json"]))

    def _finish(self, out: list[dict[str, Any]]) -> None:
        finish = FINISH_REASONS.get(self._stop_reason or "end_turn", "stop")
        if finish == "tool_calls" and self._tool_count == 0:
            finish = "stop"  # only the JSON-answer tool was used
        self.finish_reason = finish
        self._stopped = True
        out.append(self._chunks.finish(finish))
        if self.usage is not None:
            out.append(self._chunks.usage(self.usage))
