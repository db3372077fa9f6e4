"""Helpers shared by the provider translators for the canonical (OpenAI-shaped) wire format.

Every translator must refuse what its provider cannot honour instead of dropping it, read the
same message/part shapes, and produce the same ``chat.completion`` / ``chat.completion.chunk``
dicts; those shared pieces live here so each provider module holds only its own mapping.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import InvalidRequestError, UnsupportedParameterError
from gateway.types import Usage

#: Fields the gateway itself consumes before translation; translators never forward them.
GATEWAY_FIELDS = frozenset({"model", "stream", "stream_options"})

#: Values of otherwise-unsupported fields that ask for nothing beyond the default behaviour.
NEUTRAL_VALUES: dict[str, Any] = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": 0,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "parallel_tool_calls": True,
    "store": False,
}

#: A reserved tool name: ``response_format`` json_schema is emulated by forcing this tool, and
#: its input comes back as the message content (providers without a native JSON mode).
JSON_TOOL_NAME = "gateway_json_response"

DEFAULT_MAX_TOKENS = 4096


def check_supported(body: dict[str, Any], supported: Iterable[str], provider_type: str) -> None:
    """Raise ``UnsupportedParameterError`` for any field the provider cannot honour."""
    allowed = set(supported)
    for key, value in body.items():
        if key in GATEWAY_FIELDS or key in allowed or value is None:
            continue
        if key in NEUTRAL_VALUES and _same(NEUTRAL_VALUES[key], value):
            continue
        raise UnsupportedParameterError(
            f"Parameter '{key}' is not supported by provider type '{provider_type}'.", param=key
        )


def _same(neutral: Any, value: Any) -> bool:
    # True == 1 in Python, but n=true is not a request for one choice.
    return isinstance(neutral, bool) == isinstance(value, bool) and neutral == value


def unsupported(param: str, provider_type: str, detail: str = "") -> UnsupportedParameterError:
    suffix = f" ({detail})" if detail else ""
    return UnsupportedParameterError(
        f"Parameter '{param}' is not supported by provider type '{provider_type}'{suffix}.", param=param
    )


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequestError(
                f"messages[{i}] must be an object with a 'role'.", param=f"messages[{i}]"
            )
    return messages


def max_output_tokens(body: dict[str, Any], default: int = DEFAULT_MAX_TOKENS) -> int:
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    return default if value is None else int(value)


def stop_list(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as a list of typed parts (a plain string is one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    raise InvalidRequestError("Message 'content' must be a string or an array of parts.", param="messages")


def text_of(content: Any) -> str:
    """Concatenated text of a message's content; non-text parts are an error where only text fits."""
    texts = []
    for part in content_parts(content):
        if part.get("type") != "text":
            raise InvalidRequestError(f"Only text parts are allowed here, got '{part.get('type')}'.")
        texts.append(part.get("text", ""))
    return "".join(texts)


@dataclass(slots=True)
class DataUrl:
    media_type: str
    data: str  # base64, as sent

    def raw(self) -> bytes:
        return base64.b64decode(self.data)


def parse_data_url(url: str) -> DataUrl | None:
    """``data:<media type>;base64,<data>`` → parts; anything else (http URLs) → None."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidRequestError("Only base64 data URLs are supported.", param="messages")
    return DataUrl(media_type=header[: -len(";base64")] or "application/octet-stream", data=data)


def file_part_data(part: dict[str, Any]) -> DataUrl:
    """The inline data of an OpenAI ``file`` part (``file_data`` as a data URL or bare base64)."""
    file = part.get("file") or {}
    file_data = file.get("file_data")
    if not file_data:
        raise InvalidRequestError("Only inline 'file_data' file parts are supported (no 'file_id').")
    parsed = parse_data_url(file_data)
    return parsed if parsed is not None else DataUrl(media_type="application/pdf", data=file_data)


def tool_call_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    """tool_call id → function name, for providers whose tool results carry the name."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = call.get("function", {}).get("name", "")
    return names


def json_response_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the answer must follow, or None for free text."""
    response_format = body.get("response_format")
    if not response_format or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    raise InvalidRequestError(
        f"Unknown response_format type '{response_format.get('type')}'.", param="response_format"
    )


def loads_arguments(arguments: str | None) -> Any:
    """Tool-call arguments as JSON; the model may send broken JSON, which we keep as a string."""
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage object; ``prompt_tokens`` includes cached prompt tokens, as OpenAI counts."""
    body = usage.as_openai()
    body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return body


def chat_completion(
    response_id: str,
    public_model: str,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage | None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": public_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage_body(usage)
    return body


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class ChunkFactory:
    """Builds the ``chat.completion.chunk`` dicts of one stream (same id, model and created)."""

    __slots__ = ("created", "id", "model")

    def __init__(self, public_model: str, response_id: str | None = None) -> None:
        self.id = response_id or "chatcmpl-" + uuid.uuid4().hex
        self.model = public_model
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def role(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": ""})

    def content(self, text: str) -> dict[str, Any]:
        return self._chunk({"content": text})

    def tool_call_start(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        return self._chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            }
        )

    def tool_call_arguments(self, index: int, fragment: str) -> dict[str, Any]:
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def finish(self, finish_reason: str) -> dict[str, Any]:
        return self._chunk({}, finish_reason)

    def usage(self, usage: Usage) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_body(usage),
        }


#: OpenAI error ``type`` for an upstream HTTP status (used when the native body names none).
def error_type_for_status(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if 400 <= status < 500:
        return "invalid_request_error"
    return "api_error"


def append_turn(
    turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], key: str = "content"
) -> None:
    """Add a turn, merging it into the previous one when the role repeats.

    Anthropic, Gemini and Bedrock want strictly alternating turns, whereas OpenAI allows
    consecutive messages of one role (several tool results in a row, say).
    """
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})
