"""PII, credential and prompt-injection guards (see docs/guards.md)."""

from gateway.guards.anonymize import Restorer
from gateway.guards.config import GuardsConfig
from gateway.guards.errors import GuardDeniedError
from gateway.guards.guard import ALL_TYPES, Guard, prompt_texts
from gateway.guards.response import MAX_HOLD, StreamScreener

__all__ = [
    "ALL_TYPES",
    "MAX_HOLD",
    "Guard",
    "GuardDeniedError",
    "GuardsConfig",
    "Restorer",
    "StreamScreener",
    "prompt_texts",
]
