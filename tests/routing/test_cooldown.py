"""The per-deployment circuit breaker, on the injected clock."""

from __future__ import annotations

import pytest

from gateway.errors import UpstreamStatusError, UpstreamUnreachableError
from tests.routing.fakes import chat, completion, error, make_router

AB = [{"name": "a"}, {"name": "b"}]


async def test_a_deployment_failing_repeatedly_is_skipped_until_its_cooldown_has_passed() -> None:
    h = make_router(
        AB,
        {"a": [UpstreamUnreachableError("deployment 'a' is unreachable")], "b": [completion("from b")]},
        cooldown_after=2,
        cooldown_s=30,
    )

    await chat(h)
    assert h.transport.called == ["a", "b"]
    h.clock.advance(1)
    await chat(h)
    assert h.transport.called == ["a", "b"] * 2

    # Two failures in a row: a is cooling down and no longer tried first.
    h.clock.advance(1)
    dispatched = await chat(h)
    assert h.transport.called[4:] == ["b"]
    assert dispatched.attempts == 1

    # The second failure was at t0+1, so a cools until t0+31.
    h.clock.advance(28.5)
    await chat(h)
    assert h.transport.called[5:] == ["b"]

    # Cooled down: tried first again, and serves once it answers.
    h.clock.advance(0.5)
    h.transport.answer("a", completion("a is back"))
    dispatched = await chat(h)
    assert h.transport.called[6:] == ["a"]
    assert dispatched.deployment.name == "a"


async def test_failures_below_the_threshold_do_not_cool_a_deployment() -> None:
    h = make_router(AB, {"a": [error(503)], "b": [completion("from b")]}, cooldown_after=3, cooldown_s=30)

    await chat(h)
    await chat(h)
    await chat(h)

    # a failed three times in three requests: tried every time, cooled only now.
    assert h.transport.called == ["a", "b"] * 3
    await chat(h)
    assert h.transport.called[6:] == ["b"]


async def test_a_success_resets_the_failure_count() -> None:
    h = make_router(AB, {"a": [error(500)], "b": [completion("from b")]}, cooldown_after=2, cooldown_s=30)

    await chat(h)  # a: one failure
    h.transport.answer("a", completion("a ok"))
    await chat(h)  # a: success resets
    h.transport.answer("a", error(500))
    await chat(h)  # a: one failure again, not two
    await chat(h)  # so a is still tried: second failure in a row

    assert h.transport.called == ["a", "b", "a", "a", "b", "a", "b"]
    await chat(h)
    assert h.transport.called[7:] == ["b"]


async def test_when_every_deployment_cools_down_the_one_recovering_first_is_tried() -> None:
    h = make_router(
        AB, {"a": [error(500)], "b": [completion("from b")]}, cooldown_after=1, cooldown_s=30, max_attempts=1
    )

    with pytest.raises(UpstreamStatusError):
        await chat(h)  # t=0: a fails, cooled until t=30
    h.clock.advance(10)
    h.transport.answer("b", error(502))
    with pytest.raises(UpstreamStatusError):
        await chat(h)  # t=10: a skipped, b fails, cooled until t=40
    assert h.transport.called == ["a", "b"]

    h.clock.advance(10)
    h.transport.answer("a", completion("a recovered"))
    dispatched = await chat(h)  # t=20: both cooling; a recovers first

    assert h.transport.called[2:] == ["a"]
    assert dispatched.deployment.name == "a"


async def test_a_retry_after_keeps_later_requests_away_for_that_long() -> None:
    h = make_router(AB, {"a": [error(429, retry_after="10")], "b": [completion("from b")]}, cooldown_after=5)

    await chat(h)
    h.clock.advance(9)
    await chat(h)
    assert h.transport.called == ["a", "b", "b"]

    h.clock.advance(1)
    h.transport.answer("a", completion("a again"))
    dispatched = await chat(h)
    assert dispatched.deployment.name == "a"


async def test_client_errors_do_not_count_towards_the_cooldown() -> None:
    h = make_router(AB, {"a": [error(400, "bad request")]}, cooldown_after=1, cooldown_s=30)

    for _ in range(3):
        with pytest.raises(UpstreamStatusError):
            await chat(h)

    assert h.transport.called == ["a", "a", "a"]
