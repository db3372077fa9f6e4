"""Prompt-injection signals and a score in [0, 1].

Signals (default weights; the score is ``1 - prod(1 - weight)`` over the signals that fired):

    instruction_override      0.8  "ignore previous instructions" in en/de/fr/es/it/pt
    system_prompt_extraction  0.6  "repeat your system prompt", "what were your instructions"
    role_play                 0.3  "pretend you are", "you are now", "du bist jetzt" …
    restriction_bypass        0.5  "without any restrictions", "uncensored" …
    developer_mode            0.7  "developer mode", "jailbreak" …
    dan_jailbreak             0.8  "DAN", "do anything now"
    unicode_tags              0.9  tag characters U+E0000-U+E007F (invisible ASCII)
    zero_width                0.3  zero-width spaces/joiners inside words
    bidi_override             0.5  bidirectional embedding/override/isolate controls
    encoded_payload           0.3  a long base64/hex run that decodes to readable text
    encoded_instructions      0.8  hidden text (encoded or tag characters) carrying any phrase signal
"""

from __future__ import annotations

import base64
import binascii
import re

from gateway.guards import injection_phrases as phrases
from gateway.guards.config import InjectionConfig

DEFAULT_WEIGHTS: dict[str, float] = {
    "instruction_override": 0.8,
    "system_prompt_extraction": 0.6,
    "role_play": 0.3,
    "restriction_bypass": 0.5,
    "developer_mode": 0.7,
    "dan_jailbreak": 0.8,
    "unicode_tags": 0.9,
    "zero_width": 0.3,
    "bidi_override": 0.5,
    "encoded_payload": 0.3,
    "encoded_instructions": 0.8,
}

_PHRASE_SIGNALS: dict[str, dict[str, list[str]]] = {
    "instruction_override": phrases.OVERRIDE,
    "system_prompt_extraction": phrases.EXTRACTION,
    "role_play": phrases.ROLE_PLAY,
    "restriction_bypass": phrases.BYPASS,
    "developer_mode": phrases.DEVELOPER_MODE,
    "dan_jailbreak": phrases.DAN,
}

_TAGS = re.compile("[\U000e0000-\U000e007f]")
# U+200D (zero-width joiner) is left out: emoji sequences use it legitimately.
_ZERO_WIDTH = re.compile(
    "[\u200b\u200c\u2060\u2061\u2062\u2063\u2064\u180e]|(?<=\\w)\ufeff|(?<=[A-Za-z])\u200d(?=[A-Za-z])"
)
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


class InjectionDetector:
    """Compiled once; ``detect`` returns ``(score, sorted signal names)``."""

    def __init__(self, config: InjectionConfig) -> None:
        self.enabled = config.enabled
        self._weights = {**DEFAULT_WEIGHTS, **config.weights}
        self._min_payload = config.min_payload_chars
        self._groups: list[tuple[str, str, re.Pattern[str]]] = [
            (signal, stem, re.compile("|".join(f"(?:{p})" for p in patterns)))
            for signal, table in _PHRASE_SIGNALS.items()
            for stem, patterns in table.items()
        ]
        self._extra = [p.lower() for p in config.extra_phrases]
        self._base64 = re.compile(
            rf"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/]{{{self._min_payload},}}={{0,2}}(?![A-Za-z0-9+/=_\-])"
        )
        self._hex = re.compile(
            rf"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{{2}}){{{self._min_payload // 2},}}(?![0-9A-Fa-f])"
        )

    def detect(self, texts: list[str]) -> tuple[float, list[str]]:
        if not self.enabled:
            return 0.0, []
        signals: set[str] = set()
        for text in texts:
            if text:
                signals |= self._signals(text)
        signals = {s for s in signals if self._weights.get(s, 0.0) > 0.0}
        keep = 1.0
        for signal in signals:
            keep *= 1.0 - self._weights[signal]
        return round(1.0 - keep, 4), sorted(signals)

    def _signals(self, text: str) -> set[str]:
        found = self._phrase_signals(text.lower())
        if not text.isascii():
            found |= self._unicode_signals(text)
        found |= self._payload_signals(text)
        return found

    def _phrase_signals(self, lowered: str) -> set[str]:
        found: set[str] = set()
        for signal, stem, pattern in self._groups:
            if signal not in found and stem in lowered and pattern.search(lowered):
                found.add(signal)
        if any(p in lowered for p in self._extra):
            found.add("instruction_override")
        return found

    def _unicode_signals(self, text: str) -> set[str]:
        found: set[str] = set()
        tags = _TAGS.findall(text)
        if tags:
            found.add("unicode_tags")
            hidden = "".join(chr(ord(ch) - 0xE0000) for ch in tags)
            if self._phrase_signals(hidden.lower()):
                found.add("encoded_instructions")
        if _ZERO_WIDTH.search(text):
            found.add("zero_width")
        if _BIDI.search(text):
            found.add("bidi_override")
        return found

    def _payload_signals(self, text: str) -> set[str]:
        found: set[str] = set()
        for decoded in self._decoded_payloads(text):
            if _readable(decoded):
                found.add("encoded_payload")
                if self._phrase_signals(decoded.lower()):
                    found.add("encoded_instructions")
                    break
        return found

    def _decoded_payloads(self, text: str) -> list[str]:
        out: list[str] = []
        if len(text) < self._min_payload:
            return out
        # Splitting on whitespace is far cheaper than a regex pass; only long tokens can hold a payload.
        for token in text.split():
            if len(token) < self._min_payload:
                continue
            for m in self._base64.finditer(token):
                run = m.group()
                if run.isalpha() or run.isdigit():  # one long word or number, not base64
                    continue
                try:
                    raw = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
                except (binascii.Error, ValueError):
                    continue
                out.append(raw.decode("utf-8", errors="replace"))
            for m in self._hex.finditer(token):
                out.append(bytes.fromhex(m.group()).decode("utf-8", errors="replace"))
        return out


def _readable(decoded: str) -> bool:
    """Mostly letters and spaces, with several words: prose, not binary, JSON or a digest."""
    if len(decoded) < 12 or decoded.count(" ") < 2:
        return False
    good = sum(1 for ch in decoded if ch.isalpha() or ch in " ,.'!?:;-\n")
    return good / len(decoded) >= 0.85
