"""Settings of consumption control (section ``limits`` of the config file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class LimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
