"""Inbound TLS through a real uvicorn server: handshakes, the TLS extension, the principal."""

from __future__ import annotations

import asyncio
import os
import pickle
import ssl

import aiohttp
import pytest

from gateway.tls.authenticator import CertificateAuthenticator
from gateway.tls.config import ServerTLSConfig
from gateway.tls.identity import certificate_identity
from gateway.tls.inbound import ServerSSLContextFactory, ServerTLSContext, build_server_ssl_context
from tests.tls.certs import IssuedCertificate
from tests.tls.conftest import SPIFFE_NOTEBOOK, Pki
from tests.tls.servers import WhoAmI, serve_asgi


def server_config(pki: Pki, **overrides: object) -> ServerTLSConfig:
    fields: dict[str, object] = {
        "cert_file": str(pki.server.cert_path),
        "key_file": f"file:{pki.server.key_path}",
        "client_ca_file": str(pki.ca.cert_path),
        "require_client_cert": True,
        "identities": {
            SPIFFE_NOTEBOOK: {"team": "research", "user": "notebook", "metadata": {"tier": "gold"}}
        },
    }
    fields.update(overrides)
    return ServerTLSConfig.model_validate(fields)


def client_context(
    pki: Pki, cert: IssuedCertificate | None, *, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.cert_path))
    if cert is not None:
        context.load_cert_chain(cert.cert_path, cert.key_path)
    if max_version is not None:
        context.maximum_version = max_version
    return context


