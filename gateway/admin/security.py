"""Admin authentication and the plumbing every admin endpoint shares.

Admins present ``Authorization: Bearer <token>``: either an admin token from
``auth.admin_tokens`` (configured as its SHA-256, or by secret reference) or a JWT from a
configured issuer whose ``admin_role_claim`` holds ``admin_role``. The resolved identity (never
the token) is what the audit table records.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.authenticator import bearer_token
from gateway.auth.cache import KeyInvalidator
from gateway.auth.config import AuthConfig
from gateway.auth.jwt import JwtVerifier, looks_like_jwt
from gateway.auth.keys import looks_like_gateway_key
from gateway.auth.store import IdentityStore
from gateway.errors import AuthenticationError, GatewayError, InvalidRequestError, PermissionDeniedError
from gateway.secrets import SecretResolver

ADMIN_PREFIX = "/admin/v1"

M = TypeVar("M", bound=BaseModel)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AdminAuth:
    def __init__(self, token_digests: list[str], jwt_verifier: JwtVerifier | None = None) -> None:
        self._digests = [d.lower() for d in token_digests]
        self._jwt = jwt_verifier

    @classmethod
    async def from_config(
        cls, auth: AuthConfig, resolver: SecretResolver, jwt_verifier: JwtVerifier | None
    ) -> AdminAuth:
        digests: list[str] = []
        for entry in auth.admin_tokens:
            if entry.startswith("sha256:"):
                digests.append(entry[len("sha256:") :])
            else:
                digests.append(token_digest((await resolver.resolve(entry)).reveal()))
        return cls(digests, jwt_verifier)

    async def authorize(self, headers: Mapping[str, str]) -> str:
        """The admin's identity for the audit trail; 401 without credentials, 403 without rights."""
        token = bearer_token(headers)
        if token is None:
            raise AuthenticationError(
                "Admin credentials required: send 'Authorization: Bearer <admin token or JWT>'.",
                code="missing_api_key",
            )
        if looks_like_gateway_key(token):
            raise PermissionDeniedError("Gateway API keys cannot call the admin API.")
        if looks_like_jwt(token) and self._jwt is not None and self._jwt.enabled:
            verified = await self._jwt.verify(token)
            if not verified.is_admin:
                raise PermissionDeniedError("This token does not carry the admin role.")
            return verified.subject
        digest = token_digest(token)
        for known in self._digests:
            if hmac.compare_digest(digest, known):
                return f"token:{digest[:12]}"
        raise AuthenticationError("Invalid admin token.", code="invalid_api_key")


@dataclass
class AdminServices:
    store: IdentityStore
    invalidator: KeyInvalidator
    auth: AdminAuth


Handler = Callable[[Request, str], Awaitable[Response]]


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def error_response(error: GatewayError) -> Response:
    return Response(
        error.body_bytes(), status_code=error.status, media_type="application/json", headers=error.headers
    )


def admin_endpoint(services: AdminServices, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authorizes the admin, then runs ``handler(request, actor)``; errors become OpenAI bodies."""

    async def endpoint(request: Request) -> Response:
        try:
            actor = await services.auth.authorize(request.headers)
            return await handler(request, actor)
        except GatewayError as error:
            return error_response(error)

    return endpoint


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequestError("The request body is not valid JSON.") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRequestError(
            f"Invalid value for {param or 'body'}: {first['msg']}", param=param
        ) from None


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(f"{name} must be an integer", param=name) from None
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low} and {high}", param=name)
    return value


def page_body(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": next_cursor is not None, "next_cursor": next_cursor}
