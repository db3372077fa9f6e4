"""Settings of the policy stage (section ``policy`` of the config file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.tls.config import UpstreamTLSConfig


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
    #: How often the embedded engine looks for changed policy files.
    reload_interval_s: float = Field(default=1.0, gt=0)
    #: Evaluate embedded decisions in a worker thread. Off by default: a default-policy decision
    #: takes ~0.5 ms inline and the hop adds ~0.1 ms; turn it on for heavy policies.
    eval_in_thread: bool = False
    #: Request headers copied into ``input.request.headers`` (credential headers never are).
    input_headers: list[str] = ["user-agent", "x-request-id", "openai-organization", "openai-project"]
    #: TLS to the OPA sidecar (https opa_url): CA bundle, client certificate and key, minimum
    #: version; reloaded when the files change (docs/tls.md).
    tls: UpstreamTLSConfig | None = None