def memory_handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLError | None:
    """Run a TLS handshake in memory; the server side's error, if any (tells *why* it failed)."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c_done = s_done = False
    for _ in range(10):
        if not c_done:
            try:
                c.do_handshake()
                c_done = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        if not s_done:
            try:
                s.do_handshake()
                s_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return exc
        c_in.write(s_out.read())
        if c_done and s_done:
            return None
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_valid_client_certificate_becomes_the_principal(pki: Pki, http: str) -> None:
    cfg = server_config(pki)
    app = WhoAmI(CertificateAuthenticator(cfg))
    async with serve_asgi(app.app, ssl_context=build_server_ssl_context(cfg), http=http) as port:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):  # the second request reuses the keep-alive connection
                async with session.get(
                    f"https://localhost:{port}/whoami", ssl=client_context(pki, pki.client)
                ) as r:
                    assert r.status == 200
                    body = await r.json()
    principal = body["principal"]
    assert principal["auth"] == "mtls"
    assert (principal["team"], principal["user"], principal["metadata"]) == (
        "research",
        "notebook",
        {"tier": "gold"},
    )
    cert = principal["certificate"]
    assert cert["spiffe_id"] == SPIFFE_NOTEBOOK
    assert cert["binding"] == SPIFFE_NOTEBOOK
    assert cert["fingerprint_sha256"] == pki.client.fingerprint_sha256
    assert cert["subject"] == "CN=notebook,O=Research"
    assert cert["issuer"] == "CN=Example Internal CA"
    assert cert["source"] == "tls"
    assert body["tls"]["client_cert_name"] == "CN=notebook,O=Research"
    assert body["tls"]["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert body["tls"]["tls_version"] == 0x0304
    assert body["tls"]["cipher_suite"] in (0x1301, 0x1302, 0x1303)
    assert body["tls"]["has_der"] is True
    assert body["peer"][0] == "127.0.0.1"
    assert app.calls == 2


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        ("unknown_ca_client", "unable to get local issuer certificate"),
        ("expired_client", "certificate has expired"),
        (None, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
    ],
)
async def test_bad_or_missing_client_certificate_fails_the_handshake(
    pki: Pki, client: str | None, reason: str
) -> None:
    cfg = server_config(pki)
    server_ctx = build_server_ssl_context(cfg)
    cert = getattr(pki, client) if client else None

    error = memory_handshake(server_ctx, client_context(pki, cert))
    assert error is not None
    assert reason in f"{getattr(error, 'verify_message', '')} {error.reason}"

    app = WhoAmI(CertificateAuthenticator(cfg))
    async with serve_asgi(app.app, ssl_context=server_ctx) as port:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectionError):
                async with session.get(
                    f"https://localhost:{port}/whoami", ssl=client_context(pki, cert)
                ) as r:
                    await r.read()
            # The same server lets a valid certificate in: the refusal is about the certificate.
            async with session.get(
                f"https://localhost:{port}/whoami", ssl=client_context(pki, pki.client)
            ) as r:
                assert r.status == 200
    assert app.calls == 1


async def test_optional_client_certificate(pki: Pki) -> None:
    cfg = server_config(pki, require_client_cert=False)
    server_ctx = build_server_ssl_context(cfg)
    app = WhoAmI(CertificateAuthenticator(cfg))
    async with serve_asgi(app.app, ssl_context=server_ctx) as port:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"https://localhost:{port}/whoami", ssl=client_context(pki, None)) as r:
                body = await r.json()
    assert body["principal"] is None
    assert body["tls"]["client_cert_chain"] == []
    # Optional does not mean unverified: a certificate that is sent must still verify.
    error = memory_handshake(server_ctx, client_context(pki, pki.unknown_ca_client))
    assert error is not None and "unable to get local issuer certificate" in str(error)


async def test_minimum_version_refuses_older_clients(pki: Pki) -> None:
    server_ctx = build_server_ssl_context(server_config(pki, min_version="1.3"))
    error = memory_handshake(server_ctx, client_context(pki, pki.client, max_version=ssl.TLSVersion.TLSv1_2))
    assert error is not None and "UNSUPPORTED_PROTOCOL" in str(error.reason)


async def test_plain_http_has_no_tls_extension_but_knows_the_peer(pki: Pki) -> None:
    app = WhoAmI(None)
    async with serve_asgi(app.app) as port:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/whoami") as r:
                body = await r.json()
    assert body["tls"] is None
    assert body["peer"][0] == "127.0.0.1"


def test_key_held_in_a_secret_store_is_loaded_through_the_resolver(pki: Pki) -> None:
    pem = pki.server.key_path.read_text()
    seen: list[str] = []

    def resolve(reference: str) -> str:
        seen.append(reference)
        return pem

    cfg = server_config(pki, key_file="vault:secret/gateway#tls_key")
    server_ctx = build_server_ssl_context(cfg, resolve_secret=resolve)
    assert seen == ["vault:secret/gateway#tls_key"]
    assert memory_handshake(server_ctx, client_context(pki, pki.client)) is None


async def test_rotated_server_certificate_is_served_without_restart(pki: Pki) -> None:
    live = pki.ca.issue_server(pki.folder / "live", "gateway", common_name="gateway-v1")
    staged = pki.ca.issue_server(pki.folder / "staged", "gateway", common_name="gateway-v2")
    cfg = server_config(pki, cert_file=str(live.cert_path), key_file=str(live.key_path), reload_interval_s=5)
    now = [0.0]
    server_tls = ServerTLSContext(cfg, clock=lambda: now[0])
    app = WhoAmI(CertificateAuthenticator(cfg))

    async def served_common_name(port: int) -> str:
        _reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(pki, pki.client), server_hostname="localhost"
        )
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        await writer.wait_closed()
        return certificate_identity(der)["common_name"]

    async with serve_asgi(app.app, ssl_context=server_tls.context) as port:
        assert await served_common_name(port) == "gateway-v1"
        for src, dst in [(staged.cert_path, live.cert_path), (staged.key_path, live.key_path)]:
            tmp = dst.with_suffix(".new")
            tmp.write_bytes(src.read_bytes())
            os.replace(tmp, dst)
        assert await served_common_name(port) == "gateway-v1"  # not checked before reload_interval_s
        now[0] = 6.0
        assert await served_common_name(port) == "gateway-v2"
        # Client certificates are still required and verified after the switch.
        assert memory_handshake(server_tls.context, client_context(pki, None)) is not None
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"https://localhost:{port}/whoami", ssl=client_context(pki, pki.client)
            ) as r:
                assert (await r.json())["principal"]["team"] == "research"
    assert server_tls.generation == 2


async def test_context_factory_survives_the_trip_to_a_worker_process(pki: Pki) -> None:
    # uvicorn pickles its config into each worker (spawn); the factory must travel and build there.
    cfg = server_config(
        pki,
        cert_file=pki.server.cert_path.name,
        key_file=f"file:{pki.server.key_path.name}",
        client_ca_file=str(pki.ca.cert_path),
    )
    factory = ServerSSLContextFactory(cfg, base_dir=str(pki.folder))
    factory(None, ssl.create_default_context)  # built once in this process: must not be pickled
    in_worker = pickle.loads(pickle.dumps(factory))
    assert in_worker.server_tls is None
    app = WhoAmI(CertificateAuthenticator(cfg))
    async with serve_asgi(app.app, ssl_context_factory=in_worker) as port:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"https://localhost:{port}/whoami", ssl=client_context(pki, pki.client)
            ) as r:
                assert (await r.json())["principal"]["user"] == "notebook"
    assert in_worker.server_tls is not None
