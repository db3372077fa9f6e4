"""HashiCorp Vault KV v2 through hvac; token or AppRole auth (re-login when the token lapses)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hvac
import hvac.exceptions
import requests

from gateway.secret_backends import SecretBackendError

if TYPE_CHECKING:
    from gateway.secrets import Secret, VaultConfig


class VaultBackend:
    """``vault:<path>#<field>``: field ``field`` of the KV v2 secret at ``<mount>/<path>``."""

    def __init__(self, config: VaultConfig, resolve_local: Callable[[str], Secret]) -> None:
        if config.token is None and not (config.role_id and config.secret_id):
            raise SecretBackendError("secrets.vault needs 'token' or both 'role_id' and 'secret_id'")
        self._config = config
        self._resolve_local = resolve_local
        self._lock = threading.Lock()
        self._client: hvac.Client | None = None

    def fetch(self, path: str) -> str:
        secret_path, sep, field = path.partition("#")
        if not sep or not field or not secret_path:
            raise SecretBackendError("expected 'vault:<path>#<field>'")
        with self._lock:
            try:
                data = self._read(secret_path)
            except hvac.exceptions.Forbidden:
                if self._config.token is not None:
                    raise SecretBackendError("permission denied by Vault") from None
                self._client = None  # the AppRole token expired: log in again once
                try:
                    data = self._read(secret_path)
                except hvac.exceptions.Forbidden:
                    raise SecretBackendError("permission denied by Vault") from None
            except hvac.exceptions.InvalidPath:
                raise SecretBackendError(f"no secret at {self._config.mount}/{secret_path}") from None
            except (hvac.exceptions.VaultError, requests.RequestException) as exc:
                raise SecretBackendError(f"Vault request failed: {type(exc).__name__}") from None
        if field not in data:
            raise SecretBackendError(f"secret {self._config.mount}/{secret_path} has no field {field!r}")
        return str(data[field])

    def _read(self, secret_path: str) -> dict[str, Any]:
        client = self._client or self._login()
        response = client.secrets.kv.v2.read_secret_version(
            path=secret_path, mount_point=self._config.mount, raise_on_deleted_version=True
        )
        return dict(response["data"]["data"])

    def _login(self) -> hvac.Client:
        config = self._config
        client = hvac.Client(
            url=config.url, namespace=config.namespace, verify=config.verify, timeout=config.timeout_s
        )
        if config.token is not None:
            client.token = self._resolve_local(config.token).reveal()
        else:
            assert config.role_id is not None and config.secret_id is not None
            role_id = (
                self._resolve_local(config.role_id).reveal()
                if config.role_id.split(":", 1)[0] in ("env", "file")
                else config.role_id
            )
            try:
                client.auth.approle.login(
                    role_id=role_id,
                    secret_id=self._resolve_local(config.secret_id).reveal(),
                    mount_point=config.approle_mount,
                )
            except hvac.exceptions.VaultError as exc:
                raise SecretBackendError(f"Vault AppRole login failed: {type(exc).__name__}") from None
        self._client = client
        return client
