"""Decision cases shared by every engine's tests: an input document and what the decision says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.policy.input import InputDocument, build_input
from gateway.types import Principal

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
POLICY_TESTS = REPO / "policy_tests"


def make_input(
    *,
    principal: Principal | None = None,
    model: str = "gpt-4o",
    prompt_estimate: int = 120,
    max_output: int | None = None,
    features: dict[str, Any] | None = None,
    usage: dict[str, dict[str, float | int]] | None = None,
) -> InputDocument:
    return build_input(
        request_id="req-42",
        endpoint="chat.completions",
        method="POST",
        path="/v1/chat/completions",
        source_ip="10.1.2.3",
        time=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
        stream=False,
        headers={"user-agent": "pytest"},
        principal=principal or Principal(auth="api_key", key_id="key-7", key_name="ci", team="research"),
        model_requested=model,
        provider="openai",
        deployment="openai-main",
        prompt_estimate=prompt_estimate,
        max_output=max_output,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        features=features,
        usage=usage,
    )


@dataclass
class Case:
    name: str
    input: InputDocument
    allow: bool
    status: int = 403
    reasons: list[str] = field(default_factory=list)
    model: str | None = None
    max_tokens: int | None = None
    limit_names: set[str] = field(default_factory=set)


SUPPORT = Principal(auth="api_key", key_id="key-9", key_name="bot", team="support")

CASES = [
    Case(
        "research key, default data: allowed with premium ceilings",
        make_input(),
        allow=True,
        max_tokens=16384,
        limit_names={"key-requests", "key-tokens", "team-requests", "team-tokens"},
    ),
    Case(
        "anonymous caller: free tier, limited per address",
        make_input(principal=Principal(auth="anonymous")),
        allow=True,
        max_tokens=512,
        limit_names={"anonymous-requests"},
    ),
    Case(
        "model outside the key's allow-list",
        make_input(
            principal=Principal(auth="api_key", key_id="k", metadata={"allowed_models": ["claude-*"]})
        ),
        allow=False,
        reasons=['model "gpt-4o" is not allowed for this key'],
        max_tokens=4096,
        limit_names={"key-requests", "key-tokens"},
    ),
    Case(
        "team rewrite gpt-4 -> gpt-4o",
        make_input(model="gpt-4"),
        allow=True,
        model="gpt-4o",
        max_tokens=16384,
        limit_names={"key-requests", "key-tokens", "team-requests", "team-tokens"},
    ),
    Case(
        "support team forbids credit card numbers in prompts",
        make_input(principal=SUPPORT, features={"pii": [{"type": "CREDIT_CARD", "count": 1}]}),
        allow=False,
        reasons=["prompt contains CREDIT_CARD, which the team support policy forbids"],
        max_tokens=4096,
        limit_names={"key-requests", "key-tokens", "team-requests", "team-tokens"},
    ),
    Case(
        "prompt injection score over the threshold",
        make_input(features={"pii": [], "injection": {"score": 0.93, "signals": ["ignore_previous"]}}),
        allow=False,
        reasons=["prompt-injection score 0.93 reaches the threshold 0.8"],
        max_tokens=16384,
        limit_names={"key-requests", "key-tokens", "team-requests", "team-tokens"},
    ),
    Case(
        "prompt over the tier's ceiling: 400",
        make_input(principal=SUPPORT, prompt_estimate=50_000),
        allow=False,
        status=400,
        reasons=["prompt of about 50000 tokens exceeds the standard tier ceiling of 32000 tokens"],
        max_tokens=4096,
        limit_names={"key-requests", "key-tokens", "team-requests", "team-tokens"},
    ),
    Case(
        "budget nearly spent: downgraded to the cheaper model",
        make_input(usage={"key": {"spend_month": 0}, "team": {"spend_month": 4200.0}}),
        allow=True,
        model="gpt-4o-mini",
        max_tokens=16384,
        limit_names={"key-requests", "key-tokens", "team-requests", "team-tokens"},
    ),
    Case(
        "budget spent: 429",
        make_input(usage={"key": {"spend_month": 0}, "team": {"spend_month": 5000.5}}),
        allow=False,
        status=429,
        reasons=["the team research monthly budget is spent"],
        model="gpt-4o-mini",
        max_tokens=16384,
        limit_names={"key-requests", "key-tokens", "team-requests", "team-tokens"},
    ),
]


def missing_section_input() -> dict[str, Any]:
    document: dict[str, Any] = dict(make_input())
    del document["prompt"]
    return document
