"""Who is calling: a gateway key or JWT, a client certificate, or (in development) nobody.

Order: a credential in the headers (``Authorization: Bearer`` or ``x-api-key``: a gateway key or
a JWT) decides the principal; a client certificate that came with it is attached as
``client.certificate`` so a policy can require both. A header value that is neither (the
placeholder an SDK insists on sending) does not count when a verified certificate is there.
Without a header credential, a verified client certificate (from the TLS handshake, or
forwarded by a trusted proxy) is the identity. Without either, the key authenticator answers:
anonymous when allowed, else 401.
"""

from __future__ import annotations

import dataclasses

from starlette.datastructures import Headers
from starlette.types import Scope

from gateway.auth.authenticator import Authenticator, bearer_token
from gateway.auth.jwt import looks_like_jwt
from gateway.auth.keys import looks_like_gateway_key
from gateway.config import GatewayConfig
from gateway.tls.authenticator import CertificateAuthenticator
from gateway.types import Principal


def _is_credential(token: str) -> bool:
    return looks_like_gateway_key(token) or looks_like_jwt(token)


class GatewayAuthenticator:
    def __init__(self, keys: Authenticator, certificates: CertificateAuthenticator | None) -> None:
        self._keys = keys
        self._certificates = certificates

    @classmethod
    def build(cls, config: GatewayConfig, keys: Authenticator) -> GatewayAuthenticator:
        tls = config.server.tls
        wants_certificates = tls is not None and (tls.client_ca_file is not None or tls.forwarded is not None)
        certificates = (
            CertificateAuthenticator(tls, resolve_path=config.resolve_path)
            if wants_certificates and tls is not None
            else None
        )
        return cls(keys, certificates)

    async def authenticate(self, scope: Scope) -> Principal:
        headers = Headers(scope=scope)
        token = bearer_token(headers)
        if token is not None and self._certificates is not None and not _is_credential(token):
            # SDKs always send *some* API key; with a verified client certificate a placeholder
            # (neither a gateway key nor a JWT) is ignored and the certificate decides.
            principal_from_cert = self._certificates.authenticate(dict(scope))
            if principal_from_cert is not None:
                return principal_from_cert
        if token is not None:
            principal = await self._keys.authenticate(headers)
            if self._certificates is not None:
                certificate = self._certificates.certificate(dict(scope))
                if certificate is not None:
                    # Principals may be cached and shared between requests: never mutate one.
                    principal = dataclasses.replace(principal, certificate=certificate)
            return principal
        if self._certificates is not None:
            principal_from_cert = self._certificates.authenticate(dict(scope))
            if principal_from_cert is not None:
                return principal_from_cert
        return await self._keys.authenticate(headers)
