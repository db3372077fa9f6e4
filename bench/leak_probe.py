"""Leak diagnosis (issue 10): where does the gateway's resident memory go under sustained load?

Runs the gateway app IN this process (``create_app(config)``, lifespan and requests driven as
raw ASGI calls, no HTTP server or client in the way) against ``bench/upstream.py`` started as a
subprocess, with the same generated config as soak.py (SQLite, in-process counters, embedded
OPA engine, anonymous). After a warm-up it sends ``--requests`` requests (half chat, half
stream, ``--concurrency`` at once) in ``--rounds`` equal rounds and after each round prints:

- RSS, and RSS growth per kind of mapping (/proc/self/smaps: Go heap, malloc main heap, other
  anonymous memory, i.e. thread arenas and pymalloc), glibc malloc in use/free (mallinfo2),
  Python's allocated blocks, thread count and SQLite's own heap (``sqlite3_memory_used``);
- the sizes of the suspect caches and queues (limiter snapshots, anomaly baselines, metrics
  label children, usage writer queue and overflow, asyncio tasks);
- the growth of gc object counts by type since the baseline (top 12);
- with ``--tracemalloc``, the top allocation sites (by traceback) that grew since the baseline
  (slow: the usage writer may then time out and spool, which changes what is measured).

Other modes:

- ``--engine-only``: the policy decision on the embedded OPA engine in a loop, gateway-shaped
  inputs (new request id and time each call): growth there is the Go heap and the ctypes glue.
- ``--sqlite-only [--batch-sizes varying|fixed]``: usage batches written with ``write_batch``
  on one SQLite connection, sizes 1 to 500 or always 250: SQLite's statement cache in isolation.
- ``--serve [--unchunked] -- serve --config …``: runs ``gateway serve`` with a thread logging,
  every 10 s, the usage batch sizes written (how many distinct), SQLite's heap, malloc and RSS;
  give it to soak.py as ``--gateway-cmd``.
- ``--unchunked`` undoes the fix in ``gateway/usage/store.py`` (every usage batch as one
  ``INSERT … RETURNING`` of its own row count) for a before/after in one session.

    python bench/leak_probe.py -n 45000 --rounds 3
    python bench/leak_probe.py --engine-only -n 60000 --rounds 3
    python bench/leak_probe.py --sqlite-only --batch-sizes varying -n 60000 [--unchunked]
    python bench/soak.py --no-pin -c 4 -n 40000 --gateway-cmd "{python} bench/leak_probe.py \\
        --serve [--unchunked] -- serve --config {config} --host {host} --port {port}"

Everything binds to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import gc
import os
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procs import BENCH_MODEL, RESULTS_DIR, free_port, gateway_env, start_upstream, write_gateway_config


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_mb() -> dict[str, float]:
    """glibc's view: bytes in use by malloc callers and bytes free inside its arenas."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return {
        "in_use": round((info.uordblks + info.hblkhd) / 2**20, 1),
        "free": round(info.fordblks / 2**20, 1),
    }


#: The Go runtime (linux/amd64) maps its heap arenas at hint addresses far below where the kernel
#: puts the executable (0x55…/0x56…) and mmap()s (0x7f…): an anonymous mapping below this is Go's.
GO_HEAP = (0x1000000, 0x500000000000)


def rss_by_region() -> dict[str, float]:
    """Resident MB per kind of mapping, from /proc/self/smaps."""
    regions: collections.Counter[str] = collections.Counter()
    kind = "anon"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split(maxsplit=1)[0]
        if "-" in first and not first.endswith(":"):
            start = int(first.split("-")[0], 16)
            parts = line.split()
            name = parts[5] if len(parts) > 5 else ""
            if GO_HEAP[0] <= start < GO_HEAP[1] and not name:
                kind = "go heap"
            elif name == "[heap]":
                kind = "malloc main heap"
            elif name.startswith("["):
                kind = name
            elif name.endswith((".so",)) or ".so." in name or name.endswith("python3.11"):
                kind = "code"
            elif name:
                kind = "files"
            else:
                kind = "anon (threads arenas, pymalloc, stacks)"
        elif first == "Rss:":
            regions[kind] += int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in regions.most_common()}


def native_counters() -> dict[str, float]:
    """Threads of this process and SQLite's own heap (all connections: page caches, statements)."""
    import _sqlite3

    threads = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    lib = ctypes.CDLL(_sqlite3.__file__)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return {"threads": threads, "sqlite heap MB": round(lib.sqlite3_memory_used() / 2**20, 2)}


