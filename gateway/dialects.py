"""Client dialects: the API a client speaks, at the two ends of the canonical pipeline.

The pipeline works on canonical (OpenAI-shaped) requests and answers. A dialect converts the
client's request into that form on the way in, and the canonical answer, stream chunks and
errors back into the client's form on the way out. OpenAI's dialect is the identity; Anthropic's
(``POST /v1/messages``) uses the inbound translator in ``gateway.providers.anthropic_inbound``.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from gateway.errors import GatewayError
from gateway.providers import anthropic_inbound
from gateway.providers.sse import DONE, encode_data
from gateway.types import Usage


class StreamEncoder(Protocol):
    def feed(self, chunk: dict[str, Any]) -> bytes: ...

    def close(self, usage_chunk: dict[str, Any] | None, usage: Usage | None) -> bytes: ...

    def error(self, exc: GatewayError) -> bytes: ...


class Dialect(Protocol):
    name: str

    def to_canonical(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def response(self, body: dict[str, Any], public_model: str, usage: Usage | None) -> bytes: ...

    def error(self, exc: GatewayError) -> bytes: ...

    def stream_encoder(self, public_model: str, wants_usage: bool) -> StreamEncoder: ...


class _OpenAIStream:
    __slots__ = ("_wants_usage",)

    def __init__(self, wants_usage: bool) -> None:
        self._wants_usage = wants_usage

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if not self._wants_usage:
            chunk.pop("usage", None)
        return encode_data(chunk)

    def close(self, usage_chunk: dict[str, Any] | None, usage: Usage | None) -> bytes:
        if usage_chunk is not None and self._wants_usage:
            return encode_data(usage_chunk) + DONE
        return DONE

    def error(self, exc: GatewayError) -> bytes:
        return encode_data(exc.body()) + DONE


class OpenAIDialect:
    name = "openai"

    def to_canonical(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def response(self, body: dict[str, Any], public_model: str, usage: Usage | None) -> bytes:
        return orjson.dumps(body)

    def error(self, exc: GatewayError) -> bytes:
        return exc.body_bytes()

    def stream_encoder(self, public_model: str, wants_usage: bool) -> StreamEncoder:
        return _OpenAIStream(wants_usage)


class _AnthropicStream:
    __slots__ = ("_encoder",)

    def __init__(self, public_model: str) -> None:
        self._encoder = anthropic_inbound.AnthropicEventEncoder(public_model)

    def feed(self, chunk: dict[str, Any]) -> bytes:
        return self._encoder.feed(chunk)

    def close(self, usage_chunk: dict[str, Any] | None, usage: Usage | None) -> bytes:
        return self._encoder.close(usage)

    def error(self, exc: GatewayError) -> bytes:
        return anthropic_inbound.error_event(exc)


class AnthropicDialect:
    name = "anthropic"

    def to_canonical(self, body: dict[str, Any]) -> dict[str, Any]:
        return anthropic_inbound.to_canonical(body)

    def response(self, body: dict[str, Any], public_model: str, usage: Usage | None) -> bytes:
        return orjson.dumps(anthropic_inbound.from_canonical(body, public_model, usage))

    def error(self, exc: GatewayError) -> bytes:
        return orjson.dumps(anthropic_inbound.error_body(exc))

    def stream_encoder(self, public_model: str, wants_usage: bool) -> StreamEncoder:
        return _AnthropicStream(public_model)


OPENAI = OpenAIDialect()
ANTHROPIC = AnthropicDialect()
