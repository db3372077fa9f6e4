"""Local stand-ins answering the vendors' documented request and response shapes:

- GCP Secret Manager: REST ``GET /v1/{name}:access``, callers authenticated as a service account;
- Azure Key Vault: ``GET /secrets/{name}/{version}`` over TLS behind the bearer challenge, and the
  App Service managed-identity token endpoint that issues the bearer tokens.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt


@dataclass
class FakeGcpSecretManager:
    #: ``projects/{p}/secrets/{s}`` -> versions, oldest first (version ids are 1-based).
    secrets: dict[str, list[str]] = field(default_factory=dict)
    #: The service account allowed to read, and the PEM public key its calls are signed with.
    service_account_email: str = "gateway@acme.iam.gserviceaccount.com"
    service_account_public_key: str = ""
    accessed: list[str] = field(default_factory=list)
    url: str = ""


@dataclass
class FakeKeyVault:
    secrets: dict[str, str] = field(default_factory=dict)
    tenant: str = "72f988bf-0000-0000-0000-000000000000"
    issued_tokens: set[str] = field(default_factory=set)
    #: (path, had a valid bearer token) for every request to the vault.
    requests: list[tuple[str, bool]] = field(default_factory=list)
    url: str = ""
    identity_url: str = ""
    identity_header: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def resource(self) -> str:
        # Key Vault challenges with resource https://vault.azure.net, of which every vault host
        # (x.vault.azure.net) is a subdomain, and the SDK checks that. The stand-in listens on
        # 127.0.0.1:<port>, which is a "subdomain" of 0.0.1:<port> in that same sense.
        return "https://0.0.1:" + self.url.rsplit(":", 1)[1]


def _reply(
    handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json; charset=utf-8")
    handler.send_header("content-length", str(len(raw)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(raw)


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _bearer(handler: BaseHTTPRequestHandler) -> str | None:
    scheme, _, token = handler.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


@contextmanager
def gcp_secret_manager_server(store: FakeGcpSecretManager) -> Iterator[FakeGcpSecretManager]:
    class Handler(_QuietHandler):
        def authorized(self) -> bool:
            # A service account calls Google APIs with a JWT it signs itself ("service account
            # authorization without OAuth"): aud is the API's root URL, iss = sub = the account.
            try:
                claims = jwt.decode(
                    _bearer(self) or "",
                    store.service_account_public_key,
                    algorithms=["RS256"],
                    audience="https://secretmanager.googleapis.com/",
                    options={"require": ["iss", "sub", "iat", "exp"]},
                )
            except jwt.PyJWTError:
                return False
            return claims["iss"] == claims["sub"] == store.service_account_email

        def do_GET(self) -> None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            if not self.authorized():
                error = {
                    "code": 401,
                    "message": "Request had invalid authentication credentials.",
                    "status": "UNAUTHENTICATED",
                }
                return _reply(self, 401, {"error": error}, {})
            secret, _, version = path.removeprefix("/v1/").removesuffix(":access").partition("/versions/")
            store.accessed.append(path)
            versions = store.secrets.get(secret, [])
            index = len(versions) if version == "latest" else int(version) if version.isdigit() else 0
            if not path.endswith(":access") or not 0 < index <= len(versions):
                error = {
                    "code": 404,
                    "message": f"Secret [{secret}] not found or has no versions.",
                    "status": "NOT_FOUND",
                }
                return _reply(self, 404, {"error": error}, {})
            data = base64.b64encode(versions[index - 1].encode()).decode()
            _reply(self, 200, {"name": f"{secret}/versions/{index}", "payload": {"data": data}}, {})

    with _serve(Handler) as url:
        store.url = url
        yield store


@contextmanager
def azure_key_vault_server(vault: FakeKeyVault, tls: ssl.SSLContext) -> Iterator[FakeKeyVault]:
    class VaultHandler(_QuietHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            authorized = _bearer(self) in vault.issued_tokens
            vault.requests.append((parts.path, authorized))
            if not authorized:
                challenge = (
                    f'Bearer authorization="https://login.microsoftonline.com/{vault.tenant}", '
                    f'resource="{vault.resource}"'
                )
                error = {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer token."}
                return _reply(self, 401, {"error": error}, {"WWW-Authenticate": challenge})
            # 7.0 … 7.6, then date versions (2025-07-01, 2026-04-01).
            api_version = urllib.parse.parse_qs(parts.query).get("api-version", [""])[0]
            if not re.fullmatch(r"7\.\d|\d{4}-\d{2}-\d{2}", api_version):
                return _reply(self, 400, {"error": {"code": "BadParameter", "message": "api-version"}}, {})
            name = parts.path.removeprefix("/secrets/").split("/")[0]
            if name not in vault.secrets:
                error = {
                    "code": "SecretNotFound",
                    "message": f"A secret with (name/id) {name} was not found in this key vault.",
                }
                return _reply(self, 404, {"error": error}, {})
            body = {
                "value": vault.secrets[name],
                "id": f"{vault.url}/secrets/{name}/4387e9f3d6e14c459867679a90fd0f79",
                "attributes": {
                    "enabled": True,
                    "created": 1700000000,
                    "updated": 1700000000,
                    "recoveryLevel": "Recoverable+Purgeable",
                },
            }
            _reply(self, 200, body, {})

    class IdentityHandler(_QuietHandler):
        # App Service managed identity (IDENTITY_ENDPOINT / IDENTITY_HEADER, api-version 2019-08-01).
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if self.headers.get("X-IDENTITY-HEADER") != vault.identity_header:
                return _reply(self, 401, {"statusCode": 401, "message": "Unauthorized"}, {})
            if query.get("api-version") != ["2019-08-01"] or query.get("resource") != [vault.resource]:
                return _reply(self, 400, {"statusCode": 400, "message": "bad request"}, {})
            token = secrets.token_urlsafe(24)
            vault.issued_tokens.add(token)
            body = {
                "access_token": token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": vault.resource,
                "token_type": "Bearer",
                "client_id": "c",
            }
            _reply(self, 200, body, {})

    with _serve(VaultHandler, tls) as url, _serve(IdentityHandler) as identity_url:
        vault.url = url
        vault.identity_url = identity_url
        yield vault
