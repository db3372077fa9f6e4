"""Building limiters for tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.backend import LimitBackend
from gateway.limits.config import LimitsConfig
from gateway.limits.limiter import LimitContext, Limiter
from gateway.limits.pricing import PriceTable
from gateway.limits.spend_store import SpendStore
from gateway.types import Usage
from tests.limits.conftest import FakeClock

#: $2.50 input / $10 output per million tokens: 1000 in + 1000 out = $0.0125.
GPT4O = {"gpt-4o": {"input": 2.5, "output": 10.0, "cached_input": 1.25}}


def limits_config(**fields: Any) -> LimitsConfig:
    fields.setdefault("flush_interval_s", 3600)
    fields.setdefault("backend_retry_s", 0)
    # Most tests pass max_out=0 to mean "no output"; test_limiter covers the reserve itself.
    fields.setdefault("default_output_reserve", 0)
    return LimitsConfig.model_validate(fields)


def build_limiter(
    config: LimitsConfig, backend: LimitBackend, clock: FakeClock, engine: AsyncEngine | None = None
) -> Limiter:
    store = SpendStore(engine) if engine is not None else None
    return Limiter(config, backend, PriceTable.from_config(config), store, clock=clock)


def ctx(
    key_id: str | None = "k1",
    team: str | None = "research",
    *,
    prompt: int = 100,
    max_out: int = 100,
    model: str = "gpt-4o",
    **extra: Any,
) -> LimitContext:
    return LimitContext(
        key_id=key_id,
        team=team,
        user=extra.pop("user", None),
        model=model,
        provider=extra.pop("provider", "openai"),
        deployment=extra.pop("deployment", None),
        prompt_tokens=prompt,
        max_output_tokens=max_out,
        **extra,
    )


def usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion)
