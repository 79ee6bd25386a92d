"""The gate's trained artifact: a calibrated classifier over [MiniLM embedding, simple
features], saved as a directory with a manifest.

    text ─► MiniLM embedding (the router's embedder kinds) ─┐
    text ─► gate.features (length, "?", greetings, pronouns without antecedent, ...) ─┤
                                   standardise ─► multinomial logistic regression ─► isotonic calibration
                                   ─► P(answerable), P(chitchat), P(no_context)

The classifier is stored as arrays (gate.linear), not a pickle.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from gate.data import LABELS
from gate.features import FEATURE_NAMES, FEATURE_VERSION, message_features, schema_hash
from gate.linear import CalibratedLinear

ARTIFACT_FORMAT = 1
MANIFEST = "manifest.json"
CLASSIFIER = "classifier.npz"
Matrix = NDArray[np.float32]


class SchemaMismatch(RuntimeError):
    """The artifact was trained on another feature layout (or label set) than this code builds."""


class EmbedderSpec(BaseModel):
    kind: Literal["static", "minilm"] = Field(
        "static", description="'static' (MiniLM's token table, ~0.1 ms) or 'minilm' (contextual, ~10 ms+)"
    )
    max_tokens: int = Field(256, ge=8, description="Tokens embedded; the router's default uses the same")


class GateManifest(BaseModel):
    format: int = ARTIFACT_FORMAT
    version: str
    created_at: str
    schema_hash: str
    feature_names: list[str]
    labels: list[str]
    embedder: EmbedderSpec
    embedding_dim: int
    data_digest: str = Field(description="sha256 of the data file trained on")
    split: str = Field(description="Rows of the data file trained on: all or train")
    train_rows: int
    metrics: dict[str, Any] = Field(default_factory=dict)


def feature_names(embedding_dim: int) -> list[str]:
    return [f"emb{i}" for i in range(embedding_dim)] + list(FEATURE_NAMES)


def expected_schema(embedding_dim: int) -> str:
    return schema_hash([*feature_names(embedding_dim), *LABELS], FEATURE_VERSION)


def design_matrix(embeddings: Matrix, texts: Sequence[str]) -> NDArray[np.float64]:
    features = np.asarray([message_features(t) for t in texts], dtype=np.float64).reshape(len(texts), -1)
    return np.hstack([embeddings.astype(np.float64), features])


class GateModel:
    def __init__(self, manifest: GateManifest, classifier: CalibratedLinear) -> None:
        if classifier.n_features != len(manifest.feature_names):
            raise SchemaMismatch(
                f"classifier takes {classifier.n_features} features; the manifest names {len(manifest.feature_names)}"
            )
        self.manifest = manifest
        self._classifier = classifier  # predict_proba columns: LABELS

    def predict_proba(self, embeddings: Matrix, texts: Sequence[str]) -> NDArray[np.float64]:
        """One row per text: probabilities in LABELS order."""
        if embeddings.shape[1] != self.manifest.embedding_dim:
            raise SchemaMismatch(
                f"embedding has {embeddings.shape[1]} dimensions; the gate model expects "
                f"{self.manifest.embedding_dim}"
            )
        return self._classifier.predict_proba(design_matrix(embeddings, texts))

    def save(self, out: Path) -> None:
        """Written beside `out`, then swapped in: a reader never sees half a model."""
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        self._classifier.save(staging / CLASSIFIER)
        (staging / MANIFEST).write_text(self.manifest.model_dump_json(indent=2))
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, path: Path) -> GateModel:
        """Raises FileNotFoundError without a model and SchemaMismatch for one this code
        cannot score: never a silently wrong gate."""
        return cls(read_manifest(path), CalibratedLinear.load(path / CLASSIFIER))


def read_manifest(path: Path) -> GateManifest:
    manifest_file = path / MANIFEST
    if not manifest_file.exists():
        raise FileNotFoundError(f"{path} is not a gate model (no {MANIFEST})")
    manifest = GateManifest.model_validate_json(manifest_file.read_text())
    if manifest.format != ARTIFACT_FORMAT or manifest.schema_hash != expected_schema(manifest.embedding_dim):
        raise SchemaMismatch(
            f"{path}: gate model of format {manifest.format}, schema {manifest.schema_hash}; this code "
            f"builds format {ARTIFACT_FORMAT}, schema {expected_schema(manifest.embedding_dim)}: retrain it "
            "(gateway gate train)"
        )
    return manifest
