"""`gateway policy test` / `gateway policy eval`: exit codes and output."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import pytest

from gateway.policy.cli import add_policy_commands
from gateway.policy.config import PolicyConfig
from gateway.policy.testing import eval_policy, run_policy_tests
from tests.policy.cases import CASES, POLICIES, POLICY_TESTS, REPO


def _count_tests() -> int:
    return sum(
        line.startswith("test_")
        for f in POLICY_TESTS.glob("*_test.rego")
        for line in f.read_text().splitlines()
    )


def test_shipped_policy_tests_all_pass() -> None:
    out = io.StringIO()
    assert run_policy_tests([POLICIES, POLICY_TESTS], verbose=True, out=out) == 0
    text = out.getvalue()
    n = _count_tests()
    assert f"PASS: {n}/{n}" in text
    assert "data.gateway.models_test.test_team_rewrite: PASS" in text


def test_a_failing_test_exits_2(tmp_path: Path) -> None:
    tests = tmp_path / "policy_tests"
    shutil.copytree(POLICY_TESTS, tests)
    (tests / "extra_test.rego").write_text(
        "package gateway.extra_test\n\nimport data.gateway\n\n"
        "test_wrong_tier_expectation if {\n"
        '\tgateway.decision.tags.tier == "gold" with input as data.gateway.fixtures.base_input\n}\n'
        "todo_test_later if false\n"
    )
    out = io.StringIO()
    assert run_policy_tests([POLICIES, tests], out=out) == 2
    text = out.getvalue()
    n = _count_tests()
    assert "data.gateway.extra_test.test_wrong_tier_expectation: FAIL" in text
    assert f"PASS: {n}/{n + 2}" in text
    assert f"FAIL: 1/{n + 2}" in text
    assert f"SKIPPED: 1/{n + 2}" in text


def test_a_policy_that_does_not_parse_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken_test.rego"
    broken.write_text("package x_test\n\ntest_a if {\n")
    out = io.StringIO()
    assert run_policy_tests([broken], out=out) == 2
    assert "rego_parse_error" in out.getvalue()


def test_coverage_report() -> None:
    out = io.StringIO()
    assert run_policy_tests([POLICIES, POLICY_TESTS], coverage=True, out=out) == 0
    assert f"{POLICIES}/models.rego: 100.0%" in out.getvalue()
    assert "Coverage: " in out.getvalue()


def test_opa_flag_without_binary_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    out = io.StringIO()
    assert run_policy_tests([POLICIES, POLICY_TESTS], use_opa=True, out=out) == 2
    assert "no `opa` binary on PATH" in out.getvalue()


def test_eval_prints_the_decision(tmp_path: Path) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps({"input": CASES[3].input}))
    out = io.StringIO()
    assert eval_policy(PolicyConfig(paths=[str(POLICIES)]), input_file, REPO, out=out) == 0
    printed = json.loads(out.getvalue())
    assert printed["engine"] == "embedded"
    assert printed["decision"]["allow"] is True
    assert printed["decision"]["transform"]["model"] == "gpt-4o"


def test_eval_of_unreadable_input_exits_2(tmp_path: Path) -> None:
    out = io.StringIO()
    assert eval_policy(PolicyConfig(paths=[str(POLICIES)]), tmp_path / "nope.json", REPO, out=out) == 2


def test_cli_registers_policy_test_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="gateway")
    add_policy_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["policy", "test", str(POLICIES), str(POLICY_TESTS)])
    assert args.func(args) == 0
    config = tmp_path / "gateway.yaml"
    config.write_text(f"policy:\n  paths: [{POLICIES}]\n")
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps(CASES[2].input))
    args = parser.parse_args(["policy", "eval", "--input", str(input_file), "--config", str(config)])
    assert args.func(args) == 0
    assert '"allow": false' in capsys.readouterr().out
