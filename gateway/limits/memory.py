"""In-process counters: the embedded default for a single gateway process.

Every method runs to completion without awaiting anything, so on one event loop a reservation
is atomic without locks. The algorithm is the same as the Redis Lua scripts (see backend.py).
"""

from __future__ import annotations

from gateway.limits.backend import RateCharge, ReserveResult, SpendCharge, SpendTotals

_SWEEP_EVERY = 4096


def _gcra_step(tat: float, amount: float, limit: float, window_s: float) -> float:
    return tat + amount * window_s / limit


class MemoryBackend:
    def __init__(self) -> None:
        # rate key -> [tat_requests, tat_tokens, tat_cost]
        self._rates: dict[str, list[float]] = {}
        # spend key -> ([spend, tokens, requests], expire_at)
        self._spends: dict[str, tuple[list[float], float]] = {}
        self._ops = 0

    async def reserve(self, now: float, rates: list[RateCharge], spends: list[SpendCharge]) -> ReserveResult:
        self._maybe_sweep(now)
        current: list[tuple[float | None, float | None, float | None]] = []
        proposed: list[list[float]] = []
        result = ReserveResult(allowed=True, tats=current)
        for i, charge in enumerate(rates):
            stored = self._rates.get(charge.key)
            row: list[float | None] = [None, None, None]
            new: list[float] = [now, now, now]
            for d in range(3):
                limit = charge.limits[d]
                tat = max(stored[d], now) if stored is not None else now
                new[d] = tat
                if limit is None:
                    continue
                row[d] = tat
                amount = charge.amounts[d]
                if amount <= 0:
                    continue
                if limit <= 0:
                    if result.allowed:
                        result = ReserveResult(False, current, "rate", i, d, charge.window_s)
                    continue
                new[d] = _gcra_step(tat, amount, limit, charge.window_s)
                if new[d] - now > charge.window_s and result.allowed:
                    result = ReserveResult(False, current, "rate", i, d, new[d] - now - charge.window_s)
            current.append((row[0], row[1], row[2]))
            proposed.append(new)
        spend_rows: list[list[float] | None] = []
        for j, spend in enumerate(spends):
            entry = self._spends.get(spend.key)
            spent = entry[0][0] if entry is not None else spend.floor.spend
            spend_rows.append(entry[0] if entry is not None else None)
            if (
                spend.cap is not None
                and result.allowed
                and (spent >= spend.cap or spent + spend.add.spend > spend.cap)
            ):
                result = ReserveResult(False, current, "spend", j, -1, spend.period_end - now, spent)
        if not result.allowed:
            return result
        for i, charge in enumerate(rates):
            self._rates[charge.key] = proposed[i]
            current[i] = tuple(proposed[i][d] if charge.limits[d] is not None else None for d in range(3))  # type: ignore[assignment]
        for spend, stored_row in zip(spends, spend_rows, strict=True):
            self._add_spend(spend, stored_row, spend.add)
        return result

    async def adjust(self, now: float, rates: list[RateCharge], spends: list[SpendCharge]) -> None:
        for charge in rates:
            stored = self._rates.get(charge.key)
            new = [max(stored[d], now) if stored is not None else now for d in range(3)]
            for d in range(3):
                limit = charge.limits[d]
                if limit is None or limit <= 0 or charge.amounts[d] == 0:
                    continue
                # A refund never leaves credit beyond a full bucket.
                new[d] = max(now, _gcra_step(new[d], charge.amounts[d], limit, charge.window_s))
            self._rates[charge.key] = new
        for spend in spends:
            entry = self._spends.get(spend.key)
            row = entry[0] if entry is not None else None
            self._add_spend(spend, row, spend.add if row is not None else spend.add_if_missing)

    async def read_spend(self, spends: list[SpendCharge]) -> list[SpendTotals]:
        out = []
        for spend in spends:
            entry = self._spends.get(spend.key)
            if entry is None:
                out.append(spend.floor)
            else:
                row = entry[0]
                out.append(SpendTotals(row[0], int(row[1]), int(row[2])))
        return out

    async def close(self) -> None:
        self._rates.clear()
        self._spends.clear()

    def _add_spend(self, spend: SpendCharge, row: list[float] | None, add: SpendTotals) -> None:
        if row is None:
            row = [spend.floor.spend, float(spend.floor.tokens), float(spend.floor.requests)]
            self._spends[spend.key] = (row, spend.expire_at)
        row[0] += add.spend
        row[1] += add.tokens
        row[2] += add.requests

    def _maybe_sweep(self, now: float) -> None:
        # Expiry is lazy: a full rate counter (every TAT in the past) is the same as no counter.
        self._ops += 1
        if self._ops % _SWEEP_EVERY:
            return
        self._rates = {k: v for k, v in self._rates.items() if max(v) > now}
        self._spends = {k: v for k, v in self._spends.items() if v[1] > now}

    def __len__(self) -> int:
        return len(self._rates) + len(self._spends)


__all__ = ["MemoryBackend"]
