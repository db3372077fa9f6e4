"""Canonical chat request → Bedrock Converse request body (messages, system, inferenceConfig,
toolConfig). Images and documents must travel as bytes (base64 in JSON): Converse cannot fetch
http URLs, so those are refused rather than dropped."""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.providers import canonical as c

PROVIDER_TYPE = "bedrock"

SUPPORTED = frozenset(
    {
        "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools",
        "tool_choice", "response_format", "user",
    }
)  # fmt: skip

IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


def to_native(body: dict[str, Any]) -> dict[str, Any]:
    c.check_supported(body, SUPPORTED, PROVIDER_TYPE)
    canonical_messages = c.messages_of(body)
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(canonical_messages):
        role = message["role"]
        if role in ("system", "developer"):
            system.append({"text": c.text_of(message.get("content"))})
        elif role == "user":
            c.append_turn(
                turns,
                "user",
                [_block(part, i, n) for n, part in enumerate(c.content_parts(message.get("content")))],
            )
        elif role == "assistant":
            c.append_turn(turns, "assistant", _assistant_blocks(message))
        elif role == "tool":
            result = {
                "toolUseId": message.get("tool_call_id", ""),
                "content": [{"text": c.text_of(message.get("content"))}],
            }
            c.append_turn(turns, "user", [{"toolResult": result}])
        else:
            raise InvalidRequestError(f"Unknown message role '{role}'.", param=f"messages[{i}].role")
    native: dict[str, Any] = {"messages": turns}
    if system:
        native["system"] = system
    inference: dict[str, Any] = {"maxTokens": c.max_output_tokens(body)}
    if body.get("temperature") is not None:
        inference["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    if (stop := c.stop_list(body)) is not None:
        inference["stopSequences"] = stop
    native["inferenceConfig"] = inference
    if body.get("user"):
        native["requestMetadata"] = {"user": str(body["user"])}
    tool_config = _tool_config(body)
    if tool_config is not None:
        native["toolConfig"] = tool_config
    return native


def _block(part: dict[str, Any], message_index: int, part_index: int) -> dict[str, Any]:
    kind = part.get("type")
    where = f"messages[{message_index}].content[{part_index}]"
    if kind == "text":
        return {"text": part.get("text", "")}
    if kind == "image_url":
        data = c.parse_data_url((part.get("image_url") or {}).get("url", ""))
        if data is None:
            raise c.unsupported(f"{where}.image_url", PROVIDER_TYPE, "image URLs; send a base64 data URL")
        image_format = IMAGE_FORMATS.get(data.media_type)
        if image_format is None:
            raise c.unsupported(f"{where}.image_url", PROVIDER_TYPE, f"image type {data.media_type}")
        return {"image": {"format": image_format, "source": {"bytes": data.data}}}
    if kind == "file":
        data = c.file_part_data(part)
        document_format = DOCUMENT_FORMATS.get(data.media_type)
        if document_format is None:
            raise c.unsupported(f"{where}.file", PROVIDER_TYPE, f"document type {data.media_type}")
        filename = (part.get("file") or {}).get("filename") or "document"
        # Converse document names allow only alphanumerics, whitespace, hyphens, parentheses, brackets.
        name = re.sub(r"[^A-Za-z0-9\s\-()\[\]]", "-", filename.rsplit(".", 1)[0])[:200] or "document"
        return {"document": {"format": document_format, "name": name, "source": {"bytes": data.data}}}
    raise c.unsupported(f"{where}.{kind}", PROVIDER_TYPE, "content part type")


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"text": p.get("text", "")}
        for p in c.content_parts(message.get("content"))
        if p.get("type") == "text" and p.get("text")
    ]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        use = {
            "toolUseId": call.get("id", ""),
            "name": function.get("name", ""),
            "input": c.loads_arguments(function.get("arguments")),
        }
        blocks.append({"toolUse": use})
    return blocks


def _tool_config(body: dict[str, Any]) -> dict[str, Any] | None:
    schema = c.json_response_schema(body)
    tools = body.get("tools") or []
    if schema is not None:
        if tools:
            raise c.unsupported("response_format", PROVIDER_TYPE, "cannot be combined with tools")
        json_tool = {
            "name": c.JSON_TOOL_NAME,
            "description": "Answer with JSON matching this schema.",
            "inputSchema": {"json": schema},
        }
        return {"tools": [{"toolSpec": json_tool}], "toolChoice": {"tool": {"name": c.JSON_TOOL_NAME}}}
    choice = body.get("tool_choice")
    if choice == "none":
        raise c.unsupported("tool_choice", PROVIDER_TYPE, "'none' has no Converse equivalent; omit the tools")
    if not tools:
        return None
    specs = []
    for tool in tools:
        if tool.get("type") != "function":
            raise c.unsupported("tools.type", PROVIDER_TYPE, f"tool type '{tool.get('type')}'")
        function = tool.get("function") or {}
        spec: dict[str, Any] = {
            "name": function.get("name", ""),
            "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": (choice.get("function") or {}).get("name", "")}}
    return config
