"""Weighted load balancing within a priority group; priority groups in order."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.errors import ServiceUnavailableError, UpstreamStatusError
from tests.routing.fakes import chat, completion, error, make_router

PLANS = 4000


def first_choices(deployments: list[dict[str, object]], *, seed: int = 7, n: int = PLANS) -> Counter[str]:
    h = make_router(deployments, seed=seed)
    route = h.router.route("gpt")
    return Counter(h.router.plan(route)[0].name for _ in range(n))


@pytest.mark.parametrize("seed", [1, 7, 2024])
def test_equal_priority_deployments_share_first_choice_by_weight(seed: int) -> None:
    counts = first_choices(
        [{"name": "a", "priority": 0, "weight": 3}, {"name": "b", "priority": 0, "weight": 1}], seed=seed
    )

    assert set(counts) == {"a", "b"}
    assert 0.70 <= counts["a"] / PLANS <= 0.80


def test_three_way_weights_are_honoured() -> None:
    counts = first_choices(
        [
            {"name": "a", "priority": 0, "weight": 5},
            {"name": "b", "priority": 0, "weight": 3},
            {"name": "c", "priority": 0, "weight": 2},
        ]
    )

    assert 0.45 <= counts["a"] / PLANS <= 0.55
    assert 0.25 <= counts["b"] / PLANS <= 0.35
    assert 0.15 <= counts["c"] / PLANS <= 0.25


def test_equal_weights_split_evenly() -> None:
    counts = first_choices([{"name": "a", "priority": 0}, {"name": "b", "priority": 0}])

    assert 0.45 <= counts["a"] / PLANS <= 0.55


def test_the_deployment_not_chosen_first_is_the_failover() -> None:
    h = make_router([{"name": "a", "priority": 0, "weight": 3}, {"name": "b", "priority": 0, "weight": 1}])
    route = h.router.route("gpt")

    for _ in range(200):
        assert sorted(d.name for d in h.router.plan(route)) == ["a", "b"]


def test_weight_zero_is_never_chosen() -> None:
    h = make_router(
        [{"name": "a", "priority": 0, "weight": 1}, {"name": "drained", "priority": 0, "weight": 0}]
    )
    route = h.router.route("gpt")

    for _ in range(500):
        assert [d.name for d in h.router.plan(route)] == ["a"]


async def test_weight_zero_is_not_a_failover_target() -> None:
    h = make_router(
        [{"name": "a", "weight": 1}, {"name": "drained", "weight": 0}],
        {"a": [error(500)], "drained": [completion("must not serve")]},
        max_attempts=2,
    )

    with pytest.raises(UpstreamStatusError):
        await chat(h)

    assert h.transport.called == ["a", "a"]


async def test_weight_zero_is_not_used_while_the_others_cool_down() -> None:
    h = make_router(
        [{"name": "a", "weight": 1}, {"name": "drained", "weight": 0}],
        {"a": [error(500)], "drained": [completion("must not serve")]},
        max_attempts=1,
        cooldown_after=1,
        cooldown_s=30,
    )

    for _ in range(3):
        with pytest.raises(UpstreamStatusError):
            await chat(h)

    assert h.transport.called == ["a", "a", "a"]


def test_lower_priority_groups_are_always_tried_before_higher_ones() -> None:
    h = make_router(
        [
            {"name": "backup-1", "priority": 1, "weight": 1},
            {"name": "backup-2", "priority": 1, "weight": 100},
            {"name": "main", "priority": 0, "weight": 1},
            {"name": "last-resort", "priority": 5, "weight": 100},
        ]
    )
    route = h.router.route("gpt")

    seconds = Counter()
    for _ in range(1000):
        plan = [d.name for d in h.router.plan(route)]
        assert plan[0] == "main"
        assert sorted(plan[1:3]) == ["backup-1", "backup-2"]
        assert plan[3] == "last-resort"
        seconds[plan[1]] += 1
    # Within the backup group the weights still apply.
    assert seconds["backup-2"] > seconds["backup-1"]


def test_without_priorities_the_list_order_is_kept_whatever_the_weights() -> None:
    h = make_router([{"name": "a", "weight": 1}, {"name": "b", "weight": 50}, {"name": "c", "weight": 50}])
    route = h.router.route("gpt")

    for _ in range(500):
        assert [d.name for d in h.router.plan(route)] == ["a", "b", "c"]


async def test_dispatch_follows_the_weighted_plan() -> None:
    h = make_router(
        [{"name": "a", "priority": 0, "weight": 3}, {"name": "b", "priority": 0, "weight": 1}],
        {"a": [completion("a")], "b": [completion("b")]},
    )

    served = Counter([(await chat(h)).deployment.name for _ in range(400)])

    assert 0.65 <= served["a"] / 400 <= 0.85
    assert served["b"] > 0


async def test_a_model_whose_deployments_all_have_weight_zero_is_unavailable() -> None:
    h = make_router([{"name": "x", "weight": 0}, {"name": "y", "weight": 0}], {"x": [completion("no")]})

    with pytest.raises(ServiceUnavailableError) as caught:
        await chat(h)

    assert caught.value.status == 503
    assert h.transport.calls == []
