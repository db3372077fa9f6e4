"""Streams fail over only until their first chunk is ready for the client."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import UpstreamStatusError, UpstreamTimeoutError, UpstreamUnreachableError
from tests.routing.fakes import Reply, chat, delta_chunk, error, make_router, sse_event, stream_reply

AB = [{"name": "a"}, {"name": "b"}]


def good_stream(text: str) -> list[bytes]:
    return [
        sse_event(delta_chunk("", role="assistant")),
        sse_event(delta_chunk(text)),
        sse_event("[DONE]"),
    ]


async def test_a_stream_carries_its_first_chunks_and_the_deployment_that_served() -> None:
    h = make_router(AB, {"a": [stream_reply(*good_stream("Hello"))]})

    dispatched = await chat(h, stream=True)

    assert dispatched.deployment.name == "a"
    assert dispatched.attempts == 1
    assert dispatched.first_chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert dispatched.first_chunks[0]["object"] == "chat.completion.chunk"
    # The rest of the stream is left for the pipeline to relay, through the same translator.
    assert dispatched.stream is not None and dispatched.chunks is not None
    rest = [chunk async for raw in dispatched.chunks for chunk in dispatched.stream.feed(raw)]
    assert [c["choices"][0]["delta"]["content"] for c in rest] == ["Hello"]
    assert h.transport.called == ["a"]


async def test_a_first_event_split_across_reads_is_still_served_by_the_same_deployment() -> None:
    event = sse_event(delta_chunk("Hi", role="assistant"))
    h = make_router(AB, {"a": [stream_reply(event[:9], event[9:20], event[20:])]})

    dispatched = await chat(h, stream=True)

    assert dispatched.deployment.name == "a"
    assert dispatched.first_chunks[0]["choices"][0]["delta"]["content"] == "Hi"
    assert h.transport.called == ["a"]


@pytest.mark.parametrize(
    "broken",
    [
        stream_reply(UpstreamUnreachableError("deployment 'a' broke the stream: ClientPayloadError")),
        stream_reply(b": keep-alive\n\n", UpstreamTimeoutError("deployment 'a' timed out mid-stream")),
        stream_reply(b'data: {"id": "chatcmpl-1", "obj', UpstreamUnreachableError("connection reset")),
        stream_reply(sse_event({"error": {"message": "overloaded", "type": "server_error"}})),
    ],
    ids=["fails-at-once", "times-out-after-a-comment", "fails-mid-event", "error-event"],
)
async def test_a_stream_failing_before_its_first_chunk_fails_over(broken: Reply) -> None:
    h = make_router(AB, {"a": [broken], "b": [stream_reply(*good_stream("from b"))]})

    dispatched = await chat(h, stream=True)

    assert h.transport.called == ["a", "b"]
    assert dispatched.deployment.name == "b"
    assert dispatched.attempts == 2
    assert dispatched.first_chunks
    # The abandoned upstream response is closed, not left holding a pooled connection.
    first_response = h.transport.calls[0].response
    assert first_response is not None and first_response.closed


@pytest.mark.parametrize(
    "empty",
    [stream_reply(), stream_reply(b""), stream_reply(b": ping\n\n"), stream_reply(sse_event("[DONE]"))],
    ids=["no-bytes", "empty-read", "only-a-comment", "only-done"],
)
async def test_a_stream_ending_before_its_first_chunk_fails_over(empty: Reply) -> None:
    h = make_router(AB, {"a": [empty], "b": [stream_reply(*good_stream("from b"))]})

    dispatched = await chat(h, stream=True)

    assert h.transport.called == ["a", "b"]
    assert dispatched.deployment.name == "b"
    assert dispatched.first_chunks


async def test_every_stream_ending_empty_is_an_upstream_error() -> None:
    h = make_router(AB, {"a": [stream_reply()], "b": [stream_reply(b"")]}, max_attempts=2)

    with pytest.raises(UpstreamStatusError) as caught:
        await chat(h, stream=True)

    assert caught.value.status == 502
    assert h.transport.called == ["a", "b"]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_stream_refused_with_a_retryable_status_fails_over(status: int) -> None:
    h = make_router(AB, {"a": [error(status)], "b": [stream_reply(*good_stream("from b"))]})

    dispatched = await chat(h, stream=True)

    assert dispatched.deployment.name == "b"


async def test_a_stream_refused_with_a_client_error_does_not_fail_over() -> None:
    h = make_router(
        AB, {"a": [error(401, "Incorrect API key provided")], "b": [stream_reply(*good_stream("b"))]}
    )

    with pytest.raises(UpstreamStatusError) as caught:
        await chat(h, stream=True)

    assert caught.value.status == 401
    assert h.transport.called == ["a"]


async def test_after_the_first_chunk_a_failure_is_the_clients_not_a_failover() -> None:
    h = make_router(
        AB,
        {
            "a": [
                stream_reply(
                    sse_event(delta_chunk("Hel", role="assistant")), UpstreamUnreachableError("reset")
                )
            ],
            "b": [stream_reply(*good_stream("from b"))],
        },
    )

    dispatched = await chat(h, stream=True)

    assert dispatched.deployment.name == "a"
    assert dispatched.first_chunks[0]["choices"][0]["delta"]["content"] == "Hel"
    assert dispatched.chunks is not None
    with pytest.raises(UpstreamUnreachableError):
        async for _ in dispatched.chunks:
            pass
    assert h.transport.called == ["a"]


async def test_the_stream_request_asks_the_deployment_for_usage() -> None:
    h = make_router(AB, {"a": [stream_reply(*good_stream("x"))]})

    await chat(h, stream=True)

    sent = orjson.loads(h.transport.calls[0].request.body or b"")
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
