"""Inbound TLS: the server SSL context and the peer certificate in the ASGI scope.

uvicorn verifies client certificates during the handshake but does not put them in the ASGI
scope. The two protocol classes here (one per uvicorn HTTP implementation) read the TLS facts
of the connection once, when it is made (the handshake has completed by then), and add them to
every request's scope as the ASGI TLS extension (asgiref ``specs/tls.rst``)::

    scope["extensions"]["tls"] = {
        "server_cert": None,                  # Python's ssl cannot return our own certificate
        "client_cert_chain": ["-----BEGIN CERTIFICATE-----…"],   # the leaf only (Python < 3.13)
        "client_cert_name": "CN=notebook,O=Research",            # RFC 4514
        "client_cert_error": None,            # a failed verification ends the handshake instead
        "tls_version": 0x0304,
        "cipher_suite": 0x1302,
        "client_cert_der": b"…",              # gateway addition: the leaf as DER, no re-encoding
    }

They also record the transport's peer address under ``scope["extensions"]["gateway.peer"]``,
before any proxy-headers middleware rewrites ``scope["client"]``: the forwarded-certificate
check must compare the immediate peer, not an address taken from ``X-Forwarded-For``.

Use: ``uvicorn.Config(app, http=gateway_http_protocol("httptools"),
ssl_context_factory=ServerSSLContextFactory(cfg, base_dir=…))``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.tls.config import ServerTLSConfig
from gateway.tls.files import (
    TLS_VERSIONS,
    SecretResolver,
    file_stamp,
    key_file_path,
    load_cert_chain,
    load_verify_locations,
)

ASGIApp = Callable[..., Any]

logger = logging.getLogger("gateway.tls")

_TLS_VERSION_CODES = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def build_server_ssl_context(
    cfg: ServerTLSConfig,
    *,
    resolve_path: Callable[[str], Path] = Path,
    resolve_secret: SecretResolver | None = None,
) -> ssl.SSLContext:
    """The SSL context ``gateway serve`` listens with.

    Client certificates must chain to ``client_ca_file`` and be within their validity period;
    with ``require_client_cert`` a handshake without one fails. Raises ``CertificateFileError``
    naming the file that does not load.
    """
    if cfg.cert_file is None or cfg.key_file is None:
        raise ValueError("server.tls has no cert_file/key_file: the gateway does not terminate TLS")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = TLS_VERSIONS[cfg.min_version]
    load_cert_chain(context, resolve_path(cfg.cert_file), cfg.key_file, resolve_path, resolve_secret)
    if cfg.client_ca_file:
        load_verify_locations(context, resolve_path(cfg.client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED if cfg.require_client_cert else ssl.CERT_OPTIONAL
    # The protocols below speak HTTP/1.1 only.
    context.set_alpn_protocols(["http/1.1"])
    return context


class ServerTLSContext:
    """The listening SSL context, following certificate rotation without a restart.

    uvicorn listens with one context for its whole life. This one carries an SNI callback,
    which OpenSSL runs for every ClientHello (with or without a server name): at most every
    ``reload_interval_s`` it checks the files and, when they changed and load, hands the
    handshake to a freshly built context (``ssl_object.context = …``, the switch the ``ssl``
    docs describe for the callback). Connections already open keep their certificate.
    """

    def __init__(
        self,
        cfg: ServerTLSConfig,
        *,
        resolve_path: Callable[[str], Path] = Path,
        resolve_secret: SecretResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = cfg
        self._resolve_path = resolve_path
        self._resolve_secret = resolve_secret
        self._clock = clock
        self._paths = [resolve_path(p) for p in (cfg.cert_file, cfg.client_ca_file) if p]
        key_path = key_file_path(cfg.key_file, resolve_path) if cfg.key_file else None
        if key_path is not None:
            self._paths.append(key_path)
        self._stamp = file_stamp(self._paths)
        self.context = self._build()
        self.context.sni_callback = self._on_client_hello
        self._current = self.context
        self._next_check = clock() + cfg.reload_interval_s
        self.generation = 1

    def _build(self) -> ssl.SSLContext:
        return build_server_ssl_context(
            self._cfg, resolve_path=self._resolve_path, resolve_secret=self._resolve_secret
        )

    def current(self) -> ssl.SSLContext:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self._cfg.reload_interval_s
            stamp = file_stamp(self._paths)
            if stamp != self._stamp:
                try:
                    self._current = self._build()
                except Exception as exc:  # runs inside OpenSSL's callback: never let it escape
                    logger.warning(
                        "server TLS files changed but do not load yet, keeping the previous ones: %s", exc
                    )
                else:
                    self._stamp = stamp
                    self.generation += 1
                    logger.info("server TLS certificates reloaded")
        return self._current

    def _on_client_hello(
        self, ssl_object: ssl.SSLObject, _server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        current = self.current()
        if current is not self.context:
            ssl_object.context = current


class ServerSSLContextFactory:
    """``uvicorn.Config(ssl_context_factory=…)`` that builds the reloading server context.

    uvicorn starts extra workers with ``spawn`` and pickles its config into each, so the
    factory holds only picklable settings and builds the context in the process that serves:
    each worker gets its own ``ServerTLSContext`` (and reloads on its own). ``resolve_secret``
    is needed only for keys outside files (``env:`` …) and must then be picklable too, such as
    a module-level function.
    """

    def __init__(
        self,
        cfg: ServerTLSConfig,
        *,
        base_dir: str | None = None,
        resolve_secret: SecretResolver | None = None,
    ) -> None:
        self.cfg = cfg
        self.base_dir = base_dir
        self.resolve_secret = resolve_secret
        self.server_tls: ServerTLSContext | None = None

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() or self.base_dir is None else Path(self.base_dir) / p

    def __call__(self, _config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        self.server_tls = ServerTLSContext(
            self.cfg, resolve_path=self.resolve_path, resolve_secret=self.resolve_secret
        )
        return self.server_tls.context

    def __getstate__(self) -> dict[str, Any]:
        # The built context (if any) stays in this process; a worker builds its own.
        return {"cfg": self.cfg, "base_dir": self.base_dir, "resolve_secret": self.resolve_secret}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cfg"], base_dir=state["base_dir"], resolve_secret=state["resolve_secret"])  # type: ignore[misc]


def uvicorn_ssl_context_factory(
    context: ssl.SSLContext,
) -> Callable[[Any, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """For ``uvicorn.Config(ssl_context_factory=…)``: serve with a context built here."""

    def factory(_config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    return factory


def _cipher_suite_ids() -> dict[str, int]:
    # OpenSSL's cipher id is 0x0300XXXX where XXXX is the IANA code the ASGI spec asks for.
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.set_ciphers("ALL:@SECLEVEL=0")
    return {cipher["name"]: cipher["id"] & 0xFFFF for cipher in probe.get_ciphers()}


_CIPHER_SUITE_IDS = _cipher_suite_ids()


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension for a connection whose handshake has completed."""
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    version = ssl_object.version()
    name = error = None
    if der:
        try:
            name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except ValueError as exc:
            # OpenSSL accepted it but cryptography cannot read it: report, never trust it.
            error, der = f"unreadable client certificate: {exc}", None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": error,
        "tls_version": _TLS_VERSION_CODES.get(version) if version else None,
        "cipher_suite": _CIPHER_SUITE_IDS.get(cipher[0]) if cipher else None,
        "client_cert_der": der,
    }


