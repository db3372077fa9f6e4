"""Mutual TLS through the real gateway process: real handshakes with certificates made here.

Inbound: ``gateway serve`` terminating TLS and requiring client certificates (valid, unknown CA,
expired, none), a certificate identity as the principal and in the usage records, a policy that
reserves a model for one SPIFFE ID, and a client certificate forwarded by a proxy from a trusted
and an untrusted address. Upstream: a provider served over TLS by a private CA, with and without
``tls.ca_file``.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import orjson
import pytest
from aiohttp import web

from tests.e2e.conftest import UPSTREAM_ENV, gateway_config
from tests.e2e.harness import REPO, BackgroundLoop, GatewayProcess, running_gateway
from tests.emulators.openai_server import OpenAIEmulator, build_app
from tests.tls.certs import CertificateAuthority, IssuedCertificate, expired_window

NOTEBOOK_ID = "spiffe://example.org/ns/prod/sa/notebook"
BOT_ID = "spiffe://example.org/ns/prod/sa/bot"
HI = [{"role": "user", "content": "hi"}]
#: Per-call headers for the SDK to send no Authorization header at all: the client certificate
#: is then the only credential.
NO_KEY: dict[str, Any] = {"Authorization": openai.omit}


@dataclass(frozen=True)
class Pki:
    ca: CertificateAuthority
    server: IssuedCertificate
    notebook: IssuedCertificate
    bot: IssuedCertificate
    expired: IssuedCertificate
    stranger: IssuedCertificate  # signed by a CA the gateway does not trust


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create(folder, "Gateway Clients CA")
    rogue = CertificateAuthority.create(folder / "rogue", "Rogue CA")
    return Pki(
        ca=ca,
        server=ca.issue_server(folder, "gateway-server"),
        notebook=ca.issue_client(folder, "notebook", organization="Prod", uris=[NOTEBOOK_ID]),
        bot=ca.issue_client(folder, "bot", uris=[BOT_ID]),
        expired=ca.issue_client(folder, "expired", uris=[NOTEBOOK_ID], **expired_window()),
        stranger=rogue.issue_client(folder / "rogue", "stranger", uris=[NOTEBOOK_ID]),
    )


def client_context(ca: CertificateAuthority, client: IssuedCertificate | None) -> ssl.SSLContext:
    """What an application gives its HTTP client: trust the gateway's CA, present its certificate.

    An SSL context rather than ``httpx.Client(verify=path, cert=…)``: httpx 0.28 deprecates
    both string forms, and warnings are errors here.
    """
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    if client is not None:
        context.load_cert_chain(str(client.cert_path), str(client.key_path))
    return context


def sdk(gateway: GatewayProcess, context: ssl.SSLContext, api_key: str = "unused-with-mtls") -> openai.OpenAI:
    """The official SDK over the given TLS context (calls without a key pass ``NO_KEY``)."""
    return openai.OpenAI(
        base_url=gateway.base_url + "/v1",
        api_key=api_key,
        max_retries=0,
        http_client=httpx.Client(verify=context, timeout=10),
    )


def mtls_config(pki: Pki, upstream_url: str, workdir: Path, **overrides: Any) -> dict[str, Any]:
    config = gateway_config(upstream_url, workdir, **overrides)
    config["server"]["tls"] = {
        "cert_file": str(pki.server.cert_path),
        "key_file": str(pki.server.key_path),
        "client_ca_file": str(pki.ca.cert_path),
        "require_client_cert": True,
        "identities": {
            NOTEBOOK_ID: {"team": "research", "user": "notebook", "metadata": {"tier": "premium"}}
        },
    }
    return config


def usage_rows(gateway: GatewayProcess, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of the gateway's SQLite database, waiting for the batched writer to flush them."""
    db = gateway.config_path.parent / "gateway.db"
    deadline = time.monotonic() + 10
    while True:
        with contextlib.closing(sqlite3.connect(db)) as connection:
            rows = connection.execute(sql, args).fetchall()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# --- 1. the gateway terminates TLS and requires client certificates -------------------------


