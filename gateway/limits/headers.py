"""OpenAI's rate-limit headers, computed from GCRA counters.

OpenAI sends, for the most restrictive limit: ``x-ratelimit-limit-requests``,
``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` (time until the limit is
back to its full value, formatted like Go's ``time.Duration``: ``1s``, ``6m0s``, ``20ms``) and
the same three for tokens. A refused request also gets ``Retry-After`` (whole seconds, as HTTP
requires) and ``retry-after-ms``, which the official SDKs honour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class LimitState:
    """One limit's dimension as it stands after a check."""

    limit: float
    remaining: float
    reset_s: float


def gcra_state(limit: float, window_s: float, tat: float, now: float) -> LimitState:
    used_s = max(0.0, tat - now)
    if limit <= 0:
        return LimitState(0, 0, used_s)
    remaining = max(0.0, math.floor((window_s - used_s) * limit / window_s + 1e-9))
    return LimitState(limit, remaining, used_s)


def format_duration(seconds: float) -> str:
    """Go ``time.Duration`` style, as OpenAI's reset headers use: ``0s``, ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds <= 0:
        return "0s"
    ms = math.ceil(seconds * 1000 - 1e-6)
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _count(value: float) -> str:
    return str(int(value))


def most_restrictive(states: list[LimitState]) -> LimitState | None:
    # Fewest units left wins; among equals, the one that takes longest to refill.
    return min(states, key=lambda s: (s.remaining, -s.reset_s), default=None)


def ratelimit_headers(requests: list[LimitState], tokens: list[LimitState]) -> dict[str, str]:
    headers: dict[str, str] = {}
    req = most_restrictive(requests)
    if req is not None:
        headers["x-ratelimit-limit-requests"] = _count(req.limit)
        headers["x-ratelimit-remaining-requests"] = _count(req.remaining)
        headers["x-ratelimit-reset-requests"] = format_duration(req.reset_s)
    tok = most_restrictive(tokens)
    if tok is not None:
        headers["x-ratelimit-limit-tokens"] = _count(tok.limit)
        headers["x-ratelimit-remaining-tokens"] = _count(tok.remaining)
        headers["x-ratelimit-reset-tokens"] = format_duration(tok.reset_s)
    return headers


def retry_headers(retry_after_s: float) -> dict[str, str]:
    return {
        "retry-after": str(max(1, math.ceil(retry_after_s))),
        "retry-after-ms": str(max(1, math.ceil(retry_after_s * 1000))),
    }
