"""The generated bench config is one the gateway accepts, and the bench tier keeps limits in play."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench.procs import BENCH_MODEL, BENCH_TIER, REPO_DIR, write_gateway_config
from gateway.config import load_config


def test_generated_config_validates_and_points_bench_model_at_the_upstream(tmp_path: Path) -> None:
    path = write_gateway_config(tmp_path / "gateway.yaml", "http://127.0.0.1:9999/v1", 8123, anonymous=True)
    config = load_config(path, environ={})
    assert config.server.port == 8123
    assert config.auth.allow_anonymous is True
    deployment = config.models[BENCH_MODEL].deployments[0]
    provider = config.providers[deployment.provider]
    assert provider.type == "openai_compatible"
    assert provider.api_base == "http://127.0.0.1:9999/v1"
    assert provider.api_key is not None and provider.api_key.startswith("env:")
    assert str(tmp_path) in config.database.url


def test_bench_tier_is_the_default_and_shipped_tiers_stay(tmp_path: Path) -> None:
    write_gateway_config(tmp_path / "gateway.yaml", "http://127.0.0.1:9999/v1", 8123, anonymous=False)
    config = load_config(tmp_path / "gateway.yaml", environ={})
    policies = Path(config.policy.paths[0])
    assert policies.parent == tmp_path
    shipped = orjson.loads((REPO_DIR / "policies" / "data.json").read_bytes())
    data = orjson.loads((policies / "data.json").read_bytes())
    assert data["settings"]["default_tier"] == data["settings"]["anonymous_tier"] == BENCH_TIER
    assert data["tiers"][BENCH_TIER]["requests_per_minute"] >= 10**9
    assert set(shipped["tiers"]) < set(data["tiers"])
    assert sorted(p.name for p in policies.glob("*.rego")) == sorted(
        p.name for p in (REPO_DIR / "policies").glob("*.rego")
    )
    assert config.auth.allow_anonymous is False


def test_base_config_is_merged_under_and_its_policy_paths_anchored(tmp_path: Path) -> None:
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    base = base_dir / "prod.yaml"
    base.write_text("server:\n  access_log: false\npolicy:\n  paths: [my-policies]\n")
    path = write_gateway_config(
        tmp_path / "run" / "gateway.yaml", "http://127.0.0.1:9999/v1", 8124, anonymous=True, base_config=base
    )
    config = load_config(path, environ={})
    assert config.server.access_log is False
    assert config.server.port == 8124
    assert config.policy.paths == [str(base_dir / "my-policies")]
