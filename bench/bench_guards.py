"""Time the guards on a ~4,000-token prompt (~16,000 characters): ``python bench/bench_guards.py``.

Measures, per call: ``features`` (PII counts + injection signals; the scan the policy input
needs), ``redact_request`` (scan + presidio operators), reversible redaction, and screening
the same text as a streamed answer in 20-character deltas. Prints p50/p99 in milliseconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, like run.py

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable

from gateway.guards import Guard, GuardsConfig, prompt_texts
from gateway.policy.decision import ResponseRules

PROSE = (
    "The quarterly report shows revenue growth of 12% across the northern region, driven mostly by "
    "renewals. Our team reviewed 1,204 support tickets in October; the median time to resolution "
    "dropped to 3.5 hours. Next steps: migrate the billing service to the new cluster, update the "
    "runbook, and schedule the review for 2024-11-15 at 10:30. "
)
CODE = (
    "def handler(event: dict) -> dict:\n    items = [x for x in event['items'] if x['qty'] > 0]\n"
    "    total = sum(i['price'] * i['qty'] for i in items)\n"
    "    return {'total': round(total, 2), 'n': len(items)}\n"
)
PII = (
    "Contact jane.doe@example.com or +44 20 7946 0958. Card 4111 1111 1111 1111, IBAN DE89 3704 0044 "
    "0532 0130 00, server 10.20.30.40. "
)


def build_prompt(chars: int = 16_000) -> str:
    parts: list[str] = []
    size = 0
    i = 0
    while size < chars:
        piece = PII if i % 12 == 5 else CODE if i % 4 == 3 else PROSE
        parts.append(piece)
        size += len(piece)
        i += 1
    return "".join(parts)[:chars]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    for _ in range(20):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--chars", type=int, default=16_000)
    args = parser.parse_args()

    guard = Guard(GuardsConfig())
    text = build_prompt(args.chars)
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
    }
    clean = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": (PROSE + CODE) * (args.chars // 700)}],
    }
    rules = ResponseRules(redact=["CREDIT_CARD", "EMAIL_ADDRESS"], deny_on=["PRIVATE_KEY"])

    def stream() -> None:
        screener = guard.stream_screener(rules, None)
        for k in range(0, len(text), 20):
            screener.feed(text[k : k + 20])
        screener.flush()

    gc.freeze()
    cases: list[tuple[str, Callable[[], object]]] = [
        ("features (scan + injection), with PII", lambda: guard.features(prompt_texts(body))),
        ("features, no PII in prompt", lambda: guard.features(prompt_texts(clean))),
        ("redact_request (all types, replace)", lambda: guard.redact_request(body, ["*"], reversible=False)),
        ("redact_request (reversible)", lambda: guard.redact_request(body, ["*"], reversible=True)),
        ("stream screening, 20-char deltas", stream),
    ]
    deltas = -(-len(text) // 20)
    print(f"prompt: {len(text)} characters (~{len(text) // 4} tokens), {args.repeat} runs each")
    print(f"{'case':<42} {'p50 ms':>8} {'p99 ms':>8}")
    results: dict[str, dict[str, float]] = {}
    for name, fn in cases:
        p50, p99 = timed(fn, args.repeat)
        results[name] = {"p50_ms": p50, "p99_ms": p99}
        print(f"{name:<42} {p50:>8.3f} {p99:>8.3f}")
    per_delta = results["stream screening, 20-char deltas"]["p50_ms"] / deltas * 1000
    print(f"stream screening: {deltas} deltas per run, {per_delta:.1f} us per delta at p50")
    out = Path(__file__).resolve().parent / "results" / "guards.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
