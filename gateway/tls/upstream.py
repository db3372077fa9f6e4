"""Outbound TLS to providers and the OPA sidecar: a verified SSL context that follows file rotation.

``UpstreamTLS.context()`` is cheap and meant to be called per request and passed to aiohttp as
``session.request(..., ssl=tls.context())``. aiohttp keys its pooled connections by
``ConnectionKey(host, port, is_ssl, ssl, …)`` where ``ssl`` is the context object itself, so
connections opened with a previous context are never reused for requests that pass the new one:
after a rotation, new requests open new connections with the new certificate, and the old idle
connections are closed by the connector's keep-alive timeout.

Verification is always on: the server certificate must chain to ``ca_file`` (or the system
store) and match the host name. A failure becomes a 502 whose message names the deployment and
the reason (``upstream_tls_error``), never a silent retry without verification.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from gateway.errors import ConfigError, UpstreamUnreachableError
from gateway.tls.config import UpstreamTLSConfig
from gateway.tls.files import (
    TLS_VERSIONS,
    CertificateFileError,
    SecretResolver,
    file_stamp,
    key_file_path,
    load_cert_chain,
    load_verify_locations,
)

logger = logging.getLogger("gateway.tls")


class UpstreamTLS:
    """The SSL context for one upstream (a provider, a deployment or OPA).

    Built at start (a file that does not load raises ``CertificateFileError`` then). Afterwards
    the files are checked at most every ``reload_interval_s`` when ``context()`` is called; a
    changed set that loads replaces the context, one that does not (say, a certificate written
    before its key) is logged and retried at the next check while the previous context stays.
    """

    def __init__(
        self,
        cfg: UpstreamTLSConfig,
        *,
        name: str,
        resolve_path: Callable[[str], Path] = Path,
        resolve_secret: SecretResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._cfg = cfg
        self._resolve_path = resolve_path
        self._resolve_secret = resolve_secret
        self._clock = clock
        self._paths = self._watched_paths()
        self._stamp = file_stamp(self._paths)
        self._context = self._build()
        self._next_check = clock() + cfg.reload_interval_s
        self.generation = 1

    def _watched_paths(self) -> list[Path]:
        paths: list[Path] = []
        if self._cfg.ca_file:
            paths.append(self._resolve_path(self._cfg.ca_file))
        if self._cfg.client_cert_file and self._cfg.client_key:
            paths.append(self._resolve_path(self._cfg.client_cert_file))
            key_path = key_file_path(self._cfg.client_key, self._resolve_path)
            if key_path is not None:
                paths.append(key_path)
        return paths

    def _build(self) -> ssl.SSLContext:
        cfg = self._cfg
        if cfg.ca_file:
            # Only the configured bundle: trusting a private CA should not also trust every
            # public one for this upstream.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            load_verify_locations(context, self._resolve_path(cfg.ca_file))
        else:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = TLS_VERSIONS[cfg.min_version]
        if cfg.client_cert_file and cfg.client_key:
            load_cert_chain(
                context,
                self._resolve_path(cfg.client_cert_file),
                cfg.client_key,
                self._resolve_path,
                self._resolve_secret,
            )
        return context

    def context(self) -> ssl.SSLContext:
        """The current context; picks up changed files at most every ``reload_interval_s``."""
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self._cfg.reload_interval_s
            self.reload()
        return self._context

    def reload(self) -> bool:
        """Rebuild now if the files changed; True when a new context is in place."""
        stamp = file_stamp(self._paths)
        if stamp == self._stamp:
            return False
        try:
            context = self._build()
        except (CertificateFileError, ConfigError) as exc:
            logger.warning(
                "upstream %s: TLS files changed but do not load yet, keeping the previous ones: %s",
                self.name,
                exc,
            )
            return False
        self._context, self._stamp = context, stamp
        self.generation += 1
        logger.info("upstream %s: TLS certificates reloaded", self.name)
        return True


def _target(exc: BaseException) -> str:
    key = getattr(exc, "_conn_key", None)
    host, port = getattr(key, "host", None), getattr(key, "port", None)
    return f"{host}:{port}" if host else "the upstream"


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_tls_error(exc: BaseException) -> bool:
    """Whether a failed upstream call failed on TLS (verification or handshake)."""
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError | ssl.CertificateError):
        return True
    return _ssl_cause(exc) is not None or isinstance(getattr(exc, "os_error", None), ssl.SSLError)


def describe_tls_error(exc: BaseException, deployment_name: str, *, kind: str = "deployment") -> str:
    """One sentence for the 502 body and the log: which deployment, which host, and why.

    ``kind`` names what ``deployment_name`` is (``"policy engine"`` for the OPA sidecar).
    """
    target = _target(exc)
    subject = f"{kind} {deployment_name!r}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause: BaseException = exc.certificate_error
    else:
        cause = getattr(exc, "os_error", None) or _ssl_cause(exc) or exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or cause.reason or "verification failed"
        return (
            f"{subject}: the TLS certificate of {target} did not verify "
            f"({reason}); check the {kind}'s tls.ca_file"
        )
    if isinstance(cause, ssl.CertificateError):
        return f"{subject}: the TLS certificate of {target} did not verify ({cause})"
    if isinstance(cause, ssl.SSLError):
        reason = (cause.reason or str(cause)).replace("_", " ").lower()
        hint = ""
        if "alert" in reason and ("certificate" in reason or "unknown ca" in reason):
            hint = "; the upstream refused the gateway's client certificate (tls.client_cert_file)"
        return f"{subject}: TLS handshake with {target} failed ({reason}){hint}"
    return f"{subject}: TLS with {target} failed ({cause})"


def tls_failure(exc: BaseException, deployment_name: str) -> UpstreamUnreachableError | None:
    """The 502 to raise for a TLS failure of an upstream call, or None if ``exc`` is not one."""
    if not is_tls_error(exc):
        return None
    return UpstreamUnreachableError(describe_tls_error(exc, deployment_name), code="upstream_tls_error")
