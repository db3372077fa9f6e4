"""Assembling one gateway process: every component opened in order, closed in reverse.

Used by the app's lifespan only. Nothing is created at import time, nothing is global: the
``Services`` yielded here is the whole state of the process, and the exit stack closes it
(flushing the usage queue and the spend counters) when the app stops.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from gateway.admin.audit import audit_routes
from gateway.admin.keys import key_routes
from gateway.admin.openapi import openapi_routes
from gateway.admin.security import AdminAuth, AdminServices
from gateway.admin.teams import team_routes
from gateway.admin.usage import usage_routes
from gateway.auth.identify import GatewayAuthenticator
from gateway.auth.service import open_identity
from gateway.config import GatewayConfig
from gateway.db.engine import create_engine as create_db_engine
from gateway.db.engine import create_sessionmaker, database_url
from gateway.db.migrate import ensure_schema
from gateway.errors import ConfigError
from gateway.guards.guard import Guard
from gateway.limits.factory import create_limiter
from gateway.observability import Metrics, metrics_endpoint
from gateway.policy.engine import create_engine as create_policy_engine
from gateway.policy.goruntime import startup_warning as runtime_warning
from gateway.routing import Router as ModelRouter
from gateway.secrets import SecretResolver
from gateway.services import Services
from gateway.tls.upstream import UpstreamTLS
from gateway.tokens import TokenEstimator
from gateway.tracing import GenAITracer
from gateway.upstream import AiohttpTransport
from gateway.usage.anomaly import AnomalyDetector
from gateway.usage.writer import UsageWriter

log = logging.getLogger("gateway.components")


def config_dir(config: GatewayConfig) -> Path:
    return Path(config.source).parent if config.source else Path.cwd()


async def _provider_secrets(config: GatewayConfig, resolver: SecretResolver) -> dict[str, str | None]:
    """Resolve every provider credential once at start; a missing one is logged, not fatal."""
    resolved: dict[str, str | None] = {}
    for name, provider in config.providers.items():
        if provider.api_key is None or provider.api_key in resolved:
            continue
        try:
            resolved[provider.api_key] = (await resolver.resolve(provider.api_key)).reveal()
        except ConfigError as exc:
            models = sorted(
                m for m, spec in config.models.items() if any(d.provider == name for d in spec.deployments)
            )
            hint = ""
            if provider.api_key.startswith("env:"):
                hint = f" Set it with: export {provider.api_key[4:]}=…"
            log.warning(
                "provider %r has no credential (%s); requests for %s will fail with 502 until it is set.%s",
                name,
                exc,
                ", ".join(models) or "no model",
                hint,
            )
            resolved[provider.api_key] = None
    return resolved


class DeferredRoutes:
    """Routes whose handlers need lifespan components (admin API, /metrics).

    Starlette fixes its routes when the app is built, before the lifespan opens the database;
    so these paths are routed to a ``Router`` that the lifespan builds and puts in the state.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        router: Router = scope["state"]["deferred_router"]
        await router(scope, receive, send)


def extra_routes(config: GatewayConfig) -> list[BaseRoute]:
    deferred = DeferredRoutes()
    return [Route("/admin/{rest:path}", deferred), Route("/metrics", deferred, methods=["GET"])]


def _deferred_router(admin: AdminServices, engine: Any, metrics: Metrics) -> Router:
    routes: list[BaseRoute] = [
        *key_routes(admin),
        *team_routes(admin),
        *audit_routes(admin),
        *openapi_routes(),
        *_admin_protected(admin, usage_routes(engine)),
        metrics_endpoint(metrics),
    ]
    return Router(routes=routes)


def _admin_protected(admin: AdminServices, routes: list[Route]) -> list[BaseRoute]:
    """Wrap routes that do not authorize by themselves with the admin check."""
    from gateway.admin.security import admin_endpoint

    wrapped: list[BaseRoute] = []
    for route in routes:
        handler = route.endpoint

        async def guarded(request: Any, actor: str, handler: Any = handler) -> Any:
            return await handler(request)

        wrapped.append(
            Route(route.path, admin_endpoint(admin, guarded), methods=list(route.methods or ["GET"]))
        )
    return wrapped


