"""Loading certificate and key files into SSL contexts, with keys given by secret reference.

Python's ``ssl`` only loads keys from files. A key given as ``file:/path`` (or a plain path) is
loaded straight from that file. A key held elsewhere (``env:``, ``vault:`` …) is resolved by the
caller's resolver and written to a private temporary file for the one ``load_cert_chain`` call,
then removed; it never reaches a log or an error message.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Resolves a secret reference (``env:NAME``, ``vault:path#field`` …) to its value.
SecretResolver = Callable[[str], str]
#: Turns a path from the config into a real path (relative to the config file's folder).
PathResolver = Callable[[str], Path]

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class CertificateFileError(Exception):
    """A certificate, key or CA file cannot be read or does not fit; the message names the file."""


def key_file_path(reference: str, resolve_path: PathResolver) -> Path | None:
    """The file a key reference points at, or None when the key is held elsewhere."""
    if reference.startswith("file:"):
        return resolve_path(reference[len("file:") :])
    scheme = reference.partition(":")[0]
    # A bare path ("certs/gw.key", "/etc/gw.key", "C:\\…") is not a reference to a secret store.
    if ":" not in reference or len(scheme) == 1 or "/" in scheme:
        return resolve_path(reference)
    return None


def load_cert_chain(
    context: ssl.SSLContext,
    cert_file: Path,
    key_reference: str,
    resolve_path: PathResolver,
    resolve_secret: SecretResolver | None,
) -> None:
    key_path = key_file_path(key_reference, resolve_path)
    try:
        if key_path is not None:
            context.load_cert_chain(cert_file, key_path)
            return
        if resolve_secret is None:
            scheme = key_reference.partition(":")[0]
            raise CertificateFileError(f"key reference scheme {scheme!r} needs a secret resolver")
        pem = resolve_secret(key_reference)
        with tempfile.TemporaryDirectory(prefix="gateway-tls-") as folder:
            path = Path(folder) / "key.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(pem)
            context.load_cert_chain(cert_file, path)
    except FileNotFoundError as exc:
        raise CertificateFileError(f"cannot read {exc.filename}: no such file") from None
    except ssl.SSLError as exc:
        raise CertificateFileError(
            f"certificate {cert_file} and its key do not load: {exc.reason or exc}"
        ) from None


def load_verify_locations(context: ssl.SSLContext, ca_file: Path) -> None:
    try:
        context.load_verify_locations(cafile=ca_file)
    except FileNotFoundError:
        raise CertificateFileError(f"cannot read CA file {ca_file}: no such file") from None
    except ssl.SSLError as exc:
        raise CertificateFileError(f"CA file {ca_file} does not load: {exc.reason or exc}") from None


def file_stamp(paths: list[Path]) -> tuple[tuple[int, int, int], ...]:
    """What identifies the current content of the files cheaply: (inode, size, mtime_ns) each.

    The inode catches an atomic rename (how Kubernetes and cert-manager rotate secrets) even when
    the size and modification time happen to match.
    """
    stamps: list[tuple[int, int, int]] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            stamps.append((0, -1, 0))
            continue
        stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamps)
