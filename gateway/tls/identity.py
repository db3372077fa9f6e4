"""A client certificate as an identity: the facts the policy sees under ``input.client.certificate``.

The shape is the same whether the certificate came from the gateway's own TLS handshake or from a
trusted proxy's header; fields a source cannot know are ``None`` (or empty lists)::

    {
      "source": "tls" | "forwarded",
      "subject": "CN=notebook,O=Research",      # RFC 4514
      "common_name": "notebook",
      "issuer": "CN=Example Internal CA",       # RFC 4514, None when only XFCC fields were forwarded
      "serial_number": "5d1c…",                 # hex
      "san": {"dns": [...], "uri": [...], "email": [...], "ip": [...]},
      "spiffe_id": "spiffe://example.org/ns/research/sa/notebook",   # first spiffe:// URI SAN
      "fingerprint_sha256": "ab12…",            # lowercase hex of the DER certificate
      "not_before": "2026-01-01T00:00:00Z", "not_after": "…"         # RFC 3339
    }
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _common_name(name: x509.Name) -> str | None:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _spiffe_id(uris: Iterable[str]) -> str | None:
    return next((uri for uri in uris if uri.startswith("spiffe://")), None)


def _san(cert: x509.Certificate) -> dict[str, list[str]]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {"dns": [], "uri": [], "email": [], "ip": []}
    return {
        "dns": names.get_values_for_type(x509.DNSName),
        "uri": names.get_values_for_type(x509.UniformResourceIdentifier),
        "email": names.get_values_for_type(x509.RFC822Name),
        "ip": [str(ip) for ip in names.get_values_for_type(x509.IPAddress)],
    }


def certificate_identity(der: bytes, *, source: str = "tls") -> dict[str, Any]:
    """Parse a DER certificate into the identity document (see the module docstring)."""
    cert = x509.load_der_x509_certificate(der)
    san = _san(cert)
    return {
        "source": source,
        "subject": cert.subject.rfc4514_string(),
        "common_name": _common_name(cert.subject),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": format(cert.serial_number, "x"),
        "san": san,
        "spiffe_id": _spiffe_id(san["uri"]),
        "fingerprint_sha256": hashlib.sha256(der).hexdigest(),
        "not_before": _rfc3339(cert.not_valid_before_utc),
        "not_after": _rfc3339(cert.not_valid_after_utc),
    }


def _common_name_from_subject(subject: str | None) -> str | None:
    # Envoy writes the subject either RFC 2253 style ("CN=a,O=b") or OpenSSL's one-line style
    # ("/O=b/CN=a"); take the CN from either without a full DN parser.
    if not subject:
        return None
    parts = subject.split("/") if subject.startswith("/") else subject.split(",")
    for part in parts:
        name, sep, value = part.strip().partition("=")
        if sep and name.strip().upper() == "CN":
            return value.strip()
    return None


def identity_from_fields(
    *,
    subject: str | None,
    uris: list[str],
    dns: list[str],
    fingerprint_sha256: str | None,
) -> dict[str, Any]:
    """Identity built from the separate fields of an XFCC element that carried no ``Cert``."""
    return {
        "source": "forwarded",
        "subject": subject,
        "common_name": _common_name_from_subject(subject),
        "issuer": None,
        "serial_number": None,
        "san": {"dns": list(dns), "uri": list(uris), "email": [], "ip": []},
        "spiffe_id": _spiffe_id(uris),
        "fingerprint_sha256": fingerprint_sha256.lower() if fingerprint_sha256 else None,
        "not_before": None,
        "not_after": None,
    }
