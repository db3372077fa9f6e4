"""Screening of the model's answer: deny on listed types, redact others, restore placeholders.

The answer is screened as the provider sent it, then reversible-mode placeholders are restored:
values the client itself sent come back unchanged, while new findings in the model's output are
redacted or denied.

Streams: ``StreamScreener.feed`` returns what can be emitted now and holds back only the
trailing run of characters that could still grow into an entity or a placeholder:

* the last "word" made of ``[A-Za-z0-9@._%+\\-:=/<>()]``, continued across single spaces
  between digit or upper-case groups (cards, IBANs, phone numbers), at most ``MAX_HOLD``
  (128) characters;
* a run that contains the start of a long credential (``eyJ``, ``sk-``, ``gh?_``, ``github_pat_``) up
  to ``LONG_HOLD`` (4,096) characters, and an unfinished PEM private key block up to
  ``PEM_HOLD`` (16,384) characters.

Plain prose is therefore delayed by at most one partial word.
"""

from __future__ import annotations

import string

from presidio_anonymizer.entities import RecognizerResult

from gateway.guards.anonymize import Redactor, Restorer
from gateway.guards.errors import GuardDeniedError
from gateway.guards.scanner import PiiScanner
from gateway.policy.decision import ResponseRules

MAX_HOLD = 128
LONG_HOLD = 4096
PEM_HOLD = 16384
#: Already-emitted characters re-read for context words and look-behinds.
CONTEXT_CHARS = 64

_RUN = frozenset(string.ascii_letters + string.digits + "@._%+-:=/<>()")
_GROUP_EDGE = frozenset(string.ascii_uppercase + string.digits + "()+")
_LONG_PREFIXES = ("eyJ", "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")


class ResponseScreen:
    """The shared part of JSON and stream screening: scan, deny, redact."""

    def __init__(
        self, scanner: PiiScanner, redactor: Redactor, rules: ResponseRules, *, status: int | None
    ) -> None:
        self._scanner = scanner
        self._redactor = redactor
        self._deny = frozenset(rules.deny_on)
        self._redact = frozenset(rules.redact)
        self._wanted = self._deny | self._redact
        self._status = status
        self.active = bool(self._wanted)

    def apply(self, text: str, context: str = "") -> str:
        """Screen ``text``; ``context`` (already emitted) only informs the recognizers."""
        if not self.active or not text:
            return text
        offset = len(context)
        findings = self._scanner.scan(context + text if context else text, self._wanted)
        kept: list[RecognizerResult] = []
        for f in findings:
            if f.end <= offset:
                continue
            kept.append(
                RecognizerResult(f.entity_type, max(f.start, offset) - offset, f.end - offset, f.score)
            )
        denied = {f.entity_type for f in kept if f.entity_type in self._deny}
        if denied:
            raise GuardDeniedError(denied, status=self._status)
        return self._redactor.anonymize(text, [f for f in kept if f.entity_type in self._redact])


def screen_text(screen: ResponseScreen, text: str, restorer: Restorer | None) -> str:
    screened = screen.apply(text)
    return restorer.restore(screened) if restorer is not None else screened


class StreamScreener:
    """Per-stream state machine: ``feed`` each text delta, ``flush`` at the end of the stream."""

    def __init__(self, screen: ResponseScreen, restorer: Restorer | None) -> None:
        self._screen = screen
        self._restorer = restorer if restorer is not None and len(restorer) else None
        self._pending = ""
        self._emitted_tail = ""  # the last CONTEXT_CHARS of screened upstream text

    def feed(self, delta: str) -> str:
        if not self._screen.active and self._restorer is None:
            return delta
        self._pending += delta
        cut = self._cut(self._pending)
        if cut == 0:
            return ""
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._emit(ready)

    def flush(self) -> str:
        ready, self._pending = self._pending, ""
        return self._emit(ready) if ready else ""

    @property
    def held(self) -> int:
        """Characters currently held back."""
        return len(self._pending)

    def _emit(self, ready: str) -> str:
        screened = self._screen.apply(ready, self._emitted_tail)
        self._emitted_tail = (self._emitted_tail + ready)[-CONTEXT_CHARS:]
        return self._restorer.restore(screened) if self._restorer is not None else screened

    def _cut(self, text: str) -> int:
        if not self._screen.active:
            return _placeholder_cut(text, self._restorer.max_placeholder_len if self._restorer else 0)
        return min(_tail_start(text), _pem_start(text))


def _placeholder_cut(text: str, longest: int) -> int:
    opening = text.rfind("<", max(0, len(text) - longest))
    if opening >= 0 and ">" not in text[opening:]:
        return opening
    return len(text)


def _tail_start(text: str) -> int:
    n = len(text)
    floor = max(0, n - LONG_HOLD)
    i = n
    while i > floor:
        ch = text[i - 1]
        if ch in _RUN:
            i -= 1
            continue
        # A single space between digit/upper-case groups: "4111 1111", "DE89 3704", ") 555".
        if ch == " " and i >= 2 and text[i - 2] in _GROUP_EDGE and (i == n or text[i] in _GROUP_EDGE):
            i -= 1
            continue
        break
    if n - i <= MAX_HOLD:
        return i
    run = text[i:]
    if any(prefix in run for prefix in _LONG_PREFIXES):
        return i
    return n - MAX_HOLD


def _pem_start(text: str) -> int:
    begin = text.rfind("-----BEGIN", max(0, len(text) - PEM_HOLD))
    if begin < 0:
        return len(text)
    end = text.find("-----END", begin)
    # Complete only once the END line's closing dashes have arrived too.
    if end >= 0 and text.find("-----", end + 8) >= 0:
        return len(text)
    return begin