@pytest.fixture(scope="module")
def mtls_gateway(
    pki: Pki, openai_upstream: OpenAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("mtls")
    config = mtls_config(pki, openai_upstream.base_url, workdir)
    with running_gateway(config, workdir, UPSTREAM_ENV, tls=client_context(pki.ca, pki.notebook)) as process:
        created = process.admin("POST", "/admin/v1/teams", json={"name": "platform"})
        assert created.status_code == 201, created.text
        yield process


def test_sdk_with_client_certificate_and_key_gets_a_completion(
    mtls_gateway: GatewayProcess, pki: Pki, upstream: OpenAIEmulator
) -> None:
    key = mtls_gateway.create_key("tls-e2e", team="platform", user="alice")
    reply = sdk(mtls_gateway, client_context(pki.ca, pki.bot), key).chat.completions.create(
        model="gpt-4o-mini", messages=HI
    )
    assert reply.choices[0].message.content
    assert len(upstream.received) == 1
    # The key decides who calls; the certificate travels along.
    rows = usage_rows(mtls_gateway, "SELECT team, user_id, key_id FROM usage_records WHERE user_id = 'alice'")
    assert rows and rows[0][0] == "platform" and rows[0][2] is not None


@pytest.mark.parametrize("who", ["stranger", "expired", "none"])
def test_handshake_fails_without_a_valid_client_certificate(
    mtls_gateway: GatewayProcess, pki: Pki, upstream: OpenAIEmulator, who: str
) -> None:
    client = {"stranger": pki.stranger, "expired": pki.expired, "none": None}[who]
    context = client_context(pki.ca, client)
    with pytest.raises(httpx.TransportError):
        # A valid key does not help: the connection ends before any HTTP is read. With TLS 1.3
        # the client learns of it on its first read, as "server disconnected" (the server's
        # asyncio SSL transport closes without flushing its alert).
        httpx.post(
            mtls_gateway.base_url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HI},
            headers={"authorization": "Bearer not-even-looked-at", "x-request-id": f"refused-{who}"},
            verify=context,
            timeout=5,
        )
    with pytest.raises(openai.APIConnectionError):
        sdk(mtls_gateway, context).chat.completions.create(
            model="gpt-4o-mini", messages=HI, extra_headers=NO_KEY
        )
    assert upstream.received == []
    # Never reached the gateway's code, so nothing is recorded (unlike a 401). A valid request
    # sent afterwards is recorded: once its record is in, the refused one would be too.
    sdk(mtls_gateway, client_context(pki.ca, pki.notebook)).chat.completions.create(
        model="gpt-4o-mini", messages=HI, extra_headers={**NO_KEY, "x-request-id": f"after-{who}"}
    )
    assert usage_rows(mtls_gateway, "SELECT 1 FROM usage_records WHERE client_request_id = ?", f"after-{who}")
    refused = "SELECT 1 FROM usage_records WHERE client_request_id = ?"
    with contextlib.closing(sqlite3.connect(mtls_gateway.config_path.parent / "gateway.db")) as db:
        assert db.execute(refused, (f"refused-{who}",)).fetchall() == []


# --- 2. the certificate is the principal ---------------------------------------------------


def test_certificate_without_key_is_the_principal(
    mtls_gateway: GatewayProcess, pki: Pki, upstream: OpenAIEmulator
) -> None:
    client = sdk(mtls_gateway, client_context(pki.ca, pki.notebook))
    response = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HI, extra_headers={**NO_KEY, "x-request-id": "mtls-principal"}
    )
    assert response.status_code == 200
    assert response.parse().choices[0].message.content
    rows = usage_rows(
        mtls_gateway,
        "SELECT team, user_id, key_id, status FROM usage_records WHERE client_request_id = ?",
        "mtls-principal",
    )
    assert rows == [("research", "notebook", None, 200)]


def test_sdk_placeholder_key_with_certificate_uses_the_certificate(
    mtls_gateway: GatewayProcess, pki: Pki, upstream: OpenAIEmulator
) -> None:
    # The OpenAI SDK always sends an API key; a placeholder must not hide the certificate.
    client = sdk(mtls_gateway, client_context(pki.ca, pki.notebook))
    response = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HI, extra_headers={"x-request-id": "mtls-placeholder"}
    )
    assert response.status_code == 200
    rows = usage_rows(
        mtls_gateway,
        "SELECT team, user_id, key_id FROM usage_records WHERE client_request_id = ?",
        "mtls-placeholder",
    )
    assert rows == [("research", "notebook", None)]


