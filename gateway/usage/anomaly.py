"""Out-of-band usage signal: how far a key's current hour is above its own baseline.

Per key, in memory, the detector keeps an exponentially weighted mean and variance of tokens
and requests per completed hour (hours without traffic count as zero). The current hour, as it
fills up, is compared with that baseline:

    z = (current - baseline) / spread        score = clamp(z / z_max, 0, 1)

where ``baseline`` and ``spread`` have floors (``min_*_per_hour``, half the baseline), so a quiet
key is not flagged for a handful of calls and a perfectly regular key still has a spread. The
score is the larger of the token and request signals. It goes into the policy input as
``usage.anomaly``; crossing ``threshold`` counts ``gateway_anomaly_events_total`` and logs one
event per key and hour (logger ``gateway.anomaly``).

Scores are per gateway replica: each replica sees only its share of a key's traffic, and so does
its baseline, so the ratio stays meaningful behind a load balancer.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from gateway.observability import Metrics
from gateway.usage.config import AnomalyConfig

logger = logging.getLogger("gateway.anomaly")

#: Hours of silence folded into a baseline one by one; beyond that the baseline has decayed anyway.
MAX_GAP_HOURS = 24 * 30


@dataclass(slots=True)
class _Signal:
    mean: float = 0.0
    var: float = 0.0

    def fold(self, value: float, alpha: float, first: bool) -> None:
        if first:
            self.mean, self.var = value, 0.0
            return
        # West's incremental exponentially weighted mean and variance.
        diff = value - self.mean
        increment = alpha * diff
        self.mean += increment
        self.var = (1 - alpha) * (self.var + diff * increment)


class _Baseline:
    """One key's running state: the current hour's counts and the two baselines."""

    __slots__ = ("flagged_hour", "hour", "hours", "requests", "requests_signal", "tokens", "tokens_signal")

    def __init__(self, hour: int) -> None:
        self.hour = hour
        self.tokens = 0.0
        self.requests = 0.0
        self.hours = 0
        self.flagged_hour = -1
        self.tokens_signal = _Signal()
        self.requests_signal = _Signal()


class AnomalyDetector:
    def __init__(self, config: AnomalyConfig | None = None, metrics: Metrics | None = None) -> None:
        self.config = config or AnomalyConfig()
        self._metrics = metrics
        self._alpha = 1 - 0.5 ** (1 / self.config.half_life_hours)
        self._keys: OrderedDict[str, _Baseline] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    @staticmethod
    def _hour(now: datetime | None) -> int:
        seconds = time.time() if now is None else now.timestamp()
        return int(seconds // 3600)

    def _roll(self, state: _Baseline, hour: int) -> None:
        """Fold the finished hour (and the silent hours after it) into the baseline."""
        if hour <= state.hour:
            return
        for i in range(min(hour - state.hour, MAX_GAP_HOURS)):
            tokens, requests = (state.tokens, state.requests) if i == 0 else (0.0, 0.0)
            first = state.hours == 0
            state.tokens_signal.fold(tokens, self._alpha, first)
            state.requests_signal.fold(requests, self._alpha, first)
            state.hours += 1
        state.hour, state.tokens, state.requests = hour, 0.0, 0.0

    def observe(self, key_id: str, tokens: int, now: datetime | None = None) -> float:
        """Count one finished request of ``key_id``; returns the key's score afterwards."""
        if not self.config.enabled:
            return 0.0
        hour = self._hour(now)
        state = self._keys.get(key_id)
        if state is None:
            state = _Baseline(hour=hour)
            self._keys[key_id] = state
            if len(self._keys) > self.config.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key_id)
            self._roll(state, hour)
        state.tokens += tokens
        state.requests += 1
        score, signal = self._score(state, hour)
        if score >= self.config.threshold and state.flagged_hour != hour:
            state.flagged_hour = hour
            if self._metrics is not None:
                self._metrics.anomaly_event(signal)
            logger.warning(
                "usage anomaly: key %s score %.2f (%s: %.0f this hour, baseline %.0f/h)",
                key_id,
                score,
                signal,
                state.tokens if signal == "tokens" else state.requests,
                state.tokens_signal.mean if signal == "tokens" else state.requests_signal.mean,
            )
        return score

    def score(self, key_id: str, now: datetime | None = None) -> float:
        """In [0, 1]: 0 within the baseline (or no baseline yet), 1 at ``z_max`` spreads above it."""
        if not self.config.enabled:
            return 0.0
        state = self._keys.get(key_id)
        if state is None:
            return 0.0
        return self._score(state, self._hour(now))[0]

    def _score(self, state: _Baseline, hour: int) -> tuple[float, str]:
        if hour != state.hour or state.hours < self.config.min_hours:
            return 0.0, "tokens"
        tokens = self._signal_score(state.tokens, state.tokens_signal, self.config.min_tokens_per_hour)
        requests = self._signal_score(
            state.requests, state.requests_signal, self.config.min_requests_per_hour
        )
        return (tokens, "tokens") if tokens >= requests else (requests, "requests")

    def _signal_score(self, current: float, signal: _Signal, floor: float) -> float:
        baseline = max(signal.mean, floor)
        spread = max(math.sqrt(max(signal.var, 0.0)), baseline / 2)
        z = (current - baseline) / spread
        return min(max(z / self.config.z_max, 0.0), 1.0)
