"""Settings of the policy stage (section ``policy`` of the config file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["embedded", "opa"] = "embedded"
    #: Rego files and JSON/YAML data loaded by the embedded engine (relative to the config file).
    paths: list[str] = ["policies"]
    #: The OPA sidecar (engine: opa).
    opa_url: str = "http://127.0.0.1:8181"
    timeout_s: float = 0.25
    #: Put the prompt text itself into the input document (features are always there).
    include_prompt: bool = False
    #: Reload the embedded engine when policy files change.
    watch: bool = True
