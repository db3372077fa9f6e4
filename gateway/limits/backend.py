"""The counter-store interface both backends implement, and the values that cross it.

Two kinds of counters:

* rate counters, one per limit (name + scope + window), use GCRA: each of the three dimensions
  (requests, tokens, cost) keeps one "theoretical arrival time" (TAT). Taking ``n`` units pushes
  the TAT forward by ``n * window / limit``; the take is allowed while the TAT stays within one
  window of now. That is a token bucket holding ``limit`` units refilled continuously over
  ``window`` seconds, kept in one number, so a check is O(1), exact (no window-edge bursts of 2x
  as with fixed windows) and a refund is simply moving the TAT back.
* spend counters, one per scope and calendar period (``day:2026-11-27``, ``month:2026-11``,
  ``w3600:491234``), hold spend (USD), tokens and requests. Budgets compare the spend with their
  amount. A missing counter starts from a floor: what SQL knows was spent in that period, so a
  Redis restart or a gateway restart does not forget spend.

``reserve`` checks every counter of a request and applies all of them or none (one atomic step);
``adjust`` applies reconciliation deltas without checks; ``read_spend`` reads spend counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

#: Index of each dimension in the three-element tuples below.
REQUESTS, TOKENS, COST = 0, 1, 2
DIMENSIONS = ("requests", "tokens", "cost")


class BackendUnavailable(Exception):
    """The counter store could not be reached (or answered nonsense); see ``on_backend_error``."""


@dataclass(slots=True, frozen=True)
class SpendTotals:
    spend: float = 0.0
    tokens: int = 0
    requests: int = 0

    def __add__(self, other: SpendTotals) -> SpendTotals:
        return SpendTotals(
            self.spend + other.spend, self.tokens + other.tokens, self.requests + other.requests
        )


ZERO = SpendTotals()


@dataclass(slots=True, frozen=True)
class RateCharge:
    """Units taken from (or, negative, given back to) one rate counter."""

    key: str
    window_s: float
    #: (requests, tokens, cost) limits; None where the limit does not cover that dimension.
    limits: tuple[float | None, float | None, float | None]
    amounts: tuple[float, float, float]


@dataclass(slots=True, frozen=True)
class SpendCharge:
    """An addition to one spend counter, and the budget cap checked on reserve."""

    key: str
    period_end: float
    #: The counter may be dropped after this time (Unix seconds).
    expire_at: float
    floor: SpendTotals
    cap: float | None
    add: SpendTotals
    #: Added instead of ``add`` when the counter is missing (it was lost with the reservation).
    add_if_missing: SpendTotals


@dataclass(slots=True)
class ReserveResult:
    allowed: bool
    #: TATs (Unix seconds) per rate charge and dimension, after the reservation when allowed,
    #: as they stand when refused; None where the charge has no limit for that dimension.
    tats: list[tuple[float | None, float | None, float | None]]
    denied: Literal["rate", "spend"] | None = None
    denied_index: int = -1
    #: Dimension of a refused rate charge (REQUESTS, TOKENS, COST).
    denied_dimension: int = -1
    retry_after_s: float = 0.0
    #: Spend already counted when a budget refused the request.
    denied_spend: float = 0.0


class LimitBackend(Protocol):
    async def reserve(
        self, now: float, rates: list[RateCharge], spends: list[SpendCharge]
    ) -> ReserveResult: ...

    async def adjust(self, now: float, rates: list[RateCharge], spends: list[SpendCharge]) -> None: ...

    async def read_spend(self, spends: list[SpendCharge]) -> list[SpendTotals]: ...

    async def close(self) -> None: ...
