"""A bounded HTTP load generator for OpenAI-compatible endpoints.

``--concurrency`` workers share one aiohttp session (keep-alive, one connection per worker) on
uvloop and send requests back to back until ``--requests`` measured requests have been sent or
``--duration`` seconds have passed, whichever comes first; ``--warmup`` requests run before and
are left out of every figure.

Measured per request (``time.perf_counter``): latency from just before the request is sent to
the end of the body; for streams also the time to first byte (TTFB): until the first body bytes,
i.e. the first SSE event, arrive (not the response headers). Percentiles are nearest-rank over all
samples of successful requests. Errors are counted by HTTP status, by exception name, and
``incomplete_stream`` for a 200 stream that did not end with ``data: [DONE]``; they are reported,
never dropped silently, and their latency is not in the percentiles.

    python bench/load.py --url http://127.0.0.1:8080/v1 --api-key sk-... -c 64 -n 20000 --stream
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import orjson
import uvloop

DEFAULT_MODEL = "bench-model"
PROMPT = "Say hello to the benchmark in one short sentence."


@dataclass(slots=True)
class LoadSpec:
    """What to send, how hard and for how long."""

    base_url: str
    model: str = DEFAULT_MODEL
    stream: bool = False
    embeddings: bool = False
    api_key: str | None = None
    concurrency: int = 1
    requests: int = 10_000
    duration_s: float = 30.0
    warmup: int = 100
    timeout_s: float = 30.0
    #: A JSON request body to send instead of the built-in one (``model``/``stream`` are set on it).
    body: dict[str, Any] | None = None

    @property
    def mode(self) -> str:
        return "embeddings" if self.embeddings else ("stream" if self.stream else "chat")

    def url(self) -> str:
        path = "/embeddings" if self.embeddings else "/chat/completions"
        return self.base_url.rstrip("/") + path

    def request_body(self) -> bytes:
        if self.body is not None:
            body = dict(self.body)
        elif self.embeddings:
            body = {"input": PROMPT}
        else:
            body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 32}
        body["model"] = self.model
        if self.stream and not self.embeddings:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return orjson.dumps(body)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


def percentiles(samples: list[float], points: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    """Nearest-rank percentiles (in ms) over all samples, plus mean and max."""
    if not samples:
        return {}
    ordered = sorted(samples)
    n = len(ordered)
    result = {f"p{p}": ordered[max(0, math.ceil(p / 100 * n) - 1)] * 1000 for p in points}
    result["mean"] = sum(ordered) / n * 1000
    result["max"] = ordered[-1] * 1000
    return {k: round(v, 3) for k, v in result.items()}


@dataclass(slots=True)
class LoadResult:
    url: str
    mode: str
    concurrency: int
    ok: int
    errors: dict[str, int]
    elapsed_s: float
    rps: float
    latency_ms: dict[str, float]
    ttfb_ms: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lat = self.latency_ms
        line = (
            f"{self.mode:<10} c={self.concurrency:<3} ok={self.ok:<7} rps={self.rps:>8.1f}  "
            f"p50={lat.get('p50', float('nan')):.3f} p90={lat.get('p90', float('nan')):.3f} "
            f"p99={lat.get('p99', float('nan')):.3f} ms"
        )
        if self.ttfb_ms:
            line += f"  ttfb p50={self.ttfb_ms['p50']:.3f} p99={self.ttfb_ms['p99']:.3f} ms"
        if self.errors:
            line += f"  errors={dict(self.errors)}"
        return line


def open_session(concurrency: int, timeout_s: float = 30.0) -> aiohttp.ClientSession:
    """One keep-alive session with a connection per worker (call inside the running loop)."""
    connector = aiohttp.TCPConnector(limit=max(1, concurrency), limit_per_host=0, ttl_dns_cache=None)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


class Recorder:
    """Samples of one phase; warm-up gets its own recorder that is then thrown away."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.errors: Counter[str] = Counter()
        self.last_done = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


