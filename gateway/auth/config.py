"""Settings of authentication (section ``auth`` of the config file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Accept calls without credentials as the anonymous principal (development only).
    allow_anonymous: bool = False
