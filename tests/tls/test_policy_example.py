"""The example policy in docs/tls.md (a model reserved for one SPIFFE ID), evaluated by OPA's engine
with the identity documents this package produces."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from opa_bindings import OpaEngine

from gateway.tls.authenticator import CertificateAuthenticator
from gateway.tls.config import ServerTLSConfig
from tests.tls.conftest import SPIFFE_NOTEBOOK, Pki

DOC = Path(__file__).resolve().parents[2] / "docs" / "tls.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def engine() -> Any:
    rego = doc_blocks("rego")
    data = [json.loads(block) for block in doc_blocks("json") if "reserved_models" in block]
    with OpaEngine() as opa:
        for i, source in enumerate(rego):
            opa.add_policy(f"tls_doc_{i}.rego", source)
        opa.add_data(data[0])
        yield opa


def denials(engine: Any, client: dict[str, Any], model: str = "research-llm") -> list[dict[str, Any]]:
    return engine.eval_document("gateway.workloads.deny", {"model": {"requested": model}, "client": client})


def client_input(pki: Pki, cert_der: bytes) -> dict[str, Any]:
    authenticator = CertificateAuthenticator(ServerTLSConfig())
    principal = authenticator.authenticate(
        {"headers": [], "extensions": {"tls": {"client_cert_der": cert_der}}}
    )
    assert principal is not None
    return principal.as_input()


def test_reserved_model_only_for_its_spiffe_id(engine: Any, pki: Pki) -> None:
    other = pki.ca.issue_client(pki.folder, "bot", uris=["spiffe://example.org/ns/ops/sa/bot"])
    assert denials(engine, client_input(pki, pki.client.der)) == []
    (denial,) = denials(engine, client_input(pki, other.der))
    assert denial == {
        "reason": f'model "research-llm" is reserved for workload {SPIFFE_NOTEBOOK}',
        "status": 403,
    }
    assert len(denials(engine, {"auth": "api_key", "key_id": "k1", "metadata": {}})) == 1
    assert denials(engine, client_input(pki, other.der), model="gpt-4o") == []


def test_doc_policy_tests_pass(engine: Any) -> None:
    results = engine.eval_query("data.gateway.workloads_test[name]")
    names = {r["name"] for r in results if r["name"].startswith("test_")}
    assert {"test_owner_may_call", "test_other_workload_denied", "test_key_caller_denied"} <= names
    for name in names:
        assert engine.eval_document(f"gateway.workloads_test.{name}") is True
