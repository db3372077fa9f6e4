"""Reading and checking the client's request body: size limit, JSON, the canonical schema.

Checks are hand-rolled over plain dicts on purpose: they run on every request, cover the fields
the gateway itself relies on, and leave the rest to the provider (which knows its own rules).
Every failure names the offending parameter the way OpenAI does (``messages[2].role``).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive, Scope

from gateway.errors import BodyTooLargeError, InvalidRequestError

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


async def read_body(scope: Scope, receive: Receive, max_bytes: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise InvalidRequestError("Content-Length is not a number.") from None
            if declared > max_bytes:
                raise BodyTooLargeError(
                    f"Request body of {declared} bytes exceeds the limit of {max_bytes} bytes."
                )
            break
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequestError("The client disconnected before sending the whole body.")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLargeError(f"Request body exceeds the limit of {max_bytes} bytes.")
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequestError("The request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. The request body must be valid JSON."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return body


def _require_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )


def _check_number(body: dict[str, Any], name: str, low: float, high: float | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"'{name}' must be a number, got {type(value).__name__}.", param=name)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequestError(f"'{name}' must be {bound}, got {value}.", param=name)


def _check_int(body: dict[str, Any], name: str, low: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"'{name}' must be an integer.", param=name)
    if value < low:
        raise InvalidRequestError(f"'{name}' must be at least {low}, got {value}.", param=name)


def validate_chat(body: dict[str, Any]) -> None:
    _require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequestError(f"messages[{i}] must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise InvalidRequestError(
                f"messages[{i}].role must be one of {sorted(CHAT_ROLES)}, got {role!r}.",
                param=f"messages[{i}].role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequestError(
                f"messages[{i}].content must be a string or an array of content parts.",
                param=f"messages[{i}].content",
            )
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise InvalidRequestError(
                        f"messages[{i}].content[{j}] must be an object with a 'type'.",
                        param=f"messages[{i}].content[{j}]",
                    )
        if content is None and role in ("user", "system", "developer"):
            raise InvalidRequestError(
                f"messages[{i}].content is required for role {role!r}.", param=f"messages[{i}].content"
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise InvalidRequestError("'stream_options' must be an object.", param="stream_options")
        if not stream:
            raise InvalidRequestError(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
    _check_int(body, "max_tokens", 1)
    _check_int(body, "max_completion_tokens", 1)
    _check_int(body, "n", 1)
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequestError("'tools' must be an array.", param="tools")
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise InvalidRequestError(
                    f"tools[{i}] must be {{'type': 'function', 'function': {{'name': …}}}}.",
                    param=f"tools[{i}]",
                )
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise InvalidRequestError("'stop' must be a string or an array of strings.", param="stop")


def validate_embeddings(body: dict[str, Any]) -> None:
    _require_model(body)
    value = body.get("input")
    ok = isinstance(value, str) and value != ""
    if isinstance(value, list) and value:
        ok = all(isinstance(v, str) for v in value) or all(
            isinstance(v, int) or (isinstance(v, list) and all(isinstance(t, int) for t in v)) for v in value
        )
    if not ok:
        raise InvalidRequestError(
            "'input' must be a non-empty string, an array of strings, or an array of token arrays.",
            param="input",
        )
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ("float", "base64"):
        raise InvalidRequestError("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
