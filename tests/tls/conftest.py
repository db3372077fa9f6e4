from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tls.certs import CertificateAuthority, IssuedCertificate, expired_window

SPIFFE_NOTEBOOK = "spiffe://example.org/ns/research/sa/notebook"


@dataclass
class Pki:
    folder: Path
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    server: IssuedCertificate
    client: IssuedCertificate
    unknown_ca_client: IssuedCertificate
    expired_client: IssuedCertificate


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority.create(tmp_path / "ca", "Example Internal CA")
    other = CertificateAuthority.create(tmp_path / "other", "Somebody Else CA")
    return Pki(
        folder=tmp_path,
        ca=ca,
        other_ca=other,
        server=ca.issue_server(tmp_path),
        client=ca.issue_client(
            tmp_path,
            "notebook",
            organization="Research",
            uris=[SPIFFE_NOTEBOOK],
            dns=["notebook.research.internal"],
            emails=["notebook@example.org"],
        ),
        unknown_ca_client=other.issue_client(tmp_path, "stranger", uris=[SPIFFE_NOTEBOOK]),
        expired_client=ca.issue_client(tmp_path, "expired", uris=[SPIFFE_NOTEBOOK], **expired_window()),
    )
