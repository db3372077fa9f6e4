"""The ``gateway`` command: serve, keys, teams, db, policy, usage."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.errors import ConfigError


def _serve(args: argparse.Namespace) -> int:
    from gateway.policy.goruntime import reexec_with_defaults

    # OPA's Go runtime only reads the environment the process started with.
    reexec_with_defaults()
    import uvicorn

    from gateway.config import load_config
    from gateway.logs import configure_logging
    from gateway.tls.inbound import gateway_http_protocol

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    workers = args.workers or config.server.workers
    configure_logging(config.server.log_level)
    options = dict(
        host=host,
        port=port,
        loop="uvloop",
        # Records the connection's own peer address and TLS facts in the scope before any
        # proxy-headers rewrite (forwarded client certificates are checked against it).
        http=gateway_http_protocol("httptools"),
        lifespan="on",
        access_log=False,
        proxy_headers=bool(config.server.trusted_proxies),
        forwarded_allow_ips=config.server.trusted_proxies or None,
        log_config=None,
        timeout_graceful_shutdown=10,
        **_tls_options(config),
    )
    if workers > 1:
        for warning in worker_warnings(config, workers):
            logging.getLogger("gateway.cli").warning(warning)
        # Several worker processes need an import string; each re-reads the same config.
        if config.source:
            os.environ["GATEWAY_CONFIG"] = config.source
        # The supervisor only watches the workers: it never imports the app itself.
        uvicorn.run("gateway.app:create_app_from_env", factory=True, workers=workers, **options)
    else:
        from gateway.app import create_app

        uvicorn.run(create_app(config), **options)
    return 0


def worker_warnings(config: GatewayConfig, workers: int) -> list[str]:
    """What does not hold across ``workers`` processes with this configuration."""
    if workers > 1 and config.limits.backend == "memory":
        return [
            f"limits.backend is memory with {workers} workers: each worker counts on its own, so a "
            f"limit admits up to {workers}x its value. Set limits.backend: redis to share the counters."
        ]
    return []


def resolve_local_secret(reference: str) -> str:
    """``env:``/``file:`` secrets for the TLS key; module-level so uvicorn can pickle it."""
    from gateway.secrets import SecretResolver

    return SecretResolver().resolve_local(reference).reveal()


def _tls_options(config: GatewayConfig) -> dict[str, object]:
    """uvicorn settings for inbound TLS; empty when the gateway serves plain HTTP."""
    from gateway.tls.inbound import ServerSSLContextFactory

    tls = config.server.tls
    if tls is None or tls.cert_file is None:
        return {}
    base_dir = str(Path(config.source).parent) if config.source else None
    return {
        "ssl_context_factory": ServerSSLContextFactory(
            tls, base_dir=base_dir, resolve_secret=resolve_local_secret
        )
    }


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        default=os.environ.get("GATEWAY_CONFIG"),
        help="config file (default: $GATEWAY_CONFIG)",
    )


CommandRegistrar = Callable[[argparse._SubParsersAction], None]  # type: ignore[type-arg]


def _registrars() -> list[CommandRegistrar]:
    from gateway.admin.cli import add_key_commands
    from gateway.policy.cli import add_policy_commands
    from gateway.usage.cli import add_usage_commands

    return [add_key_commands, add_policy_commands, add_usage_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="OPA-centric AI gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    _config_arg(serve)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default: server.workers)")
    serve.set_defaults(func=_serve)
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        logging.shutdown()


if __name__ == "__main__":
    sys.exit(main())