def _attach_upstream_tls(config: GatewayConfig, router: ModelRouter, resolver: SecretResolver) -> None:
    """One reloading SSL context per deployment that sets TLS (its own block, else its provider's)."""
    for public_model, model in config.models.items():
        for deployment_config, deployment in zip(
            model.deployments, router.routes[public_model].deployments, strict=True
        ):
            tls = deployment_config.tls or config.providers[deployment_config.provider].tls
            if tls is not None:
                upstream_tls = UpstreamTLS(
                    tls,
                    name=deployment.name,
                    resolve_path=config.resolve_path,
                    resolve_secret=lambda ref: resolver.resolve_local(ref).reveal(),
                )
                deployment.ssl_context = upstream_tls.context


@contextlib.asynccontextmanager
async def open_services(config: GatewayConfig) -> AsyncIterator[Services]:
    base_dir = config_dir(config)
    async with contextlib.AsyncExitStack() as stack:
        resolver = SecretResolver(config.secrets, base_dir=base_dir)
        stack.push_async_callback(resolver.aclose)
        provider_secrets = await _provider_secrets(config, resolver)
        resolver.start_refreshing()

        db = create_db_engine(config.database, base_dir)
        stack.push_async_callback(db.dispose)
        if config.database.auto_upgrade:
            await ensure_schema(db, database_url(config.database, base_dir))
        sessions = create_sessionmaker(db)

        if config.auth.allow_anonymous:
            log.warning(
                "auth.allow_anonymous is on: calls without a key are accepted as the anonymous "
                "principal. Use it for local development only; issue keys with `gateway keys create`."
            )
        identity = await open_identity(config, sessions, resolver)
        stack.push_async_callback(identity.aclose)
        auth = GatewayAuthenticator.build(config, identity.authenticator)

        if any(p.type == "bedrock" for p in config.providers.values()):
            from gateway.providers.bedrock import require_botocore

            require_botocore()  # fail at start, naming the extra, not on the first request
        transport = AiohttpTransport()
        stack.push_async_callback(transport.aclose)
        router = ModelRouter(config, transport, lambda ref: provider_secrets.get(ref))
        _attach_upstream_tls(config, router, resolver)

        policy = create_policy_engine(config.policy, base_dir)
        await policy.start()
        stack.push_async_callback(policy.close)
        # Only a serving process cares: a one-shot `gateway policy eval` would just be noisy.
        if config.policy.engine == "embedded" and (warning := runtime_warning()):
            log.warning(warning)

        tokens = TokenEstimator(
            str(config.resolve_path(config.tokenizer.data_dir)) if config.tokenizer.data_dir else None,
            {name: m.encoding for name, m in config.models.items() if m.encoding},
        )
        # Load the encodings in use now (o200k is ~74 MB), not on the first request.
        tokens.preload([m.encoding or name for name, m in config.models.items()])
        guard = Guard(config.guards, resolve_secret=lambda ref: resolver.resolve_local(ref).reveal())

        metrics = Metrics()
        writer = UsageWriter(db, config.usage, metrics, spool_dir=config.resolve_path(config.usage.spool_dir))
        await writer.start()
        stack.push_async_callback(writer.close)

        limiter = create_limiter(config.limits, db)
        prices = limiter.prices
        await limiter.start()
        stack.push_async_callback(limiter.close)

        admin = AdminServices(
            store=identity.store,
            invalidator=identity.invalidator,
            auth=await AdminAuth.from_config(config.auth, resolver, identity.jwt_verifier),
        )
        services = Services(
            config=config,
            router=router,
            auth=auth,
            policy=policy,
            tokens=tokens,
            guard=guard,
            limiter=limiter,
            prices=prices,
            writer=writer,
            metrics=metrics,
            anomaly=AnomalyDetector(config.usage.anomaly, metrics),
            tracer=GenAITracer(enabled=config.usage.tracing),
            db=db,
            deferred_router=_deferred_router(admin, db, metrics),
        )
        yield services
