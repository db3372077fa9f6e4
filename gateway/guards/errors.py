"""Errors raised by the guards; messages name entity types, never the values found."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.errors import PolicyDeniedError


class GuardDeniedError(PolicyDeniedError):
    """A response carried an entity type the decision lists in ``response.deny_on``."""

    def __init__(self, entity_types: Iterable[str], *, status: int | None = None) -> None:
        self.entity_types = sorted(set(entity_types))
        super().__init__(
            "The response was blocked by policy: it contained " + ", ".join(self.entity_types) + ".",
            status=status,
        )
