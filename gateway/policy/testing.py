"""``gateway policy test`` and ``gateway policy eval``: run Rego tests and decisions locally.

The test runner behaves like ``opa test`` with the embedded engine: it loads every ``.rego``
and ``data.json`` under the given paths (policies and tests alike), finds the ``test_*`` rules
of the ``*_test.rego`` files, evaluates each one, and passes it when it is ``true``. Output and
exit codes follow ``opa test``: PASS/FAIL per test with ``-v``, a ``PASS: n/m`` summary, 0 when
every test passes and 2 otherwise. Test rules are found by their name at the start of a line
(as ``opa fmt`` writes them); ``todo_test_*`` rules are reported as skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

from gateway.policy.bundle import PolicyLoadError, build_engine, read_source
from gateway.policy.config import PolicyConfig
from gateway.policy.engine import PolicyEngineError, create_engine

DEFAULT_TEST_PATHS = ("policies", "policy_tests")

_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^((?:todo_)?test_\w+)\b", re.MULTILINE)


@dataclass(slots=True)
class TestCase:
    file: str
    package: str
    rule: str

    @property
    def name(self) -> str:
        return f"data.{self.package}.{self.rule}"

    @property
    def skipped(self) -> bool:
        return self.rule.startswith("todo_")


@dataclass(slots=True)
class TestResult:
    case: TestCase
    outcome: str  # PASS, FAIL, ERROR, SKIPPED
    duration_ms: float = 0.0
    message: str = ""
    coverage: dict[str, Any] | None = field(default=None, repr=False)


def discover(modules: dict[str, str]) -> list[TestCase]:
    """The test rules of the ``*_test.rego`` modules, in file and source order."""
    cases: list[TestCase] = []
    for filename, text in modules.items():
        if not filename.endswith("_test.rego"):
            continue
        package = _PACKAGE.search(text)
        if package is None:
            continue
        seen: set[str] = set()
        for rule in _TEST_RULE.findall(text):
            if rule not in seen:  # a rule may have several bodies
                seen.add(rule)
                cases.append(TestCase(filename, package.group(1), rule))
    return cases


def run_case(engine: OpaEngine, case: TestCase, *, coverage: bool) -> TestResult:
    if case.skipped:
        return TestResult(case, "SKIPPED")
    started = time.perf_counter()
    try:
        value = engine.eval_document(f"{case.package}.{case.rule}", coverage=coverage)
        outcome, message = ("PASS", "") if value is True else ("FAIL", f"result {value!r}")
    except OpaUndefinedError:
        outcome, message = "FAIL", ""
    except OpaError as exc:
        outcome, message = "ERROR", exc.message
    elapsed = (time.perf_counter() - started) * 1000
    return TestResult(case, outcome, elapsed, message, engine.last_coverage if coverage else None)


def merge_coverage(results: Iterable[TestResult]) -> dict[str, tuple[set[int], set[int]]]:
    """Per file: (covered rows, not covered rows) over all tests, like ``opa test --coverage``."""
    files: dict[str, tuple[set[int], set[int]]] = {}
    for result in results:
        for name, report in ((result.coverage or {}).get("files") or {}).items():
            covered, missed = files.setdefault(name, (set(), set()))
            for kind, rows in (("covered", covered), ("not_covered", missed)):
                for span in report.get(kind) or []:
                    rows.update(range(span["start"]["row"], span["end"]["row"] + 1))
    return {name: (covered, missed - covered) for name, (covered, missed) in files.items()}


def _print_coverage(results: list[TestResult], out: TextIO) -> None:
    merged = merge_coverage(results)
    total_covered = total_lines = 0
    print("\nCoverage (policy files):", file=out)
    for name in sorted(merged):
        if name.endswith("_test.rego"):
            continue
        covered, missed = merged[name]
        lines = len(covered) + len(missed)
        total_covered += len(covered)
        total_lines += lines
        percent = 100.0 * len(covered) / lines if lines else 100.0
        suffix = f"  not covered: {_ranges(sorted(missed))}" if missed else ""
        print(f"  {name}: {percent:.1f}%{suffix}", file=out)
    overall = 100.0 * total_covered / total_lines if total_lines else 100.0
    print(f"Coverage: {overall:.1f}%", file=out)


def _ranges(rows: list[int]) -> str:
    spans: list[str] = []
    start = prev = rows[0]
    for row in [*rows[1:], None]:
        if row is not None and row == prev + 1:
            prev = row
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if row is not None:
            start = prev = row
    return ",".join(spans)


def _run_opa(paths: list[Path], verbose: bool, coverage: bool, out: TextIO) -> int:
    opa = shutil.which("opa")
    if opa is None:
        print("--opa: no `opa` binary on PATH", file=out)
        return 2
    argv = [opa, "test", *map(str, paths)]
    if verbose:
        argv.append("-v")
    if coverage:
        argv.append("--coverage")
    completed = subprocess.run(argv, check=False, capture_output=True, text=True)
    out.write(completed.stdout + completed.stderr)
    return 0 if completed.returncode == 0 else 2


def run_policy_tests(
    paths: Iterable[str | Path] = DEFAULT_TEST_PATHS,
    verbose: bool = False,
    coverage: bool = False,
    use_opa: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run the ``test_*`` rules under ``paths``; 0 when all pass, 2 otherwise."""
    stream = out or sys.stdout
    roots = [Path(p) for p in paths]
    if use_opa:
        return _run_opa(roots, verbose, coverage, stream)
    try:
        source = read_source(roots, include_tests=True)
        engine = build_engine(source)
    except PolicyLoadError as exc:
        print(f"error: {exc}", file=stream)
        return 2
    try:
        cases = discover(source.modules)
        if not cases:
            print(f"no test_ rules found under {', '.join(map(str, roots))}", file=stream)
            return 2
        results = [run_case(engine, case, coverage=coverage) for case in cases]
    finally:
        engine.close()
    _report(results, verbose, stream)
    if coverage:
        _print_coverage(results, stream)
    return 0 if all(r.outcome in ("PASS", "SKIPPED") for r in results) else 2


