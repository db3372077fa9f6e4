"""Processes under test for run.py and soak.py: start, pin, wait until ready, read CPU and memory, stop.

CPU time is ``utime + stime`` from ``/proc/<pid>/stat`` (all threads of the process), summed over
the process and its live descendants (so ``--workers N`` and wrapper shells are counted), in
clock ticks (usually 10 ms) converted to seconds. Memory is ``VmHWM`` (peak resident set) and
``VmRSS`` from ``/proc/<pid>/status``, summed the same way.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import orjson
import yaml

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_MODEL = "bench-model"
BENCH_EMBEDDING_MODEL = "bench-embed"
#: The gateway reads the provider key by reference; the upstream accepts anything.
UPSTREAM_KEY_ENV = "BENCH_UPSTREAM_KEY"
BENCH_TIER = "bench"
_WARNING_MARKS = (
    '"level":"warning"',
    '"level":"error"',
    '"level":"critical"',
    "WARNING",
    "ERROR",
    "Traceback",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def can_pin() -> bool:
    return {0, 1} <= os.sched_getaffinity(0)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by ``root`` and its live descendants."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / CLOCK_TICKS


def memory_mb(root: int) -> dict[str, float]:
    """``{"rss": …, "hwm": …}`` in MiB, summed over the process tree."""
    total = {"rss": 0.0, "hwm": 0.0}
    for pid in process_tree(root):
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total["rss"] += int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                total["hwm"] += int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in total.items()}


class Managed:
    """A child process in its own session, so stopping it stops everything it started."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: TextIO = log_path.open("w")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO_DIR
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, url: str, timeout_s: float = 60.0) -> None:
        """Until ``url`` answers with any HTTP status; fails early if the process exits."""
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if self.proc.poll() is not None:
                    status = self.proc.returncode
                    tail = self.log_tail()
                    raise RuntimeError(f"{self.name} exited with {status}:\n{tail}\n(log: {self.log_path})")
                try:
                    async with session.get(url) as response:
                        await response.read()
                        return
                except (aiohttp.ClientError, TimeoutError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f}s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def warnings(self) -> list[str]:
        """Log lines at warning level or above (JSON or plain text logs), to show next to the figures."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in lines if any(mark in line for mark in _WARNING_MARKS)]

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self._log.close()


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def start_upstream(port: int, chunks: int, chunk_delay_ms: float, cpu: int | None, log_dir: Path) -> Managed:
    argv = [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(port), "--chunks", str(chunks)]
    argv += ["--chunk-delay-ms", str(chunk_delay_ms)]
    return Managed("upstream", pinned(argv, cpu), log_dir / "upstream.log")


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def bench_policies(target: Path) -> Path:
    """A copy of ``policies/`` whose data adds a ``bench`` tier, made the default for keys and
    anonymous callers: every limit is still declared, counted and checked, but set so high that a
    benchmark measures the allowed path instead of a wall of 429s (the shipped tiers allow at most
    3,000 requests a minute)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(REPO_DIR / "policies", target)
    data_file = target / "data.json"
    data = orjson.loads(data_file.read_bytes()) if data_file.exists() else {}
    data.setdefault("tiers", {})[BENCH_TIER] = {
        "max_prompt_tokens": 128_000,
        "max_tokens": 16_384,
        "requests_per_minute": 1_000_000_000,
        "tokens_per_minute": 1_000_000_000_000,
    }
    settings = data.setdefault("settings", {})
    settings["default_tier"] = settings["anonymous_tier"] = BENCH_TIER
    data_file.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return target


