"""Settings of TLS on both sides of the gateway.

``ServerTLSConfig`` is the ``server.tls`` section (inbound: clients to the gateway, directly or
through a TLS-terminating proxy); ``UpstreamTLSConfig`` is the ``tls`` block of a provider, a
deployment and the OPA engine (outbound). Paths are kept as written; relative ones are resolved
against the config file's folder by whoever builds the SSL contexts (``GatewayConfig.resolve_path``).

There is deliberately no switch that turns certificate verification off.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TLSVersionName = Literal["1.2", "1.3"]

#: How an identity mapping key names a certificate; see ``IdentityBinding``.
IDENTITY_KEY_KINDS = ("spiffe", "uri", "dns", "email", "cn", "sha256")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentityBinding(_Strict):
    """What a certificate identity stands for, like the team/user/metadata of a gateway key."""

    team: str | None = None
    user: str | None = None
    metadata: dict[str, Any] = {}


def normalize_identity_key(key: str) -> str:
    """Canonical form of an ``identities`` key, or ValueError naming the accepted forms.

    Accepted: ``spiffe://trust-domain/path`` (a URI SAN), ``uri:<any URI SAN>``, ``dns:<name>``,
    ``email:<address>``, ``cn:<subject common name>``, ``sha256:<fingerprint>`` (hex, colons
    allowed). A trailing ``*`` on a ``spiffe://`` or ``uri:`` key matches by prefix.
    """
    if key.startswith("spiffe://"):
        return key
    kind, sep, value = key.partition(":")
    kind = kind.lower()
    if not sep or not value or kind not in IDENTITY_KEY_KINDS[1:]:
        raise ValueError(
            f"identity key {key!r} must be one of spiffe://…, uri:…, dns:…, email:…, cn:…, sha256:…"
        )
    if kind == "sha256":
        digest = value.replace(":", "").lower()
        if not _HEX64.match(digest):
            raise ValueError(f"identity key {key!r}: sha256 fingerprint must be 64 hex digits")
        return f"sha256:{digest}"
    if kind in ("dns", "email"):
        value = value.lower()
    if kind == "uri" and value.startswith("spiffe://"):
        return value
    return f"{kind}:{value}"


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return values


class ForwardedCertConfig(_Strict):
    """Accept the client certificate from a TLS-terminating proxy in front of the gateway."""

    #: ``x-forwarded-client-cert`` (Envoy's XFCC) or the header nginx sets from
    #: ``$ssl_client_escaped_cert`` (e.g. ``ssl-client-cert``, ``x-ssl-client-cert``).
    header: str = "x-forwarded-client-cert"
    #: How the header is written; by default ``envoy_xfcc`` for ``x-forwarded-client-cert``,
    #: ``nginx_escaped_pem`` for any other header name.
    format: Literal["envoy_xfcc", "nginx_escaped_pem"] | None = None
    #: Addresses (or CIDR networks) of the proxies allowed to send the header. Anyone else who
    #: sends it is refused with 401.
    trusted_proxies: list[str] = Field(min_length=1)
    #: Verify forwarded certificates against this CA bundle too (defence in depth). With it, a
    #: header must carry the certificate itself (XFCC ``Cert``/``Chain``), not only its fields.
    ca_file: str | None = None

    @field_validator("header")
    @classmethod
    def _header_lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        return _check_networks(values)

    @model_validator(mode="after")
    def _default_format(self) -> ForwardedCertConfig:
        if self.format is None:
            self.format = "envoy_xfcc" if self.header == "x-forwarded-client-cert" else "nginx_escaped_pem"
        return self


class ServerTLSConfig(_Strict):
    """Inbound TLS (section ``server.tls``).

    With ``cert_file``/``key_file`` the gateway terminates TLS itself; without them it serves
    plain HTTP and can still take client certificates from a trusted proxy (``forwarded``).
    """

    cert_file: str | None = None
    #: A path, or a secret reference (``file:/run/secrets/gateway.key``, ``env:…``, ``vault:…``).
    key_file: str | None = None
    #: CA bundle that client certificates must chain to.
    client_ca_file: str | None = None
    #: Refuse the TLS handshake when the client sends no certificate. Without it a certificate
    #: is optional, but one that is sent must still verify against ``client_ca_file``.
    require_client_cert: bool = False
    min_version: TLSVersionName = "1.2"
    #: Certificate identity → team/user/metadata; keys as in ``normalize_identity_key``.
    identities: dict[str, IdentityBinding] = {}
    #: Let a verified certificate that matches no ``identities`` entry through (the policy then
    #: sees ``input.client.certificate`` without team/user). False refuses it with 401.
    allow_unmapped: bool = True
    forwarded: ForwardedCertConfig | None = None
    #: How often (seconds) the certificate, key and CA files are checked for changes; changed
    #: files are used for new connections without a restart.
    reload_interval_s: float = Field(10.0, ge=0)

    @field_validator("identities")
    @classmethod
    def _identity_keys(cls, values: dict[str, IdentityBinding]) -> dict[str, IdentityBinding]:
        normalized: dict[str, IdentityBinding] = {}
        for key, binding in values.items():
            canonical = normalize_identity_key(key)
            if canonical in normalized:
                raise ValueError(f"identity key {key!r} is given twice")
            normalized[canonical] = binding
        return normalized

    @model_validator(mode="after")
    def _consistent(self) -> ServerTLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.client_ca_file and not self.cert_file:
            raise ValueError("client_ca_file needs cert_file/key_file (the gateway must terminate TLS)")
        if self.require_client_cert and not self.client_ca_file:
            raise ValueError("require_client_cert needs client_ca_file")
        return self

    @property
    def terminates_tls(self) -> bool:
        return self.cert_file is not None


class UpstreamTLSConfig(_Strict):
    """Outbound TLS to a provider, a deployment or the OPA sidecar (block ``tls``)."""

    #: CA bundle to trust; None uses the system trust store.
    ca_file: str | None = None
    #: Client certificate (PEM, may include intermediates) for mutual TLS.
    client_cert_file: str | None = None
    #: Its private key, as a secret reference: ``file:/path``, ``env:NAME``, ``vault:path#field``.
    client_key: str | None = None
    min_version: TLSVersionName = "1.2"
    #: How often (seconds) the files are checked for changes; changed files give a new context
    #: for new connections without a restart.
    reload_interval_s: float = Field(10.0, ge=0)

    @field_validator("client_key")
    @classmethod
    def _key_is_reference(cls, value: str | None) -> str | None:
        if value is not None and ":" not in value:
            raise ValueError("must be a secret reference such as 'file:/run/secrets/client.key'")
        return value

    @model_validator(mode="after")
    def _pair(self) -> UpstreamTLSConfig:
        if (self.client_cert_file is None) != (self.client_key is None):
            raise ValueError("client_cert_file and client_key go together")
        return self
