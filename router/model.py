"""The learned router: a versioned artifact and the scoring pipeline it runs.

    text ─► embedding ─┬─► kNN history (outcomes of the nearest past queries)
                       ├─► 4-outcome logistic model on the embedding (stacked)
                       ├─► predicted-category outcome rates (stacked, if trained with categories)
    text ─► lexical + knowledge-boundary features
            └──► LightGBM heads: P(large ok) − P(small ok) on two feature sets, P(large helps)
                 └─► rank ensemble (+ category gain) ─► isotonic calibration ─► P(large helps)

What a decision runs is usually not this ensemble but its student (router/student.py): one
head over the embedding, the text and ask features and the stacked models' outputs, trained on
the ensemble's cross-fitted value and calibrated to its probability; the ensemble is what it
learns from, and what serves a pair with few outcomes of its own.

The score is the calibrated probability that the small model's answer is not acceptable
*and* the large model's is: ranking by what escalation gains (not by "small is wrong",
which also escalates queries neither model answers) is what routing quality measures.

The artifact is text and arrays only (LightGBM's text models, .npz loaded without pickle,
JSON): loading a model an admin points at never runs code from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from text.embedding import Embedder
from router.asks import ASK_FEATURES, PLAIN, RequestAsks
from router.features import (
    BOUNDARY_FEATURES,
    LEXICAL_FEATURES,
    BoundaryLists,
    query_features,
    schema_hash,
)
from router.history import KnnHistory, history_feature_names
from router.calibration import IsotonicCurve
from router.single_row import SingleRowPredictor
from router.student import STUDENT_CALIBRATION_FILE, STUDENT_FILE, Student

# Also versions the scoring pipeline after the features (the rank-ensemble components):
# an artifact calibrated on another ensemble must be retrained, not silently rescaled.
FEATURE_VERSION = "5"  # 5: the request's asks (router.asks)
# 2: the stacked models and the calibrator as arrays (stack.npz, calibration.npz); format 1
# kept them in a pickle (models.joblib), which no version of this code loads.
ARTIFACT_FORMAT = 2
STACK_FILE = "stack.npz"
CALIBRATION_FILE = "calibration.npz"
STACK_FEATURES = ("lr4_gain", "lr4_helps", "lr4_both_wrong")
# Predicted-category rates (always), then the named category's rates when the client
# supplies a known one (NaN otherwise: LightGBM learns a branch for "not given").
CATEGORY_FEATURES = (
    "cat_small_ok", "cat_large_ok", "cat_gain",
    "known_cat_small_ok", "known_cat_large_ok", "known_cat_gain",
)
HEADS = ("a_large", "a_small", "b_large", "b_small", "b_helps")
# The 4-outcome logistic model is a feature of the heads, not a vote of its own: as a
# fifth equal-weight rank it lowered test APGR at every seed tried (docs/router_experiments.md).
COMPONENTS = ("a_gain", "b_gain", "b_helps", "cat_gain")


class SchemaMismatch(RuntimeError):
    """The artifact was trained on a different feature layout than this code builds."""


class EmbedderSpec(BaseModel):
    kind: str = Field("static", description="'static' (MiniLM token table) or 'minilm' (contextual)")
    max_tokens: int = 128


class Manifest(BaseModel):
    format: int = ARTIFACT_FORMAT
    version: str
    created_at: str
    schema_hash: str
    feature_names: list[str]
    embedder: EmbedderSpec
    embedding_dim: int
    uses_categories: bool
    train_rows: int
    metrics: dict[str, Any] = Field(default_factory=dict)
    # Which served targets the outcomes came from ({"small": "small", "large": "large"});
    # None: another model pair (the shipped MMLU prior), which no registry accepts.
    tiers: dict[str, str] | None = None
    # What scores a query: the distilled student (router/student.py) or the whole ensemble.
    # Artifacts from before the student have none: the ensemble serves them.
    scorer: Literal["ensemble", "student"] = "ensemble"


def feature_names(embedding_dim: int, uses_categories: bool, ks: tuple[int, ...]) -> list[str]:
    names = [f"emb{i}" for i in range(embedding_dim)]
    names += [*LEXICAL_FEATURES, *BOUNDARY_FEATURES, *ASK_FEATURES, *history_feature_names(ks), *STACK_FEATURES]
    if uses_categories:
        names += list(CATEGORY_FEATURES)
    return names


def expected_schema(embedding_dim: int, uses_categories: bool, ks: tuple[int, ...]) -> str:
    return schema_hash(feature_names(embedding_dim, uses_categories, ks), FEATURE_VERSION)


def text_features(
    texts: Sequence[str], lists: BoundaryLists, asks: Sequence[RequestAsks] | None = None
) -> NDArray[np.float32]:
    """The text's own features, then what the request asks (a plain prompt when not given)."""
    asked = asks if asks is not None else [PLAIN] * len(texts)
    rows = [query_features(t, lists) + a.features() for t, a in zip(texts, asked, strict=True)]
    return np.asarray(rows, dtype=np.float32)


