"""Runs every recognizer over a text and keeps the confident, non-overlapping findings."""

from __future__ import annotations

from collections.abc import Collection

from presidio_anonymizer.entities import RecognizerResult

from gateway.guards.config import GuardsConfig
from gateway.guards.context import Recognizer
from gateway.guards.credentials import credential_recognizers
from gateway.guards.custom import configured_recognizers
from gateway.guards.recognizers import builtin_pii_recognizers

#: When two findings overlap with the same score, the more specific type wins.
_PRIORITY = {
    "PRIVATE_KEY": 0,
    "JWT": 1,
    "ANTHROPIC_API_KEY": 2,
    "OPENAI_API_KEY": 3,
    "GITHUB_TOKEN": 4,
    "AWS_ACCESS_KEY": 5,
    "IBAN_CODE": 6,
    "CREDIT_CARD": 7,
    "EMAIL_ADDRESS": 8,
    "US_SSN": 9,
    "IP_ADDRESS": 10,
    "PHONE_NUMBER": 11,
}


class PiiScanner:
    """Built once from the config; ``scan`` is pure and safe to share between requests."""

    def __init__(self, config: GuardsConfig) -> None:
        self.threshold = config.score_threshold
        self._recognizers: list[Recognizer] = [
            *credential_recognizers(),
            *builtin_pii_recognizers(),
            *configured_recognizers(config.custom, config.deny_lists),
        ]
        self.entity_types: frozenset[str] = frozenset().union(*(r.entities for r in self._recognizers))

    def scan(self, text: str, entity_types: Collection[str] | None = None) -> list[RecognizerResult]:
        """Findings at or above the threshold, sorted by position, without overlaps.

        ``entity_types`` limits the search (None: every type); recognizers of other types are
        not run at all.
        """
        if not text:
            return []
        wanted = None if entity_types is None else frozenset(entity_types)
        found: list[RecognizerResult] = []
        for recognizer in self._recognizers:
            if wanted is not None and not (recognizer.entities & wanted):
                continue
            for result in recognizer.find(text, wanted):
                if result.score >= self.threshold and (wanted is None or result.entity_type in wanted):
                    found.append(result)
        if len(found) > 1:
            found = _without_overlaps(found)
        return found


def _without_overlaps(results: list[RecognizerResult]) -> list[RecognizerResult]:
    ranked = sorted(results, key=lambda r: (-r.score, _PRIORITY.get(r.entity_type, 50), r.start))
    kept: list[RecognizerResult] = []
    for result in ranked:
        if all(result.end <= k.start or result.start >= k.end for k in kept):
            kept.append(result)
    kept.sort(key=lambda r: r.start)
    return kept