def _with_connection_facts(app: ASGIApp, peer: tuple[str, int] | None, tls: dict[str, Any] | None) -> ASGIApp:
    async def app_with_connection_facts(scope: dict[str, Any], receive: Any, send: Any) -> None:
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        extensions["gateway.peer"] = peer
        if tls is not None:
            # A copy per request: one request must not change what the next one on the same
            # keep-alive connection sees.
            extensions["tls"] = dict(tls)
        await app(scope, receive, send)

    return app_with_connection_facts


def _connection_app(
    app: ASGIApp, client: tuple[str, int] | None, transport: asyncio.BaseTransport
) -> ASGIApp:
    ssl_object = transport.get_extra_info("ssl_object")
    tls = tls_extension(ssl_object) if ssl_object is not None else None
    return _with_connection_facts(app, client, tls)


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the TLS extension and the transport peer in the scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _connection_app(self.app, self.client, transport)


class TLSH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus the TLS extension and the transport peer in the scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = _connection_app(self.app, self.client, transport)


def gateway_http_protocol(kind: Literal["auto", "httptools", "h11"] = "auto") -> type[asyncio.Protocol]:
    """The protocol class to give ``uvicorn.Config(http=…)``; ``auto`` prefers httptools."""
    if kind == "h11":
        return TLSH11Protocol
    return TLSHttpToolsProtocol


def peer_certificate_der(scope: dict[str, Any]) -> bytes | None:
    """The verified client certificate of this request's connection, as DER, if there is one.

    Reads the gateway's ``client_cert_der`` or, from another ASGI server implementing the TLS
    extension, the first PEM of ``client_cert_chain``.
    """
    tls = scope.get("extensions", {}).get("tls")
    if not tls or tls.get("client_cert_error"):
        return None
    der = tls.get("client_cert_der")
    if der:
        return bytes(der)
    chain = tls.get("client_cert_chain") or []
    for pem in chain:
        return ssl.PEM_cert_to_DER_cert(pem)
    return None


def immediate_peer(scope: dict[str, Any]) -> str | None:
    """Address of the host at the other end of the TCP connection (not from X-Forwarded-For)."""
    peer = scope.get("extensions", {}).get("gateway.peer")
    if peer is None:
        peer = scope.get("client")
    return peer[0] if peer else None
