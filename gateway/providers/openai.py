"""Translator for OpenAI and the servers that speak its wire format.

One translator, four flavours that differ only in small, listed ways:

- ``openai``: ``{base}/chat/completions``, ``Authorization: Bearer``.
- ``azure``: ``{base}/openai/deployments/{deployment}/chat/completions?api-version=…`` and an
  ``api-key`` header; the upstream model name is the Azure deployment name.
- ``mistral``: OpenAI-shaped, but it rejects unknown fields (``stream_options``,
  ``max_completion_tokens``, ``seed``) and always sends usage in its last stream chunk.
- ``openai_compatible`` (vLLM, Ollama, LM Studio, …): OpenAI's shape; ``options.stream_usage:
  false`` for servers that do not understand ``stream_options``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from gateway.errors import UpstreamStatusError
from gateway.providers.base import CanonicalResponse, Endpoint, Target, UpstreamRequest
from gateway.providers.sse import SSEDecoder
from gateway.types import Usage

DEFAULT_AZURE_API_VERSION = "2024-10-21"

_PATHS: dict[Endpoint, str] = {"chat.completions": "/chat/completions", "embeddings": "/embeddings"}


def usage_from_openai(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
    )


class OpenAIStream:
    """Per-request state machine over an OpenAI-format SSE stream."""

    __slots__ = ("_decoder", "_done", "finish_reason", "usage")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._done = False
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._translate(self._decoder.feed(data))

    def close(self) -> list[dict[str, Any]]:
        return self._translate(self._decoder.close())

    def _translate(self, events: list[Any]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for event in events:
            if self._done or not event.data:
                continue
            if event.data == "[DONE]":
                self._done = True
                continue
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise UpstreamStatusError(
                    "the upstream sent a stream event that is not JSON", status=502, type="api_error"
                ) from None
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk and "choices" not in chunk:
                err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
                raise UpstreamStatusError(
                    str(err.get("message") or "upstream stream error"),
                    status=502,
                    type=str(err.get("type") or "api_error"),
                    code=err.get("code"),
                )
            usage = chunk.pop("usage", None)
            choices = chunk.get("choices")
            if choices:
                for choice in choices:
                    if choice.get("finish_reason"):
                        self.finish_reason = choice["finish_reason"]
                chunks.append(chunk)
            if usage:
                # Mistral puts usage on its last content chunk; OpenAI on a chunk of its own.
                # Either way the client gets it as OpenAI's separate usage chunk.
                self.usage = usage_from_openai(usage)
                chunks.append({**chunk, "choices": [], "usage": usage})
        return chunks


class OpenAITranslator:
    """Chat completions and embeddings for the OpenAI wire format and its flavours."""

    def build_request(
        self, endpoint: Endpoint, body: dict[str, Any], target: Target, *, stream: bool
    ) -> UpstreamRequest:
        flavour = target.provider_type
        payload = dict(body)
        payload.update(target.params)
        payload["model"] = target.model
        if stream:
            payload["stream"] = True
            if flavour == "mistral" or target.options.get("stream_usage") is False:
                payload.pop("stream_options", None)
            else:
                # The gateway always needs the stream's usage; the pipeline hides the usage
                # chunk from clients that did not ask for it.
                payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        if flavour == "mistral":
            if "max_completion_tokens" in payload:
                payload.setdefault("max_tokens", payload.pop("max_completion_tokens"))
            if "seed" in payload:
                payload["random_seed"] = payload.pop("seed")
            payload.pop("user", None)
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        base = target.base_url.rstrip("/")
        if flavour == "azure":
            payload.pop("model", None)
            version = target.api_version or DEFAULT_AZURE_API_VERSION
            deployment = quote(target.model, safe="")
            url = f"{base}/openai/deployments/{deployment}{_PATHS[endpoint]}?api-version={version}"
            if target.api_key:
                headers["api-key"] = target.api_key
        else:
            url = base + _PATHS[endpoint]
            if target.api_key:
                headers["authorization"] = f"Bearer {target.api_key}"
        headers.update(target.headers)
        return UpstreamRequest("POST", url, headers, orjson.dumps(payload))

    def parse_response(
        self, endpoint: Endpoint, status: int, body: bytes, target: Target, public_model: str
    ) -> CanonicalResponse:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamStatusError(
                f"deployment {target.deployment!r} answered with a body that is not JSON", status=502
            ) from None
        if not isinstance(doc, dict):
            raise UpstreamStatusError(
                f"deployment {target.deployment!r} answered with unexpected JSON", status=502
            )
        return CanonicalResponse(body=doc, usage=usage_from_openai(doc.get("usage")))

    def stream(self, endpoint: Endpoint, target: Target, public_model: str) -> OpenAIStream:
        return OpenAIStream()

    def parse_error(
        self, status: int, headers: dict[str, str], body: bytes, target: Target
    ) -> UpstreamStatusError:
        return openai_error(status, headers, body)


def openai_error(status: int, headers: dict[str, str], body: bytes) -> UpstreamStatusError:
    """An OpenAI-format error body, passed through with its status and retry hints."""
    message, err_type, param, code = f"upstream returned HTTP {status}", "api_error", None, None
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or message)
        err_type = str(err.get("type") or err_type)
        param = err.get("param") if isinstance(err.get("param"), str) else None
        code = str(err["code"]) if err.get("code") is not None else None
    elif isinstance(doc, dict) and isinstance(doc.get("message"), str):
        # Mistral and several OpenAI-compatible servers put the message at the top level.
        message = doc["message"]
    passed = {k: v for k, v in headers.items() if k == "retry-after" or k.startswith("x-ratelimit-")}
    return UpstreamStatusError(message, status=status, type=err_type, param=param, code=code, headers=passed)
