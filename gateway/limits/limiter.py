"""Consumption control for one request: reserve before the upstream call, reconcile after it.

Where it sits in the pipeline::

    policy decision ──► limiter.reserve(ctx) ──► upstream call ──► limiter.reconcile(res, usage, cost)
                         (429 / 402 / 503 here)                    (also for streams cut short)

``reserve`` takes, in one atomic backend step, one request, the prompt estimate plus the
maximum output, and the estimated maximum cost from every limit that applies (config defaults
and the decision's limits), and adds the same to the spend counters budgets look at. So
concurrent requests can never together pass a limit; the only overshoot is what a reconciliation
charges beyond its reservation. ``reconcile`` gives back (or charges) the difference with the
provider's actual usage and queues the actual spend for SQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.errors import BudgetExceededError, RateLimitError, ServiceUnavailableError
from gateway.limits.backend import (
    DIMENSIONS,
    ZERO,
    BackendUnavailable,
    LimitBackend,
    RateCharge,
    ReserveResult,
    SpendCharge,
    SpendTotals,
)
from gateway.limits.budgets import (
    SPEND_GRACE_S,
    Period,
    PeriodCache,
    current_periods,
    fill_scope,
)
from gateway.limits.config import BudgetRule, LimitsConfig
from gateway.limits.headers import format_duration, retry_headers
from gateway.limits.pricing import PriceTable
from gateway.limits.reservation import LimitContext, Reservation, rate_headers
from gateway.limits.spend_store import SpendFlusher, SpendKey, SpendStore
from gateway.policy.decision import LimitSpec
from gateway.types import Usage

log = logging.getLogger(__name__)

_SNAPSHOT_CACHE_MAX = 10_000

__all__ = ["LimitContext", "Limiter", "Reservation"]


def _rate_key(limit: LimitSpec) -> str:
    return f"rl:{limit.name}:{limit.scope}:{limit.window_s}"


def _spend_key(scope: str, period: str) -> str:
    return f"sp:{scope}|{period}"


class Limiter:
    def __init__(
        self,
        config: LimitsConfig,
        backend: LimitBackend,
        price_table: PriceTable,
        spend_store: SpendStore | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._backend = backend
        self._prices = price_table
        self._clock = clock
        self._floors: dict[SpendKey, SpendTotals] = {}
        self._flusher = (
            SpendFlusher(spend_store, config.flush_interval_s, self._current_period_ids, self._set_floors)
            if spend_store is not None
            else None
        )
        self._periods = PeriodCache(config.budgets)
        self._snapshots: dict[tuple[str | None, str | None], tuple[float, dict[str, Any]]] = {}
        self._down_until = 0.0
        self._outage = False
        #: Backend errors since start (export as a counter metric).
        self.backend_errors = 0

    # -- lifespan -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Seed the spend floors from SQL and start the background flusher."""
        if self._flusher is not None:
            await self._flusher.load()
            self._flusher.start()

    async def close(self) -> None:
        """Write the queued spend, then close the backend."""
        if self._flusher is not None:
            await self._flusher.close()
        await self._backend.close()

    async def flush(self) -> None:
        """Write queued spend now (tests, shutdown); normally the flusher does it."""
        if self._flusher is not None:
            await self._flusher.flush()

    # -- request path -------------------------------------------------------------------------

    async def reserve(self, ctx: LimitContext) -> Reservation:
        now = self._clock()
        fields = ctx.scope_fields()
        max_output = (
            ctx.max_output_tokens if ctx.max_output_tokens > 0 else self._config.default_output_reserve
        )
        tokens = ctx.prompt_tokens + max_output
        cost = ctx.estimated_max_cost
        if cost is None:
            usage = Usage(prompt_tokens=ctx.prompt_tokens, completion_tokens=max_output)
            cost = self._prices.cost(
                ctx.upstream_model or ctx.model, ctx.deployment, usage, public_model=ctx.model
            )
        limits = self._applicable_limits(ctx, fields)
        rates = [
            RateCharge(
                _rate_key(lim), float(lim.window_s), (lim.requests, lim.tokens, lim.cost), (1, tokens, cost)
            )
            for lim in limits
        ]
        spends, spend_keys, budgets = self._spend_charges(fields, now, SpendTotals(cost, tokens, 1))
        res = Reservation(now, tokens, cost, limits, rates, spends, spend_keys)
        if not rates and not spends:
            return res
        try:
            result = await self._call_reserve(now, rates, spends)
        except BackendUnavailable:
            self._on_unavailable(bool(rates), any(b is not None for b in budgets))
            res.degraded = True
            res.tats = []
            res.rates = []
            return res
        if not result.allowed:
            self._raise_refusal(result, limits, rates, spend_keys, budgets, now)
        res.tats = result.tats
        return res

    async def reconcile(self, reservation: Reservation, actual: Usage, cost: float) -> None:
        """Settle a reservation with what the call really used (what was generated, if cut short)."""
        if reservation.reconciled:
            return
        reservation.reconciled = True
        if not reservation.limits and not reservation.spends:
            return
        total = actual.total_tokens
        spent = SpendTotals(cost, total, 1)
        if self._flusher is not None:
            for key in reservation.spend_keys:
                self._flusher.add(key, spent)
        if reservation.degraded:
            # Nothing was reserved: charge the whole usage now that the backend may be back.
            rate_amounts, spend_delta = (1.0, float(total), cost), spent
            rates = [
                RateCharge(
                    _rate_key(lim), float(lim.window_s), (lim.requests, lim.tokens, lim.cost), rate_amounts
                )
                for lim in reservation.limits
            ]
        else:
            rate_amounts = (0.0, float(total - reservation.tokens), cost - reservation.cost)
            spend_delta = SpendTotals(cost - reservation.cost, total - reservation.tokens, 0)
            rates = [
                RateCharge(c.key, c.window_s, c.limits, rate_amounts)
                for c in reservation.rates
                if any(rate_amounts)
            ]
        spends = [
            SpendCharge(s.key, s.period_end, s.expire_at, self._floor(k), None, spend_delta, spent)
            for s, k in zip(reservation.spends, reservation.spend_keys, strict=True)
        ]
        if not rates and not spends:
            return
        if not self._backend_ready():
            return
        try:
            await self._backend.adjust(self._clock(), rates, spends)
        except BackendUnavailable as exc:
            self._backend_failed(exc)
        else:
            self._backend_ok()

    async def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose call produced nothing (the upstream call failed).

        The tokens and cost are refunded; the request itself stays counted, so a client
        retrying a failing call still meets its request limit.
        """
        await self.reconcile(reservation, Usage(), 0.0)

    @property
    def prices(self) -> PriceTable:
        return self._prices

    async def usage_snapshot(self, key_id: str | None, team: str | None) -> dict[str, Any]:
        """Spend so far for the policy input's ``usage`` (cached ``snapshot_ttl_s`` per key and team)."""
        now = self._clock()
        cache_key = (key_id, team)
        cached = self._snapshots.get(cache_key)
        if cached is not None and cached[0] > now:
            return dict(cached[1])  # a copy: callers add their own keys (anomaly)
        day, month, _ = self._periods.at(now)
        charges: list[SpendCharge] = []
        for scope in (f"key:{key_id}" if key_id else None, f"team:{team}" if team else None):
            if scope is not None:
                charges += [
                    self._spend_charge(scope, day, None, ZERO),
                    self._spend_charge(scope, month, None, ZERO),
                ]
        totals: list[SpendTotals] = [c.floor for c in charges]
        if charges and self._backend_ready():
            try:
                totals = await self._backend.read_spend(charges)
            except BackendUnavailable as exc:
                self._backend_failed(exc)
            else:
                self._backend_ok()
        docs = []
        for i in range(0, len(totals), 2):
            today, this_month = totals[i], totals[i + 1]
            docs.append(
                {
                    "tokens_today": today.tokens,
                    "requests_today": today.requests,
                    "spend_day": round(today.spend, 6),
                    "spend_month": round(this_month.spend, 6),
                }
            )
        empty = {"tokens_today": 0, "requests_today": 0, "spend_day": 0.0, "spend_month": 0.0}
        snapshot = {
            "key": docs.pop(0) if key_id else dict(empty),
            "team": docs.pop(0) if team else dict(empty),
        }
        if len(self._snapshots) >= _SNAPSHOT_CACHE_MAX:
            self._snapshots.clear()
        self._snapshots[cache_key] = (now + self._config.snapshot_ttl_s, snapshot)
        return dict(snapshot)

    @property
    def backend_down(self) -> bool:
        return self._outage

    # -- internals ----------------------------------------------------------------------------

    def _applicable_limits(self, ctx: LimitContext, fields: dict[str, str | None]) -> list[LimitSpec]:
        by_key: dict[str, LimitSpec] = {}
        for rule in self._config.defaults:
            scope = fill_scope(rule.scope, fields)
            if scope is not None:
                spec = LimitSpec(rule.name, scope, rule.window_s, rule.requests, rule.tokens, rule.cost)
                by_key.setdefault(_rate_key(spec), spec)
        for spec in ctx.limits:
            # A decision limit with the same name, scope and window replaces the default.
            by_key[_rate_key(spec)] = spec
        return list(by_key.values())

    def _spend_charges(
        self, fields: dict[str, str | None], now: float, add: SpendTotals
    ) -> tuple[list[SpendCharge], list[SpendKey], list[BudgetRule | None]]:
        """The usage counters (key and team, day and month) and every budget's counter."""
        wanted: dict[SpendKey, tuple[Period, BudgetRule | None]] = {}
        day, month, budget_periods = self._periods.at(now)
        for scope in (
            f"key:{fields['key_id']}" if fields["key_id"] else None,
            f"team:{fields['team']}" if fields["team"] else None,
        ):
            if scope is not None:
                wanted[(scope, day.id)] = (day, None)
                wanted[(scope, month.id)] = (month, None)
        for rule, period in zip(self._config.budgets, budget_periods, strict=True):
            scope = fill_scope(rule.scope, fields)
            if scope is None:
                continue
            prior = wanted.get((scope, period.id))
            binding: BudgetRule | None = (
                rule
                if prior is None or prior[1] is None or rule.amount_usd < prior[1].amount_usd
                else prior[1]
            )
            wanted[(scope, period.id)] = (period, binding)
        charges: list[SpendCharge] = []
        keys: list[SpendKey] = []
        budgets: list[BudgetRule | None] = []
        for (scope, _), (period, binding_rule) in wanted.items():
            cap = binding_rule.amount_usd if binding_rule else None
            charges.append(self._spend_charge(scope, period, cap, add))
            keys.append((scope, period.id))
            budgets.append(binding_rule)
        return charges, keys, budgets

    def _spend_charge(self, scope: str, period: Period, cap: float | None, add: SpendTotals) -> SpendCharge:
        return SpendCharge(
            _spend_key(scope, period.id),
            period.end,
            period.end + SPEND_GRACE_S,
            self._floor((scope, period.id)),
            cap,
            add,
            add,
        )

    def _floor(self, key: SpendKey) -> SpendTotals:
        return self._floors.get(key, ZERO)

    def _set_floors(self, totals: dict[SpendKey, SpendTotals]) -> None:
        self._floors = totals

    def _current_period_ids(self) -> list[str]:
        return [p.id for p in current_periods(self._config.budgets, self._clock())]

    async def _call_reserve(
        self, now: float, rates: list[RateCharge], spends: list[SpendCharge]
    ) -> ReserveResult:
        if not self._backend_ready():
            raise BackendUnavailable("backend marked down")
        try:
            result = await self._backend.reserve(now, rates, spends)
        except BackendUnavailable as exc:
            self._backend_failed(exc)
            raise
        self._backend_ok()
        return result

    def _on_unavailable(self, has_limits: bool, has_budgets: bool) -> None:
        policy = self._config.on_backend_error
        if has_budgets and policy.budgets == "closed":
            raise ServiceUnavailableError(
                "Budgets cannot be checked right now (the limits backend is unreachable); "
                "please retry shortly.",
                headers=retry_headers(max(self._config.backend_retry_s, 1.0)),
            )
        if has_limits and policy.limits == "closed":
            raise ServiceUnavailableError(
                "Rate limits cannot be checked right now (the limits backend is unreachable); "
                "please retry shortly.",
                headers=retry_headers(max(self._config.backend_retry_s, 1.0)),
            )

    def _raise_refusal(
        self,
        result: ReserveResult,
        limits: list[LimitSpec],
        rates: list[RateCharge],
        spend_keys: list[SpendKey],
        budgets: list[BudgetRule | None],
        now: float,
    ) -> None:
        headers = rate_headers(rates, result.tats, now)
        if result.denied == "spend":
            rule = budgets[result.denied_index]
            assert rule is not None
            period = rule.period or f"{rule.window_s}s window"
            scope = spend_keys[result.denied_index][0]
            headers.update(retry_headers(result.retry_after_s))
            budget_error = BudgetExceededError(
                f"Budget '{rule.name}' for {scope} is exhausted: ${result.denied_spend:.4f} of "
                f"${rule.amount_usd:.2f} spent or reserved this {period}. It renews in "
                f"{format_duration(result.retry_after_s)}.",
                status=self._config.budget_status,
                headers=headers,
            )
            budget_error.limit_name, budget_error.limit_kind = rule.name, "budget"
            raise budget_error
        limit = limits[result.denied_index]
        d = result.denied_dimension
        value = rates[result.denied_index].limits[d]
        amount = rates[result.denied_index].amounts[d]
        unit = DIMENSIONS[d] if d != 2 else "USD of cost"
        shown_limit = f"{value:g}" if d == 2 else str(int(value or 0))
        what = (
            f"Rate limit '{limit.name}' reached for {limit.scope}: "
            f"{shown_limit} {unit} per {limit.window_s}s."
        )
        retry = result.retry_after_s
        if value is not None and amount > value:
            retry = float(limit.window_s)
            what += f" This request alone needs {amount:g} {DIMENSIONS[d]}; lower max_tokens or the prompt."
        headers.update(retry_headers(retry))
        rate_error = RateLimitError(f"{what} Please try again in {format_duration(retry)}.", headers=headers)
        rate_error.limit_name, rate_error.limit_kind = limit.name, DIMENSIONS[d]
        raise rate_error

    def _backend_ready(self) -> bool:
        return time.monotonic() >= self._down_until

    def _backend_failed(self, exc: Exception) -> None:
        self.backend_errors += 1
        self._down_until = time.monotonic() + self._config.backend_retry_s
        if not self._outage:
            self._outage = True
            log.error(
                "limits backend unavailable (%s); limits fail %s, budgets fail %s until it is back",
                exc,
                self._config.on_backend_error.limits,
                self._config.on_backend_error.budgets,
            )

    def _backend_ok(self) -> None:
        if self._outage:
            self._outage = False
            log.warning("limits backend reachable again")
