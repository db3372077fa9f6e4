"""Canonical (OpenAI) ⇄ Google Gemini, on Google AI Studio (``gemini``) and Vertex AI (``vertex``).

Both speak the same ``generateContent`` body; they differ in URL and auth: AI Studio takes an
``x-goog-api-key``, Vertex a bearer token and a project/location path. Tool results need the
function's name on Gemini, so it is looked up from the assistant turn that made the call.
Structured output uses ``responseJsonSchema`` and tools ``parametersJsonSchema`` because both
accept full JSON Schema (the older ``responseSchema``/``parameters`` accept an OpenAPI subset
that rejects common OpenAI schemas, e.g. ``additionalProperties``).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from gateway.errors import InvalidRequestError, UpstreamStatusError
from gateway.providers import canonical as c
from gateway.providers import gemini_embeddings as embeddings
from gateway.providers.base import CanonicalResponse, Endpoint, Target, UpstreamRequest
from gateway.providers.sse import SSEDecoder
from gateway.types import Usage

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"

SUPPORTED = frozenset(
    {
        "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools",
        "tool_choice", "response_format", "presence_penalty", "frequency_penalty", "seed",
    }
)  # fmt: skip

FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}

#: google.rpc.Status code name → OpenAI error type.
ERROR_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
}


class GeminiTranslator:
    provider_type = "gemini"

    def build_request(
        self, endpoint: Endpoint, body: dict[str, Any], target: Target, *, stream: bool
    ) -> UpstreamRequest:
        if endpoint == "embeddings":
            method, native = embeddings.to_native(body, target.model, vertex=self.provider_type == "vertex")
            return UpstreamRequest(
                "POST", self.model_url(target) + ":" + method, self.headers(target), native
            )
        native_body = to_native(body, self.provider_type)
        url = self.model_url(target) + (":streamGenerateContent?alt=sse" if stream else ":generateContent")
        return UpstreamRequest("POST", url, self.headers(target), orjson.dumps(native_body))

    def model_url(self, target: Target) -> str:
        base = (target.base_url or DEFAULT_BASE_URL).rstrip("/")
        return f"{base}/{target.api_version or DEFAULT_API_VERSION}/models/{target.model}"

    def headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json", **target.headers}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        return headers

    def parse_response(
        self, endpoint: Endpoint, status: int, body: bytes, target: Target, public_model: str
    ) -> CanonicalResponse:
        native = orjson.loads(body)
        if endpoint == "embeddings":
            return embeddings.from_native(native, public_model)
        return from_native(native, public_model)

    def stream(self, endpoint: Endpoint, target: Target, public_model: str) -> GeminiStream:
        return GeminiStream(public_model)

    def parse_error(
        self, status: int, headers: dict[str, str], body: bytes, target: Target
    ) -> UpstreamStatusError:
        try:
            parsed = orjson.loads(body)
            error = (parsed[0] if isinstance(parsed, list) else parsed).get("error") or {}
        except (orjson.JSONDecodeError, AttributeError, IndexError):
            error = {}
        return native_error(error, status, headers.get("retry-after"))


class VertexTranslator(GeminiTranslator):
    """Gemini on Vertex AI: ``options.project`` and ``options.location``; ``api_key`` is an
    OAuth access token (sent as ``Authorization: Bearer``)."""

    provider_type = "vertex"

    def model_url(self, target: Target) -> str:
        project = target.options.get("project")
        location = target.options.get("location", "us-central1")
        if not project:
            raise InvalidRequestError(
                f"Deployment '{target.deployment}' needs options.project for Vertex AI."
            )
        host = (
            "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
        )
        base = (target.base_url or f"https://{host}").rstrip("/")
        version = target.api_version or "v1"
        path = f"projects/{project}/locations/{location}/publishers/google/models/{target.model}"
        return f"{base}/{version}/{path}"

    def headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json", **target.headers}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        return headers


def native_error(
    error: dict[str, Any], status: int | None, retry_after: str | None = None
) -> UpstreamStatusError:
    code_name = str(error.get("status") or "")
    status = status or int(error.get("code") or 500)
    openai_type = ERROR_TYPES.get(code_name) or c.error_type_for_status(status)
    message = str(error.get("message") or f"Gemini returned {code_name or status}")
    headers = {"retry-after": retry_after} if retry_after else None
    return UpstreamStatusError(
        message, status=status, type=openai_type, code=code_name or None, headers=headers
    )


# --------------------------------------------------------------------------- requests


def to_native(body: dict[str, Any], provider_type: str) -> dict[str, Any]:
    c.check_supported(body, SUPPORTED, provider_type)
    messages = c.messages_of(body)
    names = c.tool_call_names(messages)
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        if role in ("system", "developer"):
            system.append({"text": c.text_of(message.get("content"))})
        elif role == "user":
            parts = [_part(p, i, provider_type) for p in c.content_parts(message.get("content"))]
            c.append_turn(contents, "user", parts, "parts")
        elif role == "assistant":
            c.append_turn(contents, "model", _model_parts(message), "parts")
        elif role == "tool":
            name = names.get(message.get("tool_call_id", ""))
            if not name:
                raise InvalidRequestError(
                    f"messages[{i}].tool_call_id does not match an earlier assistant tool call.",
                    param=f"messages[{i}].tool_call_id",
                )
            response = _tool_response(c.text_of(message.get("content")))
            c.append_turn(
                contents, "user", [{"functionResponse": {"name": name, "response": response}}], "parts"
            )
        else:
            raise InvalidRequestError(f"Unknown message role '{role}'.", param=f"messages[{i}].role")
    native: dict[str, Any] = {"contents": contents}
    if system:
        native["systemInstruction"] = {"parts": system}
    config = _generation_config(body)
    if config:
        native["generationConfig"] = config
    _add_tools(native, body, provider_type)
    return native


def _part(part: dict[str, Any], message_index: int, provider_type: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"text": part.get("text", "")}
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        data = c.parse_data_url(url)
        if data is None:
            mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
            return {"fileData": {"mimeType": mime, "fileUri": url}}
        return {"inlineData": {"mimeType": data.media_type, "data": data.data}}
    if kind == "file":
        data = c.file_part_data(part)
        return {"inlineData": {"mimeType": data.media_type, "data": data.data}}
    raise c.unsupported(f"messages[{message_index}].content.{kind}", provider_type, "content part type")


def _model_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"text": p.get("text", "")}
        for p in c.content_parts(message.get("content"))
        if p.get("type") == "text" and p.get("text")
    ]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        args = c.loads_arguments(function.get("arguments"))
        parts.append({"functionCall": {"name": function.get("name", ""), "args": args}})
    return parts


def _tool_response(text: str) -> dict[str, Any]:
    # functionResponse.response must be an object; JSON objects pass as they are.
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": value}


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for canonical_name, native_name in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ):
        if body.get(canonical_name) is not None:
            config[native_name] = body[canonical_name]
    if body.get("max_completion_tokens") is not None or body.get("max_tokens") is not None:
        config["maxOutputTokens"] = c.max_output_tokens(body)
    if (stop := c.stop_list(body)) is not None:
        config["stopSequences"] = stop
    schema = c.json_response_schema(body)
    if schema is not None:
        config["responseMimeType"] = "application/json"
        if schema != {"type": "object"}:
            config["responseJsonSchema"] = schema
    return config


def _add_tools(native: dict[str, Any], body: dict[str, Any], provider_type: str) -> None:
    tools = body.get("tools") or []
    declarations = []
    for tool in tools:
        if tool.get("type") != "function":
            raise c.unsupported("tools.type", provider_type, f"tool type '{tool.get('type')}'")
        function = tool.get("function") or {}
        declaration: dict[str, Any] = {"name": function.get("name", "")}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    if declarations:
        native["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    calling: dict[str, Any] | None = None
    if choice in ("auto", "none", "required"):
        calling = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
    elif isinstance(choice, dict):
        calling = {"mode": "ANY", "allowedFunctionNames": [(choice.get("function") or {}).get("name", "")]}
    if calling is not None:
        native["toolConfig"] = {"functionCallingConfig": calling}


# --------------------------------------------------------------------------- responses


def usage_of(metadata: dict[str, Any]) -> Usage:
    # promptTokenCount already includes cached content; thinking tokens are billed as output.
    return Usage(
        prompt_tokens=int(metadata.get("promptTokenCount") or 0),
        completion_tokens=int(metadata.get("candidatesTokenCount") or 0)
        + int(metadata.get("thoughtsTokenCount") or 0),
        cached_tokens=int(metadata.get("cachedContentTokenCount") or 0),
    )


def finish_reason_of(native_reason: str | None, has_tool_calls: bool) -> str:
    if native_reason in FILTERED:
        return "content_filter"
    if native_reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def _candidate(native: dict[str, Any]) -> dict[str, Any] | None:
    candidates = native.get("candidates") or []
    return candidates[0] if candidates else None


def _calls_and_text(candidate: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "text" in part and not part.get("thought"):
            texts.append(part["text"])
        elif "functionCall" in part:
            call = part["functionCall"]
            calls.append(
                c.tool_call(
                    call.get("id") or c.new_call_id(), call.get("name", ""), c.dumps(call.get("args") or {})
                )
            )
    return texts, calls


def from_native(native: dict[str, Any], public_model: str) -> CanonicalResponse:
    usage = usage_of(native.get("usageMetadata") or {})
    response_id = "chatcmpl-" + str(native.get("responseId") or c.new_call_id()[5:])
    candidate = _candidate(native)
    if candidate is None:
        # The prompt itself was blocked (promptFeedback.blockReason): no candidate at all.
        body = c.chat_completion(response_id, public_model, "", [], "content_filter", usage)
        return CanonicalResponse(body=body, usage=usage)
    texts, calls = _calls_and_text(candidate)
    finish = finish_reason_of(candidate.get("finishReason"), bool(calls))
    content = "".join(texts) if texts or not calls else None
    body = c.chat_completion(response_id, public_model, content, calls, finish, usage)
    return CanonicalResponse(body=body, usage=usage)


class GeminiStream:
    """``streamGenerateContent?alt=sse`` events (each a whole GenerateContentResponse) → chunks.

    Gemini sends each function call whole, so its id/name chunk and its arguments chunk are
    emitted together. The stream has no end event: usage is owed at ``close``.
    """

    def __init__(self, public_model: str) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._decoder = SSEDecoder()
        self._chunks = c.ChunkFactory(public_model)
        self._started = False
        self._tool_count = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in self._decoder.feed(data):
            if event.data:
                self._response(orjson.loads(event.data), out)
        return out

    def close(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in self._decoder.close():
            if event.data:
                self._response(orjson.loads(event.data), out)
        if self.finish_reason is None:
            raise UpstreamStatusError(
                "Gemini stream ended without a finishReason.", status=502, type="api_error"
            )
        if self.usage is not None:
            out.append(self._chunks.usage(self.usage))
        return out

    def _response(self, native: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if "error" in native:
            raise native_error(native["error"], None)
        if not self._started:
            self._started = True
            if native.get("responseId"):
                self._chunks.id = "chatcmpl-" + str(native["responseId"])
            out.append(self._chunks.role())
        if native.get("usageMetadata"):
            self.usage = usage_of(native["usageMetadata"])  # cumulative: the last one wins
        candidate = _candidate(native)
        if candidate is None:
            if (native.get("promptFeedback") or {}).get("blockReason"):
                self._finish("content_filter", out)
            return
        texts, calls = _calls_and_text(candidate)
        for text in texts:
            if text:
                out.append(self._chunks.content(text))
        for call in calls:
            index = self._tool_count
            self._tool_count += 1
            out.append(self._chunks.tool_call_start(index, call["id"], call["function"]["name"]))
            out.append(self._chunks.tool_call_arguments(index, call["function"]["arguments"]))
        if candidate.get("finishReason"):
            self._finish(finish_reason_of(candidate["finishReason"], self._tool_count > 0), out)

    def _finish(self, reason: str, out: list[dict[str, Any]]) -> None:
        if self.finish_reason is None:
            self.finish_reason = reason
            out.append(self._chunks.finish(reason))
