"""Outbound TLS with aiohttp against real TLS servers: verification, mTLS, rotation, clear errors."""

from __future__ import annotations

import logging
import os
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest

from gateway.errors import UpstreamUnreachableError
from gateway.tls.authenticator import CertificateAuthenticator
from gateway.tls.config import ServerTLSConfig, UpstreamTLSConfig
from gateway.tls.files import CertificateFileError
from gateway.tls.inbound import build_server_ssl_context
from gateway.tls.upstream import UpstreamTLS, describe_tls_error, tls_failure
from tests.tls.certs import IssuedCertificate
from tests.tls.conftest import SPIFFE_NOTEBOOK, Pki
from tests.tls.servers import WhoAmI, blocking_tls_server, serve_asgi


def upstream_server_context(
    pki: Pki, server: IssuedCertificate, *, require_client_cert: bool = False, **extra: object
) -> tuple[ssl.SSLContext, CertificateAuthenticator]:
    cfg = ServerTLSConfig.model_validate(
        {
            "cert_file": str(server.cert_path),
            "key_file": str(server.key_path),
            "client_ca_file": str(pki.ca.cert_path),
            "require_client_cert": require_client_cert,
            **extra,
        }
    )
    return build_server_ssl_context(cfg), CertificateAuthenticator(cfg)


async def get(
    session: aiohttp.ClientSession, port: int, context: ssl.SSLContext, host: str = "localhost"
) -> dict:
    async with session.get(f"https://{host}:{port}/whoami", ssl=context) as r:
        assert r.status == 200
        return await r.json()


async def failure(session: aiohttp.ClientSession, port: int, context: ssl.SSLContext) -> BaseException:
    with pytest.raises(aiohttp.ClientError) as err:
        await get(session, port, context)
    return err.value


async def test_verified_server(pki: Pki) -> None:
    server_ctx, auth = upstream_server_context(pki, pki.server)
    tls = UpstreamTLS(UpstreamTLSConfig(ca_file=str(pki.ca.cert_path)), name="openai")
    async with (
        serve_asgi(WhoAmI(auth).app, ssl_context=server_ctx) as port,
        aiohttp.ClientSession() as session,
    ):
        body = await get(session, port, tls.context())
    assert body["tls"]["tls_version"] == 0x0304
    assert body["principal"] is None  # no client certificate configured


async def test_server_from_unknown_ca_is_a_clear_502(pki: Pki) -> None:
    stranger = pki.other_ca.issue_server(pki.folder, "stranger-server")
    server_ctx, auth = upstream_server_context(pki, stranger)
    tls = UpstreamTLS(UpstreamTLSConfig(ca_file=str(pki.ca.cert_path)), name="azure")
    async with (
        serve_asgi(WhoAmI(auth).app, ssl_context=server_ctx) as port,
        aiohttp.ClientSession() as session,
    ):
        exc = await failure(session, port, tls.context())
    error = tls_failure(exc, "gpt-4o-eu")
    assert isinstance(error, UpstreamUnreachableError)
    assert error.status == 502 and error.code == "upstream_tls_error"
    assert error.message.startswith("deployment 'gpt-4o-eu': the TLS certificate of localhost:")
    assert "unable to get local issuer certificate" in error.message


async def test_private_ca_is_not_trusted_without_ca_file(pki: Pki) -> None:
    # No ca_file means the system store; a private CA must not verify, and nothing falls back.
    server_ctx, auth = upstream_server_context(pki, pki.server)
    tls = UpstreamTLS(UpstreamTLSConfig(), name="openai")
    app = WhoAmI(auth)
    async with serve_asgi(app.app, ssl_context=server_ctx) as port, aiohttp.ClientSession() as session:
        exc = await failure(session, port, tls.context())
    assert "did not verify" in describe_tls_error(exc, "gpt-4o")
    assert app.calls == 0


async def test_hostname_mismatch(pki: Pki) -> None:
    elsewhere = pki.ca.issue_server(pki.folder, "elsewhere", dns=["api.elsewhere.example"], ips=[])
    server_ctx, auth = upstream_server_context(pki, elsewhere)
    tls = UpstreamTLS(UpstreamTLSConfig(ca_file=str(pki.ca.cert_path)), name="mistral")
    async with (
        serve_asgi(WhoAmI(auth).app, ssl_context=server_ctx) as port,
        aiohttp.ClientSession() as session,
    ):
        exc = await failure(session, port, tls.context())
    message = describe_tls_error(exc, "mistral-large")
    assert "deployment 'mistral-large'" in message and "Hostname mismatch" in message


async def test_minimum_version(pki: Pki) -> None:
    server_ctx, _ = upstream_server_context(pki, pki.server)
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    tls = UpstreamTLS(UpstreamTLSConfig(ca_file=str(pki.ca.cert_path), min_version="1.3"), name="opa")
    with blocking_tls_server(server_ctx) as port:
        async with aiohttp.ClientSession() as session:
            exc = await failure(session, port, tls.context())
    message = describe_tls_error(exc, "opa")
    assert message.startswith("deployment 'opa': TLS handshake with localhost:")
    assert "protocol version" in message


async def test_upstream_refusing_the_client_certificate_is_explained(pki: Pki) -> None:
    server_ctx, _ = upstream_server_context(pki, pki.server, require_client_cert=True)
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.2: the refusal is part of the handshake
    tls = UpstreamTLS(mtls_config(pki, pki.unknown_ca_client), name="vertex")
    with blocking_tls_server(server_ctx) as port:
        async with aiohttp.ClientSession() as session:
            exc = await failure(session, port, tls.context())
    error = tls_failure(exc, "gemini-pro")
    assert error is not None
    assert "deployment 'gemini-pro'" in error.message and "unknown ca" in error.message
    assert "refused the gateway's client certificate" in error.message


