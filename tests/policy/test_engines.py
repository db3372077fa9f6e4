"""The same decision cases through both engines, and how each reports what is not a decision."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from gateway.policy.config import PolicyConfig
from gateway.policy.decision import Decision
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.engine import PolicyEngine, PolicyEngineError, create_engine
from gateway.policy.sidecar import OpaSidecarEngine
from tests.policy.cases import CASES, POLICIES, REPO, Case, missing_section_input
from tests.policy.opa_server import FakeOpa


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_decision_cases(engine: PolicyEngine, case: Case) -> None:
    decision = await engine.decide(dict(case.input))
    assert decision.allow is case.allow
    assert decision.reasons == case.reasons
    assert decision.status == case.status
    assert decision.transform.model == case.model
    assert decision.transform.max_tokens == case.max_tokens
    assert {limit.name for limit in decision.limits} == case.limit_names


async def test_missing_input_section_denies(engine: PolicyEngine) -> None:
    decision = await engine.decide(missing_section_input())
    assert decision.allow is False
    assert "input.prompt is missing" in decision.reasons
    assert "input.prompt.pii is missing" in decision.reasons


async def test_enrichment_and_response_rules(engine: PolicyEngine) -> None:
    from tests.policy.cases import SUPPORT, make_input

    decision = await engine.decide(dict(make_input(principal=SUPPORT)))
    assert decision.transform.headers == {
        "x-gateway-request-id": "req-42",
        "x-gateway-team": "support",
        "x-gateway-key-id": "key-9",
        "x-org-unit": "support",
    }
    assert decision.transform.system_prompt is not None
    assert decision.transform.system_prompt.prepend is not None
    assert sorted(decision.transform.redact) == ["EMAIL_ADDRESS", "PHONE_NUMBER"]
    assert sorted(decision.response.redact) == ["CREDIT_CARD", "US_SSN"]
    assert decision.response.deny_on == ["CREDIT_CARD"]
    assert decision.tags == {"team": "support", "tier": "standard", "cost_center": "CC-2002"}
    assert await engine.healthy()


def _normalized(decision: Decision) -> dict[str, object]:
    doc = dataclasses.asdict(decision)
    doc["limits"] = sorted(doc["limits"], key=lambda limit: limit["name"])
    doc["transform"]["redact"] = sorted(doc["transform"]["redact"])
    return doc


async def test_sidecar_and_embedded_give_identical_decisions(fake_opa: tuple[FakeOpa, str]) -> None:
    _server, url = fake_opa
    embedded = EmbeddedEngine(PolicyConfig(paths=[str(POLICIES)], watch=False), REPO)
    sidecar = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url), REPO)
    await embedded.start()
    await sidecar.start()
    try:
        for case in CASES:
            a = await embedded.decide(dict(case.input))
            b = await sidecar.decide(dict(case.input))
            assert _normalized(a) == _normalized(b), case.name
    finally:
        await embedded.close()
        await sidecar.close()


async def test_sidecar_posts_input_to_the_data_api_and_reports_the_bundle_revision(
    fake_opa: tuple[FakeOpa, str],
) -> None:
    server, url = fake_opa
    engine = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url), REPO)
    await engine.start()
    try:
        assert engine.revision == "opa"
        await engine.decide(dict(CASES[0].input))
    finally:
        await engine.close()
    assert server.requests[0]["path"] == "gateway/decision"
    assert server.requests[0]["query"] == {"provenance": "true"}
    assert server.requests[0]["body"]["input"]["request"]["id"] == "req-42"
    assert engine.revision == server.revision


def _write_policy(root: Path, rego: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "gateway.rego").write_text(rego, encoding="utf-8")
    return root


# Defined (and valid) for the anonymous start-up probe only, so the engines start.
_PROBE_OK = 'decision := {"allow": false} if input.client.auth == "anonymous"\n'

BROKEN_POLICIES = {
    "undefined": "package gateway\n\n" + _PROBE_OK,
    "invalid_decision": "package gateway\n\n"
    + _PROBE_OK
    + 'decision := {"allow": true, "colour": "blue"} if input.client.auth != "anonymous"\n',
    "eval_error": "package gateway\n\n"
    + _PROBE_OK
    + 'decision := {"allow": true} if input.client.auth != "anonymous"\n'
    + 'decision := {"allow": false} if input.client.auth != "anonymous"\n',
}


@pytest.mark.parametrize("kind", sorted(BROKEN_POLICIES))
async def test_embedded_raises_policy_engine_error(tmp_path: Path, kind: str) -> None:
    root = _write_policy(tmp_path / "p", BROKEN_POLICIES[kind])
    engine = EmbeddedEngine(PolicyConfig(paths=[str(root)], watch=False), tmp_path)
    await engine.start()
    try:
        with pytest.raises(PolicyEngineError) as caught:
            await engine.decide(dict(CASES[0].input))
    finally:
        await engine.close()
    assert caught.value.reason == kind


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("undefined", "undefined"), ("invalid_decision", "invalid_decision"), ("eval_error", "opa_error")],
)
async def test_sidecar_raises_policy_engine_error(tmp_path: Path, kind: str, reason: str) -> None:
    server = FakeOpa([_write_policy(tmp_path / "p", BROKEN_POLICIES[kind])])
    url = await server.start()
    engine = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url), tmp_path)
    await engine.start()
    try:
        with pytest.raises(PolicyEngineError) as caught:
            await engine.decide(dict(CASES[0].input))
    finally:
        await engine.close()
        await server.stop()
    assert caught.value.reason == reason


async def test_sidecar_timeout(fake_opa: tuple[FakeOpa, str]) -> None:
    server, url = fake_opa
    server.delay_s = 1.0
    engine = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url, timeout_s=0.1), REPO)
    await engine.start()
    try:
        with pytest.raises(PolicyEngineError, match=r"did not answer within 0\.1 s") as caught:
            await engine.decide(dict(CASES[0].input))
    finally:
        await engine.close()
    assert caught.value.reason == "timeout"


async def test_sidecar_unreachable_is_an_engine_error_and_unhealthy(fake_opa: tuple[FakeOpa, str]) -> None:
    server, url = fake_opa
    await server.stop()
    engine = OpaSidecarEngine(PolicyConfig(engine="opa", opa_url=url), REPO)
    await engine.start()
    try:
        assert await engine.healthy() is False
        with pytest.raises(PolicyEngineError) as caught:
            await engine.decide(dict(CASES[0].input))
    finally:
        await engine.close()
    assert caught.value.reason == "unreachable"


async def test_embedded_refuses_to_start_without_a_working_policy(tmp_path: Path) -> None:
    root = _write_policy(tmp_path / "p", 'package gateway\n\ndecision := {"allow": x}\n')
    engine = EmbeddedEngine(PolicyConfig(paths=[str(root)], watch=False), tmp_path)
    with pytest.raises(PolicyEngineError, match="unsafe") as caught:
        await engine.start()
    assert caught.value.reason == "load_error"
    assert await engine.healthy() is False


async def test_decide_before_start_fails_closed() -> None:
    engine = EmbeddedEngine(PolicyConfig(paths=[str(POLICIES)], watch=False), REPO)
    with pytest.raises(PolicyEngineError):
        await engine.decide(dict(CASES[0].input))


async def test_eval_in_thread_gives_the_same_decision() -> None:
    engine = EmbeddedEngine(PolicyConfig(paths=[str(POLICIES)], watch=False, eval_in_thread=True), REPO)
    await engine.start()
    try:
        decision = await engine.decide(dict(CASES[3].input))
    finally:
        await engine.close()
    assert decision.transform.model == "gpt-4o"


def test_create_engine_picks_the_configured_engine() -> None:
    assert create_engine(PolicyConfig(), REPO).name == "embedded"
    assert create_engine(PolicyConfig(engine="opa"), REPO).name == "opa"
    with pytest.raises(ValueError, match="must not have a path"):
        create_engine(PolicyConfig(engine="opa", opa_url="http://opa:8181/v1"), REPO)


def test_real_opa_runs_the_policy_tests_unchanged() -> None:
    opa = shutil.which("opa")
    if opa is None:
        pytest.skip("no `opa` binary on PATH: `opa test policies/ policy_tests/` needs one")
    import subprocess

    completed = subprocess.run(
        [opa, "test", str(POLICIES), str(REPO / "policy_tests")], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_direct_decision_call_answers_as_the_bindings_public_method() -> None:
    # eval_decision_document bypasses the binding's stdlib-json wrapper for speed; every case
    # must still come back exactly as eval_document returns it.
    from gateway.policy.bundle import build_engine, read_source
    from gateway.policy.embedded import eval_decision_document

    engine = build_engine(read_source([POLICIES]))
    try:
        for case in CASES:
            direct = eval_decision_document(engine, dict(case.input))
            assert direct == engine.eval_document("gateway.decision", dict(case.input)), case.name
    finally:
        engine.close()


def test_policy_print_output_goes_to_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from gateway.policy.bundle import build_engine, read_source
    from gateway.policy.embedded import eval_decision_document

    root = _write_policy(
        tmp_path / "p",
        'package gateway\n\ndecision := {"allow": true} if {\n\tprint("tier is", input.tier)\n}\n',
    )
    engine = build_engine(read_source([root]))
    try:
        with caplog.at_level("INFO", logger="gateway.policy.embedded"):
            assert eval_decision_document(engine, {"tier": "gold"}) == {"allow": True}
    finally:
        engine.close()
    assert any("tier is gold" in r.getMessage() for r in caplog.records)
