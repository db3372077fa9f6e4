"""Policy files on disk: which Rego modules and data documents a set of paths holds.

Data follows OPA's bundle convention: the content of a ``data.json`` (or ``data.yaml``) file is
placed at the path of its directory relative to the root it was found under, so
``policies/data.json`` is the root of ``data`` and ``policies/teams/data.json`` becomes
``data.teams``. Other ``.json`` files are not data (``opa run``/``opa test`` treat them alike
only when named ``data.json``; keep fixtures in Rego). The same files served as an OPA bundle
give the same data document, which is what keeps the two engines' answers equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from opa_bindings import OpaEngine

DATA_FILE_NAMES = ("data.json", "data.yaml", "data.yml")


class PolicyLoadError(Exception):
    """A policy or data file cannot be read, parsed or compiled."""


@dataclass(slots=True)
class PolicySource:
    """Everything loaded from the configured paths, and a revision naming that content."""

    modules: dict[str, str] = field(default_factory=dict)
    #: (dotted data path, document) pairs, in load order.
    data: list[tuple[str, Any]] = field(default_factory=list)
    revision: str = ""


def _walk(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        yield path


def _is_policy_file(path: Path, include_tests: bool) -> bool:
    if path.suffix != ".rego":
        return False
    return include_tests or not path.name.endswith("_test.rego")


def source_files(paths: Iterable[Path], *, include_tests: bool = False) -> list[tuple[Path, Path]]:
    """(root, file) pairs of every policy and data file under ``paths``."""
    found: list[tuple[Path, Path]] = []
    for root in paths:
        if not root.exists():
            raise PolicyLoadError(f"{root}: no such file or directory")
        for path in _walk(root):
            if _is_policy_file(path, include_tests) or path.name in DATA_FILE_NAMES:
                found.append((root, path))
    return found


def fingerprint(paths: Iterable[Path], *, include_tests: bool = False) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detector: names, sizes and modification times of the files."""
    stamp = []
    for _root, path in source_files(paths, include_tests=include_tests):
        st = path.stat()
        stamp.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def _data_path(root: Path, path: Path) -> str:
    if root.is_file():
        return ""
    rel = path.parent.relative_to(root)
    return ".".join(rel.parts)


def _parse_data(path: Path, raw: bytes) -> Any:
    try:
        if path.suffix == ".json":
            return json.loads(raw)
        return yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicyLoadError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None


def read_source(paths: Iterable[Path], *, include_tests: bool = False) -> PolicySource:
    """Read the modules and data under ``paths``; the revision hashes their content."""
    source = PolicySource()
    digest = hashlib.sha256()
    for root, path in source_files(list(paths), include_tests=include_tests):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyLoadError(f"{path}: cannot read: {exc.strerror}") from None
        digest.update(str(path.relative_to(root) if root.is_dir() else path.name).encode())
        digest.update(b"\0")
        digest.update(raw)
        if path.suffix == ".rego":
            source.modules[str(path)] = raw.decode("utf-8")
        else:
            source.data.append((_data_path(root, path), _parse_data(path, raw)))
    source.revision = digest.hexdigest()[:16]
    return source


def build_engine(source: PolicySource) -> OpaEngine:
    """A new OpaEngine holding ``source``; parse errors and data conflicts raise PolicyLoadError.

    Compile errors (unsafe variables, type errors) only show at the first evaluation: callers
    that must know the policy works evaluate a probe input before using the engine.
    """
    from opa_bindings import OpaError

    engine = OpaEngine()
    try:
        for name, text in source.modules.items():
            engine.add_policy(name, text)
        for data_path, document in source.data:
            engine.add_data(document, data_path)
    except OpaError as exc:
        engine.close()
        raise PolicyLoadError(exc.message) from None
    return engine
