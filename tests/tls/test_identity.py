"""Certificate identity documents, the identities mapping, and the config rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.errors import AuthenticationError
from gateway.tls.authenticator import CertificateAuthenticator, IdentityMap
from gateway.tls.config import IdentityBinding, ServerTLSConfig, UpstreamTLSConfig
from gateway.tls.identity import certificate_identity
from tests.tls.conftest import SPIFFE_NOTEBOOK, Pki


def test_certificate_identity_fields(pki: Pki) -> None:
    cert = pki.ca.issue_client(
        pki.folder,
        "multi",
        organization="Research",
        dns=["a.internal"],
        ips=["10.0.0.7"],
        uris=["https://example.org/x", SPIFFE_NOTEBOOK, "spiffe://example.org/second"],
        emails=["a@example.org"],
    )
    identity = certificate_identity(cert.der)
    assert identity["subject"] == "CN=multi,O=Research"
    assert identity["common_name"] == "multi"
    assert identity["issuer"] == "CN=Example Internal CA"
    assert identity["san"] == {
        "dns": ["a.internal"],
        "uri": ["https://example.org/x", SPIFFE_NOTEBOOK, "spiffe://example.org/second"],
        "email": ["a@example.org"],
        "ip": ["10.0.0.7"],
    }
    assert identity["spiffe_id"] == SPIFFE_NOTEBOOK  # the first spiffe:// URI, not the first URI
    assert identity["fingerprint_sha256"] == cert.fingerprint_sha256
    assert identity["serial_number"] == format(cert.certificate.serial_number, "x")
    assert identity["not_after"] == cert.certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert identity["not_before"].endswith("Z")


def test_certificate_without_san(pki: Pki) -> None:
    identity = certificate_identity(pki.ca.issue_client(pki.folder, "bare").der)
    assert identity["san"] == {"dns": [], "uri": [], "email": [], "ip": []}
    assert identity["spiffe_id"] is None


def identity(uris: list[str] = (), dns: list[str] = (), cn: str | None = None, fp: str = "ab" * 32) -> dict:
    return {
        "san": {"uri": list(uris), "dns": list(dns), "email": [], "ip": []},
        "common_name": cn,
        "fingerprint_sha256": fp,
    }


def mapping(keys: list[str]) -> IdentityMap:
    cfg = ServerTLSConfig(identities={k: IdentityBinding(team=k) for k in keys})
    return IdentityMap(cfg.identities)


def test_identity_map_precedence() -> None:
    keys = [
        "spiffe://example.org/ns/research/*",
        "spiffe://example.org/ns/*",
        SPIFFE_NOTEBOOK,
        "dns:Notebook.Internal",
        "cn:notebook",
        f"sha256:{':'.join(['CD'] * 32)}",
    ]
    m = mapping(keys)
    assert m.match(identity([SPIFFE_NOTEBOOK]))[0] == SPIFFE_NOTEBOOK
    assert (
        m.match(identity(["spiffe://example.org/ns/research/sa/other"]))[0]
        == "spiffe://example.org/ns/research/*"
    )
    assert m.match(identity(["spiffe://example.org/ns/ops/sa/x"]))[0] == "spiffe://example.org/ns/*"
    assert m.match(identity(dns=["notebook.internal"], cn="notebook"))[0] == "dns:notebook.internal"
    assert m.match(identity(cn="notebook"))[0] == "cn:notebook"
    assert m.match(identity([SPIFFE_NOTEBOOK], fp="cd" * 32))[0] == "sha256:" + "cd" * 32
    assert m.match(identity(["spiffe://other.org/x"], cn="nobody")) is None


def test_unmapped_certificate_refused_when_configured(pki: Pki) -> None:
    cfg = ServerTLSConfig(
        cert_file="s.crt",
        key_file="s.key",
        client_ca_file="ca.crt",
        identities={"spiffe://example.org/ns/ops/sa/bot": IdentityBinding(team="ops")},
        allow_unmapped=False,
    )
    scope = {"type": "http", "headers": [], "extensions": {"tls": {"client_cert_der": pki.client.der}}}
    with pytest.raises(AuthenticationError) as err:
        CertificateAuthenticator(cfg).authenticate(scope)
    assert SPIFFE_NOTEBOOK in err.value.message and err.value.status == 401

    allowed = CertificateAuthenticator(cfg.model_copy(update={"allow_unmapped": True})).authenticate(scope)
    assert allowed is not None and allowed.team is None and allowed.certificate["binding"] is None


def test_principal_documents_are_not_shared_between_requests(pki: Pki) -> None:
    authenticator = CertificateAuthenticator(ServerTLSConfig(identities={SPIFFE_NOTEBOOK: IdentityBinding()}))
    scope = {"type": "http", "headers": [], "extensions": {"tls": {"client_cert_der": pki.client.der}}}
    first = authenticator.authenticate(scope)
    first.certificate["san"]["uri"].append("spiffe://evil")
    second = authenticator.authenticate(scope)
    assert second.certificate["san"]["uri"] == [SPIFFE_NOTEBOOK]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"identities": {"notebook": {}}}, "must be one of"),
        ({"identities": {"sha256:abc": {}}}, "64 hex digits"),
        ({"cert_file": "a.crt"}, "cert_file and key_file go together"),
        ({"require_client_cert": True, "cert_file": "a", "key_file": "b"}, "needs client_ca_file"),
        ({"client_ca_file": "ca.crt"}, "needs cert_file"),
        ({"forwarded": {"trusted_proxies": ["proxy.local"]}}, "not an IP address"),
        ({"forwarded": {"trusted_proxies": []}}, "at least 1"),
    ],
)
def test_server_config_rules(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        ServerTLSConfig.model_validate(fields)
    assert message in str(err.value)


def test_upstream_config_rules() -> None:
    with pytest.raises(ValidationError, match="secret reference"):
        UpstreamTLSConfig(client_cert_file="c.crt", client_key="c.key")
    with pytest.raises(ValidationError, match="go together"):
        UpstreamTLSConfig(client_cert_file="c.crt")
    with pytest.raises(ValidationError, match="Extra inputs"):
        UpstreamTLSConfig.model_validate({"verify": False})


def test_certificate_document_for_key_callers_is_bound_and_fresh(pki: Pki) -> None:
    authenticator = CertificateAuthenticator(ServerTLSConfig(identities={SPIFFE_NOTEBOOK: IdentityBinding()}))
    scope = {"type": "http", "headers": [], "extensions": {"tls": {"client_cert_der": pki.client.der}}}
    first = authenticator.certificate(scope)
    assert first is not None and first["binding"] == SPIFFE_NOTEBOOK
    first["spiffe_id"] = "spiffe://evil"
    assert authenticator.certificate(scope)["spiffe_id"] == SPIFFE_NOTEBOOK
    assert authenticator.certificate({"type": "http", "headers": []}) is None
