"""Failover order, what fails over and what does not, attempts, backoff and Retry-After."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import UpstreamStatusError, UpstreamTimeoutError, UpstreamUnreachableError
from tests.routing.fakes import Outcome, Reply, chat, completion, error, make_router

ABC = [{"name": "a"}, {"name": "b"}, {"name": "c"}]


async def test_the_deployment_list_order_is_the_failover_order() -> None:
    h = make_router(ABC, {"a": [error(500)], "b": [error(503)], "c": [completion("from c")]})

    dispatched = await chat(h)

    assert h.transport.called == ["a", "b", "c"]
    assert dispatched.deployment.name == "c"
    assert dispatched.attempts == 3
    assert dispatched.body["choices"][0]["message"]["content"] == "from c"
    assert dispatched.usage.prompt_tokens == 7
    # Failing over to a deployment not tried yet does not wait.
    assert h.sleep.waits == []


async def test_the_first_deployment_serves_when_it_answers() -> None:
    h = make_router(ABC, {"a": [completion("from a")]})

    dispatched = await chat(h)

    assert h.transport.called == ["a"]
    assert dispatched.deployment.name == "a"
    assert dispatched.attempts == 1


async def test_each_deployment_gets_its_own_upstream_model_and_base_url() -> None:
    h = make_router(
        [
            {"name": "a", "model": "gpt-4o"},
            {"name": "b", "provider": "secondary", "model": "gpt-4o-mini"},
        ],
        {"a": [error(502)], "b": [completion("ok")]},
    )

    await chat(h)

    first, second = h.transport.calls
    assert first.request.url == "http://primary.test/v1/chat/completions"
    assert orjson.loads(first.request.body or b"")["model"] == "gpt-4o"
    assert second.request.url == "http://secondary.test/v1/chat/completions"
    assert orjson.loads(second.request.body or b"")["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    "failure",
    [
        UpstreamUnreachableError("deployment 'a' is unreachable: ClientConnectorError"),
        UpstreamTimeoutError("deployment 'a' did not answer in time"),
        error(429, "Rate limit reached"),
        error(500),
        error(502),
        error(503),
        error(504),
        error(529, "Overloaded"),
    ],
    ids=["connect-error", "timeout", "429", "500", "502", "503", "504", "529"],
)
async def test_fails_over_on_connect_errors_timeouts_429_and_5xx(failure: Outcome) -> None:
    h = make_router(ABC, {"a": [failure], "b": [completion("from b")]})

    dispatched = await chat(h)

    assert h.transport.called == ["a", "b"]
    assert dispatched.deployment.name == "b"
    assert dispatched.attempts == 2


async def test_a_body_that_breaks_while_being_read_fails_over() -> None:
    broken = Reply(200, UpstreamUnreachableError("deployment 'a' broke the connection: ClientPayloadError"))
    h = make_router(ABC, {"a": [broken], "b": [completion("from b")]})

    dispatched = await chat(h)

    assert h.transport.called == ["a", "b"]
    assert dispatched.deployment.name == "b"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
async def test_never_fails_over_on_other_4xx(status: int) -> None:
    h = make_router(ABC, {"a": [error(status, "the client's mistake")], "b": [completion("from b")]})

    with pytest.raises(UpstreamStatusError) as caught:
        await chat(h)

    assert h.transport.called == ["a"]
    assert caught.value.status == status
    assert caught.value.message == "the client's mistake"
    assert h.sleep.waits == []


async def test_a_client_error_after_a_failover_is_returned_without_further_attempts() -> None:
    h = make_router(ABC, {"a": [error(503)], "b": [error(400, "bad messages")], "c": [completion("c")]})

    with pytest.raises(UpstreamStatusError) as caught:
        await chat(h)

    assert h.transport.called == ["a", "b"]
    assert caught.value.status == 400


async def test_max_attempts_bounds_the_attempts_and_the_last_error_is_raised() -> None:
    h = make_router(
        ABC,
        {"a": [error(500, "a broke")], "b": [error(502, "b broke")], "c": [error(503, "c broke")]},
        max_attempts=2,
    )

    with pytest.raises(UpstreamStatusError) as caught:
        await chat(h)

    assert h.transport.called == ["a", "b"]
    assert caught.value.status == 502
    assert caught.value.message == "b broke"


async def test_one_attempt_means_no_failover() -> None:
    h = make_router(
        ABC, {"a": [UpstreamTimeoutError("deployment 'a' did not answer in time")]}, max_attempts=1
    )

    with pytest.raises(UpstreamTimeoutError):
        await chat(h)

    assert h.transport.called == ["a"]


async def test_more_attempts_than_deployments_go_round_again_in_the_same_order() -> None:
    h = make_router(
        [{"name": "a"}, {"name": "b"}],
        {"a": [error(500)], "b": [error(500), completion("b at last")]},
        max_attempts=5,
    )

    dispatched = await chat(h)

    assert h.transport.called == ["a", "b", "a", "b"]
    assert dispatched.deployment.name == "b"
    assert dispatched.attempts == 4
    # Only going back to a deployment already tried waits: attempts 3 and 4.
    assert len(h.sleep.waits) == 2


async def test_going_back_waits_with_exponential_backoff_and_jitter() -> None:
    base, cap = 0.1, 1.0
    h = make_router(
        [{"name": "a"}], {"a": [error(503)]}, max_attempts=9, backoff_base_s=base, backoff_max_s=cap
    )

    with pytest.raises(UpstreamStatusError):
        await chat(h)

    assert h.transport.called == ["a"] * 9
    waits = h.sleep.waits
    assert len(waits) == 8
    bounds = [min(cap, base * 2**n) for n in range(8)]
    assert bounds == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0])
    for wait, bound in zip(waits, bounds, strict=True):
        assert 0 <= wait <= bound
    # Jitter: the waits are spread over the range, not the bound itself every time.
    assert any(wait < bound * 0.9 for wait, bound in zip(waits, bounds, strict=True))
    assert len(set(waits)) == len(waits)


async def test_backoff_grows_per_round_not_per_attempt() -> None:
    base, cap = 0.1, 10.0
    h = make_router(
        [{"name": "a"}, {"name": "b"}],
        {"a": [error(500)], "b": [error(500)]},
        max_attempts=6,
        backoff_base_s=base,
        backoff_max_s=cap,
    )

    with pytest.raises(UpstreamStatusError):
        await chat(h)

    # Rounds: (a, b) no wait, (a, b) up to base, (a, b) up to 2*base.
    assert h.transport.called == ["a", "b"] * 3
    assert len(h.sleep.waits) == 4
    for wait, bound in zip(h.sleep.waits, [0.1, 0.1, 0.2, 0.2], strict=True):
        assert 0 <= wait <= bound


async def test_retry_after_within_the_maximum_is_waited_exactly() -> None:
    h = make_router(
        [{"name": "a"}],
        {"a": [error(429, retry_after="1.5"), completion("after waiting")]},
        backoff_max_s=2.0,
    )

    dispatched = await chat(h)

    assert h.sleep.waits == [1.5]
    assert h.transport.called == ["a", "a"]
    assert dispatched.attempts == 2


async def test_retry_after_above_the_maximum_stops_retrying_with_the_last_error() -> None:
    h = make_router(
        [{"name": "a"}],
        {"a": [error(429, "slow down", retry_after="20"), completion("never")]},
        backoff_max_s=2.0,
    )

    with pytest.raises(UpstreamStatusError) as caught:
        await chat(h)

    assert h.transport.called == ["a"]
    assert h.sleep.waits == []
    assert caught.value.status == 429
    assert caught.value.message == "slow down"
    # The client learns when to come back.
    assert caught.value.headers["retry-after"] == "20"


async def test_a_long_retry_after_still_fails_over_to_another_deployment() -> None:
    h = make_router(
        [{"name": "a"}, {"name": "b"}],
        {"a": [error(429, retry_after="60")], "b": [completion("from b")]},
        backoff_max_s=2.0,
    )

    dispatched = await chat(h)

    assert dispatched.deployment.name == "b"
    assert h.sleep.waits == []


async def test_a_retry_after_that_is_not_a_number_falls_back_to_backoff() -> None:
    h = make_router(
        [{"name": "a"}],
        {"a": [error(503, retry_after="soon"), completion("ok")]},
        backoff_base_s=0.1,
        backoff_max_s=2.0,
    )

    await chat(h)

    assert len(h.sleep.waits) == 1
    assert 0 <= h.sleep.waits[0] <= 0.1


async def test_going_back_to_a_deployment_honours_its_own_retry_after() -> None:
    h = make_router(
        [{"name": "a"}, {"name": "b"}],
        {"a": [error(429, retry_after="1.5"), completion("a after waiting")], "b": [error(500)]},
        backoff_base_s=0.05,
        backoff_max_s=2.0,
    )

    dispatched = await chat(h)

    # b's plain 500 came last, but it is a that is asked again, and a said 1.5 seconds.
    assert h.transport.called == ["a", "b", "a"]
    assert h.sleep.waits == [1.5]
    assert dispatched.deployment.name == "a"


async def test_another_deployments_long_retry_after_does_not_stop_going_back() -> None:
    h = make_router(
        [{"name": "a"}, {"name": "b"}],
        {"a": [error(500), completion("a on the second try")], "b": [error(429, retry_after="60")]},
        backoff_base_s=0.05,
        backoff_max_s=2.0,
    )

    dispatched = await chat(h)

    assert h.transport.called == ["a", "b", "a"]
    assert dispatched.deployment.name == "a"
    assert len(h.sleep.waits) == 1
    assert 0 <= h.sleep.waits[0] <= 0.05
