"""Checking a forwarded client certificate against a CA bundle, as defence in depth.

A trusted proxy has already verified the certificate; verifying it again here means a proxy
misconfigured to accept any client certificate (``ssl_verify_client optional_no_ca``, an Envoy
listener without ``validation_context``) cannot let in identities the gateway's CA never issued.
Uses ``cryptography``'s X.509 verifier (the client profile: chain to the bundle, validity period,
clientAuth extended key usage), with a subject alternative name optional as OpenSSL has it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification


class ForwardedChainVerifier:
    def __init__(self, ca_file: Path, *, cache_size: int = 1024) -> None:
        try:
            roots = x509.load_pem_x509_certificates(ca_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise ValueError(f"forwarded.ca_file {ca_file} does not load: {exc}") from None
        self._store = verification.Store(roots)
        self._leaf_policy = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
        )
        self._ca_policy = verification.ExtensionPolicy.webpki_defaults_ca()
        # Verified leaf (DER) → until when that verification holds (its not_after).
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, chain: list[x509.Certificate], leaf_der: bytes) -> None:
        """Return when ``chain[0]`` chains to the bundle now; ValueError saying why otherwise."""
        valid_until = self._verified.get(leaf_der)
        if valid_until is not None and time.time() < valid_until:
            self._verified.move_to_end(leaf_der)
            return
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .extension_policies(ee_policy=self._leaf_policy, ca_policy=self._ca_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(chain[0], chain[1:])
        except verification.VerificationError as exc:
            raise ValueError(f"the certificate does not verify against forwarded.ca_file ({exc})") from None
        self._verified[leaf_der] = chain[0].not_valid_after_utc.timestamp()
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