async def _one(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    stream: bool,
    rec: Recorder,
) -> None:
    start = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            if not stream:
                await response.read()
                done = time.perf_counter()
                if response.status != 200:
                    rec.errors[str(response.status)] += 1
                else:
                    rec.latencies.append(done - start)
                rec.last_done = done
                return
            first = 0.0
            tail = b""
            async for chunk in response.content.iter_any():
                if not first:
                    first = time.perf_counter()
                tail = (tail + chunk)[-32:]
            done = time.perf_counter()
            rec.last_done = done
            if response.status != 200:
                rec.errors[str(response.status)] += 1
            elif not tail.rstrip().endswith(b"data: [DONE]"):
                rec.errors["incomplete_stream"] += 1
            else:
                rec.latencies.append(done - start)
                rec.ttfbs.append(first - start)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        rec.errors[type(exc).__name__] += 1
        rec.last_done = time.perf_counter()


async def _phase(
    session: aiohttp.ClientSession, spec: LoadSpec, count: int, deadline: float | None, rec: Recorder
) -> None:
    url, body, headers = spec.url(), spec.request_body(), spec.headers()
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and (deadline is None or time.perf_counter() < deadline):
            remaining -= 1
            await _one(session, url, body, headers, spec.stream, rec)

    await asyncio.gather(*(worker() for _ in range(max(1, spec.concurrency))))


async def run_load(
    spec: LoadSpec,
    session: aiohttp.ClientSession | None = None,
    on_measure_start: Callable[[], None] | None = None,
    recorder: Recorder | None = None,
) -> LoadResult:
    """Warm up, then measure; ``on_measure_start`` runs between the two (e.g. to read CPU counters).

    Pass ``recorder`` to watch progress while the measured phase runs.
    """
    own_session = session is None
    if session is None:
        session = open_session(spec.concurrency, spec.timeout_s)
    try:
        if spec.warmup > 0:
            await _phase(
                session, spec, spec.warmup, time.perf_counter() + max(spec.duration_s, 5.0), Recorder()
            )
        if on_measure_start is not None:
            on_measure_start()
        rec = recorder if recorder is not None else Recorder()
        start = time.perf_counter()
        await _phase(session, spec, spec.requests, start + spec.duration_s, rec)
        elapsed = max((rec.last_done or time.perf_counter()) - start, 1e-9)
    finally:
        if own_session:
            await session.close()
    return LoadResult(
        url=spec.url(),
        mode=spec.mode,
        concurrency=spec.concurrency,
        ok=len(rec.latencies),
        errors=dict(rec.errors),
        elapsed_s=round(elapsed, 3),
        rps=round(len(rec.latencies) / elapsed, 1),
        latency_ms=percentiles(rec.latencies),
        ttfb_ms=percentiles(rec.ttfbs) if spec.stream else None,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Bounded load generator for OpenAI-compatible endpoints.")
    parser.add_argument("--url", required=True, help="base URL including /v1, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--api-key", help="sent as 'Authorization: Bearer <key>'")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-n", "--requests", type=int, default=10_000, help="measured requests (upper bound)")
    parser.add_argument("-d", "--duration", type=float, default=30.0, help="seconds (upper bound)")
    parser.add_argument("--warmup", type=int, default=100, help="requests sent first and not measured")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--stream", action="store_true", help="stream chat completions (measures TTFB)")
    kind.add_argument("--embeddings", action="store_true", help="POST /embeddings instead of chat")
    parser.add_argument("--body-file", help="JSON request body to send (model/stream are set on it)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    body = None
    if args.body_file:
        with open(args.body_file, "rb") as f:
            body = orjson.loads(f.read())
    spec = LoadSpec(
        base_url=args.url,
        model=args.model,
        stream=args.stream,
        embeddings=args.embeddings,
        api_key=args.api_key,
        concurrency=args.concurrency,
        requests=args.requests,
        duration_s=args.duration,
        warmup=args.warmup,
        timeout_s=args.timeout,
        body=body,
    )
    result = uvloop.run(run_load(spec))
    if args.json:
        sys.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(result.summary())
    if result.ok == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
