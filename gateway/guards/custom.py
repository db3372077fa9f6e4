"""Recognizers defined in the config: regular expressions and deny lists."""

from __future__ import annotations

import re

from presidio_anonymizer.entities import RecognizerResult

from gateway.guards.config import CustomRecognizerConfig, DenyListConfig
from gateway.guards.context import Context, Recognizer, literal_words


class PatternRecognizer:
    def __init__(self, spec: CustomRecognizerConfig) -> None:
        self.name = spec.name
        self.entities = frozenset({spec.entity})
        self._entity = spec.entity
        self._pattern = re.compile(spec.pattern, re.IGNORECASE if spec.ignore_case else 0)
        self._score = spec.score
        self._context = (
            Context(literal_words(spec.context), boost=spec.context_boost) if spec.context else None
        )

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        for m in self._pattern.finditer(text):
            if m.end() == m.start():
                continue
            score = (
                self._score if self._context is None else self._context.score(text, *m.span(), self._score)
            )
            out.append(RecognizerResult(self._entity, m.start(), m.end(), score))
        return out


class DenyListRecognizer:
    """Whole-word matches of listed terms, scored 1.0."""

    def __init__(self, spec: DenyListConfig) -> None:
        self.entities = frozenset({spec.entity})
        self._entity = spec.entity
        # Longest first, so "acme corp" wins over "acme" at the same position.
        words = sorted({w.strip() for w in spec.words}, key=len, reverse=True)
        body = "|".join(re.escape(w) for w in words)
        self._pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE if spec.ignore_case else 0)

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]:
        return [RecognizerResult(self._entity, m.start(), m.end(), 1.0) for m in self._pattern.finditer(text)]


def configured_recognizers(
    custom: list[CustomRecognizerConfig], deny_lists: list[DenyListConfig]
) -> list[Recognizer]:
    recognizers: list[Recognizer] = [PatternRecognizer(spec) for spec in custom]
    recognizers.extend(DenyListRecognizer(spec) for spec in deny_lists)
    return recognizers