def mtls_config(pki: Pki, client: IssuedCertificate, **extra: object) -> UpstreamTLSConfig:
    return UpstreamTLSConfig.model_validate(
        {
            "ca_file": str(pki.ca.cert_path),
            "client_cert_file": str(client.cert_path),
            "client_key": f"file:{client.key_path}",
            **extra,
        }
    )


async def test_client_certificate_required_by_the_upstream(pki: Pki) -> None:
    server_ctx, auth = upstream_server_context(pki, pki.server, require_client_cert=True)
    app = WhoAmI(auth)
    with_cert = UpstreamTLS(mtls_config(pki, pki.client), name="vertex")
    without = UpstreamTLS(UpstreamTLSConfig(ca_file=str(pki.ca.cert_path)), name="vertex")
    async with serve_asgi(app.app, ssl_context=server_ctx) as port, aiohttp.ClientSession() as session:
        body = await get(session, port, with_cert.context())
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(session, port, without.context())
    assert body["principal"]["certificate"]["spiffe_id"] == SPIFFE_NOTEBOOK
    assert app.calls == 1


async def test_client_key_from_a_secret_reference(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    server_ctx, auth = upstream_server_context(pki, pki.server, require_client_cert=True)
    secrets = {"env:UPSTREAM_KEY": pki.client.key_path.read_text()}
    cfg = mtls_config(pki, pki.client, client_key="env:UPSTREAM_KEY")
    tls = UpstreamTLS(cfg, name="bedrock", resolve_secret=secrets.__getitem__)
    async with (
        serve_asgi(WhoAmI(auth).app, ssl_context=server_ctx) as port,
        aiohttp.ClientSession() as session,
    ):
        body = await get(session, port, tls.context())
    assert body["principal"]["certificate"]["fingerprint_sha256"] == pki.client.fingerprint_sha256


def replace_files(target: IssuedCertificate, source: IssuedCertificate, *, key: bool = True) -> None:
    # Write then rename, as secret mounts and cert-manager do.
    pairs = [(source.cert_path, target.cert_path)] + ([(source.key_path, target.key_path)] if key else [])
    for src, dst in pairs:
        tmp = dst.with_suffix(".new")
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dst)


async def test_rotated_client_certificate_is_used_without_restart(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    server_ctx, auth = upstream_server_context(pki, pki.server, require_client_cert=True)
    live = pki.ca.issue_client(pki.folder / "live", "gateway", uris=["spiffe://example.org/gateway/v1"])
    staged = pki.ca.issue_client(pki.folder / "staged", "gateway", uris=["spiffe://example.org/gateway/v2"])
    now = [0.0]
    tls = UpstreamTLS(mtls_config(pki, live, reload_interval_s=5), name="anthropic", clock=lambda: now[0])

    async with (
        serve_asgi(WhoAmI(auth).app, ssl_context=server_ctx) as port,
        aiohttp.ClientSession() as session,
    ):
        first_context = tls.context()
        assert (await get(session, port, first_context))["principal"]["certificate"]["spiffe_id"].endswith(
            "/v1"
        )

        # Certificate written before its key: the pair does not load, the old context stays.
        replace_files(live, staged, key=False)
        now[0] = 6.0
        with caplog.at_level(logging.WARNING, logger="gateway.tls"):
            assert tls.context() is first_context
        assert "do not load yet" in caplog.text
        assert str(staged.key_path.read_text()[:40]) not in caplog.text

        replace_files(live, staged)
        now[0] = 8.0
        assert tls.context() is first_context  # not checked again before reload_interval_s
        now[0] = 12.0
        second_context = tls.context()
        assert second_context is not first_context and tls.generation == 2

        # Same pooled session: aiohttp keys connections by SSL context, so this opens a new one.
        assert (await get(session, port, second_context))["principal"]["certificate"]["spiffe_id"].endswith(
            "/v2"
        )
        # The old context's pooled connection still works for requests already holding it.
        assert (await get(session, port, first_context))["principal"]["certificate"]["spiffe_id"].endswith(
            "/v1"
        )


async def test_rotated_ca_bundle(pki: Pki) -> None:
    new_ca_server = pki.other_ca.issue_server(pki.folder, "moved-server")
    server_ctx, auth = upstream_server_context(pki, new_ca_server)
    bundle = pki.folder / "bundle.pem"
    bundle.write_bytes(pki.ca.cert_path.read_bytes())
    tls = UpstreamTLS(UpstreamTLSConfig(ca_file=str(bundle), reload_interval_s=0), name="openai")
    async with (
        serve_asgi(WhoAmI(auth).app, ssl_context=server_ctx) as port,
        aiohttp.ClientSession() as session,
    ):
        await failure(session, port, tls.context())
        bundle.write_bytes(pki.ca.cert_path.read_bytes() + pki.other_ca.cert_path.read_bytes())
        await get(session, port, tls.context())


def test_missing_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CertificateFileError, match=r"missing-ca\.pem"):
        UpstreamTLS(UpstreamTLSConfig(ca_file=str(tmp_path / "missing-ca.pem")), name="openai")


async def test_other_connection_errors_are_not_called_tls_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    tls = UpstreamTLS(UpstreamTLSConfig(), name="openai")
    async with aiohttp.ClientSession() as session:
        exc = await failure(session, port, tls.context())
    assert tls_failure(exc, "gpt-4o") is None
