"""Behaviour of the recognizers a user relies on: checksums, context, ranges, config."""

from __future__ import annotations

import pytest

from gateway.guards import GuardsConfig
from gateway.guards.config import CustomRecognizerConfig, DenyListConfig
from gateway.guards.scanner import PiiScanner


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(GuardsConfig())


def found(scanner: PiiScanner, text: str) -> list[tuple[str, str]]:
    return [(r.entity_type, text[r.start : r.end]) for r in scanner.scan(text)]


def test_luhn_failing_number_is_not_a_card(scanner: PiiScanner) -> None:
    assert found(scanner, "value 4111111111111112 here") == []


def test_luhn_valid_number_next_to_order_words_scores_below_threshold(scanner: PiiScanner) -> None:
    text = "order number 4111111111111111"
    [card] = [
        r for r in PiiScanner(GuardsConfig(score_threshold=0.0)).scan(text) if r.entity_type == "CREDIT_CARD"
    ]
    assert card.score < 0.5
    assert found(scanner, text) == []


def test_card_words_win_over_reference_words(scanner: PiiScanner) -> None:
    assert found(scanner, "order paid with card 4111 1111 1111 1111") == [
        ("CREDIT_CARD", "4111 1111 1111 1111")
    ]


def test_card_context_raises_the_score(scanner: PiiScanner) -> None:
    plain = scanner.scan("here 5555555555554444")[0]
    with_context = scanner.scan("my mastercard 5555555555554444")[0]
    assert with_context.score > plain.score >= 0.5


def test_number_without_a_brand_prefix_is_not_a_card(scanner: PiiScanner) -> None:
    assert found(scanner, "1111222233334444") == []  # Luhn-valid, no issuer starts with 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DE89 3704 0044 0532 0130 00", [("IBAN_CODE", "DE89 3704 0044 0532 0130 00")]),
        ("DE89370400440532013000.", [("IBAN_CODE", "DE89370400440532013000")]),
        ("DE89 3704 0044 0532 0130 01", []),  # checksum
        ("DE89 3704 0044 0532 0130", []),  # too short for DE
        ("QQ89370400440532013000", []),  # no such country
    ],
)
def test_iban(scanner: PiiScanner, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected


@pytest.mark.parametrize("ssn", ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"])
def test_ssn_outside_valid_ranges_is_ignored(scanner: PiiScanner, ssn: str) -> None:
    assert found(scanner, f"SSN {ssn}") == []


def test_bare_nine_digits_are_an_ssn_only_with_context(scanner: PiiScanner) -> None:
    assert found(scanner, "result 536221234") == []
    assert found(scanner, "ssn 536221234") == [("US_SSN", "536221234")]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("host 192.168.1.20", "192.168.1.20"),
        ("host 2001:db8::8a2e:370:7334.", "2001:db8::8a2e:370:7334"),
        ("from ::ffff:192.0.2.128 on", "::ffff:192.0.2.128"),
    ],
)
def test_ip_addresses(scanner: PiiScanner, text: str, value: str) -> None:
    assert found(scanner, text) == [("IP_ADDRESS", value)]


@pytest.mark.parametrize("text", ["version 1.2.3.4", "300.1.1.1", "at 10:30:45", "std::vector", "a[1::2]"])
def test_ip_look_alikes(scanner: PiiScanner, text: str) -> None:
    assert found(scanner, text) == []


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("sk-proj-e6D-wx8I_SwBRQ2nCRNKxkrb3uD7tpxUsn2q08Fm9bzO7a0W", "OPENAI_API_KEY"),
        ("sk-ant-api03-XM5zmap5Q9eaUmUqGOnVJcr0gmaxx1AnfRJyGISoGao1542P", "ANTHROPIC_API_KEY"),
        ("AKIAZPPFRMKK2X6VBM36", "AWS_ACCESS_KEY"),
        ("ghp_bj7utQfTCUlInbKcsnkZZwQ6K9mnSjD6JhP0", "GITHUB_TOKEN"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "JWT"),
    ],
)
def test_credentials(scanner: PiiScanner, text: str, entity: str) -> None:
    assert found(scanner, f"use {text} now") == [(entity, text)]


def test_jwt_needs_a_json_header(scanner: PiiScanner) -> None:
    assert found(scanner, "eyJub3QganNvbg.eyJzdWIiOiJ4In0.abc") == []


def test_unterminated_private_key_runs_to_the_end_of_its_body(scanner: PiiScanner) -> None:
    text = "key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBYr\nAoGBAM\n\nthat was it"
    [(entity, value)] = found(scanner, text)
    assert entity == "PRIVATE_KEY"
    assert value == "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBYr\nAoGBAM"


def test_custom_regex_recognizer_with_context() -> None:
    config = GuardsConfig(
        custom=[
            CustomRecognizerConfig(
                name="emp", entity="EMPLOYEE_ID", pattern=r"EMP-\d{6}", score=0.4, context=["employee"]
            )
        ]
    )
    scanner = PiiScanner(config)
    assert found(scanner, "ref EMP-123456") == []  # 0.4 < 0.5
    assert found(scanner, "employee EMP-123456") == [("EMPLOYEE_ID", "EMP-123456")]
    assert "EMPLOYEE_ID" in scanner.entity_types


def test_deny_list_matches_whole_words_case_insensitively() -> None:
    scanner = PiiScanner(
        GuardsConfig(deny_lists=[DenyListConfig(entity="CODENAME", words=["Nightjar", "blue bird"])])
    )
    assert found(scanner, "Project NIGHTJAR and the Blue Bird plan") == [
        ("CODENAME", "NIGHTJAR"),
        ("CODENAME", "Blue Bird"),
    ]
    assert found(scanner, "nightjars are birds") == []


def test_entity_filter_limits_the_search(scanner: PiiScanner) -> None:
    text = "a@example.com 4111 1111 1111 1111"
    assert [r.entity_type for r in scanner.scan(text, ["EMAIL_ADDRESS"])] == ["EMAIL_ADDRESS"]
    assert scanner.scan(text, []) == []


def test_threshold_from_config() -> None:
    text = "call 030 1234567"  # national format with phone word: 0.4 + 0.3
    assert found(PiiScanner(GuardsConfig(score_threshold=0.8)), text) == []
    assert found(PiiScanner(GuardsConfig(score_threshold=0.5)), text) == [("PHONE_NUMBER", "030 1234567")]


def test_overlapping_findings_keep_the_stronger_one(scanner: PiiScanner) -> None:
    text = "jwt eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImFAYi5jbyJ9."
    assert [e for e, _ in found(scanner, text)] == ["JWT"]
