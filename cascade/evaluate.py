"""Held-out evidence for cascades: what quality each way of spending the top tier buys per cost.

Per graded row: the cheap tier's score, the top tier's score, the router's score (higher: send
large) and a confidence (higher: less reason to escalate the cheap answer). Every strategy is a
set of (routed, escalated) counts served by one rule:

    routed     rows with the highest router scores go straight to large    cost: large
    escalated  of the rest, which all ask small first, the least confident  cost: small + large
               escalate to large
    kept       the other rows keep the small answer                          cost: small

    route_only       routed = k, escalated = 0
    cascade_only     routed = 0, escalated = k
    cascade_routing  routed + escalated = k, the split chosen on training rows

Following Dekoninck et al. (ICML 2025, "A Unified Approach to Routing and Cascading for LLMs"),
both decisions rank rows by the expected gain of the upper tier: ex ante (the query only) for
routing, which is the router's score, calibrated to P(large better); ex post (the router's score
and the small answer's signals) for escalation, a verifier trained on "the large answer is
better" whose confidence is minus that probability. The gain estimator's form (logistic, LightGBM
or their mean) is chosen per training set by choose_gain_form: the best out-of-fold
escalation_value on the training rows, ties to the simpler form. A verifier of "the small answer
is fine" fits the same rule as another confidence.

"share" is the fraction of rows answered by large (routed + escalated). Each strategy gives a
curve over k = 0..n; it is read as quality at a share and as the mean, over a grid of costs from
all-small to small + large per row, of the best quality reachable at that cost or less.

cascade_routing's split is tuned on training rows (whose router scores and confidences must be
cross-fitted, or the tuning trusts them too much) and applied to held-out rows as fractions: the
top `r` by router score, then the least confident of the rest up to the share. Held-out rows are
ranked, never their grades read: the way route_only and cascade_only meet a share exactly, and the
way the gateway's share thresholds follow recent traffic.

Ties (a coarse verifier repeats values) are broken by a seeded permutation, not by row order,
which in the data files groups rows by category.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

COST_POINTS = 101
ROUTE_STEP = 0.025  # the grid of routed fractions cascade_routing chooses from


class Costs(BaseModel):
    """Cost of one answer per tier; the default ratio is spend/config.py's default prices."""

    small: float = Field(0.1, gt=0)
    large: float = Field(1.0, gt=0)


@dataclass(frozen=True)
class Rows:
    small: Floats
    large: Floats
    router: Floats  # higher: send large
    confidence: Floats  # higher: less reason to escalate; NaN (no answer) escalates first

    def __post_init__(self) -> None:
        sizes = {len(self.small), len(self.large), len(self.router), len(self.confidence)}
        if len(sizes) != 1 or not len(self.small):
            raise ValueError(f"rows need equal, non-zero lengths; got {sorted(sizes)}")

    def __len__(self) -> int:
        return len(self.small)


@dataclass(frozen=True)
class Curve:
    """Per (routed, escalated) pair, as fractions of the rows: its mean cost and quality."""

    share: Floats
    routed: Floats
    escalated: Floats
    cost: Floats
    quality: Floats


class StrategyResult(BaseModel):
    quality_at_share: float
    auc_quality_cost: float
    cost_at_share: float
    escalation_rate: float  # share of rows that asked small and then large, at the share
    routed_rate: float  # share of rows sent straight to large, at the share
    curve: list[tuple[float, float, float]]  # (share, cost, quality) every 5 % of share


def _ranks(values: Floats, seed: int) -> Ints:
    """Each row's position in ascending order of `values`, ties in a seeded random order."""
    tiebreak = np.random.default_rng(seed).permutation(len(values))
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[np.lexsort((tiebreak, values))] = np.arange(len(values))
    return ranks


def serve(rows: Rows, routed: Ints, escalated: Ints, costs: Costs, seed: int = 0) -> Curve:
    """Quality and mean cost of each pair (routed[j], escalated[j]) of counts on these rows."""
    n = len(rows)
    routed, escalated = np.asarray(routed, dtype=np.int64), np.asarray(escalated, dtype=np.int64)
    if np.any(routed < 0) or np.any(escalated < 0) or np.any(routed + escalated > n):
        raise ValueError("routed and escalated are non-negative counts summing to at most the rows")
    by_router = _ranks(-rows.router, seed)  # 0: the row the router most wants large
    sureness = np.nan_to_num(rows.confidence, nan=-np.inf)
    doubt = np.argsort(_ranks(sureness, seed + 1))  # row indices, the least sure first
    direct = (by_router[None, :] < routed[:, None])[:, doubt]
    rest = ~direct
    ups = rest & (np.cumsum(rest, axis=1) <= escalated[:, None])
    gain = (rows.large - rows.small)[doubt]
    quality = (rows.small.sum() + (direct | ups) @ gain) / n
    cost = (costs.small * (n - routed) + costs.large * (routed + escalated)) / n
    return Curve(share=(routed + escalated) / n, routed=routed / n, escalated=escalated / n,
                 cost=cost, quality=quality)