def test_unmapped_certificate_without_key_is_let_through_without_team(
    mtls_gateway: GatewayProcess, pki: Pki, upstream: OpenAIEmulator
) -> None:
    response = httpx.post(
        mtls_gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HI},
        headers={"x-request-id": "mtls-unmapped"},
        verify=client_context(pki.ca, pki.bot),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    rows = usage_rows(
        mtls_gateway,
        "SELECT team, user_id, key_id FROM usage_records WHERE client_request_id = ?",
        "mtls-unmapped",
    )
    assert rows == [(None, None, None)]


# --- 3. a policy that reserves a model for one SPIFFE ID -----------------------------------

WORKLOADS_REGO = """# METADATA
# title: Workload-reserved models
package gateway.workloads

deny contains {"reason": sprintf("model %q is reserved for workload %s", [input.model.requested, owner]), \
"status": 403} if {
\towner := data.reserved_models[input.model.requested]
\tnot called_by(owner)
}

called_by(spiffe_id) if input.client.certificate.spiffe_id == spiffe_id
"""


def reserved_model_policies(folder: Path) -> Path:
    """The shipped policies, plus the docs' workload rule reserving gpt-4o-mini for the notebook."""
    folder.mkdir()
    for source in (REPO / "policies").glob("*.rego"):
        shutil.copy(source, folder / source.name)
    main = (folder / "main.rego").read_text()
    # As docs/tls.md says: import the package and add its denials to the others.
    assert main.count("\npackage gateway\n") == 1 and main.count("denials := union({") == 1, main
    main = main.replace(
        "\npackage gateway\n", "\npackage gateway\n\nimport data.gateway.workloads\n"
    ).replace("denials := union({", "denials := union({workloads.deny, ")
    (folder / "main.rego").write_text(main)
    (folder / "workloads.rego").write_text(WORKLOADS_REGO)
    data = orjson.loads((REPO / "policies" / "data.json").read_bytes())
    data["reserved_models"] = {"gpt-4o-mini": NOTEBOOK_ID}
    (folder / "data.json").write_bytes(orjson.dumps(data))
    return folder


@pytest.fixture(scope="module")
def reserved_gateway(
    pki: Pki, openai_upstream: OpenAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("reserved")
    policies = reserved_model_policies(workdir / "policies")
    config = mtls_config(
        pki, openai_upstream.base_url, workdir, policy={"engine": "embedded", "paths": [str(policies)]}
    )
    with running_gateway(config, workdir, UPSTREAM_ENV, tls=client_context(pki.ca, pki.notebook)) as process:
        yield process


def test_model_reserved_for_one_spiffe_id(
    reserved_gateway: GatewayProcess, pki: Pki, upstream: OpenAIEmulator
) -> None:
    owner = sdk(reserved_gateway, client_context(pki.ca, pki.notebook))
    assert owner.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=NO_KEY).choices[0]

    other = sdk(reserved_gateway, client_context(pki.ca, pki.bot))
    with pytest.raises(openai.PermissionDeniedError) as info:
        other.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=NO_KEY)
    assert info.value.status_code == 403
    assert f'model "gpt-4o-mini" is reserved for workload {NOTEBOOK_ID}' in info.value.message
    # Other models stay open to the other workload.
    assert other.chat.completions.create(model="local-llama", messages=HI, extra_headers=NO_KEY).choices[0]
    assert [r.body["model"] for r in upstream.received] == ["gpt-4o-mini-2024-07-18", "llama3.1:8b"]


# --- 4. a certificate forwarded by a TLS-terminating proxy ---------------------------------


def forwarded_gateway(
    pki: Pki, upstream_url: str, workdir: Path, trusted_proxies: list[str]
) -> contextlib.AbstractContextManager[GatewayProcess]:
    config = gateway_config(upstream_url, workdir)
    config["server"]["tls"] = {
        "forwarded": {"header": "x-forwarded-client-cert", "trusted_proxies": trusted_proxies},
        "identities": {NOTEBOOK_ID: {"team": "research", "user": "notebook"}},
    }
    return running_gateway(config, workdir, UPSTREAM_ENV)


def envoy_xfcc(client: IssuedCertificate) -> str:
    """The header Envoy sets with ``forward_client_cert_details: SANITIZE_SET`` and ``cert: true``."""
    return (
        f"By=spiffe://example.org/ns/edge/sa/envoy;Hash={client.fingerprint_sha256};"
        f'Cert="{quote(client.pem, safe="")}";Subject="{client.certificate.subject.rfc4514_string()}";'
        f"URI={NOTEBOOK_ID}"
    )


