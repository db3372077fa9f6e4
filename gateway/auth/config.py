"""Settings of authentication (section ``auth`` of the config file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: A revocation must reach every replica within this many seconds (documented promise).
MAX_REVOCATION_DELAY_S = 5.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JwtClaimsMapping(_Strict):
    """Where team, user and metadata come from in a token's claims (paths like ``groups[0]``)."""

    team: str | None = None
    user: str | None = "sub"
    #: Principal metadata field -> claim path.
    metadata: dict[str, str] = {}


class JwtIssuerConfig(_Strict):
    #: Must equal the token's ``iss`` claim exactly.
    issuer: str
    jwks_url: str
    #: Accepted ``aud`` value(s); None skips the audience check.
    audience: str | list[str] | None = None
    algorithms: list[str] = ["RS256"]
    claims: JwtClaimsMapping = JwtClaimsMapping()
    #: Claim path holding roles (string or list); a token holding ``admin_role`` there is an admin.
    admin_role_claim: str | None = None
    admin_role: str = "gateway-admin"
    #: Allowed clock skew when checking ``exp``, ``nbf`` and ``iat``.
    leeway_s: float = Field(30.0, ge=0)
    #: How long fetched signing keys are trusted before the JWKS is read again.
    jwks_lifespan_s: float = Field(300.0, gt=0)
    #: Minimum time between JWKS re-reads triggered by an unknown ``kid``.
    jwks_refresh_cooldown_s: float = Field(30.0, ge=0)
    jwks_timeout_s: float = Field(5.0, gt=0)

    @field_validator("algorithms")
    @classmethod
    def _no_symmetric_or_none(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg.lower() == "none" or alg.upper().startswith("HS")]
        if bad:
            raise ValueError(f"algorithms {bad} are not allowed with a JWKS (asymmetric keys only)")
        if not value:
            raise ValueError("at least one algorithm is required")
        return value


class JwtConfig(_Strict):
    issuers: list[JwtIssuerConfig] = []


class AuthConfig(_Strict):
    #: Accept calls without credentials as the anonymous principal (development only).
    allow_anonymous: bool = False
    #: Secret reference (``env:GATEWAY_SERVER_SECRET``) of the HMAC key that hashes gateway keys.
    #: Unset: a secret is generated once into ``gateway-server-secret`` beside the database.
    server_secret: str | None = None
    #: Admin bearer tokens, each ``sha256:<hex of the token>`` or a secret reference.
    admin_tokens: list[str] = []
    #: Redis for cross-replica cache invalidation (pub/sub). Unset: short cache TTL instead.
    redis_url: str | None = None
    #: How long a looked-up key stays cached. Default: 60 s with Redis, 5 s without.
    cache_ttl_s: float | None = Field(None, gt=0)
    cache_max_entries: int = Field(100_000, ge=16)
    #: ``last_used_at`` is written at most this often per key, in batches.
    last_used_interval_s: float = Field(60.0, ge=1)
    jwt: JwtConfig = JwtConfig()

    @field_validator("admin_tokens")
    @classmethod
    def _admin_tokens_hashed_or_references(cls, value: list[str]) -> list[str]:
        for i, token in enumerate(value):
            if ":" not in token:
                raise ValueError(
                    f"admin_tokens[{i}] must be 'sha256:<hex>' or a secret reference such as "
                    "'env:GATEWAY_ADMIN_TOKEN', never the token itself"
                )
            if token.startswith("sha256:"):
                digest = token[len("sha256:") :]
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                    raise ValueError(f"admin_tokens[{i}]: sha256 digest must be 64 hex characters")
        return value

    @field_validator("server_secret")
    @classmethod
    def _server_secret_is_reference(cls, value: str | None) -> str | None:
        if value is not None and ":" not in value:
            raise ValueError("must be a secret reference such as 'env:GATEWAY_SERVER_SECRET'")
        return value

    @model_validator(mode="after")
    def _revocation_bound_holds(self) -> AuthConfig:
        if (
            self.redis_url is None
            and self.cache_ttl_s is not None
            and self.cache_ttl_s > MAX_REVOCATION_DELAY_S
        ):
            raise ValueError(
                f"cache_ttl_s above {MAX_REVOCATION_DELAY_S:g} needs redis_url: without Redis "
                "invalidation the TTL bounds how long a revoked key keeps working"
            )
        return self

    @property
    def effective_cache_ttl_s(self) -> float:
        if self.cache_ttl_s is not None:
            return self.cache_ttl_s
        return 60.0 if self.redis_url else MAX_REVOCATION_DELAY_S
