"""OPA's Go runtime gets the gateway's GOGC/GOMAXPROCS from the environment the process starts with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.policy import goruntime
from tests.e2e.conftest import UPSTREAM_ENV, gateway_config
from tests.e2e.harness import REPO, GatewayProcess

PRINT_START_ENV = """
print("started")
from gateway.policy.goruntime import initial_environment, reexec_with_defaults
reexec_with_defaults()
start = initial_environment()
print(start.get("GOGC"), start.get("GOMAXPROCS"))
"""


def run_python(code: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in goruntime.DEFAULTS}
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, env={**clean, **env}, cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_restart_puts_the_defaults_in_the_start_environment() -> None:
    assert run_python(PRINT_START_ENV) == ["started", "started", "400", "1"]


def test_operator_values_win_and_a_complete_environment_is_not_restarted() -> None:
    assert run_python(PRINT_START_ENV, GOGC="150") == ["started", "started", "150", "1"]
    assert run_python(PRINT_START_ENV, GOGC="150", GOMAXPROCS="2") == ["started", "150", "2"]


def test_missing_defaults_lists_only_what_the_environment_lacks() -> None:
    assert goruntime.missing_defaults({}) == {"GOGC": "400", "GOMAXPROCS": "1"}
    assert goruntime.missing_defaults({"GOGC": "off"}) == {"GOMAXPROCS": "1"}
    assert goruntime.missing_defaults({"GOGC": "100", "GOMAXPROCS": "4"}) == {}


def test_startup_warning_names_what_the_runtime_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(goruntime, "initial_environment", lambda: {"GOGC": "400"})
    warning = goruntime.startup_warning()
    assert warning is not None and "GOMAXPROCS=1" in warning and "GOGC" not in warning
    monkeypatch.setattr(goruntime, "initial_environment", lambda: {"GOGC": "100", "GOMAXPROCS": "4"})
    assert goruntime.startup_warning() is None


def test_gateway_serve_runs_with_the_defaults(tmp_path: Path) -> None:
    config = gateway_config("http://127.0.0.1:9", tmp_path)
    gateway = GatewayProcess(config, tmp_path, UPSTREAM_ENV)
    for name in goruntime.DEFAULTS:
        gateway.env.pop(name, None)
    gateway.start()
    try:
        assert gateway.proc is not None
        raw = Path(f"/proc/{gateway.proc.pid}/environ").read_bytes().split(b"\0")
        assert b"GOGC=400" in raw and b"GOMAXPROCS=1" in raw
        assert "Go runtime did not get" not in gateway.logs()
    finally:
        gateway.stop()


def test_another_asgi_server_warns_at_start(tmp_path: Path) -> None:
    config = gateway_config("http://127.0.0.1:9", tmp_path)
    gateway = GatewayProcess(config, tmp_path, UPSTREAM_ENV)
    gateway.env["GATEWAY_CONFIG"] = str(gateway.config_path)
    for name in goruntime.DEFAULTS:
        gateway.env.pop(name, None)
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "gateway.app:create_app_from_env"]
    gateway.start(command=[*uvicorn, "--port", str(gateway.port)])
    try:
        assert "Go runtime did not get GOGC=400 GOMAXPROCS=1" in gateway.logs()
    finally:
        gateway.stop()
