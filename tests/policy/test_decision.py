"""The decision document is validated strictly: a typo in a policy must fail closed, not widen access."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.policy.decision import DecisionError, LimitSpec, SystemPromptTransform, parse_decision

FULL: dict[str, Any] = {
    "allow": True,
    "reasons": ["b", "a"],
    "status": 429,
    "transform": {
        "model": "gpt-4o-mini",
        "max_tokens": 512,
        "system_prompt": {"prepend": "Be kind."},
        "headers": {"x-team": "support"},
        "redact": ["EMAIL_ADDRESS"],
    },
    "limits": [
        {"name": "key-requests", "scope": "key:k1", "requests": 600, "window_s": 60},
        {"name": "key-tokens", "scope": "key:k1", "tokens": 200000.0, "window_s": 60},
        {"name": "team-cost", "scope": "team:t", "cost": 2.5, "window_s": 86400},
    ],
    "response": {"redact": ["US_SSN"], "deny_on": ["CREDIT_CARD"]},
    "tags": {"team": "support", "tier": 2},
}


def with_change(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    import copy

    doc = copy.deepcopy(FULL)
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


def test_a_full_decision_is_read_field_by_field() -> None:
    decision = parse_decision(FULL)
    assert decision.allow is True
    assert decision.reasons == ["a", "b"]  # sorted: Rego sets have no order worth keeping
    assert decision.status == 429
    assert decision.transform.model == "gpt-4o-mini"
    assert decision.transform.max_tokens == 512
    assert decision.transform.system_prompt == SystemPromptTransform(prepend="Be kind.")
    assert decision.transform.headers == {"x-team": "support"}
    assert decision.transform.redact == ["EMAIL_ADDRESS"]
    assert decision.limits == [
        LimitSpec(name="key-requests", scope="key:k1", window_s=60, requests=600),
        LimitSpec(name="key-tokens", scope="key:k1", window_s=60, tokens=200000),
        LimitSpec(name="team-cost", scope="team:t", window_s=86400, cost=2.5),
    ]
    assert decision.response.redact == ["US_SSN"] and decision.response.deny_on == ["CREDIT_CARD"]
    assert decision.tags == {"team": "support", "tier": "2"}


def test_a_bare_allow_takes_the_defaults() -> None:
    decision = parse_decision({"allow": False})
    assert (decision.allow, decision.status, decision.reasons, decision.limits) == (False, 403, [], [])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("colour",), "blue", "decision: unknown field(s) ['colour']"),
        (("allow",), "yes", "decision.allow: expected a boolean"),
        (("status",), 200, "decision.status: expected an integer >= 400"),
        (("status",), 600, "decision.status: expected an HTTP error status"),
        (("status",), True, "decision.status: expected an integer"),
        (("reasons",), "one", "decision.reasons: expected a list of strings"),
        (("transform", "modle"), "x", "transform: unknown field(s) ['modle']"),
        (("transform", "model"), 4, "transform.model: expected a string"),
        (("transform", "max_tokens"), 0, "transform.max_tokens: expected an integer >= 1"),
        (("transform", "max_tokens"), 1.5, "transform.max_tokens: expected an integer"),
        (("transform", "headers"), {"x": 1}, "transform.headers.x: expected a string"),
        (("transform", "redact"), [1], "transform.redact: expected a list of strings"),
        (("transform", "system_prompt"), {"before": "x"}, "transform.system_prompt: unknown field(s)"),
        (("limits",), {"name": "x"}, "decision.limits: expected a list"),
        (("limits", 1), "key-tokens", "limits[1]: expected an object"),
        (("limits", 0, "burst"), 5, "limits[0]: unknown field(s) ['burst']"),
        (("limits", 2, "name"), 7, "limits[2].name: expected a string"),
        (("limits", 0, "window_s"), 0, "limits[0].window_s: expected an integer >= 1"),
        (("limits", 0, "requests"), -1, "limits[0].requests: expected an integer >= 0"),
        (("limits", 0, "requests"), None, "limits[0].requests: expected an integer"),
        (("limits", 1, "tokens"), "many", "limits[1].tokens: expected an integer"),
        (("limits", 2, "cost"), -0.5, "limits[2].cost: expected a number >= 0"),
        (("response", "deny"), [], "response: unknown field(s) ['deny']"),
        (("tags",), ["team"], "decision.tags: expected an object"),
    ],
)
def test_unknown_or_ill_typed_fields_are_errors(
    path: tuple[str | int, ...], value: Any, message: str
) -> None:
    with pytest.raises(DecisionError) as caught:
        parse_decision(with_change(path, value))
    assert message in str(caught.value)


def test_a_limit_missing_a_required_field_names_it() -> None:
    doc = with_change(("limits", 0), {"name": "key-requests", "requests": 1, "window_s": 60})
    with pytest.raises(DecisionError, match=r"limits\[0\]: missing required field 'scope'"):
        parse_decision(doc)


def test_a_limit_that_limits_nothing_is_an_error() -> None:
    doc = with_change(("limits", 0), {"name": "n", "scope": "s", "window_s": 60})
    with pytest.raises(DecisionError, match="declares none of requests, tokens, cost"):
        parse_decision(doc)


def test_a_missing_allow_is_an_error() -> None:
    with pytest.raises(DecisionError, match="missing required field 'allow'"):
        parse_decision({"status": 403})
