from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import REPO, BackgroundLoop, GatewayProcess, free_port, running_gateway
from tests.emulators.openai_server import API_KEY, OpenAIEmulator, serve_openai

UPSTREAM_ENV = {"EMU_OPENAI_KEY": API_KEY}


@pytest.fixture(scope="session")
def background_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def openai_upstream(background_loop: BackgroundLoop) -> OpenAIEmulator:
    return background_loop.enter(lambda: serve_openai(OpenAIEmulator()))


@pytest.fixture
def upstream(openai_upstream: OpenAIEmulator) -> Iterator[OpenAIEmulator]:
    """The session's OpenAI emulator, reset to its defaults for each test."""
    fresh = OpenAIEmulator()
    for spec in dataclasses.fields(OpenAIEmulator):
        if spec.name not in ("base_url", "received", "failures"):
            setattr(openai_upstream, spec.name, getattr(fresh, spec.name))
    openai_upstream.failures.clear()
    openai_upstream.received.clear()
    yield openai_upstream


def gateway_config(upstream_url: str, workdir: Path, **overrides: Any) -> dict[str, Any]:
    root = upstream_url.removesuffix("/v1")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    config: dict[str, Any] = {
        "server": {"max_body_bytes": 65536},
        "providers": {
            "openai-emu": {"type": "openai", "api_base": upstream_url, "api_key": "env:EMU_OPENAI_KEY"},
            "openai-emu-2": {"type": "openai", "api_base": upstream_url, "api_key": "env:EMU_OPENAI_KEY"},
            "azure-emu": {
                "type": "azure",
                "api_base": root,
                "api_key": "env:EMU_OPENAI_KEY",
                "api_version": "2024-10-21",
            },
            "mistral-emu": {"type": "mistral", "api_base": upstream_url, "api_key": "env:EMU_OPENAI_KEY"},
            "local": {"type": "openai_compatible", "api_base": upstream_url, "api_key": "env:EMU_OPENAI_KEY"},
            "dead": {"type": "openai_compatible", "api_base": dead, "connect_timeout_s": 1},
            "slow": {
                "type": "openai",
                "api_base": upstream_url,
                "api_key": "env:EMU_OPENAI_KEY",
                "timeout_s": 0.5,
            },
        },
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai-emu", "model": "gpt-4o-mini-2024-07-18"}]},
            "azure-gpt": {"deployments": [{"provider": "azure-emu", "model": "my-azure-deployment"}]},
            "mistral-small": {"deployments": [{"provider": "mistral-emu", "model": "mistral-small-latest"}]},
            "local-llama": {"deployments": [{"provider": "local", "model": "llama3.1:8b"}]},
            "unreachable": {"deployments": [{"provider": "dead", "model": "x"}]},
            "slow-model": {"deployments": [{"provider": "slow", "model": "gpt-4o-mini"}]},
            "failover": {
                "deployments": [
                    {"provider": "dead", "model": "x", "name": "dead-first"},
                    {"provider": "openai-emu", "model": "gpt-4o-mini", "name": "emu-second"},
                ]
            },
            "two-emus": {
                "deployments": [
                    {"provider": "openai-emu", "model": "gpt-4o-mini", "name": "emu-a"},
                    {"provider": "openai-emu-2", "model": "gpt-4o-mini", "name": "emu-b"},
                ]
            },
            "text-embedding-3-small": {
                "kind": "embeddings",
                "deployments": [{"provider": "openai-emu", "model": "text-embedding-3-small"}],
            },
        },
        "database": {"url": f"sqlite+aiosqlite:///{workdir / 'gateway.db'}"},
        "policy": {"engine": "embedded", "paths": [str(REPO / "policies")]},
        "routing": {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "cooldown_s": 0.2},
        "auth": {
            "allow_anonymous": False,
            "admin_tokens": ["env:GATEWAY_ADMIN_TOKEN"],
            "server_secret": "env:GATEWAY_SERVER_SECRET",
        },
        "usage": {"spool_dir": str(workdir / "spool"), "flush_interval_s": 0.05},
    }
    for section, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **value}
        else:
            config[section] = value
    return config


@pytest.fixture(scope="module")
def gateway(
    openai_upstream: OpenAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """One real gateway process (embedded defaults) shared by a test module."""
    workdir = tmp_path_factory.mktemp("gateway")
    with running_gateway(gateway_config(openai_upstream.base_url, workdir), workdir, UPSTREAM_ENV) as process:
        yield process


@pytest.fixture(scope="module")
def api_key(gateway: GatewayProcess) -> str:
    """A gateway key (no metadata restrictions) for the module's gateway."""
    created = gateway.admin("POST", "/admin/v1/teams", json={"name": "platform"})
    assert created.status_code in (201, 409), created.text
    return gateway.create_key("e2e", team="platform", user="alice")
