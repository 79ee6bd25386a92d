"""Fitting the learned router from outcome data.

The training rows are split into a fit part (75 %) and a calibration part (25 %).
Stacked features (kNN history, the 4-outcome and category models) are out-of-fold on
the fit part — in-sample values would make the heads over-trust them — and computed
as at serving time on the calibration part, where the rank references and the isotonic
calibrator are fitted.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from router.data import DataError, OutcomeData
from text.embedding import Embedder
from router.features import BoundaryLists
from router.history import DEFAULT_KS, KnnHistory
from router.metrics import apgr, expected_calibration_error, quality_curve
from router.model import (
    EmbedderSpec,
    Manifest,
    RouterModel,
    StackModels,
    expected_schema,
    feature_names,
)

Arr = NDArray[np.float32]

HEAD_PARAMS: dict[str, Any] = dict(
    n_estimators=600, learning_rate=0.02, num_leaves=7, min_child_samples=100,
    colsample_bytree=0.5, subsample=0.8, subsample_freq=1, max_bin=63, reg_lambda=1.0,
    verbose=-1, random_state=0,
)


def _fit_stack(emb: Arr, data: OutcomeData, categories: list[str]) -> StackModels:
    outcome = (2 * data.small_ok + data.large_ok).astype(int)
    lr4 = LogisticRegression(C=0.3, max_iter=2000).fit(emb, outcome)
    if not categories:
        return StackModels(lr4=lr4, category=None, category_rates=None)
    # Rows without a category (shadow traffic whose client sent none) count in the
    # overall rates but cannot teach the category model.
    codes = np.array([categories.index(c) if c is not None else -1 for c in data.categories])
    known = codes >= 0
    named = len(np.unique(codes[known]))
    if named < 2:
        raise DataError(
            f"{known.sum()} rows of a training fold name {named} distinct categories; the category "
            "model needs at least 2 (add categorised rows, or drop the categories)"
        )
    category = LogisticRegression(C=1.0, max_iter=500).fit(emb[known], codes[known])
    return StackModels(
        lr4=lr4, category=category, category_rates=_category_rates(data, codes, len(categories)),
        category_names=list(categories),
    )


def _category_rates(data: OutcomeData, codes: NDArray[np.int64], n: int) -> Arr:
    overall = [data.small_ok.mean(), data.large_ok.mean()]
    rates = np.tile(overall, (n, 1)).astype(np.float32)
    for c in range(n):
        mask = codes == c
        if mask.any():
            rates[c] = [data.small_ok[mask].mean(), data.large_ok[mask].mean()]
    return np.hstack([rates, rates[:, 1:2] - rates[:, 0:1]])


def _mask_categories(categories: list[str | None], seed: int) -> list[str | None]:
    keep = np.random.RandomState(seed).uniform(size=len(categories)) < 0.5
    return [c if k else None for c, k in zip(categories, keep)]


def _out_of_fold(n: int, fn: Callable[[NDArray[np.int64], NDArray[np.int64]], Arr]) -> Arr:
    out: Arr | None = None
    for fit_idx, held_idx in KFold(5, shuffle=True, random_state=0).split(np.arange(n)):
        block = fn(fit_idx, held_idx)
        if out is None:
            out = np.zeros((n, block.shape[1]), dtype=np.float32)
        out[held_idx] = block
    assert out is not None
    return out


def _heads(a: Arr, b: Arr, data: OutcomeData, threads: int) -> dict[str, Any]:
    import lightgbm as lgb

    helps = ((data.small_ok < 0.5) & (data.large_ok >= 0.5)).astype(int)
    targets = {
        "a_large": (a, data.large_ok), "a_small": (a, data.small_ok),
        "b_large": (b, data.large_ok), "b_small": (b, data.small_ok), "b_helps": (b, helps),
    }
    return {
        name: lgb.LGBMClassifier(**HEAD_PARAMS, n_jobs=threads).fit(x, y.astype(int)).booster_
        for name, (x, y) in targets.items()
    }


def train_router(
    data: OutcomeData,
    embedder: Embedder,
    spec: EmbedderSpec,
    lists: BoundaryLists | None = None,
    version: str | None = None,
    threads: int = 2,
    progress: Callable[[str], None] = lambda _: None,
) -> RouterModel:
    lists = lists or BoundaryLists()
    progress("embedding")
    emb = embedder.embed(data.prompts)
    categories = sorted({c for c in data.categories if c is not None})
    cats = categories if len(categories) > 1 else []

    progress("stacked features (out-of-fold)")
    history = KnnHistory(emb, data.small_ok, data.large_ok, ks=DEFAULT_KS)
    # Half the rows train without their category, so the heads also learn to score
    # queries whose client sends none (the usual case outside the training domain).
    given = _mask_categories(data.categories, seed=0)
    stack_oof = _out_of_fold(
        len(data),
        lambda a, b: _fit_stack(emb[a], data.subset(a), cats).features(emb[b], [given[i] for i in b]),
    )
    model = RouterModel(
        manifest=_manifest(spec, emb.shape[1], bool(cats), len(data), version),
        history=history, stack=_fit_stack(emb, data, cats), heads={}, rank_reference={},
        calibrator=None, lists=lists,
    )
    a, b = model.feature_matrix(
        emb, data.prompts, history=history.features(emb, exclude_self=True), stack=stack_oof
    )

    progress("LightGBM heads (cross-fitted for calibration)")
    comps = _cross_fitted_components(model, a, b, stack_oof, data, threads)
    model.heads = _heads(a, b, data, threads)

    progress("calibration")
    model.rank_reference = {n: np.sort(v) for n, v in comps.items()}
    ensemble = model.ensemble(comps)
    helps = ((data.small_ok < 0.5) & (data.large_ok >= 0.5)).astype(float)
    model.calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(ensemble, helps)
    scores = model.calibrate(ensemble)
    model.manifest.metrics = {
        "out_of_fold_apgr": apgr(quality_curve(scores, data.small_ok, data.large_ok)),
        "out_of_fold_ece": expected_calibration_error(np.clip(scores, 0, 1), helps),
        "training_scores_quantiles": np.quantile(scores, np.linspace(0, 1, 101)).tolist(),
    }
    return model


def _cross_fitted_components(
    model: RouterModel, a: Arr, b: Arr, stacked: Arr, data: OutcomeData, threads: int
) -> dict[str, NDArray[np.float64]]:
    """Head outputs for every row from heads that never saw it: what the rank references
    and the calibrator must be fitted on to match scores of unseen queries."""
    comps: dict[str, NDArray[np.float64]] = {}
    for fit_idx, held_idx in KFold(4, shuffle=True, random_state=1).split(a):
        model.heads = _heads(a[fit_idx], b[fit_idx], data.subset(fit_idx), threads)
        part = model.components(a[held_idx], b[held_idx], stacked[held_idx])
        for name, values in part.items():
            comps.setdefault(name, np.zeros(len(a)))[held_idx] = values
    return comps


def _manifest(spec: EmbedderSpec, dim: int, uses_categories: bool, rows: int, version: str | None) -> Manifest:
    now = datetime.now(timezone.utc)
    return Manifest(
        version=version or f"router-{now:%Y%m%d-%H%M%S}",
        created_at=now.isoformat(timespec="seconds"),
        schema_hash=expected_schema(dim, uses_categories, DEFAULT_KS),
        feature_names=feature_names(dim, uses_categories, DEFAULT_KS),
        embedder=spec,
        embedding_dim=dim,
        uses_categories=uses_categories,
        train_rows=rows,
    )
