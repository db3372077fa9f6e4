from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from gateway.tokens import TokenEstimator, encoding_name_for_model, max_output

TIKTOKEN_DIR = Path(__file__).resolve().parents[3] / "shared" / "tiktoken"
needs_data = pytest.mark.skipif(not TIKTOKEN_DIR.is_dir(), reason=f"tokenizer data not at {TIKTOKEN_DIR}")


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("gpt-oss-120b", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-sonnet-4", "cl100k_base"),
        ("mistral-large", "cl100k_base"),
    ],
)
def test_encoding_per_model(model: str, encoding: str) -> None:
    assert encoding_name_for_model(model) == encoding


def test_explicit_encoding_wins() -> None:
    assert encoding_name_for_model("my-gpt4o", {"my-gpt4o": "o200k_base"}) == "o200k_base"


@needs_data
def test_counts_with_the_real_encodings_and_loads_only_those_used() -> None:
    estimator = TokenEstimator(str(TIKTOKEN_DIR))
    assert estimator.count("hello world", "gpt-3.5-turbo") == 2
    assert estimator.encoding("cl100k_base").encode("hello world") == [15339, 1917]  # type: ignore[union-attr]
    assert estimator.loaded_encodings() == ["cl100k_base"]
    assert estimator.encoding("o200k_base").encode("hello world") == [24912, 2375]  # type: ignore[union-attr]


@needs_data
def test_chat_framing_allowance() -> None:
    estimator = TokenEstimator(str(TIKTOKEN_DIR))
    body = {"messages": [{"role": "user", "content": "hello world"}]}
    # 3 per message + "user" (1) + "hello world" (2) + 3 priming the reply
    assert estimator.estimate_chat(body, "gpt-4") == 9
    named = {"messages": [{"role": "user", "name": "bob", "content": "hello world"}]}
    assert estimator.estimate_chat(named, "gpt-4") == 9 + estimator.count("bob", "gpt-4") + 1


@needs_data
def test_tools_images_and_tool_calls_are_counted() -> None:
    estimator = TokenEstimator(str(TIKTOKEN_DIR))
    base = {"messages": [{"role": "user", "content": "weather?"}]}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with_tools = estimator.estimate_chat({**base, "tools": tools}, "gpt-4o")
    assert with_tools > estimator.estimate_chat(base, "gpt-4o") + 5
    parts = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ]
    }
    assert estimator.estimate_chat(parts, "gpt-4o") == estimator.estimate_chat(base, "gpt-4o") + 85
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]}
    assert estimator.estimate_chat({"messages": [call]}, "gpt-4o") > 3 + 3 + 1


@needs_data
def test_embedding_inputs() -> None:
    estimator = TokenEstimator(str(TIKTOKEN_DIR))
    model = "text-embedding-3-small"
    assert estimator.estimate_texts(["hello world", "hello world"], model) == 4
    assert estimator.estimate_embeddings_input("hello world", model) == 2
    assert estimator.estimate_embeddings_input(["hello world", "hello"], model) == 3
    assert estimator.estimate_embeddings_input([1, 2, 3], model) == 3
    assert estimator.estimate_embeddings_input([[1, 2], [3]], model) == 3


def test_missing_data_falls_back_to_chars_over_four_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    estimator = TokenEstimator(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="gateway.tokens"):
        assert estimator.count("x" * 10, "gpt-4o") == 3
        assert estimator.count("y" * 8, "gpt-4o") == 2
    warnings = [r for r in caplog.records if "o200k_base" in r.getMessage()]
    assert len(warnings) == 1
    assert "ceil(chars/4)" in warnings[0].getMessage()


@needs_data
def test_corrupt_encoding_file_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(TIKTOKEN_DIR / "SHA256SUMS", tmp_path / "SHA256SUMS")
    (tmp_path / "cl100k_base.tiktoken").write_bytes(b"aGVsbG8= 0\n")
    estimator = TokenEstimator(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="gateway.tokens"):
        assert estimator.count("hello world", "gpt-4") == 3  # the approximation, not the bad table
    assert "cannot be loaded" in caplog.text


@needs_data
def test_shipped_data_matches_its_sha256sums() -> None:
    import hashlib

    for line in (TIKTOKEN_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((TIKTOKEN_DIR / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, None),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 50, "max_tokens": 100}, 50),
        ({"max_tokens": None}, None),
        ({"max_tokens": True}, None),
    ],
)
def test_max_output(body: dict[str, object], expected: int | None) -> None:
    assert max_output(body) == expected
