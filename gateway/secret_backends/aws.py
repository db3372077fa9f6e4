"""AWS Secrets Manager (``aws-sm:<secret id>[#field]``) through botocore (extra ``aws``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.secret_backends import SecretBackendError, missing_extra, pick_field

if TYPE_CHECKING:
    from gateway.secrets import AwsSecretsConfig


class AwsSecretsManagerBackend:
    def __init__(self, config: AwsSecretsConfig) -> None:
        try:
            import botocore.session
        except ImportError:
            raise missing_extra("aws-sm", "aws", "botocore") from None
        session = botocore.session.get_session()
        self._client: Any = session.create_client(
            "secretsmanager", region_name=config.region, endpoint_url=config.endpoint_url
        )

    def fetch(self, path: str) -> str:
        import botocore.exceptions

        secret_id, _, field = path.partition("#")
        try:
            response = self._client.get_secret_value(SecretId=secret_id)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretBackendError(f"AWS Secrets Manager refused {secret_id!r}: {code}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise SecretBackendError(f"AWS Secrets Manager request failed: {type(exc).__name__}") from None
        value = response.get("SecretString")
        if value is None:
            raise SecretBackendError(f"AWS secret {secret_id!r} is binary, expected a string")
        return pick_field(value, field or None, f"AWS secret {secret_id!r}")
