"""Settings of usage and decision recording (section ``usage`` of the config file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class UsageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = 500
    flush_interval_s: float = 0.5
    spool_dir: str = "var/spool"