def route_only(rows: Rows, costs: Costs, seed: int = 0) -> Curve:
    k = np.arange(len(rows) + 1)
    return serve(rows, k, np.zeros_like(k), costs, seed)


def cascade_only(rows: Rows, costs: Costs, seed: int = 0) -> Curve:
    k = np.arange(len(rows) + 1)
    return serve(rows, np.zeros_like(k), k, costs, seed)


def _candidates(share: float, step: float) -> Floats:
    """Routed fractions to try at a share: a grid up to it, and all of it (pure routing)."""
    return np.unique(np.append(np.arange(0.0, share, step), share))


def choose_split(
    train: Rows, shares: Floats, costs: Costs, step: float = ROUTE_STEP, seed: int = 0
) -> Floats:
    """Per target share, the routed fraction whose split maximises quality on the training rows.
    Equal quality goes to the larger routed fraction: the same share for less (no small answer
    paid for first)."""
    n = len(train)
    chosen = np.empty(len(shares))
    for i, share in enumerate(shares):
        fractions = _candidates(float(share), step)
        routed = np.round(fractions * n).astype(np.int64)
        total = int(round(float(share) * n))
        quality = serve(train, routed, total - routed, costs, seed).quality
        chosen[i] = fractions[np.flatnonzero(quality >= quality.max() - 1e-12)[-1]]
    return chosen


def cascade_routing(
    test: Rows, train: Rows, costs: Costs, step: float = ROUTE_STEP, seed: int = 0
) -> Curve:
    """Held-out curve at each share k/n of the test rows, split as chosen on the training rows."""
    n = len(test)
    total = np.arange(n + 1)
    fractions = choose_split(train, total / n, costs, step, seed)
    routed = np.minimum(np.round(fractions * n).astype(np.int64), total)
    return serve(test, routed, total - routed, costs, seed)


def quality_at_share(curve: Curve, share: float) -> float:
    """Quality at a large share, interpolated between the neighbouring counts."""
    return float(np.interp(share, curve.share, curve.quality))


def envelope(curve: Curve, budgets: Floats) -> Floats:
    """Best quality of any point costing at most each budget (NaN below the cheapest point)."""
    order = np.argsort(curve.cost, kind="stable")
    best = np.maximum.accumulate(curve.quality[order])
    at = np.searchsorted(curve.cost[order], budgets + 1e-12, side="right") - 1
    return np.where(at >= 0, best[np.maximum(at, 0)], np.nan)


def cost_grid(costs: Costs, points: int = COST_POINTS) -> Floats:
    """From every row answered small to every row asking small and then large."""
    return np.linspace(costs.small, costs.small + costs.large, points)


def auc_quality_cost(curve: Curve, costs: Costs, points: int = COST_POINTS) -> float:
    """Mean over the cost grid of the best quality reachable; past its dearest point a strategy
    keeps its best."""
    reachable = envelope(curve, cost_grid(costs, points))
    if np.isnan(reachable).any():
        raise ValueError("the curve has no point as cheap as every row answered small")
    return float(reachable.mean())


def summarise(curve: Curve, costs: Costs, share: float) -> StrategyResult:
    marks = np.linspace(0.0, 1.0, 21)
    return StrategyResult(
        quality_at_share=quality_at_share(curve, share),
        auc_quality_cost=auc_quality_cost(curve, costs),
        cost_at_share=float(np.interp(share, curve.share, curve.cost)),
        escalation_rate=float(np.interp(share, curve.share, curve.escalated)),
        routed_rate=float(np.interp(share, curve.share, curve.routed)),
        curve=[(round(float(s), 4), round(float(np.interp(s, curve.share, curve.cost)), 6),
                round(float(np.interp(s, curve.share, curve.quality)), 6)) for s in marks],
    )


# ---- the verifiers: what the cheap answer's signals say about the two tiers ---------------------
#
# Two labels: "the small answer is fine" (the small-ok verifier, a confidence) and "the large
# answer is better" (the gain: what an escalation buys, the ex-post counterpart of the router's
# ex-ante score, which is calibrated to the same event). Three forms of estimator; which one
# estimates the gain is chosen per training set, out of fold (choose_gain_form).

GAIN_FORMS = ("logistic", "lightgbm", "mean")  # simplest first: a tie goes to the earlier


class VerifierParams(BaseModel):
    """Small on purpose: a few hundred training rows."""

    trees: int = 100
    leaves: int = 7
    min_leaf: int = 20
    learning_rate: float = 0.05
    c: float = 1.0  # the logistic form's inverse L2 strength (standardised features); fixed
    folds: int = 5
    seed: int = 0


