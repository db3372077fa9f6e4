"""The input document the policy sees (``input`` in Rego), built from explicit facts.

The shape is declared once, as the TypedDicts below; ``gateway/policy/input.schema.json`` is
generated from them (``python -m gateway.policy.schema``) and a test checks that built inputs
validate against it. The input carries facts, never secrets: credential headers are dropped
even when allow-listed, and the prompt text is included only when the configuration says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from gateway.types import Principal

Endpoint = Literal["chat.completions", "completions", "embeddings", "messages", "responses"]

#: Headers that carry credentials; they never reach the policy, whatever the allow-list says.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "x-goog-api-key"}
)


@with_config(ConfigDict(extra="forbid"))
class RequestFacts(TypedDict):
    id: str
    endpoint: str
    method: str
    path: str
    source_ip: str | None
    time: str
    stream: bool
    headers: dict[str, str]


@with_config(ConfigDict(extra="forbid"))
class ClientFacts(TypedDict):
    auth: Literal["api_key", "jwt", "mtls", "anonymous"]
    key_id: str | None
    key_name: str | None
    team: str | None
    user: str | None
    metadata: dict[str, Any]
    claims: dict[str, Any]
    certificate: NotRequired[dict[str, Any]]


@with_config(ConfigDict(extra="forbid"))
class ModelFacts(TypedDict):
    requested: str | None
    provider: str | None
    deployment: str | None


@with_config(ConfigDict(extra="forbid"))
class TokenFacts(TypedDict):
    prompt_estimate: int
    max_output: int | None


class PiiFinding(TypedDict):  # the guards may add fields
    type: str
    count: int


class InjectionFacts(TypedDict):  # the guards may add fields
    score: float
    signals: list[str]


@with_config(ConfigDict(extra="forbid"))
class PromptMessage(TypedDict):
    role: str
    content: str


@with_config(ConfigDict(extra="forbid"))
class PromptFacts(TypedDict):
    messages: int
    chars: int
    has_system: bool
    pii: list[PiiFinding]
    injection: InjectionFacts
    text: NotRequired[list[PromptMessage]]


@with_config(ConfigDict(extra="forbid"))
class InputDocument(TypedDict):
    request: RequestFacts
    client: ClientFacts
    model: ModelFacts
    tokens: TokenFacts
    prompt: PromptFacts
    usage: dict[str, dict[str, float | int]]


def select_headers(headers: Iterable[tuple[str, str]], allow: Iterable[str]) -> dict[str, str]:
    """The allow-listed request headers (lower-cased names), credential headers never."""
    allowed = {name.lower() for name in allow} - SECRET_HEADERS
    selected: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in allowed:
            selected[lower] = value
    return selected


def message_text(content: Any) -> str:
    """The text of a message's ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def prompt_messages(body: Mapping[str, Any]) -> list[PromptMessage]:
    """The prompt as role/text pairs: chat ``messages`` (plus Anthropic's top-level ``system``)
    or embeddings/completions ``input``/``prompt``, each string as one user message."""
    messages: list[PromptMessage] = []
    system = body.get("system")
    if system is not None:
        messages.append({"role": "system", "content": message_text(system)})
    raw = body.get("messages")
    if isinstance(raw, list):
        for message in raw:
            if isinstance(message, Mapping):
                role = message.get("role")
                messages.append(
                    {
                        "role": role if isinstance(role, str) else "user",
                        "content": message_text(message.get("content")),
                    }
                )
        return messages
    for key in ("input", "prompt"):
        value = body.get(key)
        if isinstance(value, str):
            messages.append({"role": "user", "content": value})
        elif isinstance(value, list):
            messages.extend({"role": "user", "content": v} for v in value if isinstance(v, str))
    return messages


def build_input(
    *,
    request_id: str,
    endpoint: str,
    method: str,
    path: str,
    source_ip: str | None,
    time: datetime,
    stream: bool,
    headers: Mapping[str, str],
    principal: Principal,
    model_requested: str | None,
    provider: str | None,
    deployment: str | None,
    prompt_estimate: int,
    max_output: int | None,
    messages: list[PromptMessage],
    features: Mapping[str, Any] | None = None,
    usage: Mapping[str, Mapping[str, float | int]] | None = None,
    include_prompt: bool = False,
) -> InputDocument:
    """Assemble ``input`` for one request.

    ``headers`` must already be allow-listed (see ``select_headers``); ``time`` must be
    timezone-aware. ``features`` is the guards' ``{"pii": [...], "injection": {...}}``; absent
    features read as "nothing found", so a request whose guards are off is not denied for it.
    """
    chars = sum(len(m["content"]) for m in messages)
    found = dict(features or {})
    prompt: PromptFacts = {
        "messages": len(messages),
        "chars": chars,
        "has_system": any(m["role"] in ("system", "developer") for m in messages),
        "pii": list(found.pop("pii", [])),
        "injection": found.pop("injection", {"score": 0.0, "signals": []}),
    }
    if found:
        raise ValueError(f"unknown prompt feature(s) {sorted(found)}; expected pii, injection")
    if include_prompt:
        prompt["text"] = [dict(m) for m in messages]  # type: ignore[misc]
    client = principal.as_input()
    return {
        "request": {
            "id": request_id,
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "source_ip": source_ip,
            "time": time.isoformat(),
            "stream": stream,
            "headers": dict(headers),
        },
        "client": client,  # type: ignore[typeddict-item]
        "model": {"requested": model_requested, "provider": provider, "deployment": deployment},
        "tokens": {"prompt_estimate": prompt_estimate, "max_output": max_output},
        "prompt": prompt,
        "usage": {scope: dict(values) for scope, values in (usage or {"key": {}, "team": {}}).items()},
    }
