"""Scopes and budget periods: which counters a request touches, named the same on every replica.

A period is a string id plus its end: ``day:2026-11-27`` and ``month:2026-11`` are calendar
periods in UTC; ``w<seconds>:<index>`` is a window of any length aligned to the Unix epoch
(index = now // seconds). The ids key both the live counters and the rows of the spend table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.limits.config import BudgetRule

#: How long a spend counter outlives its period: late reconciliations still find it.
SPEND_GRACE_S = 3600.0


@dataclass(slots=True, frozen=True)
class Period:
    id: str
    start: float
    end: float


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def day_period(now: float) -> Period:
    t = datetime.fromtimestamp(now, UTC)
    start = datetime(t.year, t.month, t.day, tzinfo=UTC)
    return Period(f"day:{start:%Y-%m-%d}", start.timestamp(), (start + timedelta(days=1)).timestamp())


def month_period(now: float) -> Period:
    t = datetime.fromtimestamp(now, UTC)
    start = _month_start(t.year, t.month)
    end = _month_start(t.year + 1, 1) if t.month == 12 else _month_start(t.year, t.month + 1)
    return Period(f"month:{start:%Y-%m}", start.timestamp(), end.timestamp())


def window_period(now: float, window_s: int) -> Period:
    index = int(now // window_s)
    return Period(f"w{window_s}:{index}", float(index * window_s), float((index + 1) * window_s))


def budget_period(rule: BudgetRule, now: float) -> Period:
    if rule.period == "day":
        return day_period(now)
    if rule.period == "month":
        return month_period(now)
    assert rule.window_s is not None  # the config validator guarantees one of the two
    return window_period(now, rule.window_s)


def fill_scope(template: str, fields: Mapping[str, str | None]) -> str | None:
    """The concrete scope, or None when the request lacks a field the template names."""
    if "{" not in template:
        return template
    try:
        values = {k: v for k, v in fields.items() if v is not None and v != ""}
        return template.format_map(values)
    except KeyError:
        return None


def current_periods(budgets: list[BudgetRule], now: float) -> list[Period]:
    """Every period a counter may be charged in right now (the usage counters' day and month too)."""
    seen: dict[str, Period] = {}
    for period in [day_period(now), month_period(now), *(budget_period(b, now) for b in budgets)]:
        seen.setdefault(period.id, period)
    return list(seen.values())


class PeriodCache:
    """The day, the month and each budget's period for ``now``, recomputed only at a boundary."""

    def __init__(self, budgets: list[BudgetRule]) -> None:
        self._budgets = budgets
        self._start = float("inf")
        self._end = float("-inf")
        self._value: tuple[Period, Period, list[Period]] | None = None

    def at(self, now: float) -> tuple[Period, Period, list[Period]]:
        if self._value is not None and self._start <= now < self._end:
            return self._value
        day, month = day_period(now), month_period(now)
        budget_periods = [budget_period(b, now) for b in self._budgets]
        every = [day, month, *budget_periods]
        self._start = max(p.start for p in every)
        self._end = min(p.end for p in every)
        self._value = (day, month, budget_periods)
        return self._value
