"""Cost of the default Rego policies in OPA's Go evaluator, per input and per package.

    python bench/bench_rego_rules.py [-n 2000] [--repeat 5] [--policies policies/] [--reference DIR]
    python bench/bench_rego_rules.py --compare /path/to/reference/policies [--cases 3000]

The engine is the gateway's embedded one (``opa_bindings.OpaEngine``, OPA's v1/rego in
process), loaded the way the gateway loads it (gateway/policy/bundle.py). Each measurement
evaluates one document (``gateway.decision`` or ``gateway.<package>``; a package document
includes the caller facts it uses) for one input; it is repeated ``--repeat`` times,
round-robin over every measurement (and over ``--reference``, an older copy of the policies, for
a before/after table), and the median of the p50s (and of the p99s) is printed, because the
machine is shared and a single run is noisy. ``trivial`` is a policy that returns a constant:
the floor every evaluation pays (JSON input to Go, conversion, result back). Results are also
written to bench/results/<time>-rego-rules.json.

``--compare`` proves a refactor changes no decision: it evaluates ``gateway.decision`` with
both policy directories for the realistic inputs and for ``--cases`` generated variations
(teams known and unknown, tiers, allow-lists, PII findings, scores, budgets, missing fields)
and prints every input whose decisions differ (exit status 1 if any).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError  # noqa: E402

from gateway.policy.bundle import build_engine, read_source  # noqa: E402
from gateway.policy.goruntime import reexec_with_defaults  # noqa: E402
from gateway.policy.input import build_input  # noqa: E402
from gateway.types import ANONYMOUS, Principal  # noqa: E402

RESULTS = REPO / "bench" / "results"
PACKAGES = ("models", "limits", "guards", "budget", "enrich", "caller")
TRIVIAL = 'package gateway\n\ndecision := {"allow": true}\n'


def request_input(
    principal: Principal,
    *,
    pii: list[dict[str, Any]] | None = None,
    model: str = "gpt-4o",
    usage: dict[str, dict[str, float | int]] | None = None,
) -> dict[str, Any]:
    """One chat request as the pipeline builds it (cf. embedded.probe_input)."""
    return dict(
        build_input(
            request_id="bench-rego",
            endpoint="chat.completions",
            method="POST",
            path="/v1/chat/completions",
            source_ip="10.0.0.1",
            time=datetime.now(UTC),
            stream=False,
            headers={"user-agent": "bench"},
            principal=principal,
            model_requested=model,
            provider="openai",
            deployment="openai-gpt-4o",
            prompt_estimate=350,
            max_output=1024,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "x" * 1200},
            ],
            features={"pii": pii or [], "injection": {"score": 0.1, "signals": []}},
            usage=usage
            or {"key": {"tokens_today": 1000, "spend_month": 3.5}, "team": {"spend_month": 120.0}},
        )
    )


def realistic_inputs() -> dict[str, dict[str, Any]]:
    return {
        "anonymous": request_input(ANONYMOUS),
        "support+pii": request_input(
            Principal(auth="api_key", key_id="k-support", key_name="bot", team="support"),
            pii=[{"type": "EMAIL_ADDRESS", "count": 2}, {"type": "CREDIT_CARD", "count": 1}],
        ),
        "research": request_input(
            Principal(auth="api_key", key_id="k-research", key_name="svc", team="research"),
            model="gpt-4",
        ),
        "allowed_models": request_input(
            Principal(
                auth="api_key",
                key_id="k-app",
                key_name="app",
                team="research",
                metadata={"allowed_models": ["claude-*", "gpt-4o*"]},
            )
        ),
    }


def load(policies: Path) -> OpaEngine:
    return build_engine(read_source([policies]))


def time_one(call: Callable[[], Any], n: int) -> tuple[float, float]:
    for _ in range(min(200, n)):
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(int(len(samples) * 0.99) - 1, 0)]


def evaluate_or_undefined(engine: OpaEngine, path: str, doc: dict[str, Any]) -> Any:
    """The document, "<undefined>", or the evaluation error without its file and line."""
    try:
        return engine.eval_document(path, doc)
    except OpaUndefinedError:
        return "<undefined>"
    except OpaError as exc:
        return "<error> " + re.sub(r"\S+\.rego:\d+: ", "", exc.message)


def bench(sets: dict[str, Path], n: int, repeat: int) -> dict[str, dict[str, list[float]]]:
    """p50/p99 (ms) per label, as the median over ``repeat`` interleaved runs.

    Runs go round-robin over the policy sets, so a burst of load on the shared machine hits
    all of them alike instead of skewing one.
    """
    engines = {name: load(path) for name, path in sets.items()}
    trivial = OpaEngine()
    trivial.add_policy("trivial.rego", TRIVIAL)
    docs = realistic_inputs()
    first = next(iter(docs.values()))
    jobs: list[tuple[str, str, Callable[[], Any], int]] = [
        ("-", "trivial decision (floor)", lambda: trivial.eval_document("gateway.decision", first), n)
    ]
    for name, engine in engines.items():
        for label, doc in docs.items():
            jobs.append(
                (name, "decision / " + label, partial(engine.eval_document, "gateway.decision", doc), n)
            )
        for package in PACKAGES:
            for label, doc in docs.items():
                call = partial(engine.eval_document, f"gateway.{package}", doc)
                jobs.append((name, f"package {package} / {label}", call, n // 2))
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {(j[0], j[1]): [] for j in jobs}
    for _ in range(repeat):
        for name, label, call, count in jobs:
            runs[(name, label)].append(time_one(call, count))
    results: dict[str, dict[str, list[float]]] = {}
    for (name, label), samples in runs.items():
        p50 = statistics.median(s[0] for s in samples)
        p99 = statistics.median(s[1] for s in samples)
        results.setdefault(name, {})[label] = [round(p50, 4), round(p99, 4)]
    for engine in engines.values():
        engine.close()
    trivial.close()
    return results


def report(results: dict[str, dict[str, list[float]]]) -> None:
    names = [name for name in results if name != "-"]
    floor = results["-"]["trivial decision (floor)"]
    print(f"{'trivial decision (floor)':<34} p50 {floor[0]:6.3f} ms   p99 {floor[1]:6.3f} ms")
    print(f"{'':<34} " + "   ".join(f"{name + ' p50 / p99 (ms)':>26}" for name in names))
    labels = [label for label in results[names[0]] if label.startswith("decision")]
    for label in labels:
        cells = [f"{results[name][label][0]:12.3f} / {results[name][label][1]:7.3f}" for name in names]
        print(f"{label:<34} " + "   ".join(f"{c:>26}" for c in cells))
    for package in PACKAGES:
        label = f"package {package} (mean p50)"
        cells = []
        for name in names:
            p50s = [v[0] for k, v in results[name].items() if k.startswith(f"package {package} /")]
            cells.append(f"{statistics.mean(p50s):12.3f}")
        print(f"{label:<34} " + "   ".join(f"{c:>26}" for c in cells))
    for name in names:
        decisions = [v[0] for k, v in results[name].items() if k.startswith("decision")]
        print(f"{name}: mean decision p50 {statistics.mean(decisions):.3f} ms")


def variations(count: int, seed: int) -> list[dict[str, Any]]:
    """Generated inputs covering the branches of the default policies (and missing fields)."""
    rng = random.Random(seed)
    teams = [None, "research", "support", "unknown-team"]
    metadata_choices: list[dict[str, Any]] = [
        {},
        {"tier": "free"},
        {"tier": "premium"},
        {"tier": "gold"},
        {"tier": 3},
        {"allowed_models": []},
        {"allowed_models": ["gpt-4o*"]},
        {"allowed_models": ["claude-*", "gpt-4*"]},
        {"allowed_models": "gpt-4o"},
        {"monthly_budget": 10},
        {"monthly_budget": "10"},
        {"tokens_per_day": 100000},
        {"tokens_per_day": "lots"},
        {"allowed_models": ["*"], "tier": "free", "monthly_budget": 100, "tokens_per_day": 5},
    ]
    pii_types = ["CREDIT_CARD", "US_SSN", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"]
    models = ["gpt-4o", "gpt-4", "gpt-4o-mini", "claude-sonnet-4", "o3", "gpt-4.1", "x/y.z"]
    out = []
    for _ in range(count):
        auth = rng.choice(["api_key", "api_key", "jwt", "anonymous"])
        principal = Principal(
            auth=auth,
            key_id=None if auth == "anonymous" or rng.random() < 0.1 else "k-" + str(rng.randint(1, 9)),
            team=None if auth == "anonymous" else rng.choice(teams),
            metadata=copy.deepcopy(rng.choice(metadata_choices)),
        )
        pii = [
            {"type": rng.choice(pii_types), "count": rng.choice([0, 1, 3])} for _ in range(rng.randint(0, 3))
        ]
        spend = rng.choice([0, 120.0, 399, 400, 450, 500, 3999, 4000, 4999, 5000, 9000])
        doc = request_input(
            principal,
            pii=pii,
            model=rng.choice(models),
            usage={
                "key": {"tokens_today": 0, "spend_month": rng.choice([0, 8, 10, 12.5])},
                "team": {"spend_month": spend},
            },
        )
        doc["tokens"]["prompt_estimate"] = rng.choice([10, 350, 4001, 32000, 32001, 200000])
        doc["prompt"]["injection"]["score"] = rng.choice([0.0, 0.59, 0.6, 0.79, 0.8, 0.95])
        if rng.random() < 0.05:
            doc["request"]["source_ip"] = None
        if rng.random() < 0.15:
            mutate_missing(doc, rng)
        out.append(doc)
    return out


def mutate_missing(doc: dict[str, Any], rng: random.Random) -> None:
    section = rng.choice(
        ["request", "client", "model", "tokens", "prompt", "usage", "pii", "score", "requested"]
    )
    if section == "pii":
        doc["prompt"].pop("pii")
    elif section == "score":
        doc["prompt"]["injection"].pop("score")
    elif section == "requested":
        doc["model"].pop("requested")
    elif rng.random() < 0.5:
        doc.pop(section)
    else:
        doc[section] = "not-an-object"


def compare(policies: Path, reference: Path, cases: int, seed: int) -> int:
    engine, ref = load(policies), load(reference)
    docs = list(realistic_inputs().values()) + variations(cases, seed) + [{}]
    differ = 0
    kinds: dict[str, int] = {}
    for doc in docs:
        got = evaluate_or_undefined(engine, "gateway.decision", doc)
        want = evaluate_or_undefined(ref, "gateway.decision", doc)
        kind = ("allow" if want["allow"] else "deny") if isinstance(want, dict) else want.split(" ")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
        if got != want:
            differ += 1
            if differ <= 5:
                print("DIFFERS for input", json.dumps(doc, sort_keys=True))
                print("  reference:", json.dumps(want, sort_keys=True))
                print("  policies: ", json.dumps(got, sort_keys=True))
    print(f"compared {len(docs)} inputs ({kinds}): {differ} decisions differ")
    engine.close()
    ref.close()
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000, help="evaluations per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs (median reported)")
    parser.add_argument("--policies", type=Path, default=REPO / "policies")
    parser.add_argument("--reference", type=Path, default=None, help="also measure these policies")
    parser.add_argument("--compare", type=Path, default=None, help="check decisions equal these policies'")
    parser.add_argument("--cases", type=int, default=3000, help="generated inputs for --compare")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.compare is not None:
        return compare(args.policies, args.compare, args.cases, args.seed)
    sets = {"policies": args.policies}
    if args.reference is not None:
        sets = {"reference": args.reference, **sets}
    results = bench(sets, args.n, args.repeat)
    report(results)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-rego-rules.json"
    out.write_text(json.dumps({"sets": {k: str(v) for k, v in sets.items()}, "results": results}, indent=1))
    print(f"results: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    # Measure with the Go runtime settings `gateway serve` runs with (gateway/policy/goruntime.py).
    reexec_with_defaults()
    sys.exit(main())
