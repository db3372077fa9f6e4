"""The in-process engine: OPA's own Go evaluator through ``opa-golib-python-bindings``.

Evaluation is inline on the event loop by default. A default-policy decision takes about
0.27 ms (bench/bench_policy.py), and moving it to a worker thread made it slower (~0.5 ms p50)
without freeing anything that matters at that size; ``policy.eval_in_thread`` is there for heavy
policies (the Go evaluator releases the GIL, so the loop keeps serving meanwhile).

Reload: a background task polls the files' sizes and modification times. On a change it builds
a NEW engine from the files, proves that it compiles and returns a valid decision for a probe
input, and only then swaps it in (one attribute assignment, so every request sees either the
old or the new policy, never a mix). A broken edit keeps the last good policy and logs why.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

from gateway.policy.bundle import PolicyLoadError, build_engine, fingerprint, read_source
from gateway.policy.config import PolicyConfig
from gateway.policy.decision import Decision, DecisionError, parse_decision
from gateway.policy.engine import DECISION_DOCUMENT, PolicyEngineError
from gateway.policy.input import build_input
from gateway.types import ANONYMOUS

log = logging.getLogger(__name__)


def probe_input() -> dict[str, Any]:
    """A plain anonymous chat request: every sound policy decides it (allow or deny)."""
    return dict(
        build_input(
            request_id="policy-probe",
            endpoint="chat.completions",
            method="POST",
            path="/v1/chat/completions",
            source_ip="127.0.0.1",
            time=datetime.now(UTC),
            stream=False,
            headers={},
            principal=ANONYMOUS,
            model_requested="gpt-4o-mini",
            provider=None,
            deployment=None,
            prompt_estimate=10,
            max_output=None,
            messages=[{"role": "user", "content": "hello"}],
        )
    )


_DECISION_DOCUMENT_C = DECISION_DOCUMENT.encode()


def eval_decision_document(engine: OpaEngine, input: dict[str, Any]) -> Any:
    """``engine.eval_document(DECISION_DOCUMENT, input)`` with orjson on both sides of the call.

    The binding encodes the input and decodes the answer with the stdlib ``json`` module, and
    that alone was about 5% of the gateway's CPU per request (py-spy, bench/README.md). This
    calls the same native function of opa-golib-python-bindings 0.4.4 with the same envelope
    (``{"result": [...], "prints": [...]}`` or ``{"error": {...}}``); should a later version of
    the binding not have it, the public method is used. ``print()`` output of the policy goes
    to this module's log.
    """
    lib = getattr(engine, "_lib", None)
    handle = getattr(engine, "_handle", None)
    if lib is None or handle is None or not hasattr(lib, "OpaEvalDocument"):
        return engine.eval_document(DECISION_DOCUMENT, input)
    try:
        encoded = orjson.dumps(input)
    except TypeError as exc:  # orjson's JSONEncodeError: lone surrogates, huge integers
        raise OpaError("invalid_argument", f"input is not valid JSON: {exc}") from None
    pointer = lib.OpaEvalDocument(handle, _DECISION_DOCUMENT_C, encoded, 0, 0)
    if not pointer:
        raise OpaError("internal", "native call returned NULL")
    try:
        envelope = orjson.loads(ctypes.string_at(pointer))
    finally:
        lib.OpaFreeString(pointer)
    error = envelope.get("error")
    if error:
        raise OpaError(error.get("code", "unknown"), error.get("message", ""))
    for printed in envelope.get("prints") or ():
        log.info("policy print() at %s: %s", printed.get("location"), printed.get("message"))
    results = envelope.get("result")
    if not results or not results[0].get("expressions"):
        raise OpaUndefinedError(f"data.{DECISION_DOCUMENT}")
    return results[0]["expressions"][0]["value"]


def evaluate(engine: OpaEngine, input: dict[str, Any]) -> Decision:
    """One decision from an OpaEngine, every failure as PolicyEngineError."""
    try:
        raw = eval_decision_document(engine, input)
    except OpaUndefinedError:
        raise PolicyEngineError("data.gateway.decision is undefined", reason="undefined") from None
    except OpaError as exc:
        raise PolicyEngineError(f"policy evaluation failed: {exc.message}", reason="eval_error") from None
    try:
        return parse_decision(raw)
    except DecisionError as exc:
        raise PolicyEngineError(f"invalid decision: {exc}", reason="invalid_decision") from None


def load_verified(paths: list[Path]) -> tuple[OpaEngine, str]:
    """Build an engine from ``paths`` and prove it decides; PolicyLoadError if it does not."""
    source = read_source(paths)
    if not source.modules:
        raise PolicyLoadError(f"no .rego files under {', '.join(map(str, paths))}")
    engine = build_engine(source)
    try:
        evaluate(engine, probe_input())
    except PolicyEngineError as exc:
        engine.close()
        raise PolicyLoadError(str(exc)) from None
    return engine, source.revision


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, config: PolicyConfig, base_dir: Path) -> None:
        self._config = config
        self._paths = [p if p.is_absolute() else base_dir / p for p in map(Path, config.paths)]
        self._engine: OpaEngine | None = None
        self._revision = ""
        self._stamp: tuple[tuple[str, int, int], ...] = ()
        self._retired: list[OpaEngine] = []
        self._watcher: asyncio.Task[None] | None = None
        #: Why the last reload was refused (None when the files on disk are the loaded ones).
        self.last_reload_error: str | None = None

    @property
    def revision(self) -> str:
        return self._revision

    async def start(self) -> None:
        stamp = fingerprint(self._paths)
        try:
            self._engine, self._revision = load_verified(self._paths)
        except PolicyLoadError as exc:
            raise PolicyEngineError(f"cannot load policies: {exc}", reason="load_error") from None
        self._stamp = stamp
        log.info("policies loaded (embedded engine, revision %s)", self._revision)
        if self._config.watch:
            self._watcher = asyncio.create_task(self._watch(), name="policy-reload")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for engine in [*self._retired, self._engine]:
            if engine is not None:
                engine.close()
        self._retired.clear()
        self._engine = None

    async def decide(self, input: dict[str, Any]) -> Decision:
        engine = self._engine
        if engine is None:
            raise PolicyEngineError("the embedded policy engine is not started", reason="not_started")
        if self._config.eval_in_thread:
            return await asyncio.to_thread(evaluate, engine, input)
        return evaluate(engine, input)

    async def healthy(self) -> bool:
        return self._engine is not None

    async def reload_now(self) -> bool:
        """Reload if the files changed; True when a new policy was swapped in."""
        try:
            stamp = await asyncio.to_thread(fingerprint, self._paths)
        except (OSError, PolicyLoadError) as exc:
            self._refuse(str(exc))
            return False
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            engine, revision = await asyncio.to_thread(load_verified, self._paths)
        except (OSError, PolicyLoadError) as exc:
            self._refuse(str(exc))
            return False
        previous, self._engine = self._engine, engine
        self._revision = revision
        self.last_reload_error = None
        if previous is not None:
            # An eval in a worker thread may still hold it: close it on the next poll.
            self._retired.append(previous)
        log.info("policies reloaded (revision %s)", revision)
        return True

    def _refuse(self, why: str) -> None:
        self.last_reload_error = why
        log.error("policy reload refused, keeping revision %s: %s", self._revision, why)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._config.reload_interval_s)
            retired, self._retired = self._retired, []
            for engine in retired:
                engine.close()
            await self.reload_now()