def type_counts() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def heap_mb() -> float:
    return tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else float("nan")


# -- the app driven as raw ASGI ------------------------------------------------------------


class Lifespan:
    """Runs the ASGI lifespan of ``app`` in a task; ``state`` is what the lifespan yielded."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.create_task(self.app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        message = await self._outbox.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan start-up failed: {message}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        assert self._task is not None
        await self._task


async def call(app: Any, state: dict[str, Any], body: bytes) -> tuple[int, int]:
    """One POST /v1/chat/completions; (status, body bytes received)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": dict(state),
    }
    sent = False
    done = asyncio.Event()
    status = 0
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, received
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            received += len(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    done.set()
    return status, received


def bodies() -> tuple[bytes, bytes]:
    messages = [{"role": "user", "content": "Say hello to the benchmark, briefly."}]
    chat = orjson.dumps({"model": BENCH_MODEL, "messages": messages, "max_tokens": 64})
    stream = orjson.dumps(
        {
            "model": BENCH_MODEL,
            "messages": messages,
            "max_tokens": 64,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    return chat, stream


async def drive(app: Any, state: dict[str, Any], n: int, concurrency: int) -> collections.Counter[int]:
    chat, stream = bodies()
    statuses: collections.Counter[int] = collections.Counter()
    remaining = n

    async def worker(body: bytes) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status, _ = await call(app, state, body)
            statuses[status] += 1

    await asyncio.gather(*(worker(stream if i % 2 else chat) for i in range(concurrency)))
    return statuses


def suspects(services: Any) -> dict[str, int]:
    """len() of every bounded cache or queue the lifespan opened (0 when absent)."""
    out: dict[str, int] = {}

    def size(name: str, obj: Any, attr: str) -> None:
        value = getattr(obj, attr, None)
        if value is not None:
            try:
                out[name] = value.qsize() if hasattr(value, "qsize") else len(value)
            except TypeError:
                pass

    size("limiter._snapshots", services.limiter, "_snapshots")
    size("anomaly._keys", services.anomaly, "_keys")
    size("writer._queue", services.writer, "_queue")
    for attr in ("_overflow", "_pending", "_buffer"):
        size(f"writer.{attr}", services.writer, attr)
    authenticator = getattr(services.auth, "authenticator", None) or getattr(services.auth, "_inner", None)
    for obj in (services.auth, authenticator):
        for attr in ("_cache", "cache"):
            cache = getattr(obj, attr, None) if obj is not None else None
            if cache is not None:
                size("auth key cache", cache, "_entries")
    registry = getattr(services.metrics, "registry", None)
    if registry is not None:
        children = 0
        for collector in list(getattr(registry, "_collector_to_names", {})):
            children += len(getattr(collector, "_metrics", {}) or {})
        out["metrics label children"] = children
    out["asyncio tasks"] = len(asyncio.all_tasks())
    return out


async def probe_app(args: argparse.Namespace, run_dir: Path) -> None:
    from gateway.app import create_app
    from gateway.config import load_config

    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    upstream = start_upstream(upstream_port, args.chunks, 0.0, None, run_dir)
    try:
        await upstream.wait_ready(upstream_url + "/models", timeout_s=15)
        config_path = write_gateway_config(
            run_dir / "gateway.yaml", upstream_url, free_port(), anonymous=True
        )
        for key, value in gateway_env().items():
            os.environ.setdefault(key, value)
        app = create_app(load_config(config_path))
        async with Lifespan(app) as lifespan:
            state = lifespan.state
            services = state["pipeline"].s
            print(f"started: RSS {rss_mb():.1f} MB", flush=True)
            statuses = await drive(app, state, args.warmup, args.concurrency)
            print(f"warm-up {args.warmup}: {dict(statuses)}  RSS {rss_mb():.1f} MB", flush=True)
            await report_rounds(
                args, lambda n: drive(app, state, n, args.concurrency), lambda: suspects(services)
            )
    finally:
        upstream.stop()


# -- the policy engine alone -----------------------------------------------------------


async def probe_engine(args: argparse.Namespace, run_dir: Path) -> None:
    from procs import bench_policies

    from gateway.policy.embedded import evaluate, load_verified
    from gateway.policy.input import build_input
    from gateway.types import ANONYMOUS

    policies = bench_policies(run_dir / "policies")
    engine, revision = load_verified([policies])
    print(f"engine loaded (revision {revision}): RSS {rss_mb():.1f} MB", flush=True)

    def one() -> None:
        document = dict(
            build_input(
                request_id=uuid.uuid4().hex,
                endpoint="chat.completions",
                method="POST",
                path="/v1/chat/completions",
                source_ip="127.0.0.1",
                time=datetime.now(UTC),
                stream=False,
                headers={"user-agent": "leak-probe", "x-request-id": uuid.uuid4().hex},
                principal=ANONYMOUS,
                model_requested=BENCH_MODEL,
                provider="bench",
                deployment="bench/bench-upstream-model",
                prompt_estimate=12,
                max_output=64,
                messages=[{"role": "user", "content": "Say hello to the benchmark, briefly."}],
                features={},
                usage={},
                include_prompt=False,
            )
        )
        document["usage"]["anomaly"] = 0.0
        evaluate(engine, document)

    async def loop(n: int) -> collections.Counter[int]:
        for i in range(n):
            one()
            if i % 1000 == 999:
                await asyncio.sleep(0)
        return collections.Counter({200: n})

    await loop(args.warmup)
    print(f"warm-up {args.warmup}: RSS {rss_mb():.1f} MB", flush=True)
    await report_rounds(args, loop, lambda: {})
    engine.close()


# -- the usage store alone ------------------------------------------------------------


async def probe_sqlite(args: argparse.Namespace, run_dir: Path) -> None:
    """Usage batches written straight with ``write_batch`` on the gateway's SQLite engine.

    ``--batch-sizes varying`` cycles through every size from 1 to 500 (what the writer produces
    under changing load); ``fixed`` always writes 250. Every size is a different multi-row
    ``INSERT … RETURNING`` text (SQLAlchemy's insertmanyvalues), so the two differ only in how
    many distinct statements the connections prepare and keep.
    """
    import random

    from gateway.config import DatabaseConfig
    from gateway.db.engine import create_engine, database_url
    from gateway.db.migrate import upgrade_async
    from gateway.usage.records import DecisionRecord, UsageRecord
    from gateway.usage.store import write_batch

    db_config = DatabaseConfig(url=f"sqlite+aiosqlite:///{run_dir / 'usage.db'}")
    await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
    await upgrade_async(database_url(db_config, run_dir))
    engine = create_engine(db_config, run_dir)
    rng = random.Random(7)

    def pair() -> tuple[UsageRecord, DecisionRecord]:
        rid, did = uuid.uuid4().hex, uuid.uuid4().hex
        now = datetime.now(UTC)
        return (
            UsageRecord(
                request_id=rid,
                time=now,
                requested_model=BENCH_MODEL,
                served_model="m",
                provider="bench",
                deployment="d",
                prompt_tokens=12,
                completion_tokens=20,
                latency_ms=1.0,
                decision_id=did,
            ),
            DecisionRecord(
                id=did,
                request_id=rid,
                time=now,
                allow=True,
                reasons=[],
                policy_revision="r",
                eval_ms=0.4,
                engine="embedded",
            ),
        )

    async def loop(n: int) -> collections.Counter[int]:
        written = 0
        while written < n:
            size = 250 if args.batch_sizes == "fixed" else rng.randint(1, 500)
            async with engine.begin() as connection:
                await write_batch(connection, [pair() for _ in range(size)])
            written += size
        return collections.Counter({200: written})

    await loop(args.warmup)
    await report_rounds(args, loop, lambda: {"pooled connections": engine.pool.checkedin()})
    await engine.dispose()


# -- rounds and reporting ----------------------------------------------------------------


async def report_rounds(args: argparse.Namespace, run: Any, sizes: Any) -> None:
    gc.collect()
    snapshot = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    base_types = type_counts()
    base_rss, base_heap = rss_mb(), heap_mb()
    print(f"baseline: RSS {base_rss:.1f} MB  traced heap {base_heap:.1f} MB  {sizes()}", flush=True)
    base_regions, base_malloc, base_blocks = rss_by_region(), malloc_mb(), sys.getallocatedblocks()
    print(
        f"  regions: {base_regions}  malloc {base_malloc}  python blocks {base_blocks:,}  "
        f"{native_counters()}",
        flush=True,
    )
    per_round = max(1, args.requests // args.rounds)
    done = 0
    started = time.monotonic()
    for round_no in range(1, args.rounds + 1):
        statuses = await run(per_round)
        done += per_round
        gc.collect()
        rss, heap = rss_mb(), heap_mb()
        print(
            f"round {round_no}: {done:>7,} req {dict(statuses)}  {time.monotonic() - started:6.0f} s  "
            f"RSS {rss:7.1f} MB (+{rss - base_rss:5.1f}, {1000 * (rss - base_rss) / done:.3f} MB/1k)  "
            f"traced heap {heap:6.1f} MB (+{heap - base_heap:5.1f})",
            flush=True,
        )
        print(f"  sizes: {sizes()}", flush=True)
        regions = rss_by_region()
        diff = {k: round(v - base_regions.get(k, 0.0), 1) for k, v in regions.items()}
        print(
            f"  region growth: {diff}  malloc {malloc_mb()}  "
            f"python blocks {sys.getallocatedblocks() - base_blocks:+,}  {native_counters()}",
            flush=True,
        )
        grown = (type_counts() - base_types).most_common(12)
        print(f"  gc objects grown: {grown}", flush=True)
    if snapshot is not None:
        top = tracemalloc.take_snapshot().compare_to(snapshot, "traceback")
        print("tracemalloc: top growth since baseline, by traceback", flush=True)
        for stat in top[: args.top]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB  {stat.count_diff:+7d} blocks", flush=True)
            for line in stat.traceback.format()[-args.frames * 2 :]:
                print(f"      {line}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Where the gateway's RSS goes under load.")
    parser.add_argument("-n", "--requests", type=int, default=40_000, help="measured requests (bound)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--engine-only", action="store_true", help="only the embedded OPA engine")
    parser.add_argument("--sqlite-only", action="store_true", help="only usage batches into SQLite")
    parser.add_argument("--batch-sizes", choices=("varying", "fixed"), default="varying")
    parser.add_argument(
        "--unchunked",
        action="store_true",
        help="undo the fix for comparison: write each usage batch as one INSERT … RETURNING",
    )
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations (slow)")
    parser.add_argument("--frames", type=int, default=6, help="traceback depth for tracemalloc")
    parser.add_argument("--top", type=int, default=15)
    return parser


def serve_instrumented(argv: list[str], unfixed: bool) -> int:
    """``gateway <argv>`` with a thread printing, every 10 s, the usage batch sizes written so far
    (how many distinct ones), SQLite's heap, malloc in use and RSS, to stderr (the gateway log).
    For soak.py: ``--gateway-cmd "{python} bench/leak_probe.py --serve [--unchunked] -- serve …"``."""
    import threading

    import gateway.usage.store
    import gateway.usage.writer
    from gateway.cli import main as gateway_main

    if unfixed:
        gateway.usage.store._padded_to_power_of_two = lambda rows: rows  # type: ignore[assignment]
    sizes: collections.Counter[int] = collections.Counter()
    original = gateway.usage.writer.write_batch

    async def counting_write_batch(connection: Any, pairs: Any) -> int:
        sizes[len(pairs)] += 1
        return await original(connection, pairs)

    gateway.usage.writer.write_batch = counting_write_batch  # type: ignore[assignment]
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(10):
            print(
                f"leak-probe: batches {sum(sizes.values())} distinct sizes {len(sizes)} "
                f"(min {min(sizes, default=0)} max {max(sizes, default=0)})  {native_counters()}  "
                f"malloc {malloc_mb()}  RSS {rss_mb():.1f} MB",
                file=sys.stderr,
                flush=True,
            )

    threading.Thread(target=report, daemon=True).start()
    try:
        return gateway_main(argv)
    finally:
        stop.set()


def main() -> None:
    if "--serve" in sys.argv:
        split = sys.argv.index("--")
        sys.exit(serve_instrumented(sys.argv[split + 1 :], "--unchunked" in sys.argv[:split]))
    args = build_parser().parse_args()
    os.environ.setdefault("GATEWAY_TOKENIZER__DATA_DIR", "/work/shared/tiktoken")
    if args.tracemalloc:
        tracemalloc.start(args.frames)
    if args.unchunked:
        import gateway.usage.store

        gateway.usage.store._padded_to_power_of_two = lambda rows: rows  # type: ignore[assignment]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = RESULTS_DIR / f"{stamp}-leak-probe-{os.getpid()}"
    probe = probe_engine if args.engine_only else probe_sqlite if args.sqlite_only else probe_app
    import uvloop

    uvloop.run(probe(args, run_dir))


if __name__ == "__main__":
    main()
