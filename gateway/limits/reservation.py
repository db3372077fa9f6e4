"""What the pipeline hands the limiter (``LimitContext``) and gets back (``Reservation``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.limits.backend import REQUESTS, TOKENS, RateCharge, SpendCharge
from gateway.limits.headers import LimitState, gcra_state, ratelimit_headers
from gateway.limits.spend_store import SpendKey
from gateway.policy.decision import LimitSpec


@dataclass(slots=True)
class LimitContext:
    """What the limiter needs to know about a request (after the policy decision)."""

    key_id: str | None
    team: str | None
    user: str | None
    #: The public model name the client asked for (after a policy ``transform.model``).
    model: str
    provider: str | None = None
    deployment: str | None = None
    #: The decision's limits; their scopes are already concrete strings.
    limits: Sequence[LimitSpec] = ()
    prompt_tokens: int = 0
    #: The request's output ceiling; 0 when it sets none (``default_output_reserve`` is used).
    max_output_tokens: int = 0
    #: Computed from the price table when not given.
    estimated_max_cost: float | None = None
    #: The provider's model name, for the price table (falls back to ``model``).
    upstream_model: str | None = None

    def scope_fields(self) -> dict[str, str | None]:
        return {
            "key_id": self.key_id,
            "team": self.team,
            "user": self.user,
            "model": self.model,
            "provider": self.provider,
            "deployment": self.deployment,
        }


@dataclass(slots=True)
class Reservation:
    """What one request holds; pass it to ``reconcile`` exactly once (later calls are no-ops)."""

    now: float
    tokens: int
    cost: float
    limits: list[LimitSpec] = field(default_factory=list)
    rates: list[RateCharge] = field(default_factory=list)
    spends: list[SpendCharge] = field(default_factory=list)
    spend_keys: list[SpendKey] = field(default_factory=list)
    tats: list[tuple[float | None, float | None, float | None]] = field(default_factory=list)
    #: The backend was unavailable and ``on_backend_error`` let the request through unchecked.
    degraded: bool = False
    reconciled: bool = False

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the most restrictive limit (empty if none applies)."""
        return rate_headers(self.rates, self.tats, self.now)


def rate_headers(
    rates: list[RateCharge], tats: list[tuple[float | None, float | None, float | None]], now: float
) -> dict[str, str]:
    requests: list[LimitState] = []
    tokens: list[LimitState] = []
    for charge, row in zip(rates, tats, strict=True):
        req_limit, tok_limit = charge.limits[REQUESTS], charge.limits[TOKENS]
        req_tat, tok_tat = row[REQUESTS], row[TOKENS]
        if req_limit is not None and req_tat is not None:
            requests.append(gcra_state(req_limit, charge.window_s, req_tat, now))
        if tok_limit is not None and tok_tat is not None:
            tokens.append(gcra_state(tok_limit, charge.window_s, tok_tat, now))
    return ratelimit_headers(requests, tokens)
