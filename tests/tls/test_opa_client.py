"""The OPA client over mutual TLS: a private CA, the gateway's client certificate, rotation."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.tls.authenticator import CertificateAuthenticator
from gateway.tls.config import ServerTLSConfig, UpstreamTLSConfig
from gateway.tls.inbound import build_server_ssl_context
from gateway.tls.opa_client import TLSAsyncOpaClient
from gateway.tls.upstream import UpstreamTLS, describe_tls_error
from tests.tls.certs import IssuedCertificate
from tests.tls.conftest import Pki
from tests.tls.servers import serve_asgi


def fake_opa(authenticator: CertificateAuthenticator) -> Starlette:
    """Answers OPA's data API with the SPIFFE ID of the caller's client certificate."""

    async def decision(request: Request) -> JSONResponse:
        principal = authenticator.authenticate(request.scope)
        body = await request.json()
        caller = principal.certificate["spiffe_id"] if principal and principal.certificate else None
        return JSONResponse({"result": {"allow": True, "caller": caller, "model": body["input"]["model"]}})

    async def health(_: Request) -> Response:
        return Response(status_code=200)

    return Starlette(
        routes=[Route("/v1/data/gateway/decision", decision, methods=["POST"]), Route("/health", health)]
    )


def opa_server(pki: Pki, server: IssuedCertificate) -> tuple[Any, Starlette]:
    cfg = ServerTLSConfig(
        cert_file=str(server.cert_path),
        key_file=str(server.key_path),
        client_ca_file=str(pki.ca.cert_path),
        require_client_cert=True,
    )
    return build_server_ssl_context(cfg), fake_opa(CertificateAuthenticator(cfg))


def client_tls(pki: Pki, client: IssuedCertificate, **extra: Any) -> UpstreamTLS:
    cfg = UpstreamTLSConfig(
        ca_file=str(pki.ca.cert_path),
        client_cert_file=str(client.cert_path),
        client_key=f"file:{client.key_path}",
        **extra,
    )
    return UpstreamTLS(cfg, name="opa")


async def test_decision_over_mutual_tls_follows_rotation(pki: Pki) -> None:
    live = pki.ca.issue_client(pki.folder / "live", "gateway", uris=["spiffe://example.org/gateway/v1"])
    staged = pki.ca.issue_client(pki.folder / "staged", "gateway", uris=["spiffe://example.org/gateway/v2"])
    server_ctx, app = opa_server(pki, pki.server)
    tls = client_tls(pki, live, reload_interval_s=0)
    async with serve_asgi(app, ssl_context=server_ctx) as port:
        client = TLSAsyncOpaClient(host="localhost", port=port, tls=tls, retries=0, timeout=5)
        async with client:
            assert await client.check_health() is True
            first = await client.query_rule({"model": "gpt-4o"}, "gateway", "decision")
            for src, dst in [(staged.cert_path, live.cert_path), (staged.key_path, live.key_path)]:
                tmp = dst.with_suffix(".new")
                tmp.write_bytes(src.read_bytes())
                os.replace(tmp, dst)
            second = await client.query_rule({"model": "gpt-4o"}, "gateway", "decision")
    assert first["result"] == {"allow": True, "caller": "spiffe://example.org/gateway/v1", "model": "gpt-4o"}
    assert second["result"]["caller"] == "spiffe://example.org/gateway/v2"


async def test_opa_with_a_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    stranger = pki.other_ca.issue_server(pki.folder, "opa-elsewhere")
    server_ctx, app = opa_server(pki, stranger)
    async with serve_asgi(app, ssl_context=server_ctx) as port:
        client = TLSAsyncOpaClient(host="localhost", port=port, tls=client_tls(pki, pki.client), retries=0)
        async with client:
            with pytest.raises(aiohttp.ClientConnectorCertificateError) as err:
                await client.query_rule({}, "gateway", "decision")
    message = describe_tls_error(err.value, "opa", kind="policy engine")
    assert message.startswith("policy engine 'opa': the TLS certificate of localhost:")
    assert "unable to get local issuer certificate" in message
