"""Counters in Redis, shared by every gateway replica.

Each reservation is one EVALSHA of a Lua script (lua/reserve.lua), atomic across all the
limits of a request. Arguments travel as one JSON document (decoded by Redis's built-in cjson):
encoding dozens of separate arguments costs more client CPU than the check itself.

Reconciliations do not cost a round trip of their own: ``adjust`` queues them and the next
``reserve`` applies them inside the same script, before its checks. When no reservation follows
within ``ADJUST_DELAY_S`` a timer sends them alone (lua/adjust.lua). A reserve or read that
starts while such a send is in flight waits for it, so one process always sees its own
reconciliations.

Counters are plain strings of three numbers (two commands per counter inside the scripts:
GET, then SET with its expiry). Scripts are registered once; redis-py reloads them by itself
when a restarted Redis has lost its script cache. Every key expires (rate counters once their
bucket is full again, spend counters after their period), so Redis needs no cleanup job.
Keys of one request may live in different hash slots, so this backend needs a single Redis
(or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from gateway.limits.backend import BackendUnavailable, RateCharge, ReserveResult, SpendCharge, SpendTotals

log = logging.getLogger(__name__)

#: How long queued reconciliations wait for a reservation to carry them.
ADJUST_DELAY_S = 0.005
_NO_LIMIT = -1


def _script(name: str) -> str:
    lua = resources.files("gateway.limits").joinpath("lua")
    return lua.joinpath("adjust_fn.lua").read_text(encoding="utf-8") + lua.joinpath(name).read_text(
        encoding="utf-8"
    )


def _rate_entry(c: RateCharge) -> list[float]:
    return [c.window_s, *(_NO_LIMIT if lim is None else lim for lim in c.limits), *c.amounts]


def _spend_entry(s: SpendCharge) -> list[float]:
    return [
        s.period_end,
        s.expire_at,
        s.floor.spend,
        s.floor.tokens,
        s.floor.requests,
        _NO_LIMIT if s.cap is None else s.cap,
        s.add.spend,
        s.add.tokens,
        s.add.requests,
        s.add_if_missing.spend,
        s.add_if_missing.tokens,
        s.add_if_missing.requests,
    ]


def _unavailable(exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(f"redis: {type(exc).__name__}: {exc}")


class RedisBackend:
    def __init__(self, client: aioredis.Redis, *, prefix: str = "gw:") -> None:
        self._client = client
        self._prefix = prefix
        self._reserve = client.register_script(_script("reserve.lua"))
        self._adjust = client.register_script(_script("adjust.lua"))
        # Queued reconciliations: keys and JSON entries, in the order the scripts expect.
        self._adj_rate_keys: list[str] = []
        self._adj_rates: list[list[float]] = []
        self._adj_spend_keys: list[str] = []
        self._adj_spends: list[list[float]] = []
        self._adj_now = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._sending: asyncio.Task[None] | None = None
        #: Queued reconciliations lost because Redis was unreachable when they were sent.
        self.adjust_errors = 0
        self._adjust_failing = False

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gw:", timeout_s: float = 0.25) -> RedisBackend:
        # One quick retry replaces a pooled connection that died with a Redis restart; more
        # retries would only delay the on_backend_error decision while Redis is really down.
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        return cls(client, prefix=prefix)

    async def reserve(self, now: float, rates: list[RateCharge], spends: list[SpendCharge]) -> ReserveResult:
        if self._sending is not None:
            await asyncio.shield(self._sending)
        p = self._prefix
        adj_keys, adj, _ = self._take_adjustments()
        doc: dict[str, Any] = {
            "now": now,
            "r": [_rate_entry(c) for c in rates],
            "s": [_spend_entry(s) for s in spends],
        }
        doc.update(adj)
        keys = [p + c.key for c in rates] + [p + s.key for s in spends] + adj_keys
        try:
            raw = await self._reserve(keys=keys, args=[orjson.dumps(doc)])
        except (RedisError, OSError) as exc:
            if adj_keys:
                self.adjust_errors += 1
            raise _unavailable(exc) from exc
        parts = raw.split()
        tats = [
            tuple(None if v == b"-" else float(v) for v in parts[6 + 3 * i : 9 + 3 * i])
            for i in range(len(rates))
        ]
        kind = int(parts[1])
        return ReserveResult(
            allowed=parts[0] == b"1",
            tats=tats,  # type: ignore[arg-type]
            denied=None if kind == 0 else ("rate" if kind == 1 else "spend"),
            denied_index=int(parts[2]) - 1,
            denied_dimension=int(parts[3]) - 1,
            retry_after_s=float(parts[4]),
            denied_spend=float(parts[5]),
        )

    async def adjust(self, now: float, rates: list[RateCharge], spends: list[SpendCharge]) -> None:
        """Queue reconciliations; they ride with the next reservation (see the module docstring)."""
        p = self._prefix
        self._adj_now = max(self._adj_now, now)
        self._adj_rate_keys += [p + c.key for c in rates]
        self._adj_rates += [_rate_entry(c) for c in rates]
        self._adj_spend_keys += [p + s.key for s in spends]
        self._adj_spends += [_spend_entry(s) for s in spends]
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(ADJUST_DELAY_S, self._send_later)

    async def read_spend(self, spends: list[SpendCharge]) -> list[SpendTotals]:
        await self.flush()
        try:
            rows = await self._client.mget([self._prefix + s.key for s in spends])
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        out = []
        for s, row in zip(spends, rows, strict=True):
            if row is None:
                out.append(s.floor)
            else:
                spend, tokens, requests = row.split()
                out.append(SpendTotals(float(spend), int(float(tokens)), int(float(requests))))
        return out

    async def flush(self) -> None:
        """Send queued reconciliations now."""
        if self._sending is not None:
            await asyncio.shield(self._sending)
        if self._adj_rate_keys or self._adj_spend_keys:
            await self._send()

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            await self._client.aclose()

    def _take_adjustments(self) -> tuple[list[str], dict[str, Any], float]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        keys = self._adj_rate_keys + self._adj_spend_keys
        doc: dict[str, Any] = {"ar": self._adj_rates, "as": self._adj_spends}
        now = self._adj_now
        self._adj_rate_keys, self._adj_rates, self._adj_spend_keys, self._adj_spends = [], [], [], []
        return keys, doc, now

    def _send_later(self) -> None:
        self._timer = None
        if self._sending is None and (self._adj_rate_keys or self._adj_spend_keys):
            self._sending = asyncio.get_running_loop().create_task(self._send())
            self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        if self._sending is task:
            self._sending = None

    async def _send(self) -> None:
        keys, doc, now = self._take_adjustments()
        if not keys:
            return
        doc["now"] = now
        try:
            await self._adjust(keys=keys, args=[orjson.dumps(doc)])
        except (RedisError, OSError) as exc:
            self.adjust_errors += 1
            if not self._adjust_failing:  # once per outage, not once per batch
                self._adjust_failing = True
                log.warning("limit reconciliations are being dropped: %s", _unavailable(exc))
            return
        self._adjust_failing = False
