"""Quality targets on the labelled corpus (tests/guards/corpus/)."""

from __future__ import annotations

import pytest

from gateway.guards import Guard, GuardsConfig
from tests.guards.report import TypeScore, score_injection, score_pii


@pytest.fixture(scope="module")
def pii_scores() -> dict[str, TypeScore]:
    return score_pii(Guard(GuardsConfig()))


def test_corpus_has_enough_samples_for_the_targets(pii_scores: dict[str, TypeScore]) -> None:
    for entity in ("CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS"):
        assert pii_scores[entity].positives >= 30, entity
        assert pii_scores[entity].negatives >= 30, entity
    for entity in ("PHONE_NUMBER", "US_SSN", "IP_ADDRESS", "OPENAI_API_KEY", "JWT", "PRIVATE_KEY"):
        assert pii_scores[entity].positives >= 3 and pii_scores[entity].negatives >= 10, entity


@pytest.mark.parametrize("entity", ["CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS"])
def test_recall_on_valid_cards_ibans_and_emails(pii_scores: dict[str, TypeScore], entity: str) -> None:
    assert pii_scores[entity].recall >= 0.95


def test_false_positives_on_negatives_at_most_two_percent(pii_scores: dict[str, TypeScore]) -> None:
    flagged = sum(s.flagged_negatives for s in pii_scores.values())
    total = sum(s.negatives for s in pii_scores.values())
    assert flagged / total <= 0.02
    for entity, score in pii_scores.items():
        # Per type, allow at most one flagged negative in the smaller sets.
        assert score.flagged_negatives <= max(1, int(0.02 * score.negatives)), entity


def test_every_recognizer_finds_most_of_its_positives(pii_scores: dict[str, TypeScore]) -> None:
    for entity, score in pii_scores.items():
        assert score.recall >= 0.85, entity
        assert score.precision >= 0.9, entity


def test_injection_signals_on_the_corpus() -> None:
    score, missed, flagged = score_injection(Guard(GuardsConfig()))
    assert score.positives >= 30 and score.negatives >= 30
    assert score.recall >= 0.9, missed
    assert score.negative_fp_rate <= 0.04, flagged
