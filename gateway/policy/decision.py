"""The decision document a policy returns at ``data.gateway.decision``, validated.

Validation is strict: an unknown or ill-typed field is an error (the pipeline turns it into a
fail-closed 503), never silently ignored, because a typo in a policy must not widen access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DecisionError(ValueError):
    """The policy produced something that is not a valid decision."""


@dataclass(slots=True, frozen=True)
class LimitSpec:
    """A limit the policy declares for this request; the gateway keeps the counters."""

    name: str
    scope: str
    window_s: int
    requests: int | None = None
    tokens: int | None = None
    cost: float | None = None


@dataclass(slots=True)
class SystemPromptTransform:
    prepend: str | None = None
    append: str | None = None


@dataclass(slots=True)
class Transform:
    model: str | None = None
    max_tokens: int | None = None
    system_prompt: SystemPromptTransform | None = None
    headers: dict[str, str] = field(default_factory=dict)
    redact: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ResponseRules:
    redact: list[str] = field(default_factory=list)
    deny_on: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Decision:
    allow: bool
    reasons: list[str] = field(default_factory=list)
    status: int = 403
    transform: Transform = field(default_factory=Transform)
    limits: list[LimitSpec] = field(default_factory=list)
    response: ResponseRules = field(default_factory=ResponseRules)
    tags: dict[str, str] = field(default_factory=dict)


_DECISION_FIELDS = {"allow", "reasons", "status", "transform", "limits", "response", "tags"}
_TRANSFORM_FIELDS = {"model", "max_tokens", "system_prompt", "headers", "redact"}
_LIMIT_FIELDS = {"name", "scope", "window_s", "requests", "tokens", "cost"}
_LIMIT_REQUIRED = {"name", "scope", "window_s"}


# The helpers take the field's location in parts and format it only on an error: a decision is
# parsed on every request, and eager f-strings were measurable there.


def _at(where: str, name: str | None) -> str:
    return where if name is None else f"{where}.{name}"


def _check_keys(where: str, value: dict[str, Any], allowed: set[str]) -> None:
    if not allowed.issuperset(value):
        unknown = set(value) - allowed
        raise DecisionError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _obj(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecisionError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _str_list(where: str, value: Any) -> list[str]:
    # Rego sets serialise as JSON arrays, so both arrive here as lists.
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DecisionError(f"{where}: expected a list of strings")
    return sorted(value) if where.endswith("reasons") else list(value)


def _str_map(where: str, value: Any) -> dict[str, str]:
    obj = _obj(where, value)
    for k, v in obj.items():
        if not isinstance(v, str):
            raise DecisionError(f"{where}.{k}: expected a string, got {type(v).__name__}")
    return dict(obj)


def _int(where: str, value: Any, *, minimum: int = 0, name: str | None = None) -> int:
    if type(value) is int and value >= minimum:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise DecisionError(f"{_at(where, name)}: expected an integer, got {value!r}")
    if value < minimum:
        raise DecisionError(f"{_at(where, name)}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _opt_str(where: str, value: Any, name: str | None = None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise DecisionError(f"{_at(where, name)}: expected a string, got {type(value).__name__}")
    return value


def _transform(raw: Any) -> Transform:
    obj = _obj("transform", raw)
    _check_keys("transform", obj, _TRANSFORM_FIELDS)
    system_prompt = None
    if "system_prompt" in obj:
        sp = _obj("transform.system_prompt", obj["system_prompt"])
        _check_keys("transform.system_prompt", sp, {"prepend", "append"})
        system_prompt = SystemPromptTransform(
            prepend=_opt_str("transform.system_prompt.prepend", sp.get("prepend")),
            append=_opt_str("transform.system_prompt.append", sp.get("append")),
        )
    return Transform(
        model=_opt_str("transform.model", obj.get("model")),
        max_tokens=_int("transform.max_tokens", obj["max_tokens"], minimum=1)
        if "max_tokens" in obj
        else None,
        system_prompt=system_prompt,
        headers=_str_map("transform.headers", obj.get("headers", {})),
        redact=_str_list("transform.redact", obj.get("redact", [])),
    )


def _limit(i: int, raw: Any) -> LimitSpec:
    if not isinstance(raw, dict):
        raise DecisionError(f"limits[{i}]: expected an object, got {type(raw).__name__}")
    obj = raw
    if not _LIMIT_FIELDS.issuperset(obj) or not _LIMIT_REQUIRED.issubset(obj):
        where = f"limits[{i}]"
        _check_keys(where, obj, _LIMIT_FIELDS)
        missing = sorted(_LIMIT_REQUIRED - set(obj))
        raise DecisionError(f"{where}: missing required field {missing[0]!r}")
    where = f"limits[{i}]"
    name = _opt_str(where, obj["name"], "name")
    scope = _opt_str(where, obj["scope"], "scope")
    cost = obj.get("cost")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0):
        raise DecisionError(f"{where}.cost: expected a number >= 0, got {cost!r}")
    spec = LimitSpec(
        name=name or "",
        scope=scope or "",
        window_s=_int(where, obj["window_s"], minimum=1, name="window_s"),
        requests=_int(where, obj["requests"], name="requests") if "requests" in obj else None,
        tokens=_int(where, obj["tokens"], name="tokens") if "tokens" in obj else None,
        cost=float(cost) if cost is not None else None,
    )
    if spec.requests is None and spec.tokens is None and spec.cost is None:
        raise DecisionError(f"{where}: declares none of requests, tokens, cost")
    return spec


def parse_decision(raw: Any) -> Decision:
    """Validate the raw JSON value of ``data.gateway.decision``."""
    obj = _obj("decision", raw)
    _check_keys("decision", obj, _DECISION_FIELDS)
    if "allow" not in obj:
        raise DecisionError("decision: missing required field 'allow'")
    if not isinstance(obj["allow"], bool):
        raise DecisionError(f"decision.allow: expected a boolean, got {obj['allow']!r}")
    status = _int("decision.status", obj.get("status", 403), minimum=400)
    if status > 599:
        raise DecisionError(f"decision.status: expected an HTTP error status 400-599, got {status}")
    response = ResponseRules()
    if "response" in obj:
        resp = _obj("response", obj["response"])
        _check_keys("response", resp, {"redact", "deny_on"})
        response = ResponseRules(
            redact=_str_list("response.redact", resp.get("redact", [])),
            deny_on=_str_list("response.deny_on", resp.get("deny_on", [])),
        )
    limits_raw = obj.get("limits", [])
    if not isinstance(limits_raw, list):
        raise DecisionError("decision.limits: expected a list")
    tags = _obj("decision.tags", obj.get("tags", {}))
    return Decision(
        allow=obj["allow"],
        reasons=_str_list("decision.reasons", obj.get("reasons", [])),
        status=status,
        transform=_transform(obj["transform"]) if "transform" in obj else Transform(),
        limits=[_limit(i, item) for i, item in enumerate(limits_raw)],
        response=response,
        tags={str(k): v if isinstance(v, str) else str(v) for k, v in tags.items()},
    )
