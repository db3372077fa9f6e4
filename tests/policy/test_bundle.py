"""Policy files on disk follow OPA's bundle layout, so both engines see the same data document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.policy.bundle import PolicyLoadError, build_engine, read_source


def _tree(root: Path) -> Path:
    (root / "teams").mkdir(parents=True)
    (root / "main.rego").write_text(
        "package gateway\n\nanswer := [data.teams.support.tier, data.tiers.free]\n"
    )
    (root / "data.yaml").write_text("tiers:\n  free: 512\n")
    (root / "teams" / "data.json").write_text(json.dumps({"support": {"tier": "standard"}}))
    (root / "teams" / "fixture.json").write_text(json.dumps({"support": {"tier": "ignored"}}))
    (root / "main_test.rego").write_text("package gateway_test\n\ntest_x if true\n")
    return root


def test_data_files_are_placed_at_their_folder_path(tmp_path: Path) -> None:
    source = read_source([_tree(tmp_path / "p")])
    engine = build_engine(source)
    try:
        assert engine.eval_document("gateway.answer") == ["standard", 512]
    finally:
        engine.close()
    assert all(not name.endswith("_test.rego") for name in source.modules)


def test_tests_are_loaded_only_when_asked(tmp_path: Path) -> None:
    source = read_source([_tree(tmp_path / "p")], include_tests=True)
    assert any(name.endswith("main_test.rego") for name in source.modules)


def test_revision_follows_content(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p")
    first = read_source([root]).revision
    assert read_source([root]).revision == first
    (root / "teams" / "data.json").write_text(json.dumps({"support": {"tier": "premium"}}))
    assert read_source([root]).revision != first


def test_bad_data_and_missing_paths_are_load_errors(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p")
    (root / "teams" / "data.json").write_text("{not json")
    with pytest.raises(PolicyLoadError, match="not valid JSON"):
        read_source([root])
    with pytest.raises(PolicyLoadError, match="no such file"):
        read_source([tmp_path / "absent"])


def test_conflicting_data_is_a_load_error(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p")
    (root / "data.json").write_text(json.dumps({"teams": {"support": "flat"}}))
    with pytest.raises(PolicyLoadError):
        build_engine(read_source([root]))
