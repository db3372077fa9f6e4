"""Typed settings read once from one YAML file plus the environment, then passed in.

Every field can be overridden from the environment: ``GATEWAY_<SECTION>__<FIELD>[__<SUB>]``,
e.g. ``GATEWAY_SERVER__PORT=9000`` or ``GATEWAY_DATABASE__URL=postgresql+asyncpg://…``. Values
are parsed as YAML, so numbers, booleans and lists (``[a, b]``) work. A wrong value stops the
start with a ``ConfigError`` naming the file, the field and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.auth.config import AuthConfig
from gateway.errors import ConfigError
from gateway.guards.config import GuardsConfig
from gateway.limits.config import LimitsConfig
from gateway.policy.config import PolicyConfig
from gateway.secrets import SecretsConfig
from gateway.tls.config import ServerTLSConfig, UpstreamTLSConfig
from gateway.usage.config import UsageConfig

ENV_PREFIX = "GATEWAY_"

ProviderType = Literal[
    "openai", "azure", "mistral", "openai_compatible", "anthropic", "gemini", "vertex", "bedrock"
]

#: Where each provider type lives when ``api_base`` is not given.
DEFAULT_API_BASE: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    #: Largest request body accepted; bigger ones get 413.
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    #: Honour X-Forwarded-For / X-Forwarded-Proto only from these addresses.
    trusted_proxies: list[str] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True
    #: Terminate TLS, verify client certificates, accept forwarded ones (docs/tls.md).
    tls: ServerTLSConfig | None = None


class ProviderConfig(_Strict):
    type: ProviderType
    api_base: str | None = None
    #: A secret reference (``env:NAME``, ``file:/path``, ``vault:path#field``), never the key itself.
    api_key: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = {}
    timeout_s: float = Field(600.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    #: Provider-specific settings (e.g. Vertex ``project``/``location``, Bedrock ``region``).
    options: dict[str, Any] = {}
    #: CA bundle, client certificate and minimum version for calls to this provider.
    tls: UpstreamTLSConfig | None = None

    @field_validator("api_key")
    @classmethod
    def _api_key_is_reference(cls, value: str | None) -> str | None:
        if value is not None and ":" not in value:
            raise ValueError(
                "must be a secret reference such as 'env:OPENAI_API_KEY' or 'file:/run/secrets/key'"
            )
        return value

    @model_validator(mode="after")
    def _api_base_known(self) -> ProviderConfig:
        # Vertex and Bedrock derive their URLs from options.location / options.region.
        derived = self.type in DEFAULT_API_BASE or self.type in ("vertex", "bedrock")
        if self.api_base is None and not derived:
            raise ValueError(f"api_base is required for provider type {self.type!r}")
        return self


class DeploymentConfig(_Strict):
    provider: str
    #: The model name the provider knows (for Azure: the deployment name).
    model: str
    name: str | None = None
    #: Load balancing: deployments with the same priority share traffic by weight; lower
    #: priorities are tried first. Default: the position in the list (pure failover order).
    priority: int | None = None
    weight: int = Field(1, ge=0)
    #: Per-deployment overrides of the provider's settings.
    api_base: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = {}
    timeout_s: float | None = Field(None, gt=0)
    #: Request parameters forced on every call to this deployment (e.g. ``{"temperature": 0}``).
    params: dict[str, Any] = {}
    #: Let requests through when the policy engine fails (default: fail closed with 503).
    policy_fail_open: bool = False
    #: Overrides the provider's TLS settings for this deployment.
    tls: UpstreamTLSConfig | None = None


class ModelConfig(_Strict):
    deployments: list[DeploymentConfig] = Field(min_length=1)
    #: Which tiktoken encoding estimates this model's prompts (default: by model name).
    encoding: str | None = None
    #: Endpoint kinds this public model serves.
    kind: Literal["chat", "embeddings"] = "chat"


class DatabaseConfig(_Strict):
    url: str = "sqlite+aiosqlite:///var/gateway.db"
    #: Run ``alembic upgrade head`` when the gateway starts.
    auto_upgrade: bool = True
    echo: bool = False


class TokenizerConfig(_Strict):
    #: Directory holding ``<encoding>.tiktoken`` files (air-gapped deployments); None uses
    #: tiktoken's own cache and download.
    data_dir: str | None = None


class RoutingConfig(_Strict):
    max_attempts: int = Field(3, ge=1)
    backoff_base_s: float = Field(0.05, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)
    #: Failures in a row after which a deployment is cooled down.
    cooldown_after: int = Field(3, ge=1)
    cooldown_s: float = Field(30.0, ge=0)


class GatewayConfig(_Strict):
    server: ServerConfig = ServerConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelConfig] = {}
    database: DatabaseConfig = DatabaseConfig()
    policy: PolicyConfig = PolicyConfig()
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig = AuthConfig()
    secrets: SecretsConfig = SecretsConfig()
    guards: GuardsConfig = GuardsConfig()
    usage: UsageConfig = UsageConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    routing: RoutingConfig = RoutingConfig()

    #: The file this was read from; relative paths in the config are relative to its folder.
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _deployments_name_known_providers(self) -> GatewayConfig:
        for model_name, model in self.models.items():
            for i, deployment in enumerate(model.deployments):
                if deployment.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none configured"
                    raise ValueError(
                        f"models.{model_name}.deployments.{i}.provider: unknown provider "
                        f"{deployment.provider!r} (known: {known})"
                    )
        return self

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        if p.is_absolute() or self.source is None:
            return p
        return Path(self.source).resolve().parent / p


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = yaml.safe_load(value) if value != "" else ""


def _format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        # Never echo what was given for a credential field: it may be the secret itself.
        secretish = any(word in field.lower() for word in ("key", "secret", "token", "password"))
        got_text = "" if secretish or isinstance(got, dict | list) else f" (got {got!r})"
        lines.append(f"  {field}: {e['msg']}{got_text}")
    return "\n".join(lines)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> GatewayConfig:
    """Read the config file (or ``GATEWAY_CONFIG``) and the environment overrides."""
    env = dict(os.environ if environ is None else environ)
    path = path or env.get("GATEWAY_CONFIG")
    raw: dict[str, Any] = {}
    source = "<environment>"
    if path:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read config file: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of sections at the top level")
        raw = loaded
    _apply_env_overrides(raw, env)
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    if path:
        config.source = str(Path(path).resolve())
    return config
