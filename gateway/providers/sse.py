"""Incremental Server-Sent Events decoding and encoding (the WHATWG event-stream format).

``SSEDecoder.feed`` takes bytes as they arrive, keeps the incomplete tail for the next call and
returns only complete events, so a translator never sees half an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    __slots__ = ("_buffer", "_data", "_event", "_id")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            event = self._line(line.decode("utf-8"))
            if event is not None:
                events.append(event)
        self._buffer = buffer[start:]
        return events

    def close(self) -> list[SSEEvent]:
        """The stream ended: a last event without its blank line still counts."""
        events = self.feed(b"\n") if self._buffer else []
        event = self._line("")
        if event is not None:
            events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data and self._event is None:
                return None
            event = SSEEvent(data="\n".join(self._data), event=self._event, id=self._id)
            self._data, self._event = [], None
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


def encode_data(payload: dict[str, Any]) -> bytes:
    """One ``data:`` event carrying a JSON object (OpenAI's stream framing)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def encode_event(event: str, payload: dict[str, Any]) -> bytes:
    """A named event (Anthropic's stream framing)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


DONE = b"data: [DONE]\n\n"
