"""Scale-out: one worker, ``--workers 2``, and replicas sharing PostgreSQL and Redis.

    python bench/scaleout.py [-c 64] [-d 15] [--stream] [--scenarios one,workers,shared,replicas]

Scenarios (each a fresh gateway on the fast local upstream, anonymous calls, chat completions
unless ``--stream``):

- ``one``: one worker pinned to CPU 0, embedded defaults (SQLite, in-process counters), as in
  run.py; the reference.
- ``workers``: ``gateway serve --workers N`` (default 2) on the same embedded defaults, unpinned.
  Counters are per process without Redis (docs/limits.md), so this is the shape for throughput,
  not for shared limits.
- ``shared``: one replica on the production backends (a fresh PostgreSQL database, limits in
  Redis), unpinned, to show what the shared backends cost.
- ``replicas``: N replicas (separate ``gateway serve`` processes, default 2) on that database and
  Redis, the load split evenly between them.

For each it prints requests/s, latency, errors, the gateway CPU per request (all gateway
processes together) and their peak RSS, and then counts the usage records in the database after
the gateways stopped (their writers flush on shutdown): the count must equal the requests sent,
warm-up included, so the table also shows that nothing was lost.

The machine has two cores: with more than one gateway process, the gateways, the upstream and
this load generator share them, so the scaled figures are bounded by the machine, not by the
gateway. On a bigger host the same command measures real scale-out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import LoadSpec, Recorder, open_session, percentiles, run_load
from procs import (
    BENCH_MODEL,
    RESULTS_DIR,
    Managed,
    cpu_seconds,
    default_gateway_cmd,
    free_port,
    memory_mb,
    migrate,
    start_gateway,
    start_upstream,
    write_gateway_config,
)

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/3"
SCENARIOS = ("one", "workers", "shared", "replicas")


@dataclass
class Outcome:
    scenario: str
    processes: int
    rps: float
    latency_ms: dict[str, float]
    ok: int
    errors: dict[str, int]
    cpu_ms_per_request: float | None
    peak_rss_mb: float
    sent: int
    recorded: int | None
    notes: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    name = f"gw_scaleout_{secrets.token_hex(4)}"
    await _pg(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _pg(statement: str, dsn: str = PG_ADMIN_DSN) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(statement)
    finally:
        await connection.close()


async def count_usage_records(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        import sqlite3

        path = database_url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as connection:
            return int(connection.execute("SELECT count(*) FROM usage_records").fetchone()[0])
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    return int(await _pg("SELECT count(*) FROM usage_records", dsn))


@contextlib.asynccontextmanager
async def gateways(
    count: int, config_base: Path | None, upstream_url: str, run_dir: Path, *, workers: int, pin: bool
) -> AsyncIterator[tuple[list[Managed], list[str], str]]:
    """``count`` gateway processes on one config (its database and Redis), ready to serve."""
    ports = [free_port() for _ in range(count)]
    config = write_gateway_config(run_dir / "gateway.yaml", upstream_url, ports[0], True, config_base)
    database_url = str(yaml.safe_load(config.read_text())["database"]["url"])
    await migrate(config)
    command = default_gateway_cmd() + (f" --workers {workers}" if workers > 1 else "")
    started: list[Managed] = []
    try:
        for i, port in enumerate(ports):
            log_dir = run_dir / f"gateway-{i}"
            started.append(start_gateway(command, config, port, upstream_url, 0 if pin else None, log_dir))
        urls = [f"http://127.0.0.1:{port}/v1" for port in ports]
        for gateway, url in zip(started, urls, strict=True):
            await gateway.wait_ready(url + "/models", timeout_s=90)
        yield started, urls, database_url
    finally:
        for gateway in started:
            gateway.stop()


async def measure(
    scenario: str, args: argparse.Namespace, upstream_url: str, run_dir: Path, config_base: Path | None
) -> Outcome:
    replicas = args.replicas if scenario == "replicas" else 1
    workers = args.workers if scenario == "workers" else 1
    pin = scenario == "one"
    async with gateways(replicas, config_base, upstream_url, run_dir, workers=workers, pin=pin) as running:
        procs, urls, database_url = running
        per_replica = max(1, args.concurrency // len(urls))
        recorder = Recorder()
        cpu_before: dict[int, float] = {}
        measure_start: list[float] = []

        def mark() -> None:
            # Each replica's load calls this after its warm-up; the first call starts the clock.
            if not measure_start:
                measure_start.append(time.perf_counter())
                for proc in procs:
                    cpu_before[proc.pid] = cpu_seconds(proc.pid)

        async def drive(url: str) -> None:
            spec = LoadSpec(
                base_url=url,
                model=BENCH_MODEL,
                stream=args.stream,
                concurrency=per_replica,
                requests=args.requests // len(urls),
                duration_s=args.duration,
                warmup=max(args.warmup, 2 * per_replica),
                timeout_s=30.0,
            )
            async with open_session(per_replica, 30.0) as session:
                await run_load(spec, session, on_measure_start=mark, recorder=recorder)

        await asyncio.gather(*(drive(url) for url in urls))
        elapsed = (recorder.last_done or time.perf_counter()) - measure_start[0]
        used = sum(cpu_seconds(p.pid) - cpu_before.get(p.pid, 0.0) for p in procs)
        peak = sum(memory_mb(p.pid)["hwm"] for p in procs)
    # The writers flush on shutdown: count what reached the database.
    measured = recorder.done
    warmups = sum(max(args.warmup, 2 * per_replica) for _ in urls)
    recorded = await count_usage_records(database_url)
    return Outcome(
        scenario=scenario,
        processes=len(procs) * workers,
        rps=round(len(recorder.latencies) / max(elapsed, 1e-9), 1),
        latency_ms=percentiles(recorder.latencies),
        ok=len(recorder.latencies),
        errors=dict(recorder.errors),
        cpu_ms_per_request=round(used * 1000 / measured, 3) if measured else None,
        peak_rss_mb=round(peak, 1),
        sent=measured + warmups,
        recorded=recorded,
    )


def shared_backends(run_dir: Path, database_url: str) -> Path:
    base = {"database": {"url": database_url}, "limits": {"backend": "redis", "redis_url": REDIS_URL}}
    path = run_dir / "shared-base.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def markdown(outcomes: list[Outcome], stream: bool) -> str:
    lines = [
        f"| scenario ({'streams' if stream else 'chat'}) | gateway processes | req/s | p50 ms | p99 ms "
        "| errors | CPU ms/req (all gateways) | peak RSS MB (sum) | usage records / requests sent |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.scenario} | {o.processes} | {o.rps:,.1f} | {o.latency_ms.get('p50', 0):.1f} | "
            f"{o.latency_ms.get('p99', 0):.1f} | {sum(o.errors.values())} | {o.cpu_ms_per_request} | "
            f"{o.peak_rss_mb} | {o.recorded} / {o.sent} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_root = RESULTS_DIR / f"{stamp}-scaleout"
    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    upstream = start_upstream(upstream_port, 20, 0.0, None, run_root)
    outcomes: list[Outcome] = []
    try:
        await upstream.wait_ready(upstream_url + "/models", timeout_s=15)
        for scenario in args.scenarios:
            run_dir = run_root / scenario
            run_dir.mkdir(parents=True, exist_ok=True)
            print(f"{scenario}: starting", flush=True)
            if scenario in ("shared", "replicas"):
                async with fresh_pg_database() as database_url:
                    base = shared_backends(run_dir, database_url)
                    outcome = await measure(scenario, args, upstream_url, run_dir, base)
            else:
                outcome = await measure(scenario, args, upstream_url, run_dir, None)
            outcomes.append(outcome)
            print(
                f"{scenario}: {outcome.rps:,.1f} req/s, p50 {outcome.latency_ms.get('p50')} ms, "
                f"{outcome.cpu_ms_per_request} ms CPU/req, {outcome.recorded}/{outcome.sent} recorded",
                flush=True,
            )
    finally:
        upstream.stop()
    table = markdown(outcomes, args.stream)
    print()
    print(table)
    out = RESULTS_DIR / f"{stamp}-scaleout.json"
    out.write_bytes(orjson.dumps([o.__dict__ for o in outcomes], option=orjson.OPT_INDENT_2))
    print(f"\nresults: {out}")
    lost = [o.scenario for o in outcomes if o.recorded is not None and o.recorded != o.sent]
    if lost:
        print(f"usage records differ from requests sent in: {', '.join(lost)}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--concurrency", type=int, default=64, help="in total, split across replicas")
    parser.add_argument("-n", "--requests", type=int, default=200_000, help="measured requests (bound)")
    parser.add_argument("-d", "--duration", type=float, default=15.0, help="seconds per scenario (bound)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--stream", action="store_true", help="20-chunk streams instead of JSON calls")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument(
        "--scenarios",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)}",
    )
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    uvloop.install()
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
