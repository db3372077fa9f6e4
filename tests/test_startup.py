"""Start-up: what loading the config costs (the CLI and `serve --workers` stay light), what it warns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    return set(out.stdout.split())


def test_config_and_cli_load_none_of_the_request_path() -> None:
    # The supervisor of `gateway serve --workers N` and `gateway keys ...` import only these.
    loaded = loaded_after("import gateway.config, gateway.cli")
    heavy = {"sqlalchemy", "presidio_anonymizer", "opa_bindings", "aiohttp", "starlette", "tiktoken"}
    heavy |= {"alembic", "jwt", "opa_client"}
    assert loaded & heavy == set()


def test_package_level_names_still_resolve() -> None:
    # The packages export their names lazily (gateway/lazy.py); every one must exist.
    code = (
        "import gateway.guards, gateway.limits, gateway.policy\n"
        "for package in (gateway.guards, gateway.limits, gateway.policy):\n"
        "    for name in package.__all__:\n"
        "        getattr(package, name)\n"
    )
    assert "presidio_anonymizer" in loaded_after(code)


def test_an_unknown_package_name_is_an_attribute_error() -> None:
    import gateway.guards

    with pytest.raises(AttributeError, match="NoSuchThing"):
        gateway.guards.NoSuchThing  # noqa: B018


def test_serve_with_workers_warns_when_limits_are_per_process() -> None:
    from gateway.cli import worker_warnings
    from gateway.config import GatewayConfig

    in_memory = GatewayConfig.model_validate({})
    assert worker_warnings(in_memory, 1) == []
    [warning] = worker_warnings(in_memory, 4)
    assert "4x" in warning and "limits.backend: redis" in warning
    shared = GatewayConfig.model_validate({"limits": {"backend": "redis"}})
    assert worker_warnings(shared, 4) == []
