"""GCP Secret Manager and Azure Key Vault references through the vendors' own SDKs (extras ``gcp``
and ``azure``), against local stand-ins for their REST APIs and token endpoints."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import ConfigError
from gateway.secrets import SecretResolver, SecretsConfig
from tests.secrets.cloud_servers import (
    FakeGcpSecretManager,
    FakeKeyVault,
    azure_key_vault_server,
    gcp_secret_manager_server,
)
from tests.tls.certs import CertificateAuthority

PROVIDER_KEY = "sk-proj-PLANTED-cloud-provider-key-7b2e"
ROTATED_KEY = "sk-proj-PLANTED-rotated-provider-key-91d0"


@pytest.fixture
def gcp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGcpSecretManager]:
    """The stand-in, and Application Default Credentials: a service-account key file whose public
    key the stand-in knows."""
    pytest.importorskip("google.cloud.secretmanager")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    store = FakeGcpSecretManager(
        secrets={
            "projects/acme/secrets/openai": [PROVIDER_KEY],
            "projects/acme/secrets/json": ['{"api_key": "k2"}'],
        },
        service_account_public_key=public.decode(),
    )
    with gcp_secret_manager_server(store):
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_file = tmp_path / "service-account.json"
        key_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "acme",
                    "private_key_id": "k1",
                    "private_key": private.decode(),
                    "client_email": store.service_account_email,
                    "client_id": "1",
                    # Never used: the SDK signs its own JWTs rather than exchanging them.
                    "token_uri": f"{store.url}/token",
                }
            )
        )
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        yield store


def _gcp_config(store: FakeGcpSecretManager) -> SecretsConfig:
    return SecretsConfig.model_validate({"gcp": {"project": "acme", "endpoint": store.url}})


async def test_gcp_resolves_bare_names_full_paths_and_fields(gcp: FakeGcpSecretManager) -> None:
    resolver = SecretResolver(_gcp_config(gcp))
    assert (await resolver.resolve("gcp-sm:openai")).reveal() == PROVIDER_KEY
    full = "gcp-sm:projects/acme/secrets/openai/versions/1"
    assert (await resolver.resolve(full)).reveal() == PROVIDER_KEY
    assert (await resolver.resolve("gcp-sm:json#api_key")).reveal() == "k2"
    assert gcp.accessed == [
        "/v1/projects/acme/secrets/openai/versions/latest:access",
        "/v1/projects/acme/secrets/openai/versions/1:access",
        "/v1/projects/acme/secrets/json/versions/latest:access",
    ]
    with pytest.raises(ConfigError, match="has no field 'token'") as info:
        await resolver.resolve("gcp-sm:json#token")
    assert "k2" not in str(info.value)


async def test_gcp_missing_secret_names_the_reference_never_a_value(gcp: FakeGcpSecretManager) -> None:
    resolver = SecretResolver(_gcp_config(gcp))
    await resolver.resolve("gcp-sm:openai")
    with pytest.raises(ConfigError, match=r"'gcp-sm:anthropic'.*NotFound") as info:
        await resolver.resolve("gcp-sm:anthropic")
    assert PROVIDER_KEY not in str(info.value)
    with pytest.raises(ConfigError, match=r"needs secrets\.gcp\.project"):
        await SecretResolver(SecretsConfig.model_validate({"gcp": {"endpoint": gcp.url}})).resolve(
            "gcp-sm:openai"
        )


async def test_gcp_refresh_picks_up_a_new_version(
    gcp: FakeGcpSecretManager, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = SecretResolver(_gcp_config(gcp))
    await resolver.resolve("gcp-sm:openai")
    await resolver.resolve("gcp-sm:projects/acme/secrets/openai/versions/1")
    gcp.secrets["projects/acme/secrets/openai"].append(ROTATED_KEY)
    assert await resolver.refresh() == []
    assert resolver.get("gcp-sm:openai").reveal() == ROTATED_KEY
    assert resolver.get("gcp-sm:projects/acme/secrets/openai/versions/1").reveal() == PROVIDER_KEY
    del gcp.secrets["projects/acme/secrets/openai"]
    with caplog.at_level(logging.WARNING):
        assert set(await resolver.refresh()) == {
            "gcp-sm:openai",
            "gcp-sm:projects/acme/secrets/openai/versions/1",
        }
    assert resolver.get("gcp-sm:openai").reveal() == ROTATED_KEY
    assert ROTATED_KEY not in caplog.text and PROVIDER_KEY not in caplog.text


async def test_gcp_unreachable_endpoint_is_a_config_error(gcp: FakeGcpSecretManager) -> None:
    config = SecretsConfig.model_validate({"gcp": {"project": "acme", "endpoint": "http://127.0.0.1:1"}})
    with pytest.raises(ConfigError, match=r"'gcp-sm:openai'.*request failed: ConnectionError"):
        await SecretResolver(config).resolve("gcp-sm:openai")


async def test_gcp_without_credentials_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("google.cloud.secretmanager")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with pytest.raises(ConfigError, match="gcp-sm: no Google credentials found"):
        await SecretResolver(SecretsConfig.model_validate({"gcp": {"project": "acme"}})).resolve(
            "gcp-sm:openai"
        )


@pytest.fixture
def key_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKeyVault]:
    """The https stand-in (certificate from a test CA), and the App Service managed-identity
    environment DefaultAzureCredential picks up."""
    pytest.importorskip("azure.keyvault.secrets")
    pytest.importorskip("azure.identity")
    ca = CertificateAuthority.create(tmp_path, "Vault CA")
    leaf = ca.issue_server(tmp_path, "vault")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(leaf.cert_path, leaf.key_path)
    vault = FakeKeyVault(secrets={"openai": PROVIDER_KEY, "json": '{"api_key": "k2"}'})
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_TOKEN_CREDENTIALS",
    ):
        monkeypatch.delenv(name, raising=False)
    with azure_key_vault_server(vault, tls):
        monkeypatch.setenv("IDENTITY_ENDPOINT", vault.identity_url)
        monkeypatch.setenv("IDENTITY_HEADER", vault.identity_header)
        yield vault


def _azure_config(vault: FakeKeyVault, tmp_path: Path) -> SecretsConfig:
    return SecretsConfig.model_validate(
        {"azure": {"vault_url": vault.url, "ca_file": str(tmp_path / "vault-ca.crt")}}
    )


async def test_azure_resolves_after_the_bearer_challenge(key_vault: FakeKeyVault, tmp_path: Path) -> None:
    resolver = SecretResolver(_azure_config(key_vault, tmp_path))
    assert (await resolver.resolve("azure-kv:openai")).reveal() == PROVIDER_KEY
    assert (await resolver.resolve("azure-kv:json#api_key")).reveal() == "k2"
    # First an unauthenticated request (the challenge), then only authorized ones.
    assert key_vault.requests == [
        ("/secrets/openai/", False),
        ("/secrets/openai/", True),
        ("/secrets/json/", True),
    ]


async def test_azure_missing_secret_names_the_reference_never_a_value(
    key_vault: FakeKeyVault, tmp_path: Path
) -> None:
    resolver = SecretResolver(_azure_config(key_vault, tmp_path))
    await resolver.resolve("azure-kv:openai")
    with pytest.raises(ConfigError, match=r"'azure-kv:anthropic'.*ResourceNotFoundError") as info:
        await resolver.resolve("azure-kv:anthropic")
    assert PROVIDER_KEY not in str(info.value)
    with pytest.raises(ConfigError, match="has no field 'token'") as info:
        await resolver.resolve("azure-kv:json#token")
    assert "k2" not in str(info.value)


async def test_azure_refresh_picks_up_a_new_value_and_keeps_it_on_failure(
    key_vault: FakeKeyVault, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = SecretResolver(_azure_config(key_vault, tmp_path))
    await resolver.resolve("azure-kv:openai")
    key_vault.secrets["openai"] = ROTATED_KEY
    assert await resolver.refresh() == []
    assert resolver.get("azure-kv:openai").reveal() == ROTATED_KEY
    del key_vault.secrets["openai"]
    with caplog.at_level(logging.WARNING):
        assert await resolver.refresh() == ["azure-kv:openai"]
    assert resolver.get("azure-kv:openai").reveal() == ROTATED_KEY
    assert ROTATED_KEY not in caplog.text and PROVIDER_KEY not in caplog.text


async def test_azure_refuses_a_vault_certificate_it_does_not_trust(key_vault: FakeKeyVault) -> None:
    config = SecretsConfig.model_validate({"azure": {"vault_url": key_vault.url}})
    with pytest.raises(ConfigError, match=r"'azure-kv:openai'.*ServiceRequestError"):
        await SecretResolver(config).resolve("azure-kv:openai")
    assert key_vault.requests == []
