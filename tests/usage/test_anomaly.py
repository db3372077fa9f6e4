"""The per-key baseline and anomaly score, on synthetic traffic."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from gateway.observability import Metrics
from gateway.usage.anomaly import AnomalyDetector
from gateway.usage.config import AnomalyConfig

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _steady(
    detector: AnomalyDetector, key: str, hours: int, requests: int = 20, tokens: int = 500
) -> datetime:
    """``requests`` calls of ``tokens`` tokens in each of ``hours`` hours; returns the next hour."""
    for h in range(hours):
        for i in range(requests):
            detector.observe(key, tokens, T0 + timedelta(hours=h, minutes=i))
    return T0 + timedelta(hours=hours)


def test_no_score_without_a_baseline() -> None:
    detector = AnomalyDetector(AnomalyConfig(min_hours=3))
    assert detector.score("unknown", T0) == 0.0
    for i in range(500):  # a burst from a brand-new key has nothing to compare with
        detector.observe("new", 5000, T0 + timedelta(seconds=i))
    assert detector.score("new", T0 + timedelta(minutes=30)) == 0.0


def test_normal_hour_scores_low_and_burst_scores_high(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    detector = AnomalyDetector(AnomalyConfig(), metrics)
    now = _steady(detector, "k", 24)
    for i in range(20):
        detector.observe("k", 500, now + timedelta(minutes=i))
    assert detector.score("k", now + timedelta(minutes=30)) == 0.0

    burst_hour = now + timedelta(hours=1)
    with caplog.at_level(logging.WARNING, logger="gateway.anomaly"):
        scores = [detector.observe("k", 500, burst_hour + timedelta(seconds=i)) for i in range(200)]
    assert scores == sorted(scores)  # the score only grows as the hour fills up
    assert detector.score("k", burst_hour + timedelta(minutes=5)) == 1.0
    # Crossing the threshold is one event (metric + log line), not one per request.
    events = [r for r in caplog.records if r.name == "gateway.anomaly"]
    assert len(events) == 1 and "key k" in events[0].getMessage()
    assert (
        metrics.anomaly_events.labels("tokens")._value.get()
        + metrics.anomaly_events.labels("requests")._value.get()
        == 1
    )


def test_large_prompts_at_normal_rate_are_flagged_by_tokens() -> None:
    detector = AnomalyDetector(AnomalyConfig())
    now = _steady(detector, "k", 12, requests=20, tokens=500)
    for i in range(20):
        detector.observe("k", 20_000, now + timedelta(minutes=i))
    assert detector.score("k", now + timedelta(minutes=30)) == 1.0


def test_baseline_forgets_with_half_life_and_adapts() -> None:
    detector = AnomalyDetector(AnomalyConfig(half_life_hours=2))
    now = _steady(detector, "k", 6, requests=20, tokens=500)
    # The key's normal rises to 200 requests/hour; after a few half-lives that is the baseline.
    for h in range(12):
        for i in range(200):
            detector.observe("k", 500, now + timedelta(hours=h, seconds=i * 10))
    later = now + timedelta(hours=12)
    for i in range(200):
        detector.observe("k", 500, later + timedelta(seconds=i * 10))
    assert detector.score("k", later + timedelta(minutes=40)) < 0.2


def test_silent_hours_count_as_zero_then_old_traffic_looks_high() -> None:
    detector = AnomalyDetector(
        AnomalyConfig(half_life_hours=1, min_requests_per_hour=1, min_tokens_per_hour=10)
    )
    now = _steady(detector, "k", 5, requests=20, tokens=500)
    back = now + timedelta(hours=10)  # ten idle hours: the baseline decays towards zero
    for i in range(20):
        detector.observe("k", 500, back + timedelta(minutes=i))
    assert detector.score("k", back + timedelta(minutes=30)) == 1.0


def test_keys_are_bounded_least_recently_seen_first() -> None:
    detector = AnomalyDetector(AnomalyConfig(max_keys=3))
    for key in ("a", "b", "c"):
        detector.observe(key, 10, T0)
    detector.observe("a", 10, T0)
    detector.observe("d", 10, T0)
    assert len(detector) == 3
    assert detector.score("b", T0) == 0.0 and "b" not in detector._keys and "a" in detector._keys


def test_disabled_detector_scores_zero() -> None:
    detector = AnomalyDetector(AnomalyConfig(enabled=False))
    _steady(detector, "k", 5)
    assert detector.observe("k", 10**6, T0 + timedelta(hours=5)) == 0.0
    assert len(detector) == 0