def _report(results: list[TestResult], verbose: bool, out: TextIO) -> None:
    current_file = None
    for result in results:
        if not verbose and result.outcome in ("PASS", "SKIPPED"):
            continue
        if result.case.file != current_file:
            current_file = result.case.file
            print(f"{current_file}:", file=out)
        line = f"{result.case.name}: {result.outcome} ({result.duration_ms:.3f}ms)"
        if result.message:
            line += f"\n  {result.message}"
        print(line, file=out)
    print("-" * 80, file=out)
    total = len(results)
    for outcome in ("PASS", "FAIL", "ERROR", "SKIPPED"):
        n = sum(1 for r in results if r.outcome == outcome)
        if n:
            print(f"{outcome}: {n}/{total}", file=out)


async def _decide_once(config: PolicyConfig, base_dir: Path, document: dict[str, Any]) -> dict[str, Any]:
    engine = create_engine(config.model_copy(update={"watch": False}), base_dir)
    await engine.start()
    try:
        decision = await engine.decide(document)
        return {"engine": engine.name, "revision": engine.revision, "decision": dataclasses.asdict(decision)}
    finally:
        await engine.close()


def eval_policy(
    config: PolicyConfig, input_path: str | Path, base_dir: Path | None = None, out: TextIO | None = None
) -> int:
    """Print the decision for the input document in ``input_path`` (``-`` for stdin).

    0 when the engine gave a valid decision (allow or deny), 2 when it did not.
    """
    stream = out or sys.stdout
    try:
        text = sys.stdin.read() if str(input_path) == "-" else Path(input_path).read_text(encoding="utf-8")
        document = json.loads(text)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the input document: {exc}", file=stream)
        return 2
    if isinstance(document, dict) and set(document) == {"input"}:
        document = document["input"]  # accept OPA's REST body shape too
    try:
        result = asyncio.run(_decide_once(config, base_dir or Path.cwd(), document))
    except PolicyEngineError as exc:
        print(f"error ({exc.reason}): {exc}", file=stream)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True), file=stream)
    return 0
