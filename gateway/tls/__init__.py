"""Mutual TLS on both sides of the gateway: inbound client certificates, outbound CA bundles
and client certificates, certificate identities for the policy. See docs/tls.md.

Import from the submodules (``gateway.tls.config``, ``gateway.tls.inbound``, ...): this package
imports nothing itself, so the configuration models do not pull in uvicorn's protocols or
opa-python-client (and requests) for gateways that use neither.
"""
