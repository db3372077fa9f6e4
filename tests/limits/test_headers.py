from __future__ import annotations

import pytest

from gateway.limits.budgets import day_period, fill_scope, month_period, window_period
from gateway.limits.headers import LimitState, format_duration, gcra_state, ratelimit_headers, retry_headers


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.0201, "21ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (7.66, "7.66s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (3723.25, "1h2m3.25s"),
    ],
)
def test_durations_in_openai_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_gcra_state_counts_whole_units_left() -> None:
    # 600 per 60 s with the TAT 6.05 s ahead: 60.5 units used, 539 whole units left.
    assert gcra_state(600, 60, 1006.05, 1000) == LimitState(600, 539, pytest.approx(6.05))
    assert gcra_state(600, 60, 900, 1000) == LimitState(600, 600, 0)


def test_headers_only_for_dimensions_that_are_limited() -> None:
    assert ratelimit_headers([LimitState(10, 3, 2.0)], []) == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "3",
        "x-ratelimit-reset-requests": "2s",
    }
    assert retry_headers(0.2) == {"retry-after": "1", "retry-after-ms": "200"}


def test_periods_are_calendar_utc_and_epoch_windows() -> None:
    t = 1_796_083_140.0  # 2026-11-30 23:59:00 UTC
    assert day_period(t).id == "day:2026-11-30" and day_period(t).end == t + 60
    assert month_period(t).id == "month:2026-11" and month_period(t + 60).id == "month:2026-12"
    assert month_period(t + 60 + 31 * 86400).id == "month:2027-01"
    assert window_period(t, 3600).end - window_period(t, 3600).start == 3600


def test_scope_templates() -> None:
    fields = {"key_id": "k1", "team": None, "model": "gpt-4o"}
    assert fill_scope("key:{key_id}", fields) == "key:k1"
    assert fill_scope("team:{team}", fields) is None
    assert fill_scope("key:{key_id}/model:{model}", fields) == "key:k1/model:gpt-4o"
    assert fill_scope("global", fields) == "global"
