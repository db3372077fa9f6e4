"""JWT/OIDC verification against a local JWKS endpoint with keys generated here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from gateway.auth.authenticator import Authenticator
from gateway.auth.cache import KeyCache
from gateway.auth.config import JwtConfig, JwtIssuerConfig
from gateway.auth.jwt import JwtVerifier, claim_at
from gateway.auth.keys import KeyHasher
from gateway.errors import AuthenticationError, ServiceUnavailableError
from gateway.secrets import Secret
from tests.auth.jwks_server import Jwks, ec_key, jwks_server, rsa_key

ISSUER = "https://idp.example.test/realms/main"


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    with jwks_server() as server:
        yield server


def issuer_config(jwks: Jwks, **overrides: Any) -> JwtIssuerConfig:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "jwks_url": jwks.url,
        "audience": "ai-gateway",
        "algorithms": ["RS256", "ES256"],
        "claims": {"team": "groups[0]", "user": "sub", "metadata": {"tier": "plan.tier", "email": "email"}},
        "admin_role_claim": "realm_access.roles",
        "leeway_s": 10,
        **overrides,
    }
    return JwtIssuerConfig.model_validate(settings)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": "ai-gateway",
        "sub": "user-42",
        "email": "ana@example.test",
        "groups": ["research", "staff"],
        "plan": {"tier": "gold"},
        "realm_access": {"roles": ["reader"]},
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        **overrides,
    }


def sign(private_key: Any, kid: str, payload: dict[str, Any], alg: str = "RS256") -> str:
    return jwt.encode(payload, private_key, algorithm=alg, headers={"kid": kid})


async def test_rs256_token_maps_claims_to_the_principal(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.publish(("k1", key))
    verifier = JwtVerifier(JwtConfig(issuers=[issuer_config(jwks)]))
    verified = await verifier.verify(sign(key, "k1", claims()))
    principal = verified.principal
    assert principal.auth == "jwt"
    assert principal.team == "research"
    assert principal.user == "user-42"
    assert principal.metadata == {"tier": "gold", "email": "ana@example.test"}
    assert principal.claims["groups"] == ["research", "staff"]
    assert principal.claims["realm_access"] == {"roles": ["reader"]}
    assert not verified.is_admin


async def test_es256_token_and_admin_role(jwks: Jwks) -> None:
    key = ec_key()
    jwks.publish(("ec1", key))
    verifier = JwtVerifier(JwtConfig(issuers=[issuer_config(jwks)]))
    token = sign(key, "ec1", claims(realm_access={"roles": ["gateway-admin"]}), alg="ES256")
    verified = await verifier.verify(token)
    assert verified.is_admin
    assert verified.subject == f"jwt:{ISSUER}:user-42"


async def test_signing_keys_are_cached_and_refreshed_on_an_unknown_kid(jwks: Jwks) -> None:
    old, new = rsa_key(), rsa_key()
    jwks.publish(("old", old))
    verifier = JwtVerifier(JwtConfig(issuers=[issuer_config(jwks, jwks_refresh_cooldown_s=0)]))
    for _ in range(3):
        await verifier.verify(sign(old, "old", claims()))
    assert jwks.fetches == 1
    jwks.publish(("old", old), ("new", new))  # the issuer rotates its signing key
    await verifier.verify(sign(new, "new", claims()))
    assert jwks.fetches == 2
    with pytest.raises(AuthenticationError, match="unknown key"):
        await verifier.verify(sign(rsa_key(), "never-published", claims()))


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (lambda: claims(exp=int(time.time()) - 60), "expired_token", "expired"),
        (lambda: claims(nbf=int(time.time()) + 120), "invalid_token", "not valid yet"),
        (lambda: claims(aud="someone-else"), "invalid_token", "audience"),
        (lambda: claims(iss="https://evil.example.test"), "invalid_token", "issuer"),
        (lambda: {k: v for k, v in claims().items() if k != "exp"}, "invalid_token", "'exp'"),
    ],
)
async def test_rejected_claims(
    jwks: Jwks, payload: Callable[[], dict[str, Any]], code: str, words: str
) -> None:
    key = rsa_key()
    jwks.publish(("k1", key))
    verifier = JwtVerifier(JwtConfig(issuers=[issuer_config(jwks)]))
    with pytest.raises(AuthenticationError) as info:
        await verifier.verify(sign(key, "k1", payload()))
    assert info.value.code == code and words in info.value.message and info.value.status == 401


async def test_clock_skew_within_leeway_is_accepted(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.publish(("k1", key))
    verifier = JwtVerifier(JwtConfig(issuers=[issuer_config(jwks, leeway_s=30)]))
    await verifier.verify(sign(key, "k1", claims(exp=int(time.time()) - 5, nbf=int(time.time()) + 5)))


async def test_forged_signature_and_symmetric_algorithms_are_refused(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.publish(("k1", key))
    verifier = JwtVerifier(JwtConfig(issuers=[issuer_config(jwks)]))
    with pytest.raises(AuthenticationError, match="signature"):
        await verifier.verify(sign(rsa_key(), "k1", claims()))
    hs = jwt.encode(claims(), "x" * 32, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(AuthenticationError, match="algorithm"):
        await verifier.verify(hs)
    with pytest.raises(ValueError, match="not allowed"):
        issuer_config(jwks, algorithms=["HS256"])


async def test_unreachable_jwks_is_a_503_not_a_401() -> None:
    config = JwtIssuerConfig(issuer=ISSUER, jwks_url="http://127.0.0.1:1/jwks", jwks_timeout_s=1)
    verifier = JwtVerifier(JwtConfig(issuers=[config]))
    with pytest.raises(ServiceUnavailableError):
        await verifier.verify(sign(rsa_key(), "k1", claims(aud=None)))


async def test_authenticator_routes_bearer_jwts_to_the_verifier(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.publish(("k1", key))
    hasher = KeyHasher(Secret("s" * 40))

    class NoKeys:
        async def find_key(self, key_hash: str) -> None:
            return None

    with_jwt = Authenticator(
        lookup=NoKeys(),
        hasher=hasher,
        cache=KeyCache(5, 16),
        jwt_verifier=JwtVerifier(JwtConfig(issuers=[issuer_config(jwks)])),
    )
    principal = await with_jwt.authenticate({"Authorization": f"Bearer {sign(key, 'k1', claims())}"})
    assert principal.auth == "jwt" and principal.team == "research"
    without_jwt = Authenticator(lookup=NoKeys(), hasher=hasher, cache=KeyCache(5, 16))
    with pytest.raises(AuthenticationError, match="JWT bearer tokens are not accepted"):
        await without_jwt.authenticate({"Authorization": f"Bearer {sign(key, 'k1', claims())}"})


def test_claim_paths() -> None:
    doc = {"a": {"b": [{"c": 1}]}, "groups": ["x"]}
    assert claim_at(doc, "a.b[0].c") == 1
    assert claim_at(doc, "groups[0]") == "x"
    assert claim_at(doc, "groups[3]") is None
    assert claim_at(doc, "missing.path") is None
