"""A real uvicorn server in the test's event loop, and a tiny app that reports who called it."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.errors import AuthenticationError
from gateway.tls.authenticator import CertificateAuthenticator
from gateway.tls.inbound import gateway_http_protocol, uvicorn_ssl_context_factory


@asynccontextmanager
async def serve_asgi(
    app: Any,
    *,
    ssl_context: ssl.SSLContext | None = None,
    http: str = "httptools",
    **config: Any,
) -> AsyncIterator[int]:
    """Run ``app`` with uvicorn and the gateway's protocol on a free 127.0.0.1 port; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "off", "proxy_headers": False}
    options.update(config)
    if ssl_context is not None:
        options["ssl_context_factory"] = uvicorn_ssl_context_factory(ssl_context)
    server = uvicorn.Server(uvicorn.Config(app, http=gateway_http_protocol(http), **options))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


class WhoAmI:
    """A Starlette app whose one route answers with the certificate principal of the caller."""

    def __init__(self, authenticator: CertificateAuthenticator | None) -> None:
        self.authenticator = authenticator
        self.calls = 0
        self.app = Starlette(routes=[Route("/whoami", self.whoami)])

    async def whoami(self, request: Request) -> JSONResponse:
        self.calls += 1
        extensions = request.scope.get("extensions", {})
        tls = extensions.get("tls")
        body: dict[str, Any] = {
            "peer": extensions.get("gateway.peer"),
            "client": request.scope.get("client"),
            "tls": None
            if tls is None
            else {k: v for k, v in tls.items() if k != "client_cert_der"}
            | {"has_der": bool(tls["client_cert_der"])},
            "principal": None,
        }
        if self.authenticator is not None:
            try:
                principal = self.authenticator.authenticate(request.scope)
            except AuthenticationError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            body["principal"] = principal.as_input() if principal else None
        return JSONResponse(body)


@contextmanager
def blocking_tls_server(context: ssl.SSLContext) -> Iterator[int]:
    """A one-connection TLS server on a thread, written with blocking sockets.

    Unlike an asyncio server, OpenSSL on a blocking socket sends its alert before closing, so
    the client sees *why* the server refused the handshake (as a real nginx or Envoy would).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve_one() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(timeout=10)
