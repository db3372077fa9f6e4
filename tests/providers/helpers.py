"""Shared test helpers: fixtures, targets, feeding streams in splits, assembling chunks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.providers.base import StreamTranslator, Target

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return orjson.loads(fixture_bytes(name))


def target(provider_type: str, base_url: str = "", **kwargs: Any) -> Target:
    return Target(
        deployment=f"{provider_type}-1",
        provider=provider_type,
        provider_type=provider_type,
        base_url=base_url,
        model=kwargs.pop("model", "native-model"),
        api_key=kwargs.pop("api_key", "test-key"),
        **kwargs,
    )


def feed_all(stream: StreamTranslator, pieces: Iterable[bytes]) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    for piece in pieces:
        chunks.extend(stream.feed(piece))
    chunks.extend(stream.close())
    return chunks


def split_at(data: bytes, *points: int) -> list[bytes]:
    edges = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def comparable(chunks: list[dict[str, Any]]) -> list[Any]:
    """Chunks without the fields that differ per stream instance (id, created)."""
    return [(c.get("choices"), c.get("usage"), c.get("object"), c.get("model")) for c in chunks]


@dataclass
class Assembled:
    role_first: bool = False
    content: str = ""
    tool_calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    finish_before_usage: bool = True


def assemble(chunks: list[dict[str, Any]]) -> Assembled:
    """What an OpenAI client would rebuild from the chunks; checks the order rules on the way."""
    out = Assembled()
    out.role_first = bool(chunks) and chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        if chunk.get("usage") is not None:
            assert chunk["choices"] == []
            out.usage = chunk["usage"]
            continue
        assert out.usage is None, "content after the usage chunk"
        choice = chunk["choices"][0]
        delta = choice["delta"]
        if delta.get("content"):
            out.content += delta["content"]
        for call in delta.get("tool_calls") or []:
            slot = out.tool_calls.get(call["index"])
            if slot is None:
                assert call.get("id") and call["function"].get("name"), (
                    "first tool delta must carry id and name"
                )
                slot = out.tool_calls[call["index"]] = {
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": "",
                }
            slot["arguments"] += call["function"].get("arguments", "")
        if choice.get("finish_reason"):
            assert out.finish_reason is None, "two finish chunks"
            out.finish_reason = choice["finish_reason"]
    return out


def every_split(data: bytes, make_stream: Callable[[], StreamTranslator]) -> list[list[Any]]:
    """The comparable chunks for the stream fed whole and split at every single byte offset."""
    return [comparable(feed_all(make_stream(), split_at(data, point))) for point in range(len(data) + 1)]
