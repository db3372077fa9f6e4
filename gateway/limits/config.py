"""Settings of consumption control (section ``limits`` of the config file).

Scopes are templates filled from the request: ``key:{key_id}``, ``team:{team}``, ``user:{user}``,
``model:{model}``, ``provider:{provider}``, ``deployment:{deployment}``. A limit or budget whose
template names a field the request does not have (an anonymous caller has no team) does not
apply to that request.
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Placeholders a scope template may use; they are the fields of ``LimitContext``.
SCOPE_FIELDS = frozenset({"key_id", "team", "user", "model", "provider", "deployment"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_template(template: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid scope template: {exc}") from None
    unknown = names - SCOPE_FIELDS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(SCOPE_FIELDS)}")
    return template


class ModelPrice(_Strict):
    """Prices in USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    #: Prompt tokens served from the provider's cache; defaults to the input price.
    cached_input: float | None = Field(None, ge=0)
    #: Prompt tokens written to the provider's cache (Anthropic); defaults to the input price.
    cache_write_input: float | None = Field(None, ge=0)


class LimitRule(_Strict):
    """A static limit applied to every request whose scope template can be filled."""

    name: str = Field(min_length=1)
    scope: str
    window_s: int = Field(ge=1)
    requests: int | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    cost: float | None = Field(None, ge=0)

    @field_validator("scope")
    @classmethod
    def _scope_template(cls, value: str) -> str:
        return _check_template(value)

    @model_validator(mode="after")
    def _limits_something(self) -> LimitRule:
        if self.requests is None and self.tokens is None and self.cost is None:
            raise ValueError("declares none of requests, tokens, cost")
        return self


class BudgetRule(_Strict):
    """Money a scope may spend per calendar day, calendar month (UTC) or fixed window."""

    name: str = Field(min_length=1)
    scope: str
    amount_usd: float = Field(ge=0)
    period: Literal["day", "month"] | None = None
    #: Any window length in seconds (aligned to the Unix epoch), instead of ``period``.
    window_s: int | None = Field(None, ge=1)

    @field_validator("scope")
    @classmethod
    def _scope_template(cls, value: str) -> str:
        return _check_template(value)

    @model_validator(mode="after")
    def _one_period(self) -> BudgetRule:
        if (self.period is None) == (self.window_s is None):
            raise ValueError("set exactly one of period (day | month) and window_s")
        return self


class BackendErrorPolicy(_Strict):
    """What to do with a request when the counter store cannot be reached."""

    #: Request/token/cost rate limits: "open" lets requests through unlimited.
    limits: Literal["open", "closed"] = "open"
    #: Money budgets: "closed" refuses requests (503) rather than risk unbounded spend.
    budgets: Literal["open", "closed"] = "closed"


class LimitsConfig(_Strict):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every Redis key, so several gateways can share one Redis.
    redis_prefix: str = "gw:"
    #: Redis socket timeouts; a check that takes longer counts as a backend error.
    redis_timeout_s: float = Field(0.25, gt=0)
    #: After a backend error, apply ``on_backend_error`` without trying the backend for this long.
    backend_retry_s: float = Field(1.0, ge=0)

    #: Price table keyed by model name (public or upstream; glob patterns such as ``gpt-4o*``).
    prices: dict[str, ModelPrice] = {}
    #: Price overrides keyed by deployment name; they win over ``prices``.
    deployment_prices: dict[str, ModelPrice] = {}

    defaults: list[LimitRule] = []
    budgets: list[BudgetRule] = []
    on_backend_error: BackendErrorPolicy = BackendErrorPolicy()
    #: HTTP status of a request refused by a budget.
    budget_status: Literal[429, 402] = 429

    #: Output tokens reserved for a request that sets no max_tokens (reconciled afterwards).
    default_output_reserve: int = Field(1024, ge=0)
    #: How often spend is written to SQL (and other replicas' spend read back).
    flush_interval_s: float = Field(2.0, gt=0)
    #: How long ``usage_snapshot`` may serve a cached value per key and team.
    snapshot_ttl_s: float = Field(1.0, ge=0)
