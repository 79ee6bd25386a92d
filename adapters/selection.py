"""Offline accuracy of the embedding-based domain selector (`adapters eval-selector`).

In-domain queries are each active domain's held-out split (the same seeded split the
adapter was evaluated on, so none was in its centroid); out-of-domain queries come from
the data's other categories and should fall back to the base model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from adapters.examples import SplitSpec, domain_examples, read_support
from adapters.workspace import AdapterWorkspace
from adapters.domains import DomainSelector
from adapters.manifest import SELECTOR_MAX_TOKENS
from text.embedding import build_embedder

OUT_OF_DOMAIN_SAMPLE = 400


class SweepRow(BaseModel):
    min_similarity: float
    in_domain_accuracy: float
    out_of_domain_rejection: float
    overall_accuracy: float


class SelectorReport(BaseModel):
    domains: list[str]
    embedder: str
    min_similarity: float
    in_domain_n: int
    out_of_domain_n: int
    in_domain_accuracy: float  # top-1 right domain (and above the threshold)
    top1_accuracy: float  # right domain ignoring the threshold
    out_of_domain_rejection: float  # other domains sent to the base model
    overall_accuracy: float
    sweep: list[SweepRow]


def evaluate_selector(workspace: AdapterWorkspace, data: Path) -> SelectorReport:
    registry = workspace.open_registry()
    config = workspace.config
    kind = config.selector_embedder
    centroids = {}
    for domain, entry in registry.state().domains.items():
        if entry.active:
            vector = registry.manifest(entry.active).centroid(kind)
            if vector is not None:
                centroids[domain] = np.asarray(vector, dtype=np.float32)
    if not centroids:
        raise SystemExit("no active adapters with centroids to evaluate")
    support = read_support(data)
    queries, truth = [], []
    for domain in sorted(centroids):
        held = domain_examples(support, domain, [], SplitSpec()).heldout
        queries += [e.query for e in held]
        truth += [domain] * len(held)
    others = support[~support["domain"].isin(list(centroids))].sample(
        n=min(OUT_OF_DOMAIN_SAMPLE, int((~support["domain"].isin(list(centroids))).sum())), random_state=0
    )
    queries += list(others["instruction"])
    truth += [None] * len(others)
    vectors = build_embedder(kind, SELECTOR_MAX_TOKENS).embed(queries)
    sweep = [_score(centroids, vectors, truth, t) for t in np.round(np.arange(0.3, 0.95, 0.05), 2)]
    chosen = _score(centroids, vectors, truth, config.min_similarity)
    top1 = _score(centroids, vectors, truth, -1.0)
    return SelectorReport(
        domains=sorted(centroids), embedder=kind, min_similarity=config.min_similarity,
        in_domain_n=sum(t is not None for t in truth), out_of_domain_n=sum(t is None for t in truth),
        in_domain_accuracy=chosen.in_domain_accuracy, top1_accuracy=top1.in_domain_accuracy,
        out_of_domain_rejection=chosen.out_of_domain_rejection, overall_accuracy=chosen.overall_accuracy,
        sweep=sweep,
    )


def _score(centroids: dict, vectors: np.ndarray, truth: list[str | None], threshold: float) -> SweepRow:
    selector = DomainSelector(centroids, float(threshold))
    picks = [selector.select(v).domain for v in vectors]
    inside = [(p, t) for p, t in zip(picks, truth) if t is not None]
    outside = [p for p, t in zip(picks, truth) if t is None]
    return SweepRow(
        min_similarity=float(threshold),
        in_domain_accuracy=sum(p == t for p, t in inside) / max(len(inside), 1),
        out_of_domain_rejection=sum(p is None for p in outside) / max(len(outside), 1),
        overall_accuracy=sum(p == t for p, t in zip(picks, truth)) / max(len(truth), 1),
    )
