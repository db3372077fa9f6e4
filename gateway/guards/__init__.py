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

#: Exported name -> the module that defines it, imported on first use (gateway/lazy.py).
_EXPORTS = {
    "ALL_TYPES": "gateway.guards.guard",
    "Guard": "gateway.guards.guard",
    "GuardDeniedError": "gateway.guards.errors",
    "GuardsConfig": "gateway.guards.config",
    "MAX_HOLD": "gateway.guards.response",
    "Restorer": "gateway.guards.anonymize",
    "StreamScreener": "gateway.guards.response",
    "prompt_texts": "gateway.guards.guard",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
