"""Precision and recall of the guards on the labelled corpus: ``python -m tests.guards.report``.

A positive counts as found when a finding of its type covers exactly its labelled value. Every
other finding of that type (in positives or negatives of that type) is a false positive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.guards import Guard, GuardsConfig

CORPUS = Path(__file__).parent / "corpus"


@dataclass
class TypeScore:
    entity: str
    positives: int = 0
    found: int = 0
    extra: int = 0  # false positives inside positive samples
    negatives: int = 0
    flagged_negatives: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.positives if self.positives else 1.0

    @property
    def precision(self) -> float:
        flagged = self.found + self.extra + self.flagged_negatives
        return self.found / flagged if flagged else 1.0

    @property
    def negative_fp_rate(self) -> float:
        return self.flagged_negatives / self.negatives if self.negatives else 0.0


def load_pii_corpus() -> dict[str, dict[str, list[Any]]]:
    """Entity type -> {"positives": [{text, value}], "negatives": [text]}."""
    merged: dict[str, dict[str, list[Any]]] = {}
    for name in ("handwritten.json", "generated.json", "heldout.json"):
        data = json.loads((CORPUS / name).read_text(encoding="utf-8"))
        for key, section in data.items():
            if key == "_comment":
                continue
            if key == "CREDENTIALS":
                for sample in section["positives"]:
                    merged.setdefault(sample["type"], {"positives": [], "negatives": []})["positives"].append(
                        sample
                    )
                continue
            entry = merged.setdefault(key, {"positives": [], "negatives": []})
            entry["positives"].extend(section["positives"])
            entry["negatives"].extend(section["negatives"])
    credential_negatives = json.loads((CORPUS / "handwritten.json").read_text(encoding="utf-8"))[
        "CREDENTIALS"
    ]["negatives"]
    for entity in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "AWS_ACCESS_KEY",
        "GITHUB_TOKEN",
        "JWT",
        "PRIVATE_KEY",
    ):
        merged[entity]["negatives"].extend(credential_negatives)
    return merged


def score_pii(guard: Guard) -> dict[str, TypeScore]:
    scores: dict[str, TypeScore] = {}
    for entity, samples in load_pii_corpus().items():
        score = scores[entity] = TypeScore(entity)
        for sample in samples["positives"]:
            score.positives += 1
            text, value = sample["text"], sample["value"]
            start = text.index(value)
            hits = [f for f in guard.scanner.scan(text) if f.entity_type == entity]
            exact = [f for f in hits if (f.start, f.end) == (start, start + len(value))]
            score.found += 1 if exact else 0
            score.extra += len(hits) - len(exact)
        for text in samples["negatives"]:
            score.negatives += 1
            if any(f.entity_type == entity for f in guard.scanner.scan(text)):
                score.flagged_negatives += 1
    return scores


def injection_text(sample: dict[str, str]) -> str:
    hidden = "".join(chr(0xE0000 + ord(ch)) for ch in sample.get("hidden_tags", ""))
    return sample["text"] + hidden


def score_injection(guard: Guard) -> tuple[TypeScore, list[str], list[str]]:
    """Recall of the labelled signal; a negative is flagged when any signal fires."""
    data: dict[str, list[Any]] = {"positives": [], "negatives": []}
    for name in ("injection.json", "injection_heldout.json"):
        part = json.loads((CORPUS / name).read_text(encoding="utf-8"))
        data["positives"].extend(part["positives"])
        data["negatives"].extend(part["negatives"])
    score = TypeScore("INJECTION")
    missed: list[str] = []
    flagged: list[str] = []
    for sample in data["positives"]:
        score.positives += 1
        signals = guard.features([injection_text(sample)])["injection"]["signals"]
        if sample["signal"] in signals:
            score.found += 1
        else:
            missed.append(sample["text"])
    for text in data["negatives"]:
        score.negatives += 1
        if guard.features([text])["injection"]["signals"]:
            score.flagged_negatives += 1
            flagged.append(text)
    return score, missed, flagged


def main() -> None:
    guard = Guard(GuardsConfig())
    rows = [*score_pii(guard).values(), score_injection(guard)[0]]
    print(f"{'type':<20} {'pos':>4} {'recall':>7} {'precision':>9} {'neg':>4} {'neg FP':>7}")
    for s in rows:
        print(
            f"{s.entity:<20} {s.positives:>4} {s.recall:>7.3f} {s.precision:>9.3f} {s.negatives:>4} "
            f"{s.negative_fp_rate:>7.1%}"
        )


if __name__ == "__main__":
    main()
