"""The leak check (issue 10): drive many requests through the gateway and watch its memory.

It starts the local upstream and the gateway the way run.py does (pinned, generated config), or
attaches to a running gateway with ``--url`` and ``--pid``. After a warm-up it sends chat and
streaming requests at once (half the concurrency each) until ``--requests`` have been sent or
``--duration`` seconds have passed, whichever comes first, printing the gateway's RSS every
``--interval`` seconds and at the end. The growth is taken from the first sample after the first
interval (caches and pools are warm by then) to the end; above ``--max-growth-mb`` it exits 1.

    python bench/soak.py                                  # 100,000 requests or 10 minutes
    python bench/soak.py --requests 0 --duration 600      # exactly 10 minutes
    python bench/soak.py --url http://127.0.0.1:8080/v1 --pid 1234 --api-key sk-...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import LoadResult, LoadSpec, Recorder, open_session, run_load
from procs import (
    BENCH_MODEL,
    RESULTS_DIR,
    Managed,
    can_pin,
    cpu_seconds,
    free_port,
    issue_key,
    launch_gateway,
    memory_mb,
    start_upstream,
)

GATEWAY_CPU, LOAD_CPU = 0, 1
#: A request bound of 0 means: only the duration bounds the run.
UNBOUNDED = 10**12


async def drive(args: argparse.Namespace, base_url: str, api_key: str | None, pid: int) -> dict[str, Any]:
    modes = [m == "stream" for m in args.modes]
    share = max(1, args.concurrency // len(modes))
    total = args.requests or UNBOUNDED
    recorders = [Recorder() for _ in modes]
    specs = [
        LoadSpec(
            base_url=base_url,
            model=BENCH_MODEL,
            stream=stream,
            api_key=api_key,
            concurrency=share,
            requests=max(1, total // len(modes)),
            duration_s=args.duration,
            warmup=args.warmup,
            timeout_s=args.timeout,
        )
        for stream in modes
    ]
    samples: list[dict[str, float]] = []
    start = time.monotonic()
    cpu_start = cpu_seconds(pid)

    def sample() -> None:
        memory = memory_mb(pid)
        done = sum(r.done for r in recorders)
        errors = sum(sum(r.errors.values()) for r in recorders)
        elapsed = time.monotonic() - start
        samples.append({"elapsed_s": round(elapsed, 1), "requests": done, "errors": errors, **memory})
        print(
            f"{elapsed:7.0f} s  requests {done:>9,}  errors {errors:>6,}  RSS {memory['rss']:7.1f} MB"
            f"  peak {memory['hwm']:7.1f} MB",
            flush=True,
        )

    async def report_every_interval() -> None:
        while True:
            await asyncio.sleep(args.interval)
            sample()

    async with open_session(args.concurrency, args.timeout) as session:
        sample()
        reporter = asyncio.create_task(report_every_interval())
        try:
            results: list[LoadResult] = await asyncio.gather(
                *(run_load(spec, session, recorder=rec) for spec, rec in zip(specs, recorders, strict=True))
            )
        finally:
            reporter.cancel()
    sample()
    requests = sum(r.ok + sum(r.errors.values()) for r in results)
    baseline = next((s for s in samples if s["elapsed_s"] >= args.interval), samples[0])
    growth = round(samples[-1]["rss"] - baseline["rss"], 1)
    return {
        "samples": samples,
        "results": [r.as_dict() for r in results],
        "requests": requests,
        "cpu_ms_per_request": round((cpu_seconds(pid) - cpu_start) * 1000 / requests, 3)
        if requests
        else None,
        "rss_growth_mb": growth,
        "baseline_elapsed_s": baseline["elapsed_s"],
    }


async def soak(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    if args.url:
        return await drive(args, args.url, args.api_key, args.pid)
    upstream_port, port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    upstream = start_upstream(upstream_port, args.chunks, 0.0, LOAD_CPU if args.pin else None, run_dir)
    gateway: Managed | None = None
    try:
        await upstream.wait_ready(upstream_url + "/models", timeout_s=15)
        cpu = GATEWAY_CPU if args.pin else None
        gateway, config, _ = await launch_gateway(args, run_dir, upstream_url, port, cpu)
        base_url = f"http://127.0.0.1:{port}/v1"
        await gateway.wait_ready(base_url + "/models", timeout_s=60)
        api_key = args.api_key
        if api_key is None and args.auth == "key":
            api_key = await issue_key(args.key_cmd, config)
        print(f"gateway: {base_url} (pid {gateway.pid}); log {gateway.log_path}", flush=True)
        return await drive(args, base_url, api_key, gateway.pid)
    finally:
        if gateway is not None:
            gateway.stop()
        upstream.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Leak check: RSS of the gateway under a long bounded load.")
    parser.add_argument("-n", "--requests", type=int, default=100_000, help="bound on requests (0: none)")
    parser.add_argument("-d", "--duration", type=float, default=600.0, help="bound in seconds")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--modes", default="chat,stream", help="chat, stream or both at once")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between RSS lines")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--max-growth-mb", type=float, default=20.0, help="exit 1 if RSS grew more")
    parser.add_argument("--url", help="attach to a running gateway (base URL with /v1); needs --pid")
    parser.add_argument("--pid", type=int, help="process id of the running gateway (for RSS)")
    parser.add_argument("--gateway-cmd", help="as in run.py")
    parser.add_argument("--config", type=Path, help="base gateway config merged under the generated one")
    parser.add_argument(
        "--keep-policy-data",
        action="store_true",
        help="use policies/ as shipped (its tiers allow at most 3,000 requests a minute: expect 429s)",
    )
    parser.add_argument("--auth", choices=("anonymous", "key"), default="anonymous")
    parser.add_argument("--api-key")
    parser.add_argument(
        "--key-cmd",
        default=f"{sys.executable} -m gateway.cli keys create --config {{config}} --name bench-soak",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--label", default="soak")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    args.modes = [m.strip() for m in args.modes.split(",")]
    if not args.modes or not set(args.modes) <= {"chat", "stream"}:
        sys.exit("--modes takes chat and/or stream")
    if args.url and args.pid is None:
        sys.exit("--url needs --pid (the gateway process to watch)")
    if args.pin and not args.url:
        if not can_pin():
            sys.exit("pinning needs CPUs 0 and 1; run with --no-pin on this machine")
        os.sched_setaffinity(0, {LOAD_CPU})
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = RESULTS_DIR / f"{stamp}-{args.label}"
    try:
        report = uvloop.run(soak(args, run_dir))
    except RuntimeError as exc:  # a process under test failed to start or exited: say why, briefly
        sys.exit(f"bench: {exc}")
    for result in report["results"]:
        print(LoadResult(**result).summary())
    print(
        f"{report['requests']:,} requests, gateway CPU {report['cpu_ms_per_request']} ms/request, "
        f"RSS growth after {report['baseline_elapsed_s']:.0f} s: {report['rss_growth_mb']:+.1f} MB"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{stamp}-{args.label}.json"
    out.write_bytes(orjson.dumps({"time": stamp, **report}, option=orjson.OPT_INDENT_2))
    print(f"results: {out}")
    if report["rss_growth_mb"] > args.max_growth_mb:
        print(f"RSS grew more than {args.max_growth_mb} MB: possible leak", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
