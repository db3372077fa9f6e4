"""One interface over the two policy engines, and the factory that picks one.

``embedded`` evaluates with OPA's Go evaluator in-process (``opa-golib-python-bindings``);
``opa`` asks an OPA sidecar over its REST Data API. Both query ``data.gateway.decision``,
validate it with ``parse_decision`` and raise ``PolicyEngineError`` for everything that is not
a valid decision (engine down, timeout, undefined, ill-typed). ``PolicyEngineError`` is not a
``GatewayError``: the pipeline turns it into a 503 ``policy_unavailable`` (fail closed) or, for
a deployment that says so, lets the request through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from gateway.policy.config import PolicyConfig
from gateway.policy.decision import Decision

#: The document every engine queries, in OPA's dotted and REST forms.
DECISION_DOCUMENT = "gateway.decision"
DECISION_PATH = "gateway/decision"


class PolicyEngineError(Exception):
    """The engine gave no valid decision; ``reason`` is a short machine-readable cause."""

    def __init__(self, message: str, *, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


@runtime_checkable
class PolicyEngine(Protocol):
    name: str

    @property
    def revision(self) -> str: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def decide(self, input: dict) -> Decision: ...  # type: ignore[type-arg]

    async def healthy(self) -> bool: ...


def create_engine(config: PolicyConfig, base_dir: Path) -> PolicyEngine:
    """The configured engine, not yet started (the app lifespan calls ``start``/``close``)."""
    if config.engine == "opa":
        from gateway.policy.sidecar import OpaSidecarEngine

        return OpaSidecarEngine(config, base_dir)
    from gateway.policy.embedded import EmbeddedEngine

    return EmbeddedEngine(config, base_dir)
