"""Policy and data edits reach the embedded engine atomically; broken edits do not."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from gateway.policy.config import PolicyConfig
from gateway.policy.embedded import EmbeddedEngine
from tests.policy.cases import CASES

RESEARCH = dict(CASES[0].input)


def _touch(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    # Same-size rewrites within one mtime tick must still look changed.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _set_premium_max_tokens(policies: Path, value: int) -> None:
    data_file = policies / "data.json"
    data = json.loads(data_file.read_text())
    data["tiers"]["premium"]["max_tokens"] = value
    _touch(data_file, json.dumps(data))


async def test_good_edit_swaps_in_new_policy(policy_copy: Path) -> None:
    engine = EmbeddedEngine(PolicyConfig(paths=[str(policy_copy)], watch=False), policy_copy.parent)
    await engine.start()
    try:
        before = engine.revision
        assert (await engine.decide(RESEARCH)).transform.max_tokens == 16384
        assert await engine.reload_now() is False  # nothing changed
        _set_premium_max_tokens(policy_copy, 2048)
        assert await engine.reload_now() is True
        assert (await engine.decide(RESEARCH)).transform.max_tokens == 2048
        assert engine.revision != before
    finally:
        await engine.close()


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ("package gateway.models\n\ndeny contains x if {\n", "rego_parse_error"),
        ("package gateway.models\n\nrewritten := y\n", "unsafe"),
    ],
)
async def test_broken_edit_keeps_last_good_policy(
    policy_copy: Path, broken: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = EmbeddedEngine(PolicyConfig(paths=[str(policy_copy)], watch=False), policy_copy.parent)
    await engine.start()
    try:
        before = engine.revision
        models = policy_copy / "models.rego"
        good = models.read_text()
        with caplog.at_level(logging.ERROR, logger="gateway.policy.embedded"):
            _touch(models, broken)
            assert await engine.reload_now() is False
        assert why in (engine.last_reload_error or "")
        assert "keeping revision" in caplog.text
        assert engine.revision == before
        assert (await engine.decide(RESEARCH)).allow is True
        _touch(models, good + "\n# fixed\n")
        assert await engine.reload_now() is True
        assert engine.last_reload_error is None
    finally:
        await engine.close()


async def test_watcher_reloads_in_the_background(policy_copy: Path) -> None:
    config = PolicyConfig(paths=[str(policy_copy)], watch=True, reload_interval_s=0.05)
    engine = EmbeddedEngine(config, policy_copy.parent)
    await engine.start()
    try:
        _set_premium_max_tokens(policy_copy, 1000)
        for _ in range(200):
            if (await engine.decide(RESEARCH)).transform.max_tokens == 1000:
                break
            await asyncio.sleep(0.05)
        assert (await engine.decide(RESEARCH)).transform.max_tokens == 1000
    finally:
        await engine.close()
