"""GCP Secret Manager (``gcp-sm:<name or full version path>[#field]``), extra ``gcp``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.secret_backends import SecretBackendError, missing_extra, pick_field

if TYPE_CHECKING:
    from gateway.secrets import GcpSecretsConfig


class GcpSecretManagerBackend:
    def __init__(self, config: GcpSecretsConfig) -> None:
        try:
            from google.auth.exceptions import GoogleAuthError
            from google.cloud import secretmanager
        except ImportError:
            raise missing_extra("gcp-sm", "gcp", "google-cloud-secret-manager") from None
        self._config = config
        options = {"api_endpoint": config.endpoint} if config.endpoint else None
        try:
            # REST rather than gRPC: a few reads per refresh do not need a channel, and an
            # ``endpoint`` override (private endpoint, proxy) then works over plain HTTPS.
            self._client: Any = secretmanager.SecretManagerServiceClient(
                client_options=options, transport="rest"
            )
        except GoogleAuthError as exc:
            raise SecretBackendError(f"no Google credentials found: {type(exc).__name__}") from None

    def fetch(self, path: str) -> str:
        from google.api_core import exceptions
        from google.auth.exceptions import GoogleAuthError
        from requests import RequestException  # the REST transport's HTTP client

        name, _, field = path.partition("#")
        if not name.startswith("projects/"):
            if self._config.project is None:
                raise SecretBackendError("gcp-sm: a bare secret name needs secrets.gcp.project")
            name = f"projects/{self._config.project}/secrets/{name}/versions/latest"
        try:
            response = self._client.access_secret_version(name=name)
        except (exceptions.GoogleAPIError, GoogleAuthError) as exc:
            raise SecretBackendError(f"GCP Secret Manager refused {name!r}: {type(exc).__name__}") from None
        except RequestException as exc:
            raise SecretBackendError(f"GCP Secret Manager request failed: {type(exc).__name__}") from None
        return pick_field(response.payload.data.decode("utf-8"), field or None, f"GCP secret {name!r}")
