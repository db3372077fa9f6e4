"""PII, credential and prompt-injection guards (see docs/guards.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.guards.anonymize import Restorer as Restorer
    from gateway.guards.config import GuardsConfig as GuardsConfig
    from gateway.guards.errors import GuardDeniedError as GuardDeniedError
    from gateway.guards.guard import ALL_TYPES as ALL_TYPES
    from gateway.guards.guard import Guard as Guard
    from gateway.guards.guard import prompt_texts as prompt_texts
    from gateway.guards.response import MAX_HOLD as MAX_HOLD
    from gateway.guards.response import StreamScreener as StreamScreener

#: Module -> the names it exports from this package, imported on first use (gateway/lazy.py).
_EXPORTS = {
    "gateway.guards.anonymize": ("Restorer",),
    "gateway.guards.config": ("GuardsConfig",),
    "gateway.guards.errors": ("GuardDeniedError",),
    "gateway.guards.guard": (
        "ALL_TYPES",
        "Guard",
        "prompt_texts",
    ),
    "gateway.guards.response": (
        "MAX_HOLD",
        "StreamScreener",
    ),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__ = lazy_exports(__name__, _EXPORTS)
