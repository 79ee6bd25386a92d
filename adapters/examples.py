"""Training examples for one domain adapter, of the design note's three kinds.

- positive: the domain's own (query, reference answer) pairs;
- changed: questions that assume the old behaviour, answered with the new one;
- anchor: pairs from unrelated domains, to see (and limit) regressions elsewhere.

Support data is CSV or JSONL with `instruction`, `response` and `category` columns
(the Bitext layout); a domain is a category, matched case-insensitively.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, Field

Kind = Literal["positive", "changed", "anchor"]
Responses = Literal["reference", "shuffled"]


class DataError(ValueError):
    pass


class Example(BaseModel):
    query: str
    response: str
    kind: Kind
    domain: str


class SplitSpec(BaseModel):
    # Sized so one adapter trains in about two minutes on 2 CPU cores.
    max_positive: int = Field(64, ge=1, description="Positive examples trained on")
    heldout_fraction: float = Field(0.1, gt=0, lt=1)
    min_heldout: int = Field(16, ge=1)
    anchor_share: float = Field(0.2, ge=0, lt=1, description="Anchors' share of the training set")
    heldout_anchors: int = Field(24, ge=1)
    changed_repeats: int = Field(3, ge=1, description="Each changed example is seen this often")
    seed: int = 0


class DomainExamples(BaseModel):
    domain: str
    train: list[Example]
    heldout: list[Example]  # the domain's own held-out pairs (positives)
    heldout_anchors: list[Example]
    # "shuffled": the positives answer each other's questions (adapters.drills), and
    # the manifest says so, so a drill adapter is never mistaken for a real one.
    responses: Responses = "reference"

    def counts(self) -> dict[str, int]:
        counts = {kind: 0 for kind in ("positive", "changed", "anchor")}
        for example in self.train:
            counts[example.kind] += 1
        return counts


def read_support(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"no support data at {path}")
    frame = pd.read_json(path, lines=True) if path.suffix == ".jsonl" else pd.read_csv(path)
    missing = {"instruction", "response", "category"} - set(frame.columns)
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
    frame = frame.dropna(subset=["instruction", "response", "category"])
    return frame.assign(domain=frame["category"].str.lower())


def read_changes(path: Path | None, domain: str) -> list[Example]:
    if path is None or not path.exists():
        return []
    entries = (yaml.safe_load(path.read_text()) or {}).get(domain, [])
    return [Example(query=e["query"], response=e["response"], kind="changed", domain=domain) for e in entries]


def domain_examples(
    data: pd.DataFrame, domain: str, changes: list[Example], spec: SplitSpec
) -> DomainExamples:
    domain = domain.lower()
    own = data[data["domain"] == domain]
    if own.empty:
        known = ", ".join(sorted(data["domain"].unique()))
        raise DataError(f"no examples for domain '{domain}' (known: {known})")
    rng = random.Random(spec.seed)
    rows = _pairs(own, "positive")
    rng.shuffle(rows)
    n_heldout = max(spec.min_heldout, int(len(rows) * spec.heldout_fraction))
    if len(rows) <= n_heldout:
        raise DataError(f"domain '{domain}' has {len(rows)} examples: too few to hold {n_heldout} out")
    heldout, positives = rows[:n_heldout], rows[n_heldout:][: spec.max_positive]
    others = _pairs(data[data["domain"] != domain], "anchor")
    rng.shuffle(others)
    heldout_anchors = others[: spec.heldout_anchors]
    changed = changes * spec.changed_repeats
    core = len(positives) + len(changed)
    n_anchor = int(core * spec.anchor_share / (1 - spec.anchor_share))
    anchors = others[spec.heldout_anchors : spec.heldout_anchors + n_anchor]
    train = positives + changed + anchors
    rng.shuffle(train)
    return DomainExamples(domain=domain, train=train, heldout=heldout, heldout_anchors=heldout_anchors)


def _pairs(frame: pd.DataFrame, kind: Kind) -> list[Example]:
    return [
        Example(query=str(q), response=str(r).strip().rstrip('"').strip(), kind=kind, domain=str(d))
        for q, r, d in zip(frame["instruction"], frame["response"], frame["domain"])
    ]
