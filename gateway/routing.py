"""Model name → ordered deployments; retries, failover, backoff and per-deployment cooldown.

A public model maps to an ordered list of deployments. Deployments with the same ``priority``
form a group balanced by ``weight``; groups are tried in priority order (by default every
deployment has its list position as priority, so the list order is the failover order).

A call fails over to the next deployment on connect errors, timeouts, 429 and 5xx, never on
other 4xx. Going back to a deployment already tried waits with exponential backoff and full
jitter, or the upstream's ``Retry-After`` when it is shorter than ``backoff_max_s``. After
``cooldown_after`` failures in a row a deployment is skipped for ``cooldown_s`` (a circuit
breaker), unless every deployment is cooling down, when the one that recovers first is tried.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config import DEFAULT_API_BASE, DeploymentConfig, GatewayConfig, RoutingConfig
from gateway.errors import (
    GatewayError,
    ModelNotFoundError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamUnreachableError,
)
from gateway.providers import translator_for
from gateway.providers.base import Endpoint, StreamTranslator, Target, Translator
from gateway.upstream import Timeouts, UpstreamResponse, UpstreamTransport

SecretLookup = Callable[[str], str]


@dataclass(slots=True)
class Deployment:
    """A deployment with its resolved target and its health, shared by all requests."""

    name: str
    target: Target
    translator: Translator
    timeouts: Timeouts
    weight: int
    priority: int
    policy_fail_open: bool
    ssl_context: Callable[[], ssl.SSLContext | None] | None = None
    #: The provider's credential reference when it could not be resolved at start.
    missing_credential: str | None = None
    failures: int = 0
    cooled_until: float = 0.0


@dataclass(slots=True)
class Route:
    public_model: str
    kind: str
    encoding: str | None
    deployments: list[Deployment]


@dataclass(slots=True)
class Dispatched:
    """A successful upstream call: what served it and what it answered."""

    deployment: Deployment
    attempts: int
    body: dict[str, Any] | None = None
    usage: Any = None
    stream: StreamTranslator | None = None
    first_chunks: list[dict[str, Any]] = field(default_factory=list)
    chunks: AsyncIterator[bytes] | None = None
    response: UpstreamResponse | None = None
    upstream_ms: float = 0.0


def _retry_after_s(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Router:
    def __init__(
        self,
        config: GatewayConfig,
        transport: UpstreamTransport,
        secret: SecretLookup,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._config: RoutingConfig = config.routing
        self._transport = transport
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.routes: dict[str, Route] = {}
        for public_model, model in config.models.items():
            deployments = [
                self._deployment(config, public_model, i, d, secret) for i, d in enumerate(model.deployments)
            ]
            self.routes[public_model] = Route(public_model, model.kind, model.encoding, deployments)

    @staticmethod
    def _deployment(
        config: GatewayConfig, public_model: str, index: int, d: DeploymentConfig, secret: SecretLookup
    ) -> Deployment:
        provider = config.providers[d.provider]
        name = d.name or f"{public_model}/{d.provider}/{index}"
        target = Target(
            deployment=name,
            provider=d.provider,
            provider_type=provider.type,
            base_url=d.api_base or provider.api_base or DEFAULT_API_BASE.get(provider.type, ""),
            model=d.model,
            api_key=secret(provider.api_key) if provider.api_key else None,
            api_version=d.api_version or provider.api_version,
            headers={**provider.headers, **d.headers},
            params=dict(d.params),
            options=dict(provider.options),
        )
        return Deployment(
            name=name,
            missing_credential=provider.api_key if provider.api_key and target.api_key is None else None,
            target=target,
            translator=translator_for(provider.type),
            timeouts=Timeouts(
                total_s=d.timeout_s or provider.timeout_s, connect_s=provider.connect_timeout_s
            ),
            weight=d.weight,
            priority=d.priority if d.priority is not None else index,
            policy_fail_open=d.policy_fail_open,
        )

    def route(self, public_model: Any) -> Route:
        route = self.routes.get(public_model) if isinstance(public_model, str) else None
        if route is None:
            raise ModelNotFoundError(
                f"The model `{public_model}` does not exist or you do not have access to it.", param="model"
            )
        return route

    # -- planning ------------------------------------------------------------------------

    def plan(self, route: Route) -> list[Deployment]:
        """The order in which to try this route's deployments for one request."""
        now = self._clock()
        healthy = [d for d in route.deployments if d.cooled_until <= now and d.weight > 0]
        if not healthy:
            # Weight 0 means drained: never a target, not even while the others cool down.
            live = [d for d in route.deployments if d.weight > 0]
            if not live:
                raise ServiceUnavailableError(
                    f"The model `{route.public_model}` has no deployment taking traffic."
                )
            return [min(live, key=lambda d: d.cooled_until)]
        groups: dict[int, list[Deployment]] = {}
        for d in healthy:
            groups.setdefault(d.priority, []).append(d)
        ordered: list[Deployment] = []
        for priority in sorted(groups):
            ordered.extend(self._weighted_order(groups[priority]))
        return ordered

    def _weighted_order(self, group: list[Deployment]) -> list[Deployment]:
        if len(group) == 1:
            return group
        # Efraimidis-Spirakis: a weighted random permutation in one pass.
        keys = [(self._rng.random() ** (1.0 / d.weight), i) for i, d in enumerate(group)]
        return [group[i] for _, i in sorted(keys, reverse=True)]

    def _succeeded(self, d: Deployment) -> None:
        d.failures = 0

    def _failed(self, d: Deployment, retry_after: float | None) -> None:
        d.failures += 1
        now = self._clock()
        if retry_after:
            d.cooled_until = max(d.cooled_until, now + retry_after)
        if d.failures >= self._config.cooldown_after:
            d.cooled_until = max(d.cooled_until, now + self._config.cooldown_s)

    def _backoff(self, round_number: int, retry_after: float | None) -> float | None:
        """Seconds to wait before going back to a deployment; None when it is not worth it."""
        cap = self._config.backoff_max_s
        if retry_after is not None:
            return retry_after if retry_after <= cap else None
        return self._rng.uniform(0, min(cap, self._config.backoff_base_s * (2**round_number)))

    # -- calling -------------------------------------------------------------------------

    async def dispatch(
        self,
        route: Route,
        endpoint: Endpoint,
        body: dict[str, Any],
        *,
        stream: bool,
        extra_headers: dict[str, str] | None = None,
    ) -> Dispatched:
        """Send the request, failing over until a deployment answers or attempts run out."""
        plan = self.plan(route)
        last_error: GatewayError | None = None
        # Per deployment: going back to one honours its own Retry-After, not the last one seen.
        retry_after: dict[str, float | None] = {}
        for attempt in range(self._config.max_attempts):
            deployment = plan[attempt % len(plan)]
            if attempt >= len(plan):
                wait = self._backoff(attempt // len(plan) - 1, retry_after.get(deployment.name))
                if wait is None:
                    break
                await self._sleep(wait)
            started = time.perf_counter()
            try:
                result = await self._attempt(deployment, route, endpoint, body, stream, extra_headers)
            except UpstreamStatusError as exc:
                if not exc.retryable:
                    raise
                last_error = exc
                retry_after[deployment.name] = _retry_after_s(exc.headers)
                self._failed(deployment, retry_after[deployment.name])
                continue
            except UpstreamError as exc:
                last_error = exc
                retry_after[deployment.name] = None
                self._failed(deployment, None)
                continue
            self._succeeded(deployment)
            result.attempts = attempt + 1
            result.upstream_ms = (time.perf_counter() - started) * 1000
            return result
        assert last_error is not None
        raise last_error

    async def _attempt(
        self,
        d: Deployment,
        route: Route,
        endpoint: Endpoint,
        body: dict[str, Any],
        stream: bool,
        extra_headers: dict[str, str] | None,
    ) -> Dispatched:
        if d.missing_credential is not None:
            raise UpstreamUnreachableError(
                f"deployment {d.name!r} has no credential: its provider's api_key "
                f"{d.missing_credential!r} did not resolve at start; set it and restart the gateway"
            )
        request = d.translator.build_request(endpoint, body, d.target, stream=stream)
        if extra_headers:
            request.headers.update(extra_headers)
        ssl_context = d.ssl_context() if d.ssl_context is not None else None
        response = await self._transport.send(request, d.timeouts, deployment=d.name, ssl_context=ssl_context)
        if response.status >= 400:
            raw = await response.read()
            raise d.translator.parse_error(response.status, response.headers, raw, d.target)
        if not stream:
            raw = await response.read()
            parsed = d.translator.parse_response(endpoint, response.status, raw, d.target, route.public_model)
            return Dispatched(deployment=d, attempts=1, body=parsed.body, usage=parsed.usage)
        translator = d.translator.stream(endpoint, d.target, route.public_model)
        chunks = response.iter_chunks()
        first: list[dict[str, Any]] = []
        try:
            # Failover stays possible until the first chunk is ready for the client.
            while not first:
                try:
                    raw_chunk = await anext(chunks)
                except StopAsyncIteration:
                    first = translator.close()
                    break
                first = translator.feed(raw_chunk)
            if not first:
                # Nothing for the client yet, so another deployment can still answer.
                raise UpstreamStatusError(
                    f"deployment {d.name!r} ended its stream without an answer", status=502
                )
        except BaseException:
            response.close()
            raise
        return Dispatched(
            deployment=d, attempts=1, stream=translator, first_chunks=first, chunks=chunks, response=response
        )