def write_gateway_config(
    path: Path,
    upstream_url: str,
    port: int,
    anonymous: bool,
    base_config: Path | None = None,
    keep_policy_data: bool = False,
) -> Path:
    """The bench config: ``bench-model`` (and ``bench-embed``) on the local upstream, embedded
    defaults (SQLite, in-process policy engine and counters) in a scratch folder, the shipped
    policies with the ``bench`` tier (unless ``keep_policy_data``), plus an optional base config
    merged underneath (e.g. PostgreSQL, Redis or the OPA sidecar)."""
    base: dict[str, Any] = {}
    if base_config is not None:
        base = yaml.safe_load(base_config.read_text()) or {}
        # The generated file lives elsewhere: anchor the base's relative policy paths to its folder.
        policy = base.get("policy", {})
        if "paths" in policy:
            policy["paths"] = [str((base_config.parent / p).resolve()) for p in policy["paths"]]
    scratch = path.parent
    deployment = {"provider": "bench", "model": "bench-upstream-model"}
    generated: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port},
        "providers": {
            "bench": {
                "type": "openai_compatible",
                "api_base": upstream_url,
                "api_key": f"env:{UPSTREAM_KEY_ENV}",
            }
        },
        "models": {
            BENCH_MODEL: {"deployments": [deployment]},
            BENCH_EMBEDDING_MODEL: {"kind": "embeddings", "deployments": [deployment]},
        },
    }
    policies = REPO_DIR / "policies" if keep_policy_data else bench_policies(scratch / "policies")
    defaults: dict[str, Any] = {
        "database": {"url": f"sqlite+aiosqlite:///{scratch / 'gateway.db'}"},
        "usage": {"spool_dir": str(scratch / "spool")},
        "policy": {"paths": [str(policies)]},
    }
    if anonymous:
        generated["auth"] = {"allow_anonymous": True}
    config = _deep_merge(_deep_merge(defaults, base), generated)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def default_gateway_cmd() -> str:
    script = Path(sys.executable).parent / "gateway"
    launcher = str(script) if script.exists() else f"{sys.executable} -m gateway.cli"
    return launcher + " serve --config {config} --host {host} --port {port}"


def gateway_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault(UPSTREAM_KEY_ENV, "sk-bench-upstream-not-a-secret")
    return env


async def migrate(config: Path) -> None:
    """The production deploy step (docs/performance.md): migrate once, then start the gateways,
    which find the schema current and never load Alembic."""
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway.cli", "db", "upgrade", "--config", str(config)],
        cwd=REPO_DIR,
        check=True,
        stdout=subprocess.DEVNULL,
        env=gateway_env(),
    )


async def launch_gateway(
    args: Any, run_dir: Path, upstream_url: str, port: int, cpu: int | None
) -> tuple[Managed, Path, str]:
    """The gateway of run.py and soak.py from their shared options (``auth``, ``config``,
    ``keep_policy_data``, ``gateway_cmd``): its generated config, migrated first when it is
    ``gateway serve``, then started. Returns the process, the config and the command."""
    config = write_gateway_config(
        run_dir / "gateway.yaml",
        upstream_url,
        port,
        anonymous=args.auth == "anonymous",
        base_config=args.config,
        keep_policy_data=args.keep_policy_data,
    )
    command = args.gateway_cmd or default_gateway_cmd()
    if args.gateway_cmd is None:
        await migrate(config)
    return start_gateway(command, config, port, upstream_url, cpu, run_dir), config, command


def start_gateway(
    cmd_template: str, config: Path, port: int, upstream_url: str, cpu: int | None, log_dir: Path
) -> Managed:
    cmd = cmd_template.format(
        config=config, host="127.0.0.1", port=port, upstream=upstream_url, python=sys.executable
    )
    return Managed("gateway", pinned(shlex.split(cmd), cpu), log_dir / "gateway.log", env=gateway_env())


async def issue_key(cmd_template: str, config: Path) -> str:
    """Run the key-creation command and take the key from its output (JSON field or last token)."""
    cmd = cmd_template.format(config=config, python=sys.executable)
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(cmd),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_DIR,
        env=gateway_env(),
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"key creation failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    text = out.decode().strip()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict):
        for field in ("key", "api_key", "secret", "token"):
            if isinstance(data.get(field), str):
                return str(data[field])
    tokens = text.split()
    if not tokens:
        raise RuntimeError("key creation printed nothing")
    return tokens[-1]
