"""The interface every provider translator implements.

The canonical wire format is OpenAI's (chat completions and embeddings, as plain dicts). A
translator turns a canonical request into the provider's native HTTP request, and the native
response, stream and errors back into canonical form, reporting the token usage it saw. It does
no I/O: ``gateway.upstream`` sends what ``build_request`` returns and feeds back what arrives.

Streams: ``gateway.upstream`` feeds raw bytes as they arrive to ``StreamTranslator.feed``,
which keeps the incomplete tail of an event for the next call (state machine, envoy-style) and
returns the canonical chunks (OpenAI ``chat.completion.chunk`` dicts) that are complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.errors import UpstreamStatusError
from gateway.types import Usage

Endpoint = Literal["chat.completions", "embeddings"]


@dataclass(slots=True)
class Target:
    """A deployment with its provider settings resolved: everything a translator needs."""

    deployment: str
    provider: str
    provider_type: str
    base_url: str
    model: str
    api_key: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


@dataclass(slots=True)
class CanonicalResponse:
    body: dict[str, Any]
    usage: Usage | None


class StreamTranslator(Protocol):
    usage: Usage | None
    finish_reason: str | None

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Consume raw upstream bytes; return the canonical chunks completed by them.

        Raises ``UpstreamStatusError`` when the upstream sends an error event.
        """

    def close(self) -> list[dict[str, Any]]:
        """The upstream ended; return any chunks still owed (e.g. a final finish chunk)."""


class Translator(Protocol):
    def build_request(
        self, endpoint: Endpoint, body: dict[str, Any], target: Target, *, stream: bool
    ) -> UpstreamRequest: ...

    def parse_response(
        self, endpoint: Endpoint, status: int, body: bytes, target: Target, public_model: str
    ) -> CanonicalResponse: ...

    def stream(self, endpoint: Endpoint, target: Target, public_model: str) -> StreamTranslator: ...

    def parse_error(
        self, status: int, headers: dict[str, str], body: bytes, target: Target
    ) -> UpstreamStatusError: ...
