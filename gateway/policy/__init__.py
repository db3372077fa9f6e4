"""The policy stage: input document, engines (embedded OPA or an OPA sidecar), enforcement.

The pipeline calls, in order: ``build_input`` → ``PolicyEngine.decide`` → ``apply_transform``.
Engines are created by ``create_engine`` in the app lifespan (``start``/``close`` there).
"""

from gateway.policy.decision import Decision, DecisionError, parse_decision
from gateway.policy.enforce import apply_transform
from gateway.policy.engine import PolicyEngine, PolicyEngineError, create_engine
from gateway.policy.input import InputDocument, build_input, prompt_messages, select_headers

__all__ = [
    "Decision",
    "DecisionError",
    "InputDocument",
    "PolicyEngine",
    "PolicyEngineError",
    "apply_transform",
    "build_input",
    "create_engine",
    "parse_decision",
    "prompt_messages",
    "select_headers",
]
