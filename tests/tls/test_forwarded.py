"""Client certificates forwarded by Envoy (XFCC) and nginx (escaped PEM), trusted by peer address."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.errors import AuthenticationError
from gateway.tls.authenticator import CertificateAuthenticator
from gateway.tls.config import ServerTLSConfig
from gateway.tls.forwarded import parse_xfcc
from tests.tls.conftest import SPIFFE_NOTEBOOK, Pki
from tests.tls.servers import WhoAmI, serve_asgi

ENVOY_HASH = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"


def test_parse_xfcc_examples_from_envoy_docs() -> None:
    one = parse_xfcc(
        f"By=http://frontend.lyft.com;Hash={ENVOY_HASH};"
        'Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";'
        "URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com"
    )
    assert len(one) == 1
    assert one[0].by == ["http://frontend.lyft.com"]
    assert one[0].hash == ENVOY_HASH
    assert one[0].subject == "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client"
    assert one[0].uri == ["http://testclient.lyft.com"]
    assert one[0].dns == ["lyft.com", "www.lyft.com"]

    two = parse_xfcc(
        f"By=http://frontend.lyft.com;Hash={ENVOY_HASH};URI=http://testclient.lyft.com,"
        "By=http://backend.lyft.com;Hash=9ba6;URI=http://frontend.lyft.com"
    )
    assert [e.uri for e in two] == [["http://testclient.lyft.com"], ["http://frontend.lyft.com"]]


def test_parse_xfcc_quoting() -> None:
    (element,) = parse_xfcc('subject="CN=a\\"b,O=x;y=z";uri=spiffe://td/w')
    assert element.subject == 'CN=a"b,O=x;y=z'
    assert element.uri == ["spiffe://td/w"]
    with pytest.raises(ValueError):
        parse_xfcc('Subject="CN=unterminated')
    with pytest.raises(ValueError):
        parse_xfcc("Hash")


def forwarded_config(
    trusted: list[str], header: str = "x-forwarded-client-cert", **extra: object
) -> ServerTLSConfig:
    return ServerTLSConfig.model_validate(
        {
            "forwarded": {"header": header, "trusted_proxies": trusted},
            "identities": {SPIFFE_NOTEBOOK: {"team": "research", "user": "notebook"}},
            **extra,
        }
    )


async def call(port: int, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/whoami", headers=headers) as r:
            return r.status, await r.json()


async def test_envoy_cert_from_trusted_proxy_is_the_identity(pki: Pki) -> None:
    app = WhoAmI(CertificateAuthenticator(forwarded_config(["127.0.0.1/32", "10.0.0.0/8"])))
    xfcc = (
        f'By=spiffe://example.org/envoy;Hash={pki.client.fingerprint_sha256};Cert="{quote(pki.client.pem)}"'
    )
    async with serve_asgi(app.app) as port:
        status, body = await call(port, {"x-forwarded-client-cert": xfcc})
    assert status == 200
    principal = body["principal"]
    assert (principal["auth"], principal["team"], principal["user"]) == ("mtls", "research", "notebook")
    cert = principal["certificate"]
    assert cert["source"] == "forwarded"
    assert cert["spiffe_id"] == SPIFFE_NOTEBOOK
    assert cert["issuer"] == "CN=Example Internal CA"
    assert cert["fingerprint_sha256"] == pki.client.fingerprint_sha256
    assert cert["san"]["email"] == ["notebook@example.org"]


async def test_envoy_fields_without_cert_build_the_identity(pki: Pki) -> None:
    app = WhoAmI(CertificateAuthenticator(forwarded_config(["127.0.0.1"])))
    xfcc = (
        "By=spiffe://example.org/edge;Hash=00ff;URI=spiffe://example.org/edge-client,"  # an earlier hop
        f'By=spiffe://example.org/envoy;Hash={ENVOY_HASH};Subject="CN=notebook,O=Research";'
        f"URI={SPIFFE_NOTEBOOK};DNS=notebook.research.internal"
    )
    async with serve_asgi(app.app) as port:
        status, body = await call(port, {"x-forwarded-client-cert": xfcc})
    assert status == 200
    cert = body["principal"]["certificate"]
    assert cert["spiffe_id"] == SPIFFE_NOTEBOOK  # the last element: the hop nearest the gateway
    assert cert["fingerprint_sha256"] == ENVOY_HASH
    assert cert["common_name"] == "notebook"
    assert cert["san"]["dns"] == ["notebook.research.internal"]
    assert cert["issuer"] is None
    assert body["principal"]["team"] == "research"


async def test_nginx_escaped_pem(pki: Pki) -> None:
    app = WhoAmI(CertificateAuthenticator(forwarded_config(["127.0.0.1"], header="ssl-client-cert")))
    async with serve_asgi(app.app) as port:
        status, body = await call(port, {"ssl-client-cert": quote(pki.client.pem)})
        empty_status, empty_body = await call(port, {"ssl-client-cert": ""})
    assert status == 200
    assert body["principal"]["certificate"]["spiffe_id"] == SPIFFE_NOTEBOOK
    assert body["principal"]["certificate"]["fingerprint_sha256"] == pki.client.fingerprint_sha256
    assert (empty_status, empty_body["principal"]) == (200, None)


@pytest.mark.parametrize("header", ["x-forwarded-client-cert", "x-ssl-client-cert"])
async def test_header_from_untrusted_address_is_refused(pki: Pki, header: str) -> None:
    app = WhoAmI(CertificateAuthenticator(forwarded_config(["10.0.0.0/8"], header=header)))
    value = (
        f'Cert="{quote(pki.client.pem)}"' if header == "x-forwarded-client-cert" else quote(pki.client.pem)
    )
    async with serve_asgi(app.app) as port:
        status, body = await call(port, {header: value})
        no_header_status, no_header_body = await call(port, {})
    assert status == 401
    assert body["error"]["code"] == "untrusted_forwarded_certificate"
    assert f"the {header} header is not accepted from 127.0.0.1" in body["error"]["message"]
    assert (no_header_status, no_header_body["principal"]) == (200, None)


async def test_x_forwarded_for_cannot_make_an_address_trusted(pki: Pki) -> None:
    # uvicorn's proxy-headers middleware rewrites scope["client"] from X-Forwarded-For; the
    # forwarded-certificate check must still look at the real TCP peer.
    app = WhoAmI(CertificateAuthenticator(forwarded_config(["10.1.2.3"])))
    headers = {"x-forwarded-client-cert": f'Cert="{quote(pki.client.pem)}"', "x-forwarded-for": "10.1.2.3"}
    async with serve_asgi(app.app, proxy_headers=True, forwarded_allow_ips="*") as port:
        status, body = await call(port, headers)
        _, plain = await call(port, {"x-forwarded-for": "10.1.2.3"})
    assert plain["client"][0] == "10.1.2.3"  # the rewrite did happen
    assert status == 401
    assert "not accepted from 127.0.0.1" in body["error"]["message"]


async def test_malformed_header_from_trusted_proxy_is_refused(pki: Pki) -> None:
    app = WhoAmI(CertificateAuthenticator(forwarded_config(["127.0.0.1"])))
    async with serve_asgi(app.app) as port:
        status, body = await call(
            port, {"x-forwarded-client-cert": 'Cert="-----BEGIN%20CERTIFICATE-----garbage"'}
        )
    assert status == 401
    assert body["error"]["code"] == "invalid_client_certificate"


def xfcc_scope(value: str, peer: str = "127.0.0.1") -> dict:
    return {"type": "http", "headers": [(b"x-forwarded-client-cert", value.encode())], "client": (peer, 4711)}


def test_forwarded_certificate_checked_against_ca_file(pki: Pki) -> None:
    chained = pki.ca.issue_client(pki.folder, "chained", uris=[SPIFFE_NOTEBOOK])
    cfg = forwarded_config(["127.0.0.1"]).model_copy(deep=True)
    assert cfg.forwarded is not None
    cfg.forwarded.ca_file = str(pki.ca.cert_path)
    authenticator = CertificateAuthenticator(cfg)

    ok = authenticator.authenticate(xfcc_scope(f'Cert="{quote(chained.pem)}"'))
    assert ok is not None and ok.certificate["spiffe_id"] == SPIFFE_NOTEBOOK
    chain = quote(chained.pem + pki.ca.certificate.public_bytes(Encoding.PEM).decode())
    assert authenticator.authenticate(xfcc_scope(f'Chain="{chain}"')) is not None

    for refused, why in [
        (pki.unknown_ca_client, "does not verify against forwarded.ca_file"),
        (pki.expired_client, "not valid at validation time"),
    ]:
        with pytest.raises(AuthenticationError) as err:
            authenticator.authenticate(xfcc_scope(f'Cert="{quote(refused.pem)}"'))
        assert why in err.value.message and err.value.status == 401
    with pytest.raises(AuthenticationError, match="carries no certificate"):
        authenticator.authenticate(xfcc_scope(f"Hash={ENVOY_HASH};URI={SPIFFE_NOTEBOOK}"))


def test_several_nginx_headers_are_refused(pki: Pki) -> None:
    authenticator = CertificateAuthenticator(forwarded_config(["127.0.0.1"], header="ssl-client-cert"))
    value = quote(pki.client.pem).encode()
    scope = {"type": "http", "headers": [(b"ssl-client-cert", value)] * 2, "client": ("127.0.0.1", 1)}
    with pytest.raises(AuthenticationError, match="more than once"):
        authenticator.authenticate(scope)


def test_ipv4_mapped_ipv6_peer_matches_ipv4_networks(pki: Pki) -> None:
    authenticator = CertificateAuthenticator(forwarded_config(["10.0.0.0/8"]))
    principal = authenticator.authenticate(
        xfcc_scope(f'Cert="{quote(pki.client.pem)}"', peer="::ffff:10.1.2.3")
    )
    assert principal is not None and principal.team == "research"