def category_codes(categories: Sequence[str | None], known: Sequence[str]) -> Floats:
    """Index in `known` (the training rows' categories); NaN for none or one unseen."""
    index = {name: i for i, name in enumerate(known)}
    codes = [index.get(c, np.nan) if c is not None else np.nan for c in categories]
    return np.array(codes, dtype=np.float64)


def verifier_features(signals: Floats, router: Floats, codes: Floats) -> Floats:
    """[answer signals..., router score, category code]: the code is the last column."""
    return np.column_stack([signals, router, codes])


def _lightgbm(x: Floats, y: Floats, x_new: Floats, params: VerifierParams) -> Floats:
    import lightgbm as lgb

    model = lgb.LGBMClassifier(
        n_estimators=params.trees, num_leaves=params.leaves, min_child_samples=params.min_leaf,
        learning_rate=params.learning_rate, min_data_per_group=params.min_leaf, cat_smooth=10.0,
        random_state=params.seed, n_jobs=1, verbose=-1,
    )
    model.fit(x, y.astype(np.int64), categorical_feature=[x.shape[1] - 1])
    proba: Any = model.predict_proba(x_new)
    return np.asarray(proba)[:, 1].astype(np.float64)


def _logistic(x: Floats, y: Floats, x_new: Floats, params: VerifierParams) -> Floats:
    """L2 logistic regression on the standardised numeric columns (a missing value: the training
    median) and the category one-hot (no code, none or unseen, is a level of its own)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    last = x.shape[1] - 1
    design = ColumnTransformer([
        ("signals", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                                  StandardScaler()), list(range(last))),
        ("category", OneHotEncoder(handle_unknown="ignore"), [last]),
    ])
    model = make_pipeline(design, LogisticRegression(C=params.c, max_iter=1000))

    def coded(rows: Floats) -> Floats:
        return np.column_stack([rows[:, :last], np.nan_to_num(rows[:, last], nan=-1.0)])

    model.fit(coded(x), y.astype(np.int64))
    return np.asarray(model.predict_proba(coded(x_new)))[:, 1].astype(np.float64)


def _mean(x: Floats, y: Floats, x_new: Floats, params: VerifierParams) -> Floats:
    """Both forms' probabilities averaged: the trees' interactions, the line's stability."""
    return (_lightgbm(x, y, x_new, params) + _logistic(x, y, x_new, params)) / 2.0


_FITS = {"lightgbm": _lightgbm, "logistic": _logistic, "mean": _mean}


def _fit_predict(
    x: Floats, y: Floats, x_new: Floats, params: VerifierParams, form: str = "lightgbm"
) -> Floats:
    if len(np.unique(y)) < 2:  # a fold with one outcome only: its rate is all it knows
        return np.full(len(x_new), float(y[0]) if len(y) else 0.5)
    return _FITS[form](x, y, x_new, params)


def verifier_confidence(
    train_x: Floats, train_ok: Floats, test_x: Floats, params: VerifierParams | None = None,
    form: str = "lightgbm",
) -> tuple[Floats, Floats]:
    """P(label) where the label is `train_ok` >= 0.5: out-of-fold on the training rows (what
    cascade_routing is tuned on), from a model of all training rows on the test rows."""
    from sklearn.model_selection import KFold

    if form not in _FITS:
        raise ValueError(f"unknown verifier form {form!r}; known: {sorted(_FITS)}")
    params = params or VerifierParams()
    y = (np.asarray(train_ok) >= 0.5).astype(np.float64)
    oof = np.empty(len(train_x))
    for fit, held in KFold(params.folds, shuffle=True, random_state=params.seed).split(train_x):
        oof[held] = _fit_predict(train_x[fit], y[fit], train_x[held], params, form)
    return oof, _fit_predict(train_x, y, test_x, params, form)


def escalation_value(train: Rows, share: float, seed: int = 0) -> float:
    """Mean quality of cascade_only over the shares 0..`share` of these rows, escalating by their
    confidence: what a ranking buys at every escalation rate cascade_routing can use there."""
    curve = cascade_only(train, Costs(), seed)  # quality does not depend on the prices
    return float(curve.quality[curve.share <= share + 1e-12].mean())


def choose_gain_form(
    train: Rows, oof_gain: dict[str, Floats], share: float, seed: int = 0
) -> tuple[str, dict[str, float]]:
    """The gain estimator's form, chosen on training rows only: the highest escalation_value
    when escalating by each form's out-of-fold P(large better); a tie goes to the simpler form
    (GAIN_FORMS' order). Returns the form and every form's value."""
    values = {form: escalation_value(Rows(train.small, train.large, train.router, -oof_gain[form]),
                                     share, seed)
              for form in GAIN_FORMS if form in oof_gain}
    if not values:
        raise ValueError(f"no out-of-fold gain for any of {GAIN_FORMS}")
    best = max(values.values())
    return next(form for form, value in values.items() if value >= best - 1e-12), values
