from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest

from gateway.policy.input import build_input, prompt_messages, select_headers
from gateway.policy.schema import SCHEMA_PATH, input_schema, render
from gateway.types import Principal
from tests.policy.cases import CASES, make_input


def test_schema_file_is_generated_from_the_builder_types() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), "run: python -m gateway.policy.schema"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_built_inputs_validate_against_the_schema(case: object) -> None:
    jsonschema.validate(json.loads(json.dumps(case.input)), input_schema())  # type: ignore[attr-defined]


def test_schema_rejects_a_misspelt_field() -> None:
    document = json.loads(json.dumps(make_input()))
    document["client"]["teem"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, input_schema())


def test_input_carries_the_design_sections() -> None:
    principal = Principal(auth="jwt", user="u1", team="t", metadata={"tier": "free"}, claims={"sub": "u1"})
    document = build_input(
        request_id="r1",
        endpoint="chat.completions",
        method="POST",
        path="/v1/chat/completions",
        source_ip="192.0.2.1",
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        stream=True,
        headers={"user-agent": "sdk"},
        principal=principal,
        model_requested="gpt-4o",
        provider="openai",
        deployment="d1",
        prompt_estimate=12,
        max_output=256,
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}],
        features={
            "pii": [{"type": "EMAIL_ADDRESS", "count": 2}],
            "injection": {"score": 0.4, "signals": ["x"]},
        },
        usage={"key": {"tokens_today": 10, "spend_month": 1.5}, "team": {"spend_month": 2.0}},
    )
    assert document["request"]["time"] == "2026-01-02T03:04:05+00:00"
    assert document["request"]["stream"] is True
    assert document["client"]["claims"] == {"sub": "u1"}
    assert document["model"] == {"requested": "gpt-4o", "provider": "openai", "deployment": "d1"}
    assert document["tokens"] == {"prompt_estimate": 12, "max_output": 256}
    assert document["prompt"] == {
        "messages": 2,
        "chars": 8,
        "has_system": True,
        "pii": [{"type": "EMAIL_ADDRESS", "count": 2}],
        "injection": {"score": 0.4, "signals": ["x"]},
    }
    assert document["usage"]["key"]["spend_month"] == 1.5
    jsonschema.validate(json.loads(json.dumps(document)), input_schema())


def test_prompt_text_only_when_configured() -> None:
    assert "text" not in make_input()["prompt"]
    document = build_input(
        **{**_args(), "include_prompt": True},  # type: ignore[arg-type]
    )
    assert document["prompt"]["text"] == [{"role": "user", "content": "secret plans"}]
    jsonschema.validate(json.loads(json.dumps(document)), input_schema())


def _args() -> dict[str, object]:
    return {
        "request_id": "r",
        "endpoint": "chat.completions",
        "method": "POST",
        "path": "/v1/chat/completions",
        "source_ip": None,
        "time": datetime.now(UTC),
        "stream": False,
        "headers": {},
        "principal": Principal(auth="anonymous"),
        "model_requested": "m",
        "provider": None,
        "deployment": None,
        "prompt_estimate": 3,
        "max_output": None,
        "messages": [{"role": "user", "content": "secret plans"}],
    }


def test_features_default_to_nothing_found_and_unknown_ones_are_refused() -> None:
    document = build_input(**_args())  # type: ignore[arg-type]
    assert document["prompt"]["pii"] == []
    assert document["prompt"]["injection"] == {"score": 0.0, "signals": []}
    with pytest.raises(ValueError, match="toxicity"):
        build_input(**{**_args(), "features": {"toxicity": 1}})  # type: ignore[arg-type]


def test_credential_headers_never_reach_the_policy() -> None:
    headers = [
        ("Authorization", "Bearer sk-secret"),
        ("User-Agent", "sdk/1"),
        ("X-Api-Key", "k"),
        ("X-Other", "o"),
    ]
    selected = select_headers(headers, ["authorization", "user-agent", "x-api-key"])
    assert selected == {"user-agent": "sdk/1"}


def test_prompt_messages_from_each_endpoint_shape() -> None:
    chat = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ]
    }
    assert prompt_messages(chat) == [{"role": "user", "content": "a\nb"}]
    anthropic = {"system": "s", "messages": [{"role": "user", "content": "u"}]}
    assert prompt_messages(anthropic) == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
    ]
    assert prompt_messages({"input": ["x", "y"]}) == [
        {"role": "user", "content": "x"},
        {"role": "user", "content": "y"},
    ]
    assert prompt_messages({"prompt": "p"}) == [{"role": "user", "content": "p"}]
