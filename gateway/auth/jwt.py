"""JWT/OIDC bearer tokens from configured issuers, checked against each issuer's JWKS.

Signing keys come from pyjwt's ``PyJWKClient`` (JWK set cached for ``jwks_lifespan_s``, re-read
on an unknown ``kid`` at most every ``jwks_refresh_cooldown_s``). Its fetch is blocking urllib,
so it runs in a worker thread; keys already seen are served from a dict on the event loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.auth.config import JwtConfig, JwtIssuerConfig
from gateway.errors import AuthenticationError, ServiceUnavailableError
from gateway.types import Principal

if TYPE_CHECKING:
    from jwt import PyJWK

# PyJWT (and through it `cryptography`, about 10 MB resident) is imported on first use: a
# gateway without JWT issuers never loads it.

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at ``path`` (``sub``, ``groups[0]``, ``realm_access.roles``) or None."""
    node: Any = claims
    for name, index in _PATH_PART.findall(path):
        if name:
            node = node.get(name) if isinstance(node, dict) else None
        else:
            i = int(index)
            node = node[i] if isinstance(node, list) and i < len(node) else None
        if node is None:
            return None
    return node


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    principal: Principal
    issuer: JwtIssuerConfig
    claims: dict[str, Any]

    @property
    def is_admin(self) -> bool:
        if self.issuer.admin_role_claim is None:
            return False
        roles = claim_at(self.claims, self.issuer.admin_role_claim)
        if isinstance(roles, str):
            roles = roles.split()
        return isinstance(roles, list) and self.issuer.admin_role in roles

    @property
    def subject(self) -> str:
        return f"jwt:{self.issuer.issuer}:{self.claims.get('sub', '?')}"


class _IssuerKeys:
    def __init__(self, issuer: JwtIssuerConfig) -> None:
        from jwt import PyJWKClient

        self._issuer = issuer
        self._client = PyJWKClient(
            issuer.jwks_url,
            cache_jwk_set=True,
            lifespan=issuer.jwks_lifespan_s,
            timeout=issuer.jwks_timeout_s,
            cooldown_duration=issuer.jwks_refresh_cooldown_s,
        )
        self._keys: dict[str | None, tuple[float, PyJWK]] = {}

    async def key_for(self, kid: str | None) -> PyJWK:
        entry = self._keys.get(kid)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError

        try:
            key = await asyncio.to_thread(self._client.get_signing_key, kid)  # type: ignore[arg-type]
        except PyJWKClientConnectionError:
            raise ServiceUnavailableError("The token issuer's signing keys could not be fetched.") from None
        except PyJWKClientError:
            raise AuthenticationError(
                "The JWT was signed with an unknown key.", code="invalid_token"
            ) from None
        self._keys[kid] = (time.monotonic() + self._issuer.jwks_lifespan_s, key)
        return key


class JwtVerifier:
    def __init__(self, config: JwtConfig) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in config.issuers}
        self._keys = {issuer.issuer: _IssuerKeys(issuer) for issuer in config.issuers}

    @property
    def enabled(self) -> bool:
        return bool(self._issuers)

    async def verify(self, token: str) -> VerifiedToken:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.DecodeError:
            raise AuthenticationError(
                "The bearer token is not a well-formed JWT.", code="invalid_token"
            ) from None
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise AuthenticationError("The JWT issuer is not accepted by this gateway.", code="invalid_token")
        if header.get("alg") not in issuer.algorithms:
            raise AuthenticationError("The JWT signing algorithm is not accepted.", code="invalid_token")
        key = await self._keys[issuer.issuer].key_for(header.get("kid"))
        claims = self._decode(token, key, issuer)
        return VerifiedToken(self._principal(claims, issuer), issuer, claims)

    @staticmethod
    def _decode(token: str, key: PyJWK, issuer: JwtIssuerConfig) -> dict[str, Any]:
        import jwt

        try:
            return jwt.decode(
                token,
                key,
                algorithms=issuer.algorithms,
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=issuer.leeway_s,
                options={"require": ["exp", "iss"], "verify_aud": issuer.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            message, code = "The JWT has expired.", "expired_token"
        except jwt.ImmatureSignatureError:
            message, code = "The JWT is not valid yet (nbf/iat in the future).", "invalid_token"
        except jwt.InvalidAudienceError:
            message, code = "The JWT audience is not accepted.", "invalid_token"
        except jwt.InvalidIssuerError:
            message, code = "The JWT issuer is not accepted by this gateway.", "invalid_token"
        except jwt.MissingRequiredClaimError as exc:
            message, code = f"The JWT lacks the required {exc.claim!r} claim.", "invalid_token"
        except jwt.InvalidSignatureError:
            message, code = "The JWT signature is invalid.", "invalid_token"
        except jwt.InvalidTokenError:
            message, code = "The JWT is invalid.", "invalid_token"
        raise AuthenticationError(message, code=code)

    @staticmethod
    def _principal(claims: dict[str, Any], issuer: JwtIssuerConfig) -> Principal:
        mapping = issuer.claims
        team = claim_at(claims, mapping.team) if mapping.team else None
        user = claim_at(claims, mapping.user) if mapping.user else None
        metadata = {name: claim_at(claims, path) for name, path in mapping.metadata.items()}
        return Principal(
            auth="jwt",
            team=None if team is None else str(team),
            user=None if user is None else str(user),
            metadata=metadata,
            claims=claims,
        )
