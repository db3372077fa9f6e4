"""Mutual TLS on both sides of the gateway: inbound client certificates, outbound CA bundles
and client certificates, certificate identities for the policy. See docs/tls.md."""

from gateway.tls.authenticator import CertificateAuthenticator, IdentityMap
from gateway.tls.config import ForwardedCertConfig, IdentityBinding, ServerTLSConfig, UpstreamTLSConfig
from gateway.tls.files import CertificateFileError
from gateway.tls.forwarded import ForwardedCertificateReader, parse_xfcc
from gateway.tls.identity import certificate_identity, identity_from_fields
from gateway.tls.inbound import (
    ServerSSLContextFactory,
    ServerTLSContext,
    TLSH11Protocol,
    TLSHttpToolsProtocol,
    build_server_ssl_context,
    gateway_http_protocol,
    immediate_peer,
    peer_certificate_der,
    tls_extension,
    uvicorn_ssl_context_factory,
)
from gateway.tls.opa_client import TLSAsyncOpaClient
from gateway.tls.upstream import UpstreamTLS, describe_tls_error, is_tls_error, tls_failure

__all__ = [
    "CertificateAuthenticator",
    "CertificateFileError",
    "ForwardedCertConfig",
    "ForwardedCertificateReader",
    "IdentityBinding",
    "IdentityMap",
    "ServerSSLContextFactory",
    "ServerTLSConfig",
    "ServerTLSContext",
    "TLSAsyncOpaClient",
    "TLSH11Protocol",
    "TLSHttpToolsProtocol",
    "UpstreamTLS",
    "UpstreamTLSConfig",
    "build_server_ssl_context",
    "certificate_identity",
    "describe_tls_error",
    "gateway_http_protocol",
    "identity_from_fields",
    "immediate_peer",
    "is_tls_error",
    "parse_xfcc",
    "peer_certificate_der",
    "tls_extension",
    "tls_failure",
    "uvicorn_ssl_context_factory",
]
