"""Screening answers: JSON text and streams split at every possible chunk boundary."""

from __future__ import annotations

import random

import pytest

from gateway.guards import Guard, GuardDeniedError, GuardsConfig, Restorer
from gateway.guards.response import LONG_HOLD, MAX_HOLD
from gateway.policy.decision import ResponseRules

CARD = "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard(GuardsConfig())


def run_stream(
    guard: Guard, chunks: list[str], rules: ResponseRules, restorer: Restorer | None = None
) -> str:
    screener = guard.stream_screener(rules, restorer)
    return "".join(screener.feed(c) for c in chunks) + screener.flush()


def test_json_answer_is_redacted(guard: Guard) -> None:
    text = f"Your card {CARD} and mail a@example.com are on file."
    out = guard.screen_response_text(text, ResponseRules(redact=["CREDIT_CARD"]), None)
    assert out == "Your card <CREDIT_CARD> and mail a@example.com are on file."


def test_json_answer_with_denied_type_raises_with_policy_status(guard: Guard) -> None:
    with pytest.raises(GuardDeniedError) as info:
        guard.screen_response_text(f"card {CARD}", ResponseRules(deny_on=["CREDIT_CARD"]), None, status=422)
    assert info.value.status == 422
    assert CARD not in str(info.value) and "CREDIT_CARD" in str(info.value)


def test_restored_client_values_are_not_screened_but_new_ones_are(guard: Guard) -> None:
    restorer = Restorer()
    placeholder = restorer.placeholder_for("CREDIT_CARD", CARD)
    answer = f"You sent {placeholder}; a test card is 5555 5555 5555 4444."
    out = guard.screen_response_text(answer, ResponseRules(redact=["CREDIT_CARD"]), restorer)
    assert out == f"You sent {CARD}; a test card is <CREDIT_CARD>."


@pytest.mark.parametrize(
    "text", [f"card {CARD} ok", "write to jane.doe@example.com now", "IBAN DE89 3704 0044 0532 0130 00."]
)
def test_stream_redaction_works_at_every_split_point(guard: Guard, text: str) -> None:
    rules = ResponseRules(redact=["CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE"])
    expected = guard.screen_response_text(text, rules, None)
    assert expected != text
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert run_stream(guard, [text[:i], text[i:j], text[j:]], rules) == expected, (i, j)


def test_stream_restores_placeholders_split_across_chunks(guard: Guard) -> None:
    restorer = Restorer()
    placeholder = restorer.placeholder_for("EMAIL_ADDRESS", "jane@example.com")
    text = f"Mail {placeholder} today."
    for rules in (ResponseRules(), ResponseRules(redact=["CREDIT_CARD"])):
        for i in range(len(text) + 1):
            assert run_stream(guard, [text[:i], text[i:]], rules, restorer) == "Mail jane@example.com today."


def test_stream_deny_raises_when_the_entity_completes(guard: Guard) -> None:
    screener = guard.stream_screener(ResponseRules(deny_on=["CREDIT_CARD"]), None)
    emitted = screener.feed("Sure, the number is 4111 1111 ")
    assert "4111" not in emitted
    with pytest.raises(GuardDeniedError):
        screener.feed("1111 1111. Done")
        screener.flush()


def test_prose_is_held_back_by_at_most_the_last_partial_word(guard: Guard) -> None:
    screener = guard.stream_screener(ResponseRules(redact=["CREDIT_CARD"]), None)
    assert screener.feed("The weather in Paris is ") == "The weather in Paris is "
    assert screener.feed("sunny tod") == "sunny "
    assert screener.held == len("tod")
    assert screener.feed("ay.") + screener.flush() == "today."


def test_hold_back_is_bounded(guard: Guard) -> None:
    screener = guard.stream_screener(ResponseRules(redact=["EMAIL_ADDRESS"]), None)
    emitted = screener.feed("x" * 1000)
    assert len(emitted) == 1000 - MAX_HOLD and screener.held == MAX_HOLD


def test_long_credentials_are_held_until_complete(guard: Guard) -> None:
    jwt = "eyJhbGciOiJub25lIn0." + "eyJzdWIiOiJ4In0" * 20 + ".sig"
    assert len(jwt) > MAX_HOLD
    rules = ResponseRules(redact=["JWT"])
    chunks = ["token: "] + [jwt[i : i + 7] for i in range(0, len(jwt), 7)] + [" end"]
    assert run_stream(guard, chunks, rules) == "token: <JWT> end"
    assert len(jwt) < LONG_HOLD


def test_private_key_block_is_held_until_its_end_line(guard: Guard) -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----"
    )
    text = f"Here you go:\n{key}\nKeep it safe."
    chunks = [text[i : i + 5] for i in range(0, len(text), 5)]
    assert (
        run_stream(guard, chunks, ResponseRules(redact=["PRIVATE_KEY"]))
        == "Here you go:\n<PRIVATE_KEY>\nKeep it safe."
    )
    with pytest.raises(GuardDeniedError):
        run_stream(guard, chunks, ResponseRules(deny_on=["PRIVATE_KEY"]))


def test_no_rules_and_no_placeholders_pass_deltas_through(guard: Guard) -> None:
    screener = guard.stream_screener(ResponseRules(), None)
    assert screener.feed(f"card {CARD[:6]}") == f"card {CARD[:6]}"
    assert screener.held == 0


def test_random_chunkings_give_the_same_answer_as_the_whole_text(guard: Guard) -> None:
    restorer = Restorer()
    placeholder = restorer.placeholder_for("EMAIL_ADDRESS", "client@example.com")
    text = (
        f"Dear {placeholder}, your card 4111-1111-1111-1111 (order 4012888888881881) was charged. "
        "Wire to DE89 3704 0044 0532 0130 00 or call +44 20 7946 0958. Server 10.0.0.7 logged "
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. and ops@example.org.\n" * 3
    )
    rules = ResponseRules(
        redact=["CREDIT_CARD", "IBAN_CODE", "PHONE_NUMBER", "IP_ADDRESS", "JWT", "EMAIL_ADDRESS"]
    )
    expected = guard.screen_response_text(text, rules, restorer)
    assert "client@example.com" in expected and "4111" not in expected and "ops@example.org" not in expected
    rng = random.Random(8)
    for _ in range(150):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 60)))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert run_stream(guard, chunks, rules, restorer) == expected
