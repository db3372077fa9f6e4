"""Provider credentials and other secrets given by reference, resolved at start and on refresh.

References: ``env:NAME``, ``file:/path`` (relative to the config folder), ``vault:<path>#<field>``
(HashiCorp Vault KV v2, path relative to the configured mount), and through optional extras
``aws-sm:<secret id>[#field]``, ``gcp-sm:<secret>[#field]``, ``azure-kv:<name>``.

Resolved values are wrapped in ``Secret``, whose repr/str never show the value; only code that
puts the credential on the wire calls ``reveal()``. Errors name the reference, never the value.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import ConfigError
from gateway.secret_backends import SecretBackend, SecretBackendError

log = logging.getLogger(__name__)


class Secret:
    """A secret value that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("secrets are not picklable")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VaultConfig(_Strict):
    url: str
    #: Token auth: a secret reference (``env:VAULT_TOKEN``, ``file:/run/secrets/vault-token``).
    token: str | None = None
    #: AppRole auth: role id (plain or a reference) and secret id (a reference).
    role_id: str | None = None
    secret_id: str | None = None
    approle_mount: str = "approle"
    #: Mount point of the KV v2 engine.
    mount: str = "secret"
    namespace: str | None = None
    #: TLS verification: true, false, or a CA bundle path.
    verify: bool | str = True
    timeout_s: float = Field(10.0, gt=0)


class AwsSecretsConfig(_Strict):
    region: str | None = None
    #: Override for tests and VPC endpoints.
    endpoint_url: str | None = None


class GcpSecretsConfig(_Strict):
    #: Used when a reference is a bare secret name rather than ``projects/…/versions/…``.
    project: str | None = None
    #: API endpoint override (a private endpoint or a local stand-in), e.g. ``https://sm.internal:8443``.
    endpoint: str | None = None


class AzureSecretsConfig(_Strict):
    vault_url: str
    #: CA bundle to trust for the vault's TLS certificate (private endpoints behind a corporate CA).
    ca_file: str | None = None


class SecretsConfig(_Strict):
    vault: VaultConfig | None = None
    aws: AwsSecretsConfig = AwsSecretsConfig()
    gcp: GcpSecretsConfig = GcpSecretsConfig()
    azure: AzureSecretsConfig | None = None
    #: Re-resolve every secret this often (None: only at start and on an explicit refresh).
    refresh_interval_s: float | None = Field(default=None, gt=0)


LOCAL_SCHEMES = ("env", "file")
REMOTE_SCHEMES = ("vault", "aws-sm", "gcp-sm", "azure-kv")


def split_reference(reference: str) -> tuple[str, str]:
    scheme, sep, rest = reference.partition(":")
    if not sep or scheme not in LOCAL_SCHEMES + REMOTE_SCHEMES or not rest:
        known = ", ".join(f"{s}:" for s in LOCAL_SCHEMES + REMOTE_SCHEMES)
        raise ConfigError(f"secret reference {reference!r} is not one of {known}")
    return scheme, rest


class SecretResolver:
    """Resolves references once, caches them, and re-resolves them on ``refresh()``.

    Remote backends are blocking SDKs, so they run in worker threads; ``get`` is a dict lookup.
    """

    def __init__(
        self,
        config: SecretsConfig | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        base_dir: str | Path | None = None,
    ) -> None:
        self._config = config or SecretsConfig()
        self._environ = environ if environ is not None else os.environ
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self._backends: dict[str, SecretBackend] = {}
        self._cache: dict[str, Secret] = {}
        self._refresh_task: asyncio.Task[None] | None = None

    def resolve_local(self, reference: str) -> Secret:
        """``env:`` and ``file:`` references, synchronously (also used to configure backends)."""
        scheme, rest = split_reference(reference)
        if scheme == "env":
            value = self._environ.get(rest)
            if value is None or value == "":
                raise ConfigError(f"secret reference {reference!r}: environment variable {rest} is not set")
            return Secret(value)
        if scheme == "file":
            path = Path(rest)
            if not path.is_absolute() and self._base_dir is not None:
                path = self._base_dir / path
            try:
                return Secret(path.read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise ConfigError(
                    f"secret reference {reference!r}: cannot read {path}: {exc.strerror}"
                ) from None
        raise ConfigError(f"secret reference {reference!r}: only env: and file: are allowed here")

    async def resolve(self, reference: str) -> Secret:
        """Resolve (and cache) one reference."""
        secret = await self._fetch(reference)
        self._cache[reference] = secret
        return secret

    async def resolve_all(self, references: list[str]) -> None:
        await asyncio.gather(*(self.resolve(ref) for ref in dict.fromkeys(references)))

    def get(self, reference: str) -> Secret:
        """A reference resolved earlier (at start); unknown references are a programming error."""
        try:
            return self._cache[reference]
        except KeyError:
            raise ConfigError(f"secret reference {reference!r} was not resolved at start") from None

    async def refresh(self) -> list[str]:
        """Re-resolve every cached reference; a failure keeps the old value. Returns failures."""
        failed: list[str] = []
        for reference in list(self._cache):
            try:
                self._cache[reference] = await self._fetch(reference)
            except ConfigError as exc:
                failed.append(reference)
                log.warning("secret refresh failed, keeping the previous value: %s", exc)
        return failed

    def start_refreshing(self) -> None:
        if self._config.refresh_interval_s and self._refresh_task is None:
            self._refresh_task = asyncio.create_task(self._refresh_loop(self._config.refresh_interval_s))

    async def aclose(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            await asyncio.gather(self._refresh_task, return_exceptions=True)
            self._refresh_task = None

    async def _refresh_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    async def _fetch(self, reference: str) -> Secret:
        scheme, rest = split_reference(reference)
        if scheme in LOCAL_SCHEMES:
            return self.resolve_local(reference)
        backend = self._backend(scheme)
        try:
            value = await asyncio.to_thread(backend.fetch, rest)
        except SecretBackendError as exc:
            raise ConfigError(f"secret reference {reference!r}: {exc}") from None
        return Secret(value)

    def _backend(self, scheme: str) -> SecretBackend:
        backend = self._backends.get(scheme)
        if backend is None:
            backend = self._make_backend(scheme)
            self._backends[scheme] = backend
        return backend

    def _make_backend(self, scheme: str) -> SecretBackend:
        try:
            if scheme == "vault":
                from gateway.secret_backends.vault import VaultBackend

                if self._config.vault is None:
                    raise ConfigError(
                        "vault: references need a 'secrets.vault' section (url, token or AppRole)"
                    )
                return VaultBackend(self._config.vault, self.resolve_local)
            if scheme == "aws-sm":
                from gateway.secret_backends.aws import AwsSecretsManagerBackend

                return AwsSecretsManagerBackend(self._config.aws)
            if scheme == "gcp-sm":
                from gateway.secret_backends.gcp import GcpSecretManagerBackend

                return GcpSecretManagerBackend(self._config.gcp)
            from gateway.secret_backends.azure import AzureKeyVaultBackend

            if self._config.azure is None:
                raise ConfigError("azure-kv: references need a 'secrets.azure.vault_url' setting")
            return AzureKeyVaultBackend(self._config.azure)
        except SecretBackendError as exc:
            raise ConfigError(f"{scheme}: {exc}") from None
