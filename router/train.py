"""Fitting the learned router from outcome data.

The training rows are split into a fit part (75 %) and a calibration part (25 %).
Stacked features (kNN history, the 4-outcome and category models) are out-of-fold on
the fit part — in-sample values would make the heads over-trust them — and computed
as at serving time on the calibration part, where the rank references and the isotonic
calibrator are fitted.

A prior (another pair's outcomes, e.g. the shipped MMLU ones) may join the rows with a
sample weight: it steadies the heads where our own outcomes are few. It is not memory of
*this* pair's traffic, so the kNN history, the category rates' categories, the rank
references and the training-score quantiles (what a share threshold starts from) come
from our own rows only.

The probability heads are fitted on the grades in [0, 1] (cross-entropy, the same fit as a
binary classifier when grades are 0/1); "helps" is "large scored strictly higher".
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from router.data import DataError, OutcomeData, concat
from text.embedding import Embedder
from router.features import BoundaryLists
from router.history import COMPACT_DIMS, DEFAULT_KS, KnnHistory, compact_basis
from router.metrics import apgr, auc, expected_calibration_error, quality_curve
from router.student import choose, fidelity, fit_student
from router.model import (
    EmbedderSpec,
    IsotonicCurve,
    Logistic,
    Manifest,
    RouterModel,
    StackModels,
    expected_schema,
    feature_names,
)

Arr = NDArray[np.float32]

# 150 trees at 0.08, not 600 at 0.02: each tree is decision time in a cold replica (the five
# heads' share of a decision fell by ~0.6 ms), for the same routing on the MMLU split (seeds
# 0 and 1: APGR 0.696 / 0.692 against 0.698 / 0.692; docs/routing.md).
HEAD_PARAMS: dict[str, Any] = dict(
    n_estimators=150, learning_rate=0.08, num_leaves=7, min_child_samples=100,
    colsample_bytree=0.5, subsample=0.8, subsample_freq=1, max_bin=63, reg_lambda=1.0,
    verbose=-1, random_state=0,
)


def _fit_stack(emb: Arr, data: OutcomeData, categories: list[str], weights: Arr) -> StackModels:
    outcome = (2 * data.small_ok + data.large_ok).astype(int)
    lr4 = LogisticRegression(C=0.3, max_iter=2000).fit(emb, outcome, sample_weight=weights)
    if not categories:
        return StackModels(lr4=Logistic.from_sklearn(lr4), category=None, category_rates=None)
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
    category = LogisticRegression(C=1.0, max_iter=500).fit(emb[known], codes[known], sample_weight=weights[known])
    return StackModels(
        lr4=Logistic.from_sklearn(lr4), category=Logistic.from_sklearn(category),
        category_rates=_category_rates(data, codes, len(categories), weights),
        category_names=list(categories),
    )


def _category_rates(data: OutcomeData, codes: NDArray[np.int64], n: int, weights: Arr) -> Arr:
    overall = [np.average(data.small, weights=weights), np.average(data.large, weights=weights)]
    rates = np.tile(overall, (n, 1)).astype(np.float32)
    for c in range(n):
        mask = codes == c
        if mask.any():
            rates[c] = [np.average(data.small[mask], weights=weights[mask]),
                        np.average(data.large[mask], weights=weights[mask])]
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


def leaf_rows(own_rows: int) -> int:
    """Fewest rows a head's leaf holds: HEAD_PARAMS' 100 suits the shipped 14k MMLU rows;
    a few hundred collected outcomes would allow one split at most, so their leaves hold
    a 40th of them (at least 10). Counted on our own rows: a prior fills other regions."""
    return int(np.clip(own_rows // 40, 10, HEAD_PARAMS["min_child_samples"]))


def _heads(a: Arr, b: Arr, data: OutcomeData, weights: Arr, threads: int, leaf: int) -> dict[str, Any]:
    import lightgbm as lgb

    targets = {
        "a_large": (a, data.large), "a_small": (a, data.small),
        "b_large": (b, data.large), "b_small": (b, data.small), "b_helps": (b, data.large_better),
    }
    # Cross-entropy takes grades in [0, 1]; the boosters predict probabilities, as the
    # binary heads of artifacts trained on 0/1 outcomes do.
    params = {**HEAD_PARAMS, "objective": "cross_entropy", "min_child_samples": leaf}
    return {
        name: lgb.LGBMRegressor(**params, n_jobs=threads).fit(x, y.astype(np.float64), sample_weight=weights).booster_
        for name, (x, y) in targets.items()
    }


def _joined(own: OutcomeData, prior: OutcomeData | None, prior_weight: float) -> tuple[OutcomeData, Arr]:
    """Own rows then prior rows, and each row's sample weight. The prior's categories are
    dropped: a category's rates describe the pair graded on it, and the prior's pair is
    another. A weight of 0 leaves the prior out altogether."""
    if prior is None or len(prior) == 0 or prior_weight == 0:
        return own, np.ones(len(own), dtype=np.float32)
    unnamed = OutcomeData(
        prompts=prior.prompts, small_ok=prior.small_ok, large_ok=prior.large_ok,
        categories=[None] * len(prior), small_score=prior.small, large_score=prior.large,
    )
    weights = np.concatenate([np.ones(len(own)), np.full(len(prior), prior_weight)]).astype(np.float32)
    return concat(own, unnamed), weights


def _history_features(history: KnnHistory, emb: Arr, n_own: int) -> Arr:
    """Own rows leave themselves out (as at serving time, a query is not its own
    neighbour); prior rows are not in the history at all."""
    own = history.features(emb[:n_own], exclude_self=True)
    return np.vstack([own, history.features(emb[n_own:])]) if len(emb) > n_own else own


def train_router(
    data: OutcomeData,
    embedder: Embedder,
    spec: EmbedderSpec,
    lists: BoundaryLists | None = None,
    version: str | None = None,
    threads: int = 2,
    progress: Callable[[str], None] = lambda _: None,
    prior: OutcomeData | None = None,
    prior_weight: float = 1.0,
    knn_dims: int = COMPACT_DIMS,
) -> RouterModel:
    """`knn_dims`: the history's compact index (see router.history.COMPACT_DIMS) where the
    history is long enough to gain from one; 0 searches the full embeddings."""
    lists = lists or BoundaryLists()
    rows, weights = _joined(data, prior, prior_weight)
    own = np.arange(len(rows)) < len(data)
    progress("embedding")
    emb = embedder.embed(rows.prompts)
    categories = sorted({c for c in rows.categories if c is not None})
    cats = categories if len(categories) > 1 else []

    progress("stacked features (out-of-fold)")
    basis = compact_basis(emb[own], knn_dims)
    history = KnnHistory(emb[own], data.small, data.large, ks=DEFAULT_KS, basis=basis)
    # Half the rows train without their category, so the heads also learn to score
    # queries whose client sends none (the usual case outside the training domain).
    given = _mask_categories(rows.categories, seed=0)
    stack_oof = _out_of_fold(
        len(rows),
        lambda a, b: _fit_stack(emb[a], rows.subset(a), cats, weights[a]).features(emb[b], [given[i] for i in b]),
    )
    model = RouterModel(
        manifest=_manifest(spec, emb.shape[1], bool(cats), len(rows), version),
        history=history, stack=_fit_stack(emb, rows, cats, weights), heads={}, rank_reference={},
        calibrator=None, lists=lists,
    )
    a, b = model.feature_matrix(
        emb, rows.prompts, history=_history_features(history, emb, len(data)), stack=stack_oof,
        asks=rows.asks,
    )

    progress("LightGBM heads (cross-fitted for calibration)")
    leaf = leaf_rows(len(data))
    comps = _cross_fitted_components(model, a, b, stack_oof, rows, weights, threads, leaf)
    model.heads = _heads(a, b, rows, weights, threads, leaf)

    progress("calibration")
    # Ranks are positions among our own traffic's scores, whatever the prior adds.
    model.rank_reference = {n: np.sort(v[own]) for n, v in comps.items()}
    ensemble = model.ensemble(comps)
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    model.calibrator = IsotonicCurve.from_sklearn(isotonic.fit(ensemble, rows.large_better, sample_weight=weights))

    progress("student (cross-fitted)")
    # Trained on the rows' out-of-fold stacked features, as the heads are.
    x = model.student_features(emb, rows.prompts, stack_oof, rows.asks)
    calibrated = model.calibrate(ensemble)
    student, raw, student_oof = fit_student(x, ensemble, calibrated, weights, threads, leaf)
    choice = choose(len(data), fidelity(raw[own], ensemble[own]))
    served = student_oof if choice.served == "student" else calibrated
    model.student = student if choice.served == "student" else None
    model.manifest.scorer = choice.served
    model.manifest.metrics = {
        # The ensemble's out-of-fold figures (the student's lean on the outcomes: router/student.py);
        # the score quantiles a share threshold starts from are the served scorer's.
        **_fit_metrics(calibrated[own], data),
        "training_scores_quantiles": np.quantile(served[own], np.linspace(0, 1, 101)).tolist(),
        "scorer_choice": choice.model_dump(),
        "rows_own": len(data), "rows_prior": len(rows) - len(data),
        "prior_weight": prior_weight if len(rows) > len(data) else None,
    }
    return model


def _fit_metrics(scores: NDArray[np.float64], data: OutcomeData) -> dict[str, Any]:
    """Out-of-fold figures on our own rows. APGR is None where the large tier is not better
    on average: progress towards it is then undefined."""
    small, large, better = (np.asarray(x, dtype=np.float64) for x in (data.small, data.large, data.large_better))
    return {
        "out_of_fold_apgr": apgr(quality_curve(scores, small, large)) if large.mean() > small.mean() else None,
        "out_of_fold_auc_large_better": auc(better, scores),
        "out_of_fold_ece": expected_calibration_error(np.clip(scores, 0, 1), better),
        "training_scores_quantiles": np.quantile(scores, np.linspace(0, 1, 101)).tolist(),
    }


def _cross_fitted_components(
    model: RouterModel, a: Arr, b: Arr, stacked: Arr, data: OutcomeData, weights: Arr, threads: int, leaf: int
) -> dict[str, NDArray[np.float64]]:
    """Head outputs for every row from heads that never saw it: what the rank references
    and the calibrator must be fitted on to match scores of unseen queries."""
    comps: dict[str, NDArray[np.float64]] = {}
    for fit_idx, held_idx in KFold(4, shuffle=True, random_state=1).split(a):
        model.heads = _heads(a[fit_idx], b[fit_idx], data.subset(fit_idx), weights[fit_idx], threads, leaf)
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
