"""Secrets by reference: env, file, Vault (token and AppRole), AWS Secrets Manager, missing extras."""

from __future__ import annotations

import logging
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.secrets import AwsSecretsConfig, Secret, SecretResolver, SecretsConfig, VaultConfig
from tests.secrets.servers import FakeSecretsManager, FakeVault, secrets_manager_server, vault_server

PROVIDER_KEY = "sk-proj-PLANTED-provider-key-4f9a1c"


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with vault_server(FakeVault(data={"providers/openai": {"api_key": PROVIDER_KEY}})) as server:
        yield server


def test_secret_never_shows_its_value() -> None:
    secret = Secret(PROVIDER_KEY)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", "{}".format(secret), str([secret])]  # noqa: UP032
    for text in shown:
        assert PROVIDER_KEY not in text
    assert secret.reveal() == PROVIDER_KEY
    assert secret == Secret(PROVIDER_KEY) and secret != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


async def test_env_and_file_references(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "anthropic").write_text("sk-ant-from-file\n")
    resolver = SecretResolver(environ={"OPENAI_API_KEY": PROVIDER_KEY}, base_dir=tmp_path)
    assert (await resolver.resolve("env:OPENAI_API_KEY")).reveal() == PROVIDER_KEY
    assert (await resolver.resolve("file:keys/anthropic")).reveal() == "sk-ant-from-file"
    assert resolver.get("env:OPENAI_API_KEY").reveal() == PROVIDER_KEY
    with pytest.raises(ConfigError, match="MISSING_KEY is not set"):
        await resolver.resolve("env:MISSING_KEY")
    with pytest.raises(ConfigError, match="cannot read"):
        await resolver.resolve("file:keys/none")
    with pytest.raises(ConfigError, match="is not one of"):
        await resolver.resolve("plain-secret-value")
    with pytest.raises(ConfigError, match="was not resolved at start"):
        resolver.get("env:NEVER_ASKED")


async def test_refresh_picks_up_new_values_and_keeps_old_ones_on_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("first-value")
    resolver = SecretResolver(base_dir=tmp_path)
    await resolver.resolve("file:key")
    key_file.write_text("second-value")
    assert await resolver.refresh() == []
    assert resolver.get("file:key").reveal() == "second-value"
    key_file.unlink()
    with caplog.at_level(logging.WARNING):
        assert await resolver.refresh() == ["file:key"]
    assert resolver.get("file:key").reveal() == "second-value"
    assert "second-value" not in caplog.text


async def test_vault_with_token(vault: FakeVault) -> None:
    vault.tokens.add("root-token")
    config = SecretsConfig(vault=VaultConfig(url=vault.url, token="env:VAULT_TOKEN"))
    resolver = SecretResolver(config, environ={"VAULT_TOKEN": "root-token"})
    assert (await resolver.resolve("vault:providers/openai#api_key")).reveal() == PROVIDER_KEY
    with pytest.raises(ConfigError, match="has no field 'token'"):
        await resolver.resolve("vault:providers/openai#token")
    with pytest.raises(ConfigError, match="no secret at secret/providers/none"):
        await resolver.resolve("vault:providers/none#api_key")
    with pytest.raises(ConfigError, match="expected 'vault:<path>#<field>'"):
        await resolver.resolve("vault:providers/openai")


async def test_vault_with_a_bad_token_is_refused_without_leaking(vault: FakeVault) -> None:
    config = SecretsConfig(vault=VaultConfig(url=vault.url, token="env:VAULT_TOKEN"))
    resolver = SecretResolver(config, environ={"VAULT_TOKEN": "wrong-token"})
    with pytest.raises(ConfigError, match="permission denied") as info:
        await resolver.resolve("vault:providers/openai#api_key")
    assert "wrong-token" not in str(info.value)


async def test_vault_approle_logs_in_and_again_when_the_token_lapses(vault: FakeVault) -> None:
    config = SecretsConfig(
        vault=VaultConfig(url=vault.url, role_id="role-1", secret_id="env:VAULT_SECRET_ID")
    )
    resolver = SecretResolver(config, environ={"VAULT_SECRET_ID": "secret-id-1"})
    assert (await resolver.resolve("vault:providers/openai#api_key")).reveal() == PROVIDER_KEY
    assert vault.logins == 1
    vault.data["providers/openai"] = {"api_key": "rotated-provider-key"}
    vault.tokens.clear()  # the AppRole token expired
    await resolver.refresh()
    assert resolver.get("vault:providers/openai#api_key").reveal() == "rotated-provider-key"
    assert vault.logins == 2


async def test_vault_approle_with_wrong_secret_id(vault: FakeVault) -> None:
    config = SecretsConfig(vault=VaultConfig(url=vault.url, role_id="role-1", secret_id="env:S"))
    resolver = SecretResolver(config, environ={"S": "not-the-secret-id"})
    with pytest.raises(ConfigError, match="AppRole login failed") as info:
        await resolver.resolve("vault:providers/openai#api_key")
    assert "not-the-secret-id" not in str(info.value)


async def test_vault_needs_configuration() -> None:
    with pytest.raises(ConfigError, match=r"secrets\.vault"):
        await SecretResolver().resolve("vault:a#b")
    with pytest.raises(ConfigError, match="needs 'token' or both"):
        await SecretResolver(SecretsConfig(vault=VaultConfig(url="http://127.0.0.1:1"))).resolve("vault:a#b")


async def test_aws_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    store = FakeSecretsManager(secrets={"gateway/openai": PROVIDER_KEY, "gateway/json": '{"api_key": "k2"}'})
    with secrets_manager_server(store):
        config = SecretsConfig(aws=AwsSecretsConfig(region="eu-west-1", endpoint_url=store.url))
        resolver = SecretResolver(config)
        assert (await resolver.resolve("aws-sm:gateway/openai")).reveal() == PROVIDER_KEY
        assert (await resolver.resolve("aws-sm:gateway/json#api_key")).reveal() == "k2"
        with pytest.raises(ConfigError, match="ResourceNotFoundException"):
            await resolver.resolve("aws-sm:gateway/none")
    assert set(store.targets) == {"secretsmanager.GetSecretValue"}


@pytest.mark.parametrize(
    ("reference", "config", "extra", "sdk_modules"),
    [
        (
            "gcp-sm:projects/p/secrets/s/versions/latest",
            SecretsConfig(),
            "gcp",
            ["google.cloud.secretmanager"],
        ),
        (
            "azure-kv:openai",
            SecretsConfig.model_validate({"azure": {"vault_url": "https://v.vault.azure.net"}}),
            "azure",
            ["azure.keyvault.secrets", "azure.identity"],
        ),
    ],
)
async def test_cloud_resolvers_without_their_extra_say_what_to_install(
    reference: str, config: SecretsConfig, extra: str, sdk_modules: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether or not the extra is installed here, make its SDK unimportable, as on a bare install.
    for module in sdk_modules:
        monkeypatch.setitem(sys.modules, module, None)
        parent = sys.modules.get(module.rpartition(".")[0])
        if parent is not None:
            monkeypatch.delattr(parent, module.rpartition(".")[2], raising=False)
    with pytest.raises(ConfigError, match=rf"pip install 'opa-ai-gateway\[{extra}\]'"):
        await SecretResolver(config).resolve(reference)
