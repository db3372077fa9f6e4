"""The gateway benchmark: the local upstream measured directly, then through the gateway.

1. Start ``bench/upstream.py`` pinned to CPU 1; this process (the load generator) pins itself to
   CPU 1 as well, so the gateway alone has CPU 0.
2. Direct: chat and stream at each concurrency (default 1, 16, 64) against the upstream.
3. Start the gateway pinned to CPU 0 (``taskset -c 0 gateway serve --config <generated>``), with a
   generated config: ``bench-model`` on the upstream as an ``openai_compatible`` provider, the
   embedded defaults in a scratch folder, anonymous access or an issued key.
4. The same load through the gateway, reading its CPU time (utime+stime, /proc/<pid>/stat) before
   and after each measured phase, and its peak RSS (VmHWM) at the end.
5. Print a Markdown table and a summary against the targets of issues 2 and 10; write everything
   as JSON to ``bench/results/<time>-<label>.json``.

    python bench/run.py                        # full run (about 3 minutes)
    python bench/run.py --only direct          # the upstream alone
    python bench/run.py --gateway-cmd "{python} bench/passthrough.py --port {port} --upstream {upstream}"
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import LoadSpec, open_session, run_load
from procs import (
    BENCH_MODEL,
    REPO_DIR,
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

#: (label, summary key, issue 2 target, issue 10 target, "max"/"min"); None: the issue sets no figure.
TARGETS: list[tuple[str, str, float | None, float | None, str]] = [
    ("added p50 latency, c=1 (ms)", "added_p50_ms", 1.0, 0.7, "max"),
    ("added p99 latency, c=1 (ms)", "added_p99_ms", None, 2.5, "max"),
    ("requests/s, c=64", "chat_rps_64", 1500, 2500, "min"),
    ("streams/s, c=64", "stream_rps_64", 500, 1500, "min"),
    ("added TTFB p50, c=1 (ms)", "added_ttfb_p50_ms", None, 1.0, "max"),
    ("gateway CPU per request (ms)", "cpu_ms_per_request", 0.6, 0.45, "max"),
    ("peak RSS (MB)", "peak_rss_mb", 150, 200, "max"),
]


def _cpu_marker(watched: dict[str, Managed], into: dict[str, float]) -> Callable[[], None]:
    def mark() -> None:
        into.update({name: cpu_seconds(proc.pid) for name, proc in watched.items()})

    return mark


async def measure_target(
    target: str, base_url: str, api_key: str | None, args: argparse.Namespace, watched: dict[str, Managed]
) -> list[dict[str, Any]]:
    """Every (mode, concurrency) run against one base URL, with CPU per request of each watched process."""
    rows: list[dict[str, Any]] = []
    for stream in args.modes:
        for concurrency in args.concurrency:
            spec = LoadSpec(
                base_url=base_url,
                model=BENCH_MODEL,
                stream=stream,
                api_key=api_key,
                concurrency=concurrency,
                requests=args.requests,
                duration_s=args.duration,
                warmup=max(args.warmup, 2 * concurrency),
                timeout_s=args.timeout,
            )
            before: dict[str, float] = {}
            async with open_session(concurrency, args.timeout) as session:
                result = await run_load(spec, session, on_measure_start=_cpu_marker(watched, before))
            measured = result.ok + sum(result.errors.values())
            row = {"target": target, **result.as_dict()}
            for name, proc in watched.items():
                used = cpu_seconds(proc.pid) - before[name]
                row[f"{name}_cpu_ms_per_request"] = round(used * 1000 / measured, 3) if measured else None
            rows.append(row)
            print(f"  {target:<8} {result.summary()}", flush=True)
    return rows


def _find(rows: list[dict[str, Any]], target: str, mode: str, concurrency: int) -> dict[str, Any] | None:
    for row in rows:
        if row["target"] == target and row["mode"] == mode and row["concurrency"] == concurrency:
            return row
    return None


def summarize(rows: list[dict[str, Any]], peak_rss_mb: float | None) -> dict[str, float | None]:
    def diff(mode: str, field: str, point: str) -> float | None:
        gw, direct = _find(rows, "gateway", mode, 1), _find(rows, "direct", mode, 1)
        if not gw or not direct or not gw[field] or not direct[field]:
            return None
        return round(gw[field][point] - direct[field][point], 3)

    def at64(mode: str, field: str) -> float | None:
        row = _find(rows, "gateway", mode, 64)
        return row[field] if row else None

    return {
        "added_p50_ms": diff("chat", "latency_ms", "p50"),
        "added_p99_ms": diff("chat", "latency_ms", "p99"),
        "added_ttfb_p50_ms": diff("stream", "ttfb_ms", "p50"),
        "added_ttfb_p99_ms": diff("stream", "ttfb_ms", "p99"),
        "chat_rps_64": at64("chat", "rps"),
        "stream_rps_64": at64("stream", "rps"),
        "cpu_ms_per_request": at64("chat", "gateway_cpu_ms_per_request"),
        "stream_cpu_ms_per_request": at64("stream", "gateway_cpu_ms_per_request"),
        "peak_rss_mb": peak_rss_mb,
    }


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown(rows: list[dict[str, Any]], summary: dict[str, float | None]) -> str:
    lines = [
        "| target | mode | c | req/s | p50 ms | p90 ms | p99 ms | TTFB p50 | TTFB p99 | gateway CPU ms/req "
        "| upstream CPU ms/req | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat, ttfb = r["latency_ms"], r["ttfb_ms"] or {}
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        cells = [
            r["target"], r["mode"], r["concurrency"], f"{r['rps']:,.1f}",
            lat.get("p50"), lat.get("p90"), lat.get("p99"), ttfb.get("p50"), ttfb.get("p99"),
            r.get("gateway_cpu_ms_per_request"),
            r.get("upstream_cpu_ms_per_request"), errors,
        ]  # fmt: skip
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    lines += ["", "| figure | measured | issue 2 target | issue 10 target |", "|---|---|---|---|"]
    for label, key, target2, target10, better in TARGETS:
        value = summary.get(key)

        def verdict(target: float | None, value: float | None = value, better: str = better) -> str:
            if target is None:
                return "—"
            if value is None:
                return f"{target:g} (not measured)"
            ok = value <= target if better == "max" else value >= target
            return f"{target:g} {'ok' if ok else 'MISSED'}"

        shown = (
            f"{value:,.1f}" if isinstance(value, float) and key.endswith(("rps_64", "_mb")) else _fmt(value)
        )
        lines.append(f"| {label} | {shown} | {verdict(target2)} | {verdict(target10)} |")
    return "\n".join(lines)


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


async def bench(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    pin = args.pin
    upstream_port = args.upstream_port or free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    upstream = start_upstream(
        upstream_port, args.chunks, args.chunk_delay_ms, LOAD_CPU if pin else None, run_dir
    )
    rows: list[dict[str, Any]] = []
    gateway_info: dict[str, Any] = {}
    try:
        await upstream.wait_ready(upstream_url + "/models", timeout_s=15)
        if args.only in (None, "direct"):
            print(f"direct: {upstream_url}", flush=True)
            rows += await measure_target("direct", upstream_url, None, args, {"upstream": upstream})
        if args.only in (None, "gateway"):
            rows_gw, gateway_info = await bench_gateway(args, run_dir, upstream_url, upstream)
            rows += rows_gw
    finally:
        upstream.stop()
    summary = summarize(rows, gateway_info.get("peak_rss_mb"))
    return {"rows": rows, "summary": summary, "gateway": gateway_info}


async def bench_gateway(
    args: argparse.Namespace, run_dir: Path, upstream_url: str, upstream: Managed
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    port = args.gateway_port or free_port()
    cpu = GATEWAY_CPU if args.pin else None
    gateway, config, command = await launch_gateway(args, run_dir, upstream_url, port, cpu)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        await gateway.wait_ready(base_url + "/models", timeout_s=args.start_timeout)
        start_memory = memory_mb(gateway.pid)
        api_key = args.api_key
        if api_key is None and args.auth == "key":
            api_key = await issue_key(args.key_cmd, config)
        print(
            f"gateway: {base_url} (pid {gateway.pid}, RSS after start {start_memory['rss']} MB)", flush=True
        )
        rows = await measure_target(
            "gateway", base_url, api_key, args, {"gateway": gateway, "upstream": upstream}
        )
        end_memory = memory_mb(gateway.pid)
    finally:
        gateway.stop()
    info = {
        "command": command,
        "config": str(config),
        "log": str(gateway.log_path),
        "rss_after_start_mb": start_memory["rss"],
        "rss_at_end_mb": end_memory["rss"],
        "peak_rss_mb": end_memory["hwm"],
        "log_warnings": gateway.warnings(),
    }
    if info["log_warnings"]:
        print(f"gateway log: {len(info['log_warnings'])} warning/error lines (see {gateway.log_path})")
    return rows, info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark the gateway against the local upstream.")
    parser.add_argument("--only", choices=("direct", "gateway"), help="measure only one target")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated levels (default 1,16,64)")
    parser.add_argument("--modes", default="chat,stream", help="chat, stream or both (default chat,stream)")
    parser.add_argument(
        "-n", "--requests", type=int, default=10_000, help="measured requests per run (bound)"
    )
    parser.add_argument("-d", "--duration", type=float, default=15.0, help="seconds per run (bound)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each run")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    parser.add_argument("--chunks", type=int, default=20, help="events per upstream stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--upstream-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--gateway-port", type=int, default=0, help="0: a free port")
    parser.add_argument(
        "--gateway-cmd",
        help="command to benchmark instead of 'gateway serve'; placeholders {config} {host} {port} "
        "{upstream} {python}; it is pinned to CPU 0 unless --no-pin",
    )
    parser.add_argument("--config", type=Path, help="base gateway config merged under the generated one")
    parser.add_argument(
        "--keep-policy-data",
        action="store_true",
        help="use policies/ as shipped (its tiers allow at most 3,000 requests a minute: expect 429s)",
    )
    parser.add_argument(
        "--auth",
        choices=("anonymous", "key"),
        default="anonymous",
        help="anonymous: auth.allow_anonymous: true; key: issue a key with --key-cmd (or pass --api-key)",
    )
    parser.add_argument("--api-key", help="send this key (Authorization: Bearer) to the gateway")
    parser.add_argument(
        "--key-cmd",
        default=f"{sys.executable} -m gateway.cli keys create --config {{config}} --name bench-load",
        help="prints the new key (last token of its output, or a JSON 'key' field); {config} {python}",
    )
    parser.add_argument("--start-timeout", type=float, default=60.0)
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes to CPUs")
    parser.add_argument("--label", default="bench", help="name of the results file")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    if not set(modes) <= {"chat", "stream"}:
        sys.exit("--modes takes chat and/or stream")
    args.modes = [m == "stream" for m in modes]
    if args.pin:
        if not can_pin():
            sys.exit("pinning needs CPUs 0 and 1; run with --no-pin on this machine")
        os.sched_setaffinity(0, {LOAD_CPU})
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = RESULTS_DIR / f"{stamp}-{args.label}"
    started = {"time": stamp, "loadavg_before": _loadavg()}
    try:
        result = uvloop.run(bench(args, run_dir))
    except RuntimeError as exc:  # a process under test failed to start or exited: say why, briefly
        sys.exit(f"bench: {exc}")
    report = {
        **started,
        "loadavg_after": _loadavg(),
        "git": _git_revision(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "pinned": args.pin,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("api_key",)
        },
        **result,
    }
    table = markdown(result["rows"], result["summary"])
    print()
    print(table)
    print(f"\nload average before/after: {started['loadavg_before']} / {report['loadavg_after']}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{stamp}-{args.label}.json"
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (run_dir / "table.md").write_text(table + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
