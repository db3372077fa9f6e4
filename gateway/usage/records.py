"""What is recorded for every request and every policy decision.

Records carry facts for chargeback and audit, never prompt or completion text: ``payload`` is
filled by the pipeline only when ``usage.log_payloads`` is on, and then only with text the
guards have already redacted. Records round-trip through plain dicts (the spool's JSON lines
and the database rows share the same field names).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(slots=True)
class UsageRecord:
    #: The gateway's unique id for the request (the primary key of ``usage_records``).
    request_id: str
    time: datetime
    #: The client's own ``x-request-id``, when it sent one.
    client_request_id: str | None = None
    endpoint: str = "chat.completions"
    key_id: str | None = None
    team: str | None = None
    user: str | None = None
    #: Tags from the policy decision (``decision.tags``), e.g. ``{"cost_center": "cc-42"}``.
    tags: dict[str, str] = field(default_factory=dict)
    requested_model: str | None = None
    served_model: str | None = None
    provider: str | None = None
    deployment: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    #: True when the provider reported no usage and the gateway's estimate was recorded.
    tokens_estimated: bool = False
    #: USD.
    cost: float = 0.0
    #: HTTP status answered to the client.
    status: int = 200
    error_type: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    cache_hit: bool = False
    decision_id: str | None = None
    #: Redacted request/response text; None unless ``usage.log_payloads`` is on.
    payload: dict[str, Any] | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def model(self) -> str | None:
        """The model charged for: the one served, or the one asked for when nothing was served."""
        return self.served_model or self.requested_model

    def to_row(self) -> dict[str, Any]:
        row = _shallow_dict(self, _USAGE_FIELDS)
        row["time"] = as_utc(self.time)
        row["user_id"] = row.pop("user")
        return row

    def to_json(self) -> dict[str, Any]:
        return _json_dict(self, _USAGE_FIELDS)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        return cls(**_values_from_json(cls, data))


@dataclass(slots=True)
class DecisionRecord:
    id: str
    request_id: str
    time: datetime
    allow: bool
    reasons: list[str] = field(default_factory=list)
    #: Hash of the loaded policies and data, so a decision can be replayed against its policy.
    policy_revision: str | None = None
    eval_ms: float = 0.0
    #: ``opa`` (sidecar) or ``embedded``.
    engine: str = "embedded"

    def to_row(self) -> dict[str, Any]:
        row = _shallow_dict(self, _DECISION_FIELDS)
        row["time"] = as_utc(self.time)
        return row

    def to_json(self) -> dict[str, Any]:
        return _json_dict(self, _DECISION_FIELDS)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DecisionRecord:
        return cls(**_values_from_json(cls, data))


def _json_dict(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    row = _shallow_dict(record, names)
    row["time"] = as_utc(record.time).isoformat()
    return row


def _values_from_json(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of ``cls`` in a ``to_json`` document (unknown keys ignored)."""
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in known}
    values["time"] = as_utc(datetime.fromisoformat(values["time"]))
    return values


def _shallow_dict(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The record as a dict, copying its one level of containers (tags, reasons, payload).

    Not ``dataclasses.asdict``: its recursive deep copy was measured at 8% of the gateway's CPU
    under load, for records whose containers are flat.
    """
    row = {name: getattr(record, name) for name in names}
    for name, value in row.items():
        if isinstance(value, dict):
            row[name] = dict(value)
        elif isinstance(value, list):
            row[name] = list(value)
    return row


_USAGE_FIELDS = tuple(f.name for f in fields(UsageRecord))
_DECISION_FIELDS = tuple(f.name for f in fields(DecisionRecord))
