"""`AnswerabilityGate`: the trained classifier behind the `Gate` seam (gate.verdict)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gate.data import LABELS
from gate.model import GateModel, Matrix, SchemaMismatch
from gate.verdict import GateLabel, GateThresholds, GateVerdict
from text.embedding import Embedder, build_embedder


class AnswerabilityGate:
    """Gated when P(chitchat) + P(no_context) reaches the category's threshold; the label
    is then the likelier of the two. CPU work (an embedding, a small matrix product):
    callers on an event loop run it in a thread."""

    def __init__(self, model: GateModel, embedder: Embedder) -> None:
        if embedder.dim != model.manifest.embedding_dim:
            raise SchemaMismatch(
                f"embedder gives {embedder.dim} dimensions; the gate model expects {model.manifest.embedding_dim}"
            )
        self.model = model
        self._embedder = embedder

    @classmethod
    def load(cls, model_dir: Path, embedder: Embedder | None = None) -> AnswerabilityGate:
        """`embedder`: one the caller already holds, of the kind and max_tokens the model's
        manifest names (`model.manifest.embedder`); None builds that one."""
        model = GateModel.load(model_dir)
        spec = model.manifest.embedder
        return cls(model, embedder or build_embedder(spec.kind, spec.max_tokens))

    @property
    def version(self) -> str:
        return self.model.manifest.version

    def embed(self, text: str) -> Matrix:
        """The embedding `classify` uses: computed once, it can be handed to another
        consumer of the same embedder (and back to `classify`)."""
        return self._embedder.embed([text])

    def embed_many(self, texts: list[str]) -> Matrix:
        return self._embedder.embed(texts)

    def probabilities(self, text: str, embedding: Matrix | None = None) -> dict[GateLabel, float]:
        emb = self.embed(text) if embedding is None else np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        row = self.model.predict_proba(emb, [text])[0]
        return {label: float(p) for label, p in zip(LABELS, row)}

    def classify(
        self, text: str, category: str | None, thresholds: GateThresholds, embedding: Matrix | None = None,
    ) -> GateVerdict:
        scores = self.probabilities(text, embedding)
        return decide(scores, thresholds.for_category(category))


def decide(scores: dict[GateLabel, float], threshold: float) -> GateVerdict:
    not_answerable = scores["chitchat"] + scores["no_context"]
    label: GateLabel = "answerable"
    if not_answerable >= threshold:
        label = "chitchat" if scores["chitchat"] >= scores["no_context"] else "no_context"
    return GateVerdict(label=label, scores=dict(scores), threshold=threshold)
