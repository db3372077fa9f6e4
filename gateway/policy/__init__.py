"""The policy stage: input document, engines (embedded OPA or an OPA sidecar), enforcement.

The pipeline calls, in order: ``build_input`` → ``PolicyEngine.decide`` → ``apply_transform``.
Engines are created by ``create_engine`` in the app lifespan (``start``/``close`` there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.policy.decision import Decision as Decision
    from gateway.policy.decision import DecisionError as DecisionError
    from gateway.policy.decision import parse_decision as parse_decision
    from gateway.policy.enforce import apply_transform as apply_transform
    from gateway.policy.engine import PolicyEngine as PolicyEngine
    from gateway.policy.engine import PolicyEngineError as PolicyEngineError
    from gateway.policy.engine import create_engine as create_engine
    from gateway.policy.input import InputDocument as InputDocument
    from gateway.policy.input import build_input as build_input
    from gateway.policy.input import prompt_messages as prompt_messages
    from gateway.policy.input import select_headers as select_headers

#: Module -> the names it exports from this package, imported on first use (gateway/lazy.py).
_EXPORTS = {
    "gateway.policy.decision": (
        "Decision",
        "DecisionError",
        "parse_decision",
    ),
    "gateway.policy.enforce": ("apply_transform",),
    "gateway.policy.engine": (
        "PolicyEngine",
        "PolicyEngineError",
        "create_engine",
    ),
    "gateway.policy.input": (
        "InputDocument",
        "build_input",
        "prompt_messages",
        "select_headers",
    ),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__ = lazy_exports(__name__, _EXPORTS)
