"""Settings of the Go runtime that runs OPA's evaluator in process (the embedded engine).

Go's runtime inside a shared library reads its settings (``GOGC``, ``GOMAXPROCS``) from the
environment the *process started with*: on Linux, the block that follows ``argv`` in memory,
which is also what ``/proc/self/environ`` shows. ``os.environ`` changes made later, even before
the library loads, never reach it. So the gateway's defaults are applied by starting the process
again with them (``gateway serve`` does), or by the deployment's environment (the Dockerfile
sets them).

Why these values (bench/bench_policy.py, docs/performance.md):

- ``GOGC=400``: OPA's live heap is a few MB and a decision allocates ~90 KB, so the collector
  runs every few dozen decisions at Go's default of 100. Collecting at 4x costs a few MB.
- ``GOMAXPROCS=1``: decisions run one at a time on the calling thread. A second P only lets
  the runtime wake spare threads for each evaluation and run idle-time collector workers on
  them; with one P a decision measured ~18% less CPU and half the p99.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

DEFAULTS: dict[str, str] = {"GOGC": "400", "GOMAXPROCS": "1"}


def initial_environment() -> dict[str, str] | None:
    """The environment this process started with, or None where the OS does not show it."""
    try:
        with open("/proc/self/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
    return {name.decode(errors="replace"): value.decode(errors="replace") for name, _, value in pairs}


def missing_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """The defaults ``environ`` does not set (an operator's own values always win)."""
    return {name: value for name, value in DEFAULTS.items() if name not in environ}


def reexec_with_defaults() -> None:
    """Start this process again with the defaults in its environment, if they are missing.

    Returns only when nothing is missing (always so in the restarted process, whose environment
    holds them from its start).
    """
    missing = missing_defaults(os.environ)
    if not missing:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, **missing})


def startup_warning() -> str | None:
    """Why OPA's Go runtime may be running with Go's defaults instead of the gateway's, if so."""
    environ = initial_environment()
    if environ is None:
        return None
    missing = missing_defaults(environ)
    if not missing:
        return None
    settings = " ".join(f"{name}={value}" for name, value in missing.items())
    return (
        f"OPA's Go runtime did not get {settings} from the environment this process started "
        "with, so decisions cost more CPU: `gateway serve` sets them; under another server, set "
        "them in the service's environment (docs/performance.md)"
    )
