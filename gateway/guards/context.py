"""Context words around a candidate raise or lower its score, and the recognizer interface."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from presidio_anonymizer.entities import RecognizerResult

#: Characters looked at before and after a candidate for context words.
WINDOW_BEFORE = 48
WINDOW_AFTER = 24


class Recognizer(Protocol):
    """Finds one or more entity types in a text; scores are final (context applied).

    ``wanted`` (None: all) lets a recognizer of several types skip the work for the others.
    """

    entities: frozenset[str]

    def find(self, text: str, wanted: frozenset[str] | None = None) -> list[RecognizerResult]: ...


def _alternation(fragments: Iterable[str]) -> re.Pattern[str] | None:
    fragments = list(fragments)
    if not fragments:
        return None
    # Fragments are regex snippets matched at a word start, so "card" also finds "cards".
    return re.compile(r"(?<!\w)(?:" + "|".join(fragments) + ")", re.IGNORECASE)


class Context:
    """Positive words add ``boost``; negative words (without a positive one) multiply by ``penalty``."""

    def __init__(
        self,
        positive: Iterable[str],
        negative: Iterable[str] = (),
        *,
        boost: float = 0.3,
        penalty: float = 0.4,
    ) -> None:
        self._positive = _alternation(positive)
        self._negative = _alternation(negative)
        self._boost = boost
        self._penalty = penalty

    def score(self, text: str, start: int, end: int, base: float) -> float:
        window = text[max(0, start - WINDOW_BEFORE) : start] + " \x00 " + text[end : end + WINDOW_AFTER]
        if self._positive is not None and self._positive.search(window):
            return min(1.0, base + self._boost)
        if self._negative is not None and self._negative.search(window):
            return base * self._penalty
        return base


def literal_words(words: Iterable[str]) -> list[str]:
    """Plain words (from the config) as regex fragments."""
    return [re.escape(w) for w in words]


#: Words that mark a number as a business reference rather than personal data.
REFERENCE_WORDS: list[str] = [
    r"order",
    r"tracking",
    r"track\b",
    r"invoice",
    r"ref\b",
    r"reference",
    r"shipment",
    r"parcel",
    r"package",
    r"serial",
    r"ticket",
    r"transaction",
    r"txn",
    r"booking",
    r"confirmation",
    r"sku\b",
    r"isbn",
    r"barcode",
    r"ean\b",
    r"upc\b",
    r"id\b",
    r"#",
    r"bestell",
    r"rechnung",
    r"sendung",
    r"commande",
    r"facture",
    r"colis",
    r"pedido",
    r"factura",
    r"ordine",
    r"fattura",
    r"encomenda",
]
