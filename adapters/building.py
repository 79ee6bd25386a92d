"""Train, evaluate and register one domain adapter: the `adapters train` pipeline."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from adapters.errors import EvaluationFailed
from adapters.examples import DomainExamples
from adapters.manifest import MANIFEST, WEIGHTS, AdapterManifest, BaseFingerprint, Centroid, EvalFigures
from adapters.registry import AdapterRegistry
from model_files.state_file import sha256_file
from adapters.training import LoraTrainer, TrainSpec, TrainingResult
from adapters.domains import centroid
from text.embedding import Embedder


class BuildReport(AdapterManifest):
    registered: bool


def domain_centroids(examples: DomainExamples, embedders: Mapping[str, Embedder]) -> list[Centroid]:
    """One centroid per selector embedder, so switching the selector needs no retraining."""
    queries = [e.query for e in examples.train if e.kind != "anchor"]
    return [
        Centroid(embedder=kind, vector=[float(x) for x in centroid(embedder.embed(queries))])
        for kind, embedder in embedders.items()
    ]


def build_adapter(
    examples: DomainExamples,
    base_dir: Path,
    base: BaseFingerprint,
    registry: AdapterRegistry,
    spec: TrainSpec,
    anchor_margin: float,
    embedders: Mapping[str, Embedder],
    force: bool = False,
    progress: bool = True,
) -> BuildReport:
    """Train into a scratch directory, write its manifest, register it if it passes."""
    version = registry.next_version(examples.domain)
    registry.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=registry.root, prefix=".training-") as scratch:
        out = Path(scratch)
        result = LoraTrainer(base_dir, spec, progress).train(
            examples.train, examples.heldout, examples.heldout_anchors, out
        )
        manifest = AdapterManifest(
            version=version,
            domain=examples.domain,
            base=base,
            rank=spec.rank,
            alpha=spec.alpha,
            target_modules=spec.target_modules,
            sha256=sha256_file(out / WEIGHTS),
            created_at=datetime.now(timezone.utc),
            eval=EvalFigures(domain=result.domain_loss, anchors=result.anchor_loss, anchor_margin=anchor_margin),
            training=_training_figures(result, examples),
            centroids=domain_centroids(examples, embedders),
        )
        (out / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        try:
            registered = registry.register(out, force=force)
        except EvaluationFailed:
            return BuildReport(**manifest.model_dump(), registered=False)
    return BuildReport(**registered.model_dump(), registered=True)


def _training_figures(result: TrainingResult, examples: DomainExamples) -> dict[str, float | int | str]:
    counts = examples.counts()
    # Only drill adapters carry the key: the default manifests stay as they were.
    provenance = {"responses": examples.responses} if examples.responses != "reference" else {}
    return {
        **provenance,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "train_loss_first": round(result.train_loss_first, 4),
        "train_loss_last": round(result.train_loss_last, 4),
        "positive_examples": counts["positive"],
        "changed_examples": counts["changed"],
        "anchor_examples": counts["anchor"],
        "heldout_examples": len(examples.heldout),
        "heldout_anchors": len(examples.heldout_anchors),
    }