@dataclass(frozen=True)
class Logistic:
    """A fitted `LogisticRegression` (lbfgs: multinomial, or binary) as its arrays.

    `proba` is `predict_proba` in plain numpy: sklearn's input validation costs ~1 ms per
    call, a tenth of the decision budget on the serving path.
    """

    coef: NDArray[np.float64]  # (classes, features); (1, features) when binary
    intercept: NDArray[np.float64]
    classes: NDArray[np.int64]  # the outcome codes seen in training

    @classmethod
    def from_sklearn(cls, model: Any) -> Logistic:
        return cls(
            coef=np.asarray(model.coef_, dtype=np.float64),
            intercept=np.asarray(model.intercept_, dtype=np.float64),
            classes=np.asarray(model.classes_, dtype=np.int64),
        )

    def proba(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        scores = np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        return scores / scores.sum(axis=1, keepdims=True)

    def full_proba(self, x: NDArray[np.float32], n_classes: int) -> NDArray[np.float64]:
        """One column per class 0..n_classes-1, zero for a class never seen in training."""
        proba = np.zeros((len(x), n_classes))
        proba[:, self.classes] = self.proba(x)
        return proba

    def arrays(self, prefix: str) -> dict[str, NDArray[Any]]:
        return {
            f"{prefix}_coef": self.coef, f"{prefix}_intercept": self.intercept,
            f"{prefix}_classes": self.classes,
        }

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> Logistic:
        return cls(
            coef=arrays[f"{prefix}_coef"], intercept=arrays[f"{prefix}_intercept"],
            classes=arrays[f"{prefix}_classes"],
        )


@dataclass
class StackModels:
    """Models over the embedding whose outputs are features for the heads."""

    lr4: Logistic  # over outcome classes 2*small_ok + large_ok
    category: Logistic | None  # over categories
    category_rates: NDArray[np.float32] | None  # per category: small_ok, large_ok, gain
    category_names: list[str] | None = None

    def features(
        self, emb: NDArray[np.float32], categories: Sequence[str | None] | None = None
    ) -> NDArray[np.float32]:
        proba = self.lr4.full_proba(emb, 4)
        cols = [proba[:, 1] - proba[:, 2], proba[:, 1], proba[:, 0]]
        out = np.stack(cols, axis=1)
        return np.hstack([out, self.category_features(emb, categories)]).astype(np.float32)

    def category_features(
        self, emb: NDArray[np.float32], categories: Sequence[str | None] | None = None
    ) -> NDArray[np.float32]:
        """The predicted category's rates, then the named one's (CATEGORY_FEATURES); no
        columns for a model without categories."""
        if self.category is None or self.category_rates is None:
            return np.zeros((len(emb), 0), dtype=np.float32)
        soft = self.category.full_proba(emb, len(self.category_rates)) @ self.category_rates
        return np.hstack([soft, self._known(categories, len(emb))]).astype(np.float32)

    @cached_property
    def _category_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.category_names or [])}

    def _known(self, categories: Sequence[str | None] | None, n: int) -> NDArray[np.float32]:
        known = np.full((n, 3), np.nan, dtype=np.float32)
        index = self._category_index  # built once: a decision runs this for its one query
        for row, name in enumerate(categories or []):
            if name in index and self.category_rates is not None:
                known[row] = self.category_rates[index[name]]
        return known

    def save(self, path: Path) -> None:
        arrays = self.lr4.arrays("lr4")
        if self.category is not None and self.category_rates is not None:
            arrays |= self.category.arrays("category")
            arrays["category_rates"] = self.category_rates
            arrays["category_names"] = np.asarray(self.category_names or [], dtype=np.str_)
        with path.open("wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: Path) -> StackModels:
        with np.load(path, allow_pickle=False) as arrays:
            lr4 = Logistic.from_arrays(arrays, "lr4")
            if "category_coef" not in arrays:
                return cls(lr4=lr4, category=None, category_rates=None)
            return cls(
                lr4=lr4, category=Logistic.from_arrays(arrays, "category"),
                category_rates=arrays["category_rates"],
                category_names=[str(name) for name in arrays["category_names"]],
            )


@dataclass
class RouterModel:
    manifest: Manifest
    history: KnnHistory
    stack: StackModels
    heads: dict[str, Any]  # lightgbm.Booster per name in HEADS
    rank_reference: dict[str, NDArray[np.float64]]  # sorted component scores
    calibrator: IsotonicCurve | None  # ensemble rank -> P(large helps); None until fitted
    lists: BoundaryLists
    student: Student | None = None  # serves when the manifest says so (router/student.py)
    _single_row: dict[str, SingleRowPredictor] = field(default_factory=dict, repr=False, compare=False)

    # ---- scoring -------------------------------------------------------------

    def feature_matrix(
        self, emb: NDArray[np.float32], texts: Sequence[str], history: NDArray[np.float32] | None = None,
        stack: NDArray[np.float32] | None = None, asks: Sequence[RequestAsks] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(A features, B features); B is A without the raw embedding."""
        hist = history if history is not None else self.history.features(emb)
        stacked = stack if stack is not None else self.stack.features(emb)
        b = np.hstack([text_features(texts, self.lists, asks), hist, stacked])
        return np.hstack([emb, b]), b

    def components(self, a: NDArray[np.float32], b: NDArray[np.float32], stacked: NDArray[np.float32]) -> dict[str, NDArray[np.float64]]:
        h = {name: self._head(name, a if name.startswith("a_") else b) for name in HEADS}
        comps = {
            "a_gain": h["a_large"] - h["a_small"],
            "b_gain": h["b_large"] - h["b_small"],
            "b_helps": h["b_helps"],
        }
        if self.manifest.uses_categories:
            soft_gain, known_gain = stacked[:, -4], stacked[:, -1]
            comps["cat_gain"] = np.where(np.isnan(known_gain), soft_gain, known_gain).astype(np.float64)
        return comps

    def _head(self, name: str, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """One head's output per row; a single row (a routing decision) takes LightGBM's
        fast single-row path, set up once per booster."""
        booster = self.heads[name]
        if len(x) != 1:
            return booster.predict(x, num_threads=1)
        fast = self._single_row.get(name)
        if fast is None or fast.booster is not booster:  # training swaps heads in place
            fast = self._single_row[name] = SingleRowPredictor(booster)
        return np.array([fast.predict(x[0])])

    def ensemble(self, comps: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        ranks = [np.searchsorted(self.rank_reference[n], v) / len(self.rank_reference[n]) for n, v in comps.items()]
        return np.mean(ranks, axis=0)

    def calibrate(self, ensemble: NDArray[np.float64]) -> NDArray[np.float64]:
        # The tiny ensemble term breaks isotonic ties without changing the probability.
        if self.calibrator is None:
            raise RuntimeError("the router model is not calibrated yet")
        return np.clip(self.calibrator.predict(ensemble), 0.0, 1.0) + 1e-6 * ensemble

    def student_features(
        self, emb: NDArray[np.float32], texts: Sequence[str], stacked: NDArray[np.float32],
        asks: Sequence[RequestAsks] | None = None,
    ) -> NDArray[np.float32]:
        """The student's row: the embedding, the text's and the asks' features, the stacked
        models' outputs (STACK_FEATURES and the category rates)."""
        return np.hstack([emb, text_features(texts, self.lists, asks), stacked]).astype(np.float32)

    def score_embedded(
        self, emb: NDArray[np.float32], texts: Sequence[str],
        categories: Sequence[str | None] | None = None, asks: Sequence[RequestAsks] | None = None,
    ) -> NDArray[np.float64]:
        """Calibrated P(large helps) per query: the student where it serves (training and
        loading set it only then, as the manifest's `scorer` records), else the ensemble."""
        if self.student is not None:
            stacked = self.stack.features(emb, categories)
            return self.student.score(self.student_features(emb, texts, stacked, asks))
        return self.score_ensemble(emb, texts, categories, asks)

    def score_ensemble(
        self, emb: NDArray[np.float32], texts: Sequence[str],
        categories: Sequence[str | None] | None = None, asks: Sequence[RequestAsks] | None = None,
    ) -> NDArray[np.float64]:
        stacked = self.stack.features(emb, categories)
        a, b = self.feature_matrix(emb, texts, stack=stacked, asks=asks)
        return self.calibrate(self.ensemble(self.components(a, b, stacked)))

    # ---- persistence ---------------------------------------------------------

    def save(self, out: Path) -> None:
        if self.calibrator is None:
            raise RuntimeError("the router model is not calibrated yet")
        out.mkdir(parents=True, exist_ok=True)
        for name, booster in self.heads.items():
            booster.save_model(str(out / f"head_{name}.txt"))
        np.savez_compressed(
            out / "history.npz", embeddings=self.history.embeddings,
            small_ok=self.history.small_ok, large_ok=self.history.large_ok,
            ks=np.asarray(self.history.ks),
            **({} if self.history.basis is None else {"basis": self.history.basis}),
        )
        np.savez_compressed(out / "rank_reference.npz", **self.rank_reference)
        self.stack.save(out / STACK_FILE)
        self.calibrator.save(out / CALIBRATION_FILE)
        for name in (STUDENT_FILE, STUDENT_CALIBRATION_FILE):
            (out / name).unlink(missing_ok=True)  # a student of an earlier training run
        if self.student is not None:
            self.student.save(out)
        (out / "models.joblib").unlink(missing_ok=True)  # format 1's pickle, if retrained over
        (out / "boundary_lists.json").write_text(self.lists.model_dump_json(indent=2))
        (out / "manifest.json").write_text(self.manifest.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: Path) -> "RouterModel":
        import lightgbm as lgb

        manifest_file = path / "manifest.json"
        if not manifest_file.exists():
            raise FileNotFoundError(f"{path} is not a router model (no manifest.json)")
        manifest = Manifest.model_validate_json(manifest_file.read_text())
        with np.load(path / "history.npz", allow_pickle=False) as npz:
            hist = dict(npz)
        ks = tuple(int(k) for k in hist["ks"])
        expected = expected_schema(manifest.embedding_dim, manifest.uses_categories, ks)
        if manifest.schema_hash != expected or manifest.format != ARTIFACT_FORMAT:
            pickled = " (its models are a pickle, never loaded)" if manifest.format < 2 else ""
            raise SchemaMismatch(
                f"router model {path} has feature schema {manifest.schema_hash} (format "
                f"{manifest.format}){pickled}; this gateway builds {expected} "
                f"(format {ARTIFACT_FORMAT}). Retrain it with `router train`."
            )
        with np.load(path / "rank_reference.npz", allow_pickle=False) as npz:
            rank_reference = dict(npz)
        return cls(
            manifest=manifest,
            history=KnnHistory(hist["embeddings"], hist["small_ok"], hist["large_ok"], ks=ks, basis=hist.get("basis")),
            stack=StackModels.load(path / STACK_FILE),
            heads={n: lgb.Booster(model_file=str(path / f"head_{n}.txt")) for n in HEADS},
            rank_reference=rank_reference,
            calibrator=IsotonicCurve.load(path / CALIBRATION_FILE),
            lists=BoundaryLists.model_validate(json.loads((path / "boundary_lists.json").read_text())),
            student=Student.load(path) if manifest.scorer == "student" else None,
        )


class Scorer:
    """Text → calibrated score, for the serving path (one query at a time)."""

    def __init__(self, model: RouterModel, embedder: Embedder) -> None:
        if embedder.dim != model.manifest.embedding_dim:
            raise SchemaMismatch(
                f"embedder gives {embedder.dim} dimensions; the router model expects "
                f"{model.manifest.embedding_dim}"
            )
        self.model = model
        self._embedder = embedder

    def score(self, text: str, category: str | None = None, asks: RequestAsks = PLAIN) -> float:
        emb = self._embedder.embed([text])
        return float(self.model.score_embedded(emb, [text], [category], [asks])[0])
