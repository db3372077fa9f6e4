"""A tiny JWKS endpoint on a free local port, serving keys generated in the test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass
class Jwks:
    keys: list[dict[str, Any]] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def publish(self, *pairs: tuple[str, Any]) -> None:
        """Replaces the served set with the public halves of ``(kid, private_key)`` pairs."""
        served = []
        for kid, private_key in pairs:
            if isinstance(private_key, rsa.RSAPrivateKey):
                jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
            else:
                jwk = json.loads(ECAlgorithm.to_jwk(private_key.public_key()))
            served.append({**jwk, "kid": kid, "use": "sig"})
        self.keys = served


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@contextmanager
def jwks_server() -> Iterator[Jwks]:
    jwks = Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            jwks.fetches += 1
            body = json.dumps({"keys": jwks.keys}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    jwks.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield jwks
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
