"""The OPA sidecar engine: ``POST /v1/data/gateway/decision`` through opa-python-client.

One ``AsyncOpaClient`` (one pooled aiohttp session) per gateway process, opened in ``start``
and closed in ``close``. The client's own retries are off: a decision must come back within
``policy.timeout_s`` or not at all, and the pipeline then fails closed. Each query asks for
``provenance`` so the revision recorded with a decision is the bundle revision OPA used.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from opa_client.opa_async import AsyncOpaClient

from gateway.policy.config import PolicyConfig
from gateway.policy.decision import Decision, DecisionError, parse_decision
from gateway.policy.engine import PolicyEngineError
from gateway.tls.opa_client import TLSAsyncOpaClient
from gateway.tls.upstream import UpstreamTLS


def _revision_from(provenance: Any) -> str | None:
    if not isinstance(provenance, dict):
        return None
    bundles = provenance.get("bundles")
    if isinstance(bundles, dict) and bundles:
        revisions = [
            f"{name}@{info['revision']}" if len(bundles) > 1 else str(info["revision"])
            for name, info in sorted(bundles.items())
            if isinstance(info, dict) and info.get("revision")
        ]
        if revisions:
            return ",".join(revisions)
    return None


class OpaSidecarEngine:
    name = "opa"

    def __init__(self, config: PolicyConfig, base_dir: Path) -> None:
        url = urlsplit(config.opa_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"policy.opa_url must be http(s)://host[:port], got {config.opa_url!r}")
        if url.path not in ("", "/"):
            raise ValueError("policy.opa_url must not have a path: OPA's API lives at /v1 on its root")
        self._timeout_s = config.timeout_s
        options: dict[str, Any] = {
            "host": url.hostname,
            "port": url.port or (443 if url.scheme == "https" else 80),
            "retries": 0,
            "timeout": config.timeout_s,
        }
        if config.tls is not None:
            # Private CA, client certificate and rotation: the TLS-aware subclass of the client.
            tls = UpstreamTLS(config.tls, name="opa", resolve_path=lambda p: base_dir / p)
            self._client = TLSAsyncOpaClient(tls=tls, **options)
        else:
            self._client = AsyncOpaClient(ssl=url.scheme == "https", **options)
        self._started = False
        self._revision = "opa"

    @property
    def revision(self) -> str:
        return self._revision

    async def start(self) -> None:
        await self._client.__aenter__()
        self._started = True

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self._client.close_connection()

    async def healthy(self) -> bool:
        if not self._started:
            return False
        return bool(await self._client.check_health())

    async def decide(self, input: dict[str, Any]) -> Decision:
        if not self._started:
            raise PolicyEngineError("the OPA client is not started", reason="not_started")
        try:
            # The session's total timeout bounds the call; this bounds the client's own logic too.
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.query_rule(
                    input, "gateway", "decision", query_params={"provenance": "true"}
                )
        except TimeoutError:
            raise PolicyEngineError(
                f"OPA did not answer within {self._timeout_s:g} s", reason="timeout"
            ) from None
        except aiohttp.ClientResponseError as exc:
            raise PolicyEngineError(
                f"OPA answered HTTP {exc.status} {exc.message}", reason="opa_error"
            ) from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise PolicyEngineError(f"OPA is unreachable: {exc}", reason="unreachable") from None
        if not isinstance(response, dict) or "result" not in response:
            raise PolicyEngineError("data.gateway.decision is undefined in OPA", reason="undefined")
        revision = _revision_from(response.get("provenance"))
        if revision is not None:
            self._revision = revision
        try:
            return parse_decision(response["result"])
        except DecisionError as exc:
            raise PolicyEngineError(f"invalid decision: {exc}", reason="invalid_decision") from None
