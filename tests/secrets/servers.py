"""Local stand-ins for Vault (KV v2 read, AppRole login) and AWS Secrets Manager (GetSecretValue),
answering the documented request and response shapes."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeVault:
    mount: str = "secret"
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    role_id: str = "role-1"
    secret_id: str = "secret-id-1"
    logins: int = 0
    url: str = ""


@dataclass
class FakeSecretsManager:
    secrets: dict[str, str] = field(default_factory=dict)
    url: str = ""
    targets: list[str] = field(default_factory=list)


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], content_type: str) -> None:
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def vault_server(vault: FakeVault) -> Iterator[FakeVault]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            if self.path != "/v1/auth/approle/login":
                return _reply(self, 404, {"errors": []}, "application/json")
            if body.get("role_id") != vault.role_id or body.get("secret_id") != vault.secret_id:
                return _reply(self, 400, {"errors": ["invalid role or secret ID"]}, "application/json")
            vault.logins += 1
            token = f"hvs.{secrets.token_hex(8)}"
            vault.tokens.add(token)
            auth = {
                "client_token": token,
                "accessor": "a",
                "policies": ["default"],
                "lease_duration": 3600,
                "renewable": True,
                "metadata": {"role_name": "gateway"},
            }
            _reply(self, 200, {"request_id": "r", "auth": auth, "data": None}, "application/json")

        def do_GET(self) -> None:
            prefix = f"/v1/{vault.mount}/data/"
            if self.headers.get("X-Vault-Token") not in vault.tokens:
                return _reply(self, 403, {"errors": ["permission denied"]}, "application/json")
            path = self.path.split("?", 1)[0]
            if not path.startswith(prefix) or path[len(prefix) :] not in vault.data:
                return _reply(self, 404, {"errors": []}, "application/json")
            metadata = {
                "created_time": "2026-01-01T00:00:00Z",
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": 1,
            }
            body = {
                "request_id": "r",
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": {"data": vault.data[path[len(prefix) :]], "metadata": metadata},
            }
            _reply(self, 200, body, "application/json")

    with _serve(Handler) as url:
        vault.url = url
        yield vault


@contextmanager
def secrets_manager_server(store: FakeSecretsManager) -> Iterator[FakeSecretsManager]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            target = self.headers.get("X-Amz-Target", "")
            store.targets.append(target)
            kind = "application/x-amz-json-1.1"
            if target != "secretsmanager.GetSecretValue":
                return _reply(self, 400, {"__type": "UnknownOperationException"}, kind)
            name = body.get("SecretId")
            if name not in store.secrets:
                msg = "Secrets Manager can't find the specified secret."
                return _reply(self, 400, {"__type": "ResourceNotFoundException", "message": msg}, kind)
            _reply(
                self,
                200,
                {
                    "ARN": f"arn:aws:secretsmanager:eu-west-1:1:secret:{name}",
                    "Name": name,
                    "SecretString": store.secrets[name],
                    "VersionId": "v1",
                    "VersionStages": ["AWSCURRENT"],
                    "CreatedDate": 1700000000,
                },
                kind,
            )

    with _serve(Handler) as url:
        store.url = url
        yield store
