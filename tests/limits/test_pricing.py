from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import GatewayConfig
from gateway.limits.config import LimitsConfig
from gateway.limits.pricing import ModelPrice, PriceTable
from gateway.types import Usage


def _table() -> PriceTable:
    return PriceTable(
        {
            "gpt-4o": ModelPrice(input=2.5, output=10, cached_input=1.25),
            "gpt-4o*": ModelPrice(input=0.15, output=0.6),
            "gpt-4o-mini-2024*": ModelPrice(input=0.1, output=0.5),
            "claude-*": ModelPrice(input=3, output=15, cached_input=0.3, cache_write_input=3.75),
        },
        {"azure-eu": ModelPrice(input=2.75, output=11)},
    )


def test_cost_uses_input_cached_and_output_prices() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=100_000, cached_tokens=400_000)
    # 600k uncached x $2.5 + 400k cached x $1.25 + 100k x $10
    assert _table().cost("gpt-4o", None, usage) == pytest.approx(1.5 + 0.5 + 1.0)


def test_cache_writes_have_their_own_price() -> None:
    usage = Usage(
        prompt_tokens=1_000_000, completion_tokens=0, cached_tokens=200_000, cache_write_tokens=300_000
    )
    assert _table().cost("claude-sonnet-4", None, usage) == pytest.approx(0.5 * 3 + 0.2 * 0.3 + 0.3 * 3.75)


def test_most_specific_glob_wins_and_exact_beats_glob() -> None:
    table = _table()
    assert table.price("gpt-4o-mini-2024-07-18") == ModelPrice(input=0.1, output=0.5)
    assert table.price("gpt-4o-mini") == ModelPrice(input=0.15, output=0.6)
    assert table.price("gpt-4o") == ModelPrice(input=2.5, output=10, cached_input=1.25)


def test_deployment_override_and_public_name_fallback() -> None:
    table = _table()
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0)
    assert table.cost("my-azure-deployment", "azure-eu", usage) == pytest.approx(2.75)
    assert table.cost("my-azure-deployment", "other", usage, public_model="gpt-4o") == pytest.approx(2.5)


def test_unpriced_model_costs_nothing() -> None:
    assert _table().cost("llama-3", None, Usage(prompt_tokens=10**6, completion_tokens=10**6)) == 0.0


def test_config_section_validates_templates_and_periods() -> None:
    config = GatewayConfig.model_validate(
        {
            "limits": {
                "prices": {"gpt-4o": {"input": 2.5, "output": 10}},
                "defaults": [{"name": "key-rpm", "scope": "key:{key_id}", "window_s": 60, "requests": 600}],
                "budgets": [
                    {"name": "team-month", "scope": "team:{team}", "amount_usd": 500, "period": "month"}
                ],
            }
        }
    )
    assert config.limits.on_backend_error.budgets == "closed"
    assert config.limits.on_backend_error.limits == "open"
    with pytest.raises(ValidationError, match="unknown placeholder"):
        LimitsConfig.model_validate(
            {"defaults": [{"name": "x", "scope": "org:{org}", "window_s": 1, "requests": 1}]}
        )
    with pytest.raises(ValidationError, match="exactly one of period"):
        LimitsConfig.model_validate(
            {
                "budgets": [
                    {"name": "b", "scope": "key:{key_id}", "amount_usd": 1, "period": "day", "window_s": 60}
                ]
            }
        )
    with pytest.raises(ValidationError, match="none of requests, tokens, cost"):
        LimitsConfig.model_validate({"defaults": [{"name": "x", "scope": "key:{key_id}", "window_s": 1}]})
