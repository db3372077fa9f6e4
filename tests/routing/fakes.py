"""Test doubles at the upstream transport seam, plus an injectable clock and sleep.

``ScriptedTransport`` plays the part httpx's ``MockTransport`` plays for httpx users: it answers
each deployment from a script instead of the network, and records what the router sent.
"""

from __future__ import annotations

import random
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.config import GatewayConfig
from gateway.providers.base import UpstreamRequest
from gateway.routing import Router
from gateway.upstream import Timeouts


@dataclass(slots=True)
class Reply:
    """One scripted upstream answer: a status, headers, and a body or a sequence of stream chunks.

    A stream chunk may be an exception, raised where it stands (a connection broken mid-stream).
    """

    status: int = 200
    #: An exception here is raised by ``read()`` (a connection broken while reading the body).
    body: bytes | Exception = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes | Exception] | None = None


Outcome = Reply | Exception


class ScriptedResponse:
    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        # The real transport lowercases header names; translators rely on that.
        self.headers = {k.lower(): v for k, v in reply.headers.items()}
        self._reply = reply
        self.closed = False
        self.chunks_read = 0

    async def read(self) -> bytes:
        if isinstance(self._reply.body, Exception):
            raise self._reply.body
        return self._reply.body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._reply.chunks or []:
            if isinstance(chunk, Exception):
                raise chunk
            self.chunks_read += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


@dataclass(slots=True)
class Call:
    deployment: str
    request: UpstreamRequest
    response: ScriptedResponse | None


class ScriptedTransport:
    """Answers each deployment with the next outcome of its script; the last one repeats."""

    def __init__(self, script: dict[str, list[Outcome]]) -> None:
        self._script = {name: deque(outcomes) for name, outcomes in script.items()}
        self.calls: list[Call] = []

    @property
    def called(self) -> list[str]:
        return [call.deployment for call in self.calls]

    def answer(self, deployment: str, *outcomes: Outcome) -> None:
        self._script[deployment] = deque(outcomes)

    async def send(
        self,
        request: UpstreamRequest,
        timeouts: Timeouts,
        *,
        deployment: str,
        ssl_context: ssl.SSLContext | None,
    ) -> ScriptedResponse:
        queue = self._script.get(deployment)
        if not queue:
            raise AssertionError(f"deployment {deployment!r} was called but has no scripted answer")
        outcome = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(outcome, Exception):
            self.calls.append(Call(deployment, request, None))
            raise outcome
        response = ScriptedResponse(outcome)
        self.calls.append(Call(deployment, request, response))
        return response

    async def aclose(self) -> None:
        return None


class FakeClock:
    """A monotonic clock that only moves when the test (or the fake sleep) moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """Records every wait the router asks for and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._clock.advance(seconds)


def completion(text: str, *, prompt_tokens: int = 7, completion_tokens: int = 3) -> Reply:
    """A 200 OpenAI chat completion answering ``text``."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Reply(200, orjson.dumps(body), {"Content-Type": "application/json"})


def error(status: int, message: str = "upstream trouble", *, retry_after: str | None = None) -> Reply:
    """An OpenAI-format error answer."""
    kinds = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}
    body = {
        "error": {"message": message, "type": kinds.get(status, "server_error"), "param": None, "code": None}
    }
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Reply(status, orjson.dumps(body), headers)


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return f"data: {data}\n\n".encode()


def delta_chunk(content: str, *, role: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {"content": content}
    if role is not None:
        delta["role"] = role
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def stream_reply(*chunks: bytes | Exception) -> Reply:
    return Reply(200, headers={"Content-Type": "text/event-stream"}, chunks=list(chunks))


CHAT_BODY: dict[str, Any] = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}


def gateway_config(deployments: list[dict[str, Any]], *, model: str = "gpt", **routing: Any) -> GatewayConfig:
    """A config with one public model over openai-type deployments named in ``deployments``."""
    return GatewayConfig.model_validate(
        {
            "providers": {
                "primary": {"type": "openai", "api_base": "http://primary.test/v1", "api_key": "env:PRIMARY"},
                "secondary": {"type": "openai", "api_base": "http://secondary.test/v1"},
            },
            "models": {
                model: {"deployments": [{"provider": "primary", "model": "gpt-4o", **d} for d in deployments]}
            },
            "routing": routing,
        }
    )


@dataclass(slots=True)
class Harness:
    router: Router
    transport: ScriptedTransport
    clock: FakeClock
    sleep: RecordingSleep


def make_router(
    deployments: list[dict[str, Any]],
    script: dict[str, list[Outcome]] | None = None,
    *,
    seed: int = 7,
    **routing: Any,
) -> Harness:
    config = gateway_config(deployments, **routing)
    transport = ScriptedTransport(script or {})
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    router = Router(
        config, transport, lambda ref: "sk-test-key", clock=clock, rng=random.Random(seed), sleep=sleep
    )
    return Harness(router, transport, clock, sleep)


async def chat(h: Harness, *, stream: bool = False, model: str = "gpt") -> Any:
    return await h.router.dispatch(h.router.route(model), "chat.completions", dict(CHAT_BODY), stream=stream)
