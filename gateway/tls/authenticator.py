"""Client certificate → ``Principal``: the certificate counterpart of an API key lookup.

The certificate comes from the gateway's own TLS handshake (ASGI TLS extension) or, when
configured, from a trusted proxy's header. Its identity document becomes
``input.client.certificate``; the ``identities`` mapping may bind it to a team, a user and
metadata, exactly like a gateway key's. Matching, most specific first: ``sha256:`` fingerprint,
URI SAN (``spiffe://…`` / ``uri:…``, exact, then the longest ``*`` prefix), ``dns:``,
``email:``, ``cn:``. The matched key is reported as ``certificate.binding``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.errors import AuthenticationError
from gateway.tls.config import IdentityBinding, ServerTLSConfig
from gateway.tls.forwarded import ForwardedCertificateReader
from gateway.tls.identity import certificate_identity, identity_from_fields
from gateway.tls.inbound import peer_certificate_der
from gateway.types import Principal


class IdentityMap:
    """The ``identities`` mapping with its prefix patterns sorted for lookup."""

    def __init__(self, identities: dict[str, IdentityBinding]) -> None:
        self._exact = {k: v for k, v in identities.items() if not k.endswith("*")}
        prefixes = [(k[:-1], k) for k in identities if k.endswith("*")]
        self._uri_prefixes = sorted(prefixes, key=lambda p: len(p[0]), reverse=True)
        self._bindings = identities

    def match(self, identity: dict[str, Any]) -> tuple[str, IdentityBinding] | None:
        san = identity["san"]
        candidates: list[str] = []
        if identity.get("fingerprint_sha256"):
            candidates.append(f"sha256:{identity['fingerprint_sha256']}")
        candidates += [uri if uri.startswith("spiffe://") else f"uri:{uri}" for uri in san["uri"]]
        for key in candidates:
            if key in self._exact:
                return key, self._exact[key]
        for prefix, key in self._uri_prefixes:
            for uri in san["uri"]:
                if (uri if uri.startswith("spiffe://") else f"uri:{uri}").startswith(prefix):
                    return key, self._bindings[key]
        later = [f"dns:{d.lower()}" for d in san["dns"]] + [f"email:{e.lower()}" for e in san["email"]]
        if identity.get("common_name"):
            later.append(f"cn:{identity['common_name']}")
        for key in later:
            if key in self._exact:
                return key, self._exact[key]
        return None


def _copy_identity(identity: dict[str, Any]) -> dict[str, Any]:
    # Cached documents are shared between requests; each request gets its own copy to keep.
    return {**identity, "san": {kind: list(values) for kind, values in identity["san"].items()}}


class CertificateAuthenticator:
    """Created once in the app lifespan from ``server.tls``; ``authenticate`` is called per request."""

    def __init__(
        self,
        cfg: ServerTLSConfig,
        *,
        resolve_path: Callable[[str], Path] = Path,
        cache_size: int = 1024,
    ) -> None:
        self._identities = IdentityMap(cfg.identities)
        self._allow_unmapped = cfg.allow_unmapped
        self._forwarded = (
            ForwardedCertificateReader(cfg.forwarded, resolve_path=resolve_path) if cfg.forwarded else None
        )
        self._cache: OrderedDict[tuple[str, bytes], dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size

    def _cached(self, key: tuple[str, bytes]) -> dict[str, Any] | None:
        identity = self._cache.get(key)
        if identity is not None:
            self._cache.move_to_end(key)
        return identity

    def _remember(self, key: tuple[str, bytes], identity: dict[str, Any]) -> dict[str, Any]:
        self._cache[key] = identity
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return identity

    def _from_der(self, der: bytes, source: str) -> dict[str, Any]:
        # bytes cache their hash, and the DER object is the same for every request on a connection.
        key = (source, der)
        return self._cached(key) or self._remember(key, certificate_identity(der, source=source))

    def _found(self, scope: dict[str, Any]) -> dict[str, Any] | None:
        if self._forwarded is not None:
            forwarded = self._forwarded.read(scope)
            if forwarded is not None:
                if forwarded.der is not None:
                    return self._from_der(forwarded.der, "forwarded")
                fields = forwarded.fields
                if fields is not None and (fields.hash or fields.uri or fields.dns or fields.subject):
                    return identity_from_fields(
                        subject=fields.subject,
                        uris=fields.uri,
                        dns=fields.dns,
                        fingerprint_sha256=fields.hash,
                    )
                return None
        der = peer_certificate_der(scope)
        return self._from_der(der, "tls") if der else None

    def _bound(self, scope: dict[str, Any]) -> tuple[dict[str, Any], IdentityBinding | None] | None:
        found = self._found(scope)
        if found is None:
            return None
        identity = _copy_identity(found)
        match = self._identities.match(identity)
        identity["binding"] = match[0] if match else None
        return identity, match[1] if match else None

    def certificate(self, scope: dict[str, Any]) -> dict[str, Any] | None:
        """The client certificate's identity document (``input.client.certificate``), or None.

        A fresh document per call, ``binding`` included. For requests that authenticated with a
        key but also came with a certificate. Raises ``AuthenticationError`` when a
        forwarded-certificate header comes from an address that is not a trusted proxy, or is
        malformed.
        """
        bound = self._bound(scope)
        return bound[0] if bound else None

    def authenticate(self, scope: dict[str, Any]) -> Principal | None:
        """A ``Principal(auth="mtls")`` for a request with a verified client certificate.

        None when the request has no certificate. ``AuthenticationError`` (401) for a forwarded
        header from an untrusted address, a malformed one, or an unmapped certificate when
        ``allow_unmapped`` is false.
        """
        bound = self._bound(scope)
        if bound is None:
            return None
        identity, binding = bound
        if binding is None:
            if not self._allow_unmapped:
                name = identity["spiffe_id"] or identity["subject"] or identity["fingerprint_sha256"]
                raise AuthenticationError(
                    f"client certificate {name} is not mapped to an identity",
                    code="unknown_client_certificate",
                )
            return Principal(auth="mtls", certificate=identity)
        return Principal(
            auth="mtls",
            team=binding.team,
            user=binding.user,
            metadata=dict(binding.metadata),
            certificate=identity,
        )
