"""Append-only local spool for records the database could not take.

The spool is a folder of segment files ``<sequence>.jsonl``; each line is one record pair
``{"u": usage, "d": decision|null}``. Appends go to the newest segment and are fsynced per batch,
so an acknowledged batch survives a crash. Replay reads whole segments oldest first and deletes a
segment only after all of it is in the database; a crash in between replays the segment again,
which is harmless because the database write is insert-or-ignore keyed by the record ids.

A torn last line (power loss during an append) is skipped with a warning, never fatal.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import orjson

from gateway.usage.records import DecisionRecord, UsageRecord

logger = logging.getLogger("gateway.usage.spool")

RecordPair = tuple[UsageRecord, DecisionRecord | None]

#: A segment is closed (and becomes replayable) once it grows past this size.
SEGMENT_MAX_BYTES = 8 * 1024 * 1024


def encode_pair(pair: RecordPair) -> bytes:
    usage, decision = pair
    return orjson.dumps({"u": usage.to_json(), "d": decision.to_json() if decision else None}) + b"\n"


def decode_line(line: bytes) -> RecordPair:
    data = orjson.loads(line)
    decision = DecisionRecord.from_json(data["d"]) if data.get("d") else None
    return UsageRecord.from_json(data["u"]), decision


class Spool:
    """Thread-safe: appends may come from the event loop (queue overflow) and from a worker thread."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._next_sequence = max((self._sequence(p) for p in self._segment_paths()), default=0) + 1
        self._active: Path | None = None

    @staticmethod
    def _sequence(path: Path) -> int:
        return int(path.stem)

    def _segment_paths(self) -> list[Path]:
        paths = [p for p in self.directory.glob("*.jsonl") if p.stem.isdigit()]
        return sorted(paths, key=self._sequence)

    def append(self, pairs: Iterable[RecordPair]) -> int:
        """Write a batch durably; returns the number of records written."""
        data = b"".join(encode_pair(pair) for pair in pairs)
        if not data:
            return 0
        with self._lock:
            if self._active is None or self._active.stat().st_size >= SEGMENT_MAX_BYTES:
                self._active = self.directory / f"{self._next_sequence:012d}.jsonl"
                self._next_sequence += 1
            fd = os.open(self._active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        return data.count(b"\n")

    def segments(self) -> list[Path]:
        """Segments to replay, oldest first; the active one is closed so appends go elsewhere."""
        with self._lock:
            self._active = None
            return self._segment_paths()

    def read(self, segment: Path) -> list[RecordPair]:
        pairs: list[RecordPair] = []
        with segment.open("rb") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    pairs.append(decode_line(line))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    logger.warning("skipping unreadable spool line %s:%d", segment.name, number)
        return pairs

    def remove(self, segment: Path) -> None:
        with self._lock:
            segment.unlink(missing_ok=True)
            if self._active == segment:
                self._active = None

    def pending(self) -> bool:
        return any(True for _ in self.directory.glob("*.jsonl"))

    def size_bytes(self) -> int:
        total = 0
        for path in self.directory.glob("*.jsonl"):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total
