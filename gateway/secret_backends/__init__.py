"""Remote secret stores behind one tiny interface: ``fetch(path) -> str`` (blocking).

Each backend imports its vendor SDK lazily, so the gateway runs without the optional extras;
a reference to a store whose extra is missing fails at start with the pip command to run.
"""

from __future__ import annotations

import json
from typing import Protocol


class SecretBackendError(Exception):
    """A secret could not be fetched; the message never contains a secret value."""


class SecretBackend(Protocol):
    def fetch(self, path: str) -> str: ...


def missing_extra(scheme: str, extra: str, module: str) -> SecretBackendError:
    return SecretBackendError(
        f"{scheme}: references need the {module!r} package: pip install 'opa-ai-gateway[{extra}]'"
    )


def pick_field(value: str, field: str | None, where: str) -> str:
    """``value`` itself, or one field of it when it is a JSON object and a field was named."""
    if field is None:
        return value
    try:
        document = json.loads(value)
    except ValueError:
        raise SecretBackendError(f"{where} is not a JSON object, cannot read field {field!r}") from None
    if not isinstance(document, dict) or field not in document:
        raise SecretBackendError(f"{where} has no field {field!r}")
    return str(document[field])