@pytest.fixture(scope="module")
def behind_proxy(
    pki: Pki, openai_upstream: OpenAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("forwarded")
    with forwarded_gateway(pki, openai_upstream.base_url, workdir, ["127.0.0.1"]) as process:
        yield process


def test_forwarded_certificate_from_trusted_proxy_is_the_principal(
    behind_proxy: GatewayProcess, pki: Pki, upstream: OpenAIEmulator
) -> None:
    client = openai.OpenAI(base_url=behind_proxy.base_url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=HI,
        extra_headers={
            **NO_KEY,
            "x-forwarded-client-cert": envoy_xfcc(pki.notebook),
            "x-request-id": "xfcc-trusted",
        },
    )
    assert reply.choices[0].message.content
    rows = usage_rows(
        behind_proxy,
        "SELECT team, user_id, key_id FROM usage_records WHERE client_request_id = ?",
        "xfcc-trusted",
    )
    assert rows == [("research", "notebook", None)]
    # Without the header (and without a key) the caller is nobody.
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=NO_KEY)


def test_forwarded_certificate_from_untrusted_address_is_rejected(
    pki: Pki, openai_upstream: OpenAIEmulator, upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    with forwarded_gateway(pki, openai_upstream.base_url, tmp_path, ["10.0.0.1/32"]) as gateway:
        response = httpx.post(
            gateway.base_url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HI},
            headers={"x-forwarded-client-cert": envoy_xfcc(pki.notebook)},
            timeout=10,
        )
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "untrusted_forwarded_certificate"
    assert "127.0.0.1" in error["message"] and "not a trusted proxy" in error["message"]
    assert upstream.received == []


# --- 5. upstream TLS: a provider behind a private CA ---------------------------------------


@contextlib.asynccontextmanager
async def serve_openai_tls(
    emulator: OpenAIEmulator, context: ssl.SSLContext
) -> AsyncIterator[OpenAIEmulator]:
    """The OpenAI emulator over HTTPS on a free 127.0.0.1 port."""
    runner = web.AppRunner(build_app(emulator), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emulator.base_url = f"https://127.0.0.1:{port}/v1"
    try:
        yield emulator
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def https_upstream(pki: Pki, background_loop: BackgroundLoop) -> OpenAIEmulator:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.server.cert_path), str(pki.server.key_path))
    return background_loop.enter(lambda: serve_openai_tls(OpenAIEmulator(), context))


@pytest.fixture(scope="module")
def upstream_tls_gateway(
    pki: Pki,
    https_upstream: OpenAIEmulator,
    openai_upstream: OpenAIEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("upstream-tls")
    config = gateway_config(openai_upstream.base_url, workdir)
    secure = {"type": "openai", "api_base": https_upstream.base_url, "api_key": "env:EMU_OPENAI_KEY"}
    config["providers"]["private-ca"] = {**secure, "tls": {"ca_file": str(pki.ca.cert_path)}}
    config["providers"]["system-store"] = secure
    config["models"]["private-model"] = {
        "deployments": [{"provider": "private-ca", "model": "gpt-4o-mini", "name": "private-ok"}]
    }
    config["models"]["unverified-model"] = {
        "deployments": [{"provider": "system-store", "model": "gpt-4o-mini", "name": "private-no-ca"}]
    }
    with running_gateway(config, workdir, UPSTREAM_ENV) as process:
        yield process


def test_upstream_with_ca_file_succeeds_and_without_it_is_a_502_naming_the_deployment(
    upstream_tls_gateway: GatewayProcess, https_upstream: OpenAIEmulator
) -> None:
    https_upstream.received.clear()
    key = upstream_tls_gateway.create_key("upstream-tls")
    client = openai.OpenAI(base_url=upstream_tls_gateway.base_url + "/v1", api_key=key, max_retries=0)
    assert client.chat.completions.create(model="private-model", messages=HI).choices[0].message.content
    assert len(https_upstream.received) == 1

    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="unverified-model", messages=HI)
    assert info.value.status_code == 502
    assert info.value.code == "upstream_tls_error"
    assert "deployment 'private-no-ca'" in info.value.message
    assert "did not verify" in info.value.message
    assert len(https_upstream.received) == 1, "never sent without verification"
