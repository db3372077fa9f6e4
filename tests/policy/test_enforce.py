from __future__ import annotations

from typing import Any

import pytest

from gateway.policy.decision import SystemPromptTransform, Transform
from gateway.policy.enforce import apply_transform

USER = {"role": "user", "content": "hi"}


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [USER], **extra}


def test_empty_transform_returns_an_equal_new_body() -> None:
    body = chat(max_tokens=10)
    result = apply_transform(body, Transform())
    assert result == body
    assert result is not body


def test_model_rewrite() -> None:
    assert apply_transform(chat(), Transform(model="gpt-4o-mini"))["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ({"max_tokens": 100}, {"max_tokens": 100}),
        ({"max_tokens": 5000}, {"max_tokens": 512}),
        ({"max_completion_tokens": 5000}, {"max_completion_tokens": 512}),
        ({"max_completion_tokens": 7}, {"max_completion_tokens": 7}),
        ({"max_tokens": 9000, "max_completion_tokens": 10}, {"max_tokens": 512, "max_completion_tokens": 10}),
        ({}, {"max_completion_tokens": 512}),
        ({"max_tokens": None}, {"max_tokens": None, "max_completion_tokens": 512}),
    ],
)
def test_max_tokens_cap_never_raises_a_lower_value(client: dict[str, Any], expected: dict[str, Any]) -> None:
    result = apply_transform(chat(**client), Transform(max_tokens=512))
    assert {k: result[k] for k in ("max_tokens", "max_completion_tokens") if k in result} == expected


def test_max_tokens_for_legacy_completions_uses_max_tokens() -> None:
    result = apply_transform({"model": "m", "prompt": "x"}, Transform(max_tokens=64))
    assert result["max_tokens"] == 64


def test_max_tokens_ignored_for_embeddings() -> None:
    body = {"model": "text-embedding-3-small", "input": "x"}
    assert apply_transform(body, Transform(max_tokens=64)) == body


def test_prepend_without_system_message_adds_one_first() -> None:
    result = apply_transform(chat(), Transform(system_prompt=SystemPromptTransform(prepend="Rules.")))
    assert result["messages"] == [{"role": "system", "content": "Rules."}, USER]


def test_prepend_merges_into_the_first_system_message() -> None:
    body = chat(messages=[{"role": "system", "content": "Be brief."}, USER])
    result = apply_transform(body, Transform(system_prompt=SystemPromptTransform(prepend="Rules.")))
    assert result["messages"][0] == {"role": "system", "content": "Rules.\n\nBe brief."}
    assert body["messages"][0]["content"] == "Be brief."  # the input is untouched


def test_append_goes_after_the_last_system_text() -> None:
    body = chat(messages=[{"role": "system", "content": "A"}, {"role": "developer", "content": "B"}, USER])
    result = apply_transform(body, Transform(system_prompt=SystemPromptTransform(append="Z")))
    assert [m["content"] for m in result["messages"]] == ["A", "B\n\nZ", "hi"]


def test_append_without_system_message_adds_one_first() -> None:
    result = apply_transform(chat(), Transform(system_prompt=SystemPromptTransform(append="Z")))
    assert result["messages"] == [{"role": "system", "content": "Z"}, USER]


def test_prepend_and_append_on_content_parts() -> None:
    body = chat(messages=[{"role": "system", "content": [{"type": "text", "text": "mid"}]}, USER])
    sp = SystemPromptTransform(prepend="start", append="end")
    result = apply_transform(body, Transform(system_prompt=sp))
    assert [p["text"] for p in result["messages"][0]["content"]] == ["start", "mid", "end"]


def test_prepend_and_append_together_without_system_message() -> None:
    sp = SystemPromptTransform(prepend="start", append="end")
    result = apply_transform(chat(), Transform(system_prompt=sp))
    assert result["messages"] == [{"role": "system", "content": "start\n\nend"}, USER]
