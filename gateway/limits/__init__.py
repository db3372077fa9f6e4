"""Consumption control: request, token and cost rate limits, and money budgets.

The app lifespan builds one ``Limiter`` with ``create_limiter`` and passes it to the pipeline,
which calls ``reserve`` after the policy decision and ``reconcile`` after the upstream call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.limits.backend import BackendUnavailable as BackendUnavailable
    from gateway.limits.backend import LimitBackend as LimitBackend
    from gateway.limits.config import LimitsConfig as LimitsConfig
    from gateway.limits.factory import create_backend as create_backend
    from gateway.limits.factory import create_limiter as create_limiter
    from gateway.limits.limiter import LimitContext as LimitContext
    from gateway.limits.limiter import Limiter as Limiter
    from gateway.limits.limiter import Reservation as Reservation
    from gateway.limits.memory import MemoryBackend as MemoryBackend
    from gateway.limits.pricing import ModelPrice as ModelPrice
    from gateway.limits.pricing import PriceTable as PriceTable
    from gateway.limits.spend_store import SpendStore as SpendStore

#: Module -> the names it exports from this package, imported on first use (gateway/lazy.py).
_EXPORTS = {
    "gateway.limits.backend": (
        "BackendUnavailable",
        "LimitBackend",
    ),
    "gateway.limits.config": ("LimitsConfig",),
    "gateway.limits.factory": (
        "create_backend",
        "create_limiter",
    ),
    "gateway.limits.limiter": (
        "LimitContext",
        "Limiter",
        "Reservation",
    ),
    "gateway.limits.memory": ("MemoryBackend",),
    "gateway.limits.pricing": (
        "ModelPrice",
        "PriceTable",
    ),
    "gateway.limits.spend_store": ("SpendStore",),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__ = lazy_exports(__name__, _EXPORTS)
