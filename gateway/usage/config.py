"""Settings of usage and decision recording (section ``usage`` of the config file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnomalyConfig(BaseModel):
    """Per-key baseline of tokens and requests per hour (see ``gateway.usage.anomaly``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: How fast the baseline forgets: an hour this long ago weighs half as much as the last one.
    half_life_hours: float = Field(24.0, gt=0)
    #: Completed hours a key needs before it gets a non-zero score (no baseline, no anomaly).
    min_hours: int = Field(3, ge=1)
    #: Standard deviations above the baseline that give a score of 1.0.
    z_max: float = Field(6.0, gt=0)
    #: Baseline floors, so a key that usually idles is not flagged for ten requests.
    min_tokens_per_hour: float = Field(1000.0, ge=0)
    min_requests_per_hour: float = Field(10.0, ge=0)
    #: Score at which an anomaly event is counted and logged (once per key and hour).
    threshold: float = Field(0.8, gt=0, le=1)
    #: Keys tracked in memory; the least recently seen is forgotten beyond this.
    max_keys: int = Field(100_000, ge=1)


class UsageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Records written per database transaction.
    batch_size: int = Field(500, ge=1)
    #: Longest a record waits in the queue before its batch is written.
    flush_interval_s: float = Field(0.5, gt=0)
    #: Folder of the append-only spool used while the database is down or slow.
    spool_dir: str = "var/spool"
    #: Records held in memory; beyond this, records go straight to the spool (never dropped).
    queue_max: int = Field(50_000, ge=1)
    #: A batch write slower than this counts as a database failure; the batch is spooled.
    write_timeout_s: float = Field(5.0, gt=0)
    #: After a failure, how long the writer sends batches to the spool before trying the database.
    retry_interval_s: float = Field(2.0, gt=0)
    #: Store the (already redacted) request and response text with each usage record. Off by default.
    log_payloads: bool = False
    #: One OpenTelemetry span per provider call (GenAI conventions; needs the ``otel`` extra and a
    #: tracer provider configured, e.g. by ``opentelemetry-instrument``).
    tracing: bool = False
    anomaly: AnomalyConfig = AnomalyConfig()
