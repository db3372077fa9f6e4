"""Client certificates forwarded by a TLS-terminating proxy (Envoy's XFCC, nginx's escaped PEM).

A forwarded certificate is only as trustworthy as the proxy that wrote the header, so the header
is accepted only when the immediate peer of the TCP connection is one of ``trusted_proxies``;
sent by anyone else it is refused with 401 (never silently ignored, so a misconfigured proxy
list is noticed at once).

Envoy's ``x-forwarded-client-cert`` (its HTTP connection manager docs): comma-separated
elements, one per proxy hop; each element is ``;``-separated ``Key=Value`` pairs (keys
case-insensitive; values double-quoted when they contain ``,;=``, with ``\\"`` for a quote):
``By`` (the proxy's URI SAN), ``Hash`` (SHA-256 of the client certificate), ``Cert`` and
``Chain`` (URL-encoded PEM), ``Subject`` (always quoted), ``URI`` and ``DNS`` (repeated once per
SAN). The *last* element is the one added by the proxy nearest to the gateway, the only one
that proxy vouches for; it is the one used. nginx's ``$ssl_client_escaped_cert`` is the
URL-encoded PEM of the client certificate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.errors import AuthenticationError
from gateway.tls.config import ForwardedCertConfig
from gateway.tls.inbound import immediate_peer
from gateway.tls.verify import ForwardedChainVerifier


@dataclass(slots=True)
class XfccElement:
    """One proxy hop of an XFCC header."""

    by: list[str] = field(default_factory=list)
    hash: str | None = None
    cert: str | None = None
    chain: str | None = None
    subject: str | None = None
    uri: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)


def _split_unquoted(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes; backslash escapes inside quotes are kept."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise ValueError("unterminated quoted value")
    parts.append("".join(current))
    return parts


def _unquote_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def parse_xfcc(header: str) -> list[XfccElement]:
    """Parse an ``x-forwarded-client-cert`` value; ValueError when it is not well formed."""
    elements: list[XfccElement] = []
    for raw_element in _split_unquoted(header, ","):
        if not raw_element.strip():
            continue
        element = XfccElement()
        for pair in _split_unquoted(raw_element, ";"):
            if not pair.strip():
                continue
            key, sep, raw_value = pair.partition("=")
            if not sep:
                raise ValueError(f"element part {key.strip()[:40]!r} has no '='")
            value = _unquote_value(raw_value)
            match key.strip().lower():
                case "by":
                    element.by.append(value)
                case "hash":
                    element.hash = value.lower()
                case "cert":
                    element.cert = unquote(value)
                case "chain":
                    element.chain = unquote(value)
                case "subject":
                    element.subject = value
                case "uri":
                    element.uri.append(value)
                case "dns":
                    element.dns.append(value)
                case _:
                    pass  # keys added by newer proxies are not ours to refuse
        elements.append(element)
    if not elements:
        raise ValueError("no element")
    return elements


def load_pem_chain(pem: str) -> list[x509.Certificate]:
    """The certificates of a PEM text, leaf first; ValueError when there is none."""
    return x509.load_pem_x509_certificates(pem.encode("ascii", "strict"))


@dataclass(frozen=True, slots=True)
class ForwardedCertificate:
    """What the trusted proxy said about the client certificate."""

    der: bytes | None
    """The certificate itself, when the proxy forwarded it (XFCC ``Cert``/``Chain``, nginx)."""
    fields: XfccElement | None
    """XFCC's separate fields, used when no certificate was forwarded."""


class ForwardedCertificateReader:
    """Finds the forwarded certificate header in a request and checks who sent it."""

    def __init__(self, cfg: ForwardedCertConfig, *, resolve_path: Callable[[str], Path] = Path) -> None:
        self.header = cfg.header
        self.format = cfg.format
        self._header_bytes = cfg.header.encode("latin-1")
        self._networks = [ipaddress.ip_network(n, strict=False) for n in cfg.trusted_proxies]
        self._verifier = ForwardedChainVerifier(resolve_path(cfg.ca_file)) if cfg.ca_file else None

    def is_trusted(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def header_value(self, scope: dict[str, Any]) -> str | None:
        values = [v for name, v in scope.get("headers", ()) if name == self._header_bytes]
        if not values:
            return None
        if len(values) > 1 and self.format != "envoy_xfcc":
            raise AuthenticationError(
                f"the {self.header} header is given more than once", code="invalid_client_certificate"
            )
        # Several XFCC header lines mean the same as one comma-joined line.
        return ",".join(v.decode("latin-1") for v in values)

    def read(self, scope: dict[str, Any]) -> ForwardedCertificate | None:
        """The forwarded certificate, None without the header; AuthenticationError when the
        header comes from an untrusted address or cannot be parsed."""
        value = self.header_value(scope)
        if value is None:
            return None
        peer = immediate_peer(scope)
        if not self.is_trusted(peer):
            raise AuthenticationError(
                f"the {self.header} header is not accepted from {peer or 'an unknown address'}: "
                "it is not a trusted proxy",
                code="untrusted_forwarded_certificate",
            )
        if not value.strip():
            return None  # nginx sends an empty value when the client gave no certificate
        try:
            fields: XfccElement | None = None
            if self.format == "nginx_escaped_pem":
                chain = load_pem_chain(unquote(value))
            else:
                fields = parse_xfcc(value)[-1]
                # Chain holds the leaf and its intermediates; Cert the leaf alone.
                pem = fields.chain or fields.cert
                chain = load_pem_chain(pem) if pem else []
            der = chain[0].public_bytes(Encoding.DER) if chain else None
            if self._verifier is not None:
                if der is None:
                    raise ValueError(
                        "it carries no certificate to verify against forwarded.ca_file (XFCC Cert)"
                    )
                self._verifier.verify(chain, der)
        except ValueError as exc:
            raise AuthenticationError(
                f"the {self.header} header from {peer} is not accepted: {exc}",
                code="invalid_client_certificate",
            ) from None
        return ForwardedCertificate(der=der, fields=fields)
