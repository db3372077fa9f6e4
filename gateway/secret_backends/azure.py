"""Azure Key Vault (``azure-kv:<secret name>[#field]``), extra ``azure`` (DefaultAzureCredential)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.secret_backends import SecretBackendError, missing_extra, pick_field

if TYPE_CHECKING:
    from gateway.secrets import AzureSecretsConfig


class AzureKeyVaultBackend:
    def __init__(self, config: AzureSecretsConfig) -> None:
        try:
            from azure.identity import DefaultAzureCredential
            from azure.keyvault.secrets import SecretClient
        except ImportError:
            raise missing_extra("azure-kv", "azure", "azure-keyvault-secrets") from None
        verify: dict[str, Any] = {"connection_verify": config.ca_file} if config.ca_file else {}
        self._client: Any = SecretClient(
            vault_url=config.vault_url, credential=DefaultAzureCredential(), **verify
        )

    def fetch(self, path: str) -> str:
        from azure.core.exceptions import AzureError

        name, _, field = path.partition("#")
        try:
            value = self._client.get_secret(name).value
        except AzureError as exc:
            raise SecretBackendError(f"Azure Key Vault refused {name!r}: {type(exc).__name__}") from None
        if value is None:
            raise SecretBackendError(f"Azure secret {name!r} has no value")
        return pick_field(value, field or None, f"Azure secret {name!r}")
