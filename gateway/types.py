"""Small value types that travel forward through the pipeline.

They are shared by several stages, so they live apart from any one stage: the principal
(who is calling), the token usage a translator saw, and the deployment a request is routed to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AuthKind = Literal["api_key", "jwt", "mtls", "anonymous"]


@dataclass(slots=True)
class Principal:
    """The authenticated caller; becomes ``input.client`` for the policy."""

    auth: AuthKind
    key_id: str | None = None
    key_name: str | None = None
    team: str | None = None
    user: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    certificate: dict[str, Any] | None = None

    def as_input(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "auth": self.auth,
            "key_id": self.key_id,
            "key_name": self.key_name,
            "team": self.team,
            "user": self.user,
            "metadata": self.metadata,
            "claims": self.claims,
        }
        if self.certificate is not None:
            doc["certificate"] = self.certificate
        return doc


ANONYMOUS = Principal(auth="anonymous")


@dataclass(slots=True)
class Usage:
    """Token usage for one call, as the provider reported it (or estimated, flagged)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens or self.cache_write_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage
