"""What a call costs: the model price table from the config, with per-deployment overrides.

Lookup order for a call: the deployment's override, then the model name exactly, then the glob
patterns (the most specific first: the one with the most literal characters). A model with no
price costs nothing, and is logged once so the gap in the table gets noticed.
"""

from __future__ import annotations

import fnmatch
import logging

from gateway.limits.config import LimitsConfig, ModelPrice
from gateway.types import Usage

__all__ = ["ModelPrice", "PriceTable"]

log = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")
_PER_TOKEN = 1e-6


def _literal_chars(pattern: str) -> int:
    return sum(1 for c in pattern if c not in _GLOB_CHARS)


class PriceTable:
    def __init__(
        self, prices: dict[str, ModelPrice], deployment_prices: dict[str, ModelPrice] | None = None
    ) -> None:
        self._exact = {name: p for name, p in prices.items() if not _GLOB_CHARS & set(name)}
        self._patterns = sorted(
            ((name, p) for name, p in prices.items() if _GLOB_CHARS & set(name)),
            key=lambda item: -_literal_chars(item[0]),
        )
        self._deployments = dict(deployment_prices or {})
        self._resolved: dict[str, ModelPrice | None] = {}
        self._warned: set[str] = set()

    @classmethod
    def from_config(cls, config: LimitsConfig) -> PriceTable:
        return cls(config.prices, config.deployment_prices)

    def price(
        self, model: str, deployment: str | None = None, *, public_model: str | None = None
    ) -> ModelPrice | None:
        """The price of ``model`` (the upstream name), falling back to the public name."""
        if deployment is not None and deployment in self._deployments:
            return self._deployments[deployment]
        for name in (model, public_model):
            if name is None:
                continue
            found = self._lookup(name)
            if found is not None:
                return found
        return None

    def _lookup(self, name: str) -> ModelPrice | None:
        if name in self._resolved:
            return self._resolved[name]
        found = self._exact.get(name)
        if found is None:
            found = next((p for pattern, p in self._patterns if fnmatch.fnmatchcase(name, pattern)), None)
        # The cache is bounded by the number of model names the config routes to.
        if len(self._resolved) < 4096:
            self._resolved[name] = found
        return found

    def cost(
        self, model: str, deployment: str | None, usage: Usage, *, public_model: str | None = None
    ) -> float:
        """USD for ``usage``. ``prompt_tokens`` includes cached and cache-write tokens."""
        price = self.price(model, deployment, public_model=public_model)
        if price is None:
            if model not in self._warned and len(self._warned) < 1024:
                self._warned.add(model)
                log.warning(
                    "no price for model %r (deployment %r); its calls cost 0 in budgets", model, deployment
                )
            return 0.0
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cache_write = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
        uncached = usage.prompt_tokens - cached - cache_write
        cached_price = price.input if price.cached_input is None else price.cached_input
        write_price = price.input if price.cache_write_input is None else price.cache_write_input
        return (
            uncached * price.input
            + cached * cached_price
            + cache_write * write_price
            + usage.completion_tokens * price.output
        ) * _PER_TOKEN
