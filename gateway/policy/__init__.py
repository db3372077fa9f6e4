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

#: Exported name -> the module that defines it, imported on first use (gateway/lazy.py).
_EXPORTS = {
    "Decision": "gateway.policy.decision",
    "DecisionError": "gateway.policy.decision",
    "InputDocument": "gateway.policy.input",
    "PolicyEngine": "gateway.policy.engine",
    "PolicyEngineError": "gateway.policy.engine",
    "apply_transform": "gateway.policy.enforce",
    "build_input": "gateway.policy.input",
    "create_engine": "gateway.policy.engine",
    "parse_decision": "gateway.policy.decision",
    "prompt_messages": "gateway.policy.input",
    "select_headers": "gateway.policy.input",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
