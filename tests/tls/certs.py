"""Test certificates made on the fly with ``cryptography``: a CA and the leaves it signs.

Reusable by any test that needs real TLS::

    ca = CertificateAuthority.create(tmp_path, "Test CA")
    server = ca.issue_server(tmp_path, "server", dns=["localhost"], ips=["127.0.0.1"])
    client = ca.issue_client(tmp_path, "notebook", uris=["spiffe://example.org/ns/research/sa/notebook"])

Every issued certificate is written as ``<name>.crt`` / ``<name>.key`` (PEM, unencrypted) in the
given folder; the returned ``IssuedCertificate`` carries the paths, the DER bytes and the SHA-256
fingerprint the gateway computes, so tests can compare against them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_ONE_DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    name: str
    cert_path: Path
    key_path: Path
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def fingerprint_sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    name: str
    cert_path: Path
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, folder: Path, name: str = "Test CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + 30 * _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        slug = name.lower().replace(" ", "-")
        cert_path = folder / f"{slug}.crt"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(name=name, cert_path=cert_path, key=key, certificate=cert)

    def issue(
        self,
        folder: Path,
        name: str,
        *,
        server: bool,
        common_name: str | None = None,
        organization: str | None = None,
        dns: Iterable[str] = (),
        ips: Iterable[str] = (),
        uris: Iterable[str] = (),
        emails: Iterable[str] = (),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name or name)]
        if organization:
            attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        san += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        san += [x509.UniformResourceIdentifier(u) for u in uris]
        san += [x509.RFC822Name(e) for e in emails]
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - _ONE_DAY)
            .not_valid_after(not_after or now + 7 * _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        return IssuedCertificate(name=name, cert_path=cert_path, key_path=key_path, certificate=cert)

    def issue_server(
        self,
        folder: Path,
        name: str = "server",
        *,
        dns: Iterable[str] = ("localhost",),
        ips: Iterable[str] = ("127.0.0.1",),
        **kwargs: object,
    ) -> IssuedCertificate:
        """A server certificate; by default valid for ``localhost`` and ``127.0.0.1``."""
        return self.issue(folder, name, server=True, dns=dns, ips=ips, **kwargs)  # type: ignore[arg-type]

    def issue_client(self, folder: Path, name: str, **kwargs: object) -> IssuedCertificate:
        """A client certificate (extended key usage clientAuth)."""
        return self.issue(folder, name, server=False, **kwargs)  # type: ignore[arg-type]


def expired_window() -> dict[str, dt.datetime]:
    """Keyword arguments for ``issue_*`` that make a certificate that expired yesterday."""
    now = _now()
    return {"not_before": now - 10 * _ONE_DAY, "not_after": now - _ONE_DAY}
