"""The app's ``Limiter``, built from the config: backend (memory or Redis), prices, budgets."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.backend import LimitBackend
from gateway.limits.config import LimitsConfig
from gateway.limits.limiter import Limiter
from gateway.limits.memory import MemoryBackend
from gateway.limits.pricing import PriceTable
from gateway.limits.spend_store import SpendStore


def create_backend(config: LimitsConfig) -> LimitBackend:
    if config.backend == "redis":
        from gateway.limits.redis_backend import RedisBackend

        return RedisBackend.from_url(
            config.redis_url, prefix=config.redis_prefix, timeout_s=config.redis_timeout_s
        )
    return MemoryBackend()


def create_limiter(
    config: LimitsConfig, engine: AsyncEngine | None, *, clock: Callable[[], float] = time.time
) -> Limiter:
    """The limiter for the app lifespan; call ``await limiter.start()`` then ``close()`` at shutdown."""
    return Limiter(
        config,
        create_backend(config),
        PriceTable.from_config(config),
        SpendStore(engine) if engine is not None else None,
        clock=clock,
    )
