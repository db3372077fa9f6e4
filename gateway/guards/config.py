"""Settings of the guards (section ``guards`` of the config file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GuardsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
