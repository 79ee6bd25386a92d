"""Cascades on held-out rows (issue 29 item 4): route only, cascade only, and cascade + routing,
compared by quality at a top-tier share and by the area under quality per cost.

Per seed, cross-fitted: the rows are shuffled by the seed into --folds folds (3), and each fold
in turn is held out while everything below is fitted on the others, so every graded row is held
out once per seed and a seed's figures are the mean over its folds (one 30 % split holds out
184 rows, too few to read a 1-2 point difference; --folds 1 is that split,
router.data.split_indices(n, seed, 0.3), as `router eval`). Within a fold: the learned router is
trained on the training rows (this pair only, no prior) and scores the held-out rows; the
training rows get out-of-fold scores from 5 routers that never saw them (what cascade_routing's
split is tuned on). As in Dekoninck et al. (ICML 2025), routing and escalation both follow the
expected gain of the large tier: ex ante the router's score (calibrated to P(large better)), ex
post a verifier trained on the training rows on "the large answer is better" from the small
answer's logprob signals, length, the router score and the category (cascade/evaluate.py). Its
form (logistic, LightGBM or their mean) is chosen per fold on the training rows alone: the best
out-of-fold escalation_value (cascade_only's mean quality over shares up to --share), ties to the
simpler form. The headline cascade_only and cascade_routing use it; every form is also reported
(`*_gain_<form>`), and so are the verifier of "the small answer is fine" (`*_small_ok`) and the
raw mean logprob (`*_logprob`) as confidences. Training-row scores are all out-of-fold. Nothing
is tuned on held-out grades.

    .venv/bin/python load_tests/cascade_eval.py [--data data/routing_eval/cascade_outcomes.csv]
        [--seeds 0,1,2] [--folds 3] [--share 0.3] [--out load_tests/results/cascade.json]

Writes the JSON and, beside it, a PNG of the first seed's quality-cost curves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel
from sklearn.model_selection import KFold

from cascade.evaluate import (
    GAIN_FORMS, Costs, Curve, Rows, StrategyResult, cascade_only, cascade_routing, category_codes,
    choose_gain_form, choose_split, cost_grid, envelope, route_only, summarise,
    verifier_confidence, verifier_features,
)
from router.data import OutcomeData, data_digest, load_outcomes, split_indices
from router.metrics import auc, oracle_scores
from router.model import EmbedderSpec
from spend.config import default_prices
from text.embedding import Embedder, build_embedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import machine  # noqa: E402

Floats = NDArray[np.float64]
Idx = NDArray[np.int64]
Emb = NDArray[np.float32]
RESULTS = Path(__file__).parent / "results"
SIGNALS = ("lp_mean", "lp_min", "lp_margin", "tokens", "answer_chars")
HEADLINE = ("route_only", "cascade_only", "cascade_routing")
ROUTER_FOLDS = 5
TEST_FRACTION = 0.3  # --folds 1: the one held-out split of `router eval`
NOTES = [
    "cross-fitted: per seed the rows are shuffled into `folds` folds (KFold, random_state=seed); "
    "each fold is held out once while routers, verifiers and cascade_routing's split are fitted on "
    "the other folds; a seed's strategies are the means over its folds (n_heldout: every row, once "
    "per seed); each fold's own figures are under `folds` (their curves only in the seed's mean)",
    f"router: train_router on each seed's training rows (static embedder, 256 tokens, no prior, "
    f"threads 1); training rows scored out-of-fold ({ROUTER_FOLDS} folds), test rows by the "
    "full-train router, with categories, as `router eval`",
    "escalation (headline cascade_only, cascade_routing): P(large better) from lp_mean, lp_min, "
    "lp_margin, tokens, answer_chars, router score and category, the ex-post gain estimate of "
    "Dekoninck et al. (ICML 2025); routing uses the router score, its ex-ante counterpart",
    "gain estimator forms: logistic (L2, C=1, standardised features, category one-hot), LightGBM "
    "(100 trees, 7 leaves, 20 rows a leaf) and their mean; training rows out-of-fold (5 folds)",
    "gain form selection, per fold, training rows only: the form with the highest out-of-fold "
    "escalation_value (cascade_only's mean training quality over shares 0..share when escalating "
    "by that form's P(large better)); a tie goes to the simpler form (logistic, lightgbm, mean). "
    "Held-out grades never enter; the held-out AUCs in auc_large_better are diagnostics only",
    "variants: *_gain_<form> every gain form; *_small_ok the LightGBM verifier of 'the small "
    "answer is fine' (the former headline); *_logprob the raw mean logprob",
    "cascade_routing: per share, the routed fraction chosen on the training rows from a 2.5 % "
    "grid (best quality, ties to more routing), applied to test rows as fractions of their ranks",
    "share: fraction of rows answered by large (routed + escalated); quality_at_share "
    "interpolated between neighbouring counts; auc_quality_cost: mean over 101 costs from "
    "all-small to small+large per row of the best quality at that cost or less",
    "route_oracle: large exactly where it scored higher (a ceiling for routing, not a strategy)",
]


class Split(BaseModel):
    """What the training rows chose for cascade_routing at the share, and what it gave held out."""

    routed_fraction_chosen: float
    routed_rate: float
    escalation_rate: float


class FoldResult(BaseModel):
    """One held-out fold of a seed: everything fitted on the other folds."""

    fold: int
    n_heldout: int
    strategies: dict[str, StrategyResult]
    escalation_rate: float  # cascade_only's at the share
    cascade_routing_split: Split
    gain_form: str  # the gain estimator chosen on the training rows
    gain_form_values: dict[str, float]  # each form's out-of-fold escalation_value (training rows)
    train_oof_auc_large_better: dict[str, float]  # each form's, training rows (not a criterion)
    small_quality: float  # on the held-out rows
    large_quality: float
    auc_small_ok: dict[str, float]  # each confidence's on the held-out rows
    auc_large_better: dict[str, float]  # router and each gain form on the held-out rows
    auc_large_better_router: float
    n_train: int
    seconds: float


class SeedResult(BaseModel):
    """A seed's folds, and their means (every graded row held out once)."""

    seed: int
    n_heldout: int
    strategies: dict[str, StrategyResult]  # means over the folds
    escalation_rate: float  # cascade_only's at the share, mean over the folds
    folds: list[FoldResult]
    seconds: float


def mean_result(results: list[StrategyResult]) -> StrategyResult:
    """Folds' results averaged field by field (the curves point by point: the same share marks)."""
    curve = np.mean([np.array(r.curve) for r in results], axis=0)
    return StrategyResult(
        quality_at_share=float(np.mean([r.quality_at_share for r in results])),
        auc_quality_cost=float(np.mean([r.auc_quality_cost for r in results])),
        cost_at_share=float(np.mean([r.cost_at_share for r in results])),
        escalation_rate=float(np.mean([r.escalation_rate for r in results])),
        routed_rate=float(np.mean([r.routed_rate for r in results])),
        curve=[(round(float(a), 4), round(float(b), 6), round(float(c), 6)) for a, b, c in curve],
    )


def fold_splits(n: int, seed: int, folds: int) -> list[tuple[Idx, Idx]]:
    """(training rows, held-out rows) per fold; `folds` 1: `router eval`'s one 30 % split."""
    if folds == 1:
        return [split_indices(n, seed, TEST_FRACTION)]
    return [(np.sort(fit).astype(np.int64), np.sort(held).astype(np.int64))
            for fit, held in KFold(folds, shuffle=True, random_state=seed).split(np.arange(n))]


def default_costs() -> Costs:
    """The default price table's ratio (output tokens), the large tier at 1."""
    prices = default_prices()
    ratio = prices["small"].output_per_million / prices["large"].output_per_million
    return Costs(small=round(ratio, 6))  # 0.30 / 3.00 is 0.09999999999999999 in floats


def signals(path: Path, small_col: str, large_col: str, outcomes: OutcomeData) -> Floats:
    """The small answer's signals, one row per graded outcome (an empty answer's logprobs: NaN)."""
    frame = pd.read_csv(path)
    frame = frame[frame[small_col].notna() & frame[large_col].notna()].reset_index(drop=True)
    if frame["prompt"].astype(str).tolist() != outcomes.prompts:
        raise SystemExit(f"{path}: the signal rows do not line up with the graded outcomes")
    tier = small_col.removeprefix("score:")
    columns = [f"{name}:{tier}" for name in SIGNALS]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SystemExit(f"{path}: missing columns {missing}")
    return frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


def fit_and_score(train: OutcomeData, held: OutcomeData, held_emb: Emb, embedder: Embedder,
                  spec: EmbedderSpec) -> Floats:
    """Train a router on `train`; score `held` as `router eval` does (with categories)."""
    from router.train import train_router

    model = train_router(train, embedder, spec, threads=1)
    return model.score_embedded(held_emb, held.prompts, held.categories).astype(np.float64)


def router_scores(data: OutcomeData, emb: Emb, train_idx: Idx, test_idx: Idx, embedder: Embedder,
                  spec: EmbedderSpec, seed: int) -> tuple[Floats, Floats]:
    """(out-of-fold scores of the training rows, the full-train router's of the test rows)."""
    oof = np.empty(len(train_idx))
    for fit, held in KFold(ROUTER_FOLDS, shuffle=True, random_state=seed).split(train_idx):
        rows = train_idx[held]
        oof[held] = fit_and_score(data.subset(train_idx[fit]), data.subset(rows), emb[rows],
                                  embedder, spec)
    test = fit_and_score(data.subset(train_idx), data.subset(test_idx), emb[test_idx],
                         embedder, spec)
    return oof, test


def strategies(train: Rows, test: Rows, variants: dict[str, tuple[Rows, Rows]],
               costs: Costs) -> dict[str, Curve]:
    """The headline three, each variant confidence's cascades, and the routing ceiling."""
    curves = {
        "route_only": route_only(test, costs),
        "cascade_only": cascade_only(test, costs),
        "cascade_routing": cascade_routing(test, train, costs),
    }
    for name, (train_v, test_v) in variants.items():
        curves[f"cascade_only_{name}"] = cascade_only(test_v, costs)
        curves[f"cascade_routing_{name}"] = cascade_routing(test_v, train_v, costs)
    oracle = Rows(test.small, test.large, oracle_scores(test.small, test.large), test.confidence)
    curves["route_oracle"] = route_only(oracle, costs)
    return curves


def gain_estimates(train_x: Floats, helps: Floats,
                   test_x: Floats) -> dict[str, tuple[Floats, Floats]]:
    """Per form, P(large better): (out-of-fold on the training rows, on the test rows)."""
    return {form: verifier_confidence(train_x, helps, test_x, form=form) for form in GAIN_FORMS}


def run_seed(seed: int, folds: int, data: OutcomeData, sig: Floats, emb: Emb, embedder: Embedder,
             spec: EmbedderSpec, share: float, costs: Costs) -> tuple[SeedResult, dict[str, Curve]]:
    """Every fold of the seed; the first fold's curves (for the plot)."""
    started = time.monotonic()
    results, first = [], {}
    for fold, (train_idx, test_idx) in enumerate(fold_splits(len(data), seed, folds)):
        result, curves = run_fold(seed, fold, train_idx, test_idx, data, sig, emb, embedder, spec,
                                  share, costs)
        print(f"seed {seed} fold {fold}: {result.seconds} s", file=sys.stderr, flush=True)
        results.append(result)
        first = first or curves
    strategies = {name: mean_result([r.strategies[name] for r in results])
                  for name in results[0].strategies}
    for r in results:  # a fold's curves live on in the seed's (their mean): kept once
        r.strategies = {name: s.model_copy(update={"curve": []})
                        for name, s in r.strategies.items()}
    return SeedResult(
        seed=seed, n_heldout=sum(r.n_heldout for r in results), strategies=strategies,
        escalation_rate=strategies["cascade_only"].escalation_rate, folds=results,
        seconds=round(time.monotonic() - started, 1),
    ), first


def run_fold(seed: int, fold: int, train_idx: Idx, test_idx: Idx, data: OutcomeData, sig: Floats,
             emb: Emb, embedder: Embedder, spec: EmbedderSpec, share: float,
             costs: Costs) -> tuple[FoldResult, dict[str, Curve]]:
    started = time.monotonic()
    oof_router, test_router = router_scores(data, emb, train_idx, test_idx, embedder, spec, seed)
    known = sorted({c for c in (data.categories[i] for i in train_idx) if c is not None})
    codes = category_codes(data.categories, known)
    train_x = verifier_features(sig[train_idx], oof_router, codes[train_idx])
    test_x = verifier_features(sig[test_idx], test_router, codes[test_idx])
    small, large = data.small.astype(np.float64), data.large.astype(np.float64)
    # What an escalation buys: the large answer scoring higher (large is worse on average here,
    # so "the small answer is fine" ranks the wrong rows first).
    helps = (large[train_idx] > small[train_idx]).astype(np.float64)
    gains = gain_estimates(train_x, helps, test_x)
    oof_ok, test_ok = verifier_confidence(train_x, small[train_idx], test_x)
    lp = sig[:, SIGNALS.index("lp_mean")]

    def rows(idx: Idx, router: Floats, confidence: Floats) -> Rows:
        return Rows(small[idx], large[idx], router, confidence)

    def pair(train_conf: Floats, test_conf: Floats) -> tuple[Rows, Rows]:
        return rows(train_idx, oof_router, train_conf), rows(test_idx, test_router, test_conf)

    # Gain as a confidence: its negation, so that the likeliest to gain escalate first.
    variants = {f"gain_{form}": pair(-oof, -test) for form, (oof, test) in gains.items()}
    graded = rows(train_idx, oof_router, np.zeros(len(train_idx)))  # each form's gain ranks it
    form, form_values = choose_gain_form(graded, {f: oof for f, (oof, _) in gains.items()}, share)
    train, test = variants[f"gain_{form}"]
    variants |= {"small_ok": pair(oof_ok, test_ok), "logprob": pair(lp[train_idx], lp[test_idx])}
    curves = strategies(train, test, variants, costs)
    results = {name: summarise(curve, costs, share) for name, curve in curves.items()}
    ok = (test.small >= 0.5).astype(np.float64)
    better = (test.large > test.small).astype(np.float64)
    chosen = float(choose_split(train, np.array([share]), costs)[0])
    mixed = results["cascade_routing"]
    return FoldResult(
        fold=fold, n_heldout=len(test_idx), strategies=results,
        escalation_rate=results["cascade_only"].escalation_rate,
        cascade_routing_split=Split(routed_fraction_chosen=chosen, routed_rate=mixed.routed_rate,
                                    escalation_rate=mixed.escalation_rate),
        gain_form=form, gain_form_values=form_values,
        train_oof_auc_large_better={f: auc(helps, oof) for f, (oof, _) in gains.items()},
        small_quality=float(test.small.mean()), large_quality=float(test.large.mean()),
        auc_small_ok={"verifier": auc(ok, test_ok),
                      "lp_mean": auc(ok, np.nan_to_num(lp[test_idx], nan=-1e9))},
        auc_large_better={"router": auc(better, test.router),
                          **{f: auc(better, t) for f, (_, t) in gains.items()}},
        auc_large_better_router=auc(better, test.router),
        n_train=len(train_idx), seconds=round(time.monotonic() - started, 1),
    ), curves


MEDIAN_KEYS = ("quality_at_share", "auc_quality_cost", "cost_at_share", "escalation_rate",
               "routed_rate")


def median_over_seeds(seeds: list[SeedResult]) -> dict[str, dict[str, float]]:
    return {
        name: {key: statistics.median(getattr(s.strategies[name], key) for s in seeds)
               for key in MEDIAN_KEYS}
        for name in seeds[0].strategies
    }


def table(seeds: list[SeedResult], median: dict[str, dict[str, float]], share: float) -> str:
    at = f"quality@{share:.0%}"
    head = f"{'seed':>6}  {'strategy':30s} {at:>12} {'auc':>7} {'escalated':>10} {'cost':>6}"
    blocks = [(str(s.seed), {n: r.model_dump() for n, r in s.strategies.items()}) for s in seeds]
    lines = [head, "-" * len(head)]
    for label, results in [*blocks, ("median", median)]:
        lines += [f"{label:>6}  {name:30s} {r['quality_at_share']:12.3f} "
                  f"{r['auc_quality_cost']:7.3f} {r['escalation_rate']:10.3f} "
                  f"{r['cost_at_share']:6.3f}" for name, r in results.items()]
        lines.append("")
    return "\n".join(lines)


def verdict_lines(seeds: list[SeedResult]) -> list[str]:
    lines = []
    for s in seeds:
        mixed, route = s.strategies["cascade_routing"], s.strategies["route_only"]
        lines.append(f"seed {s.seed}: cascade_routing {mixed.quality_at_share:.3f} vs route_only "
                     f"{route.quality_at_share:.3f} (mean over {len(s.folds)} folds, "
                     f"{s.n_heldout} rows)")
        lines += [f"  {fold_line(f)}" for f in s.folds]
    return lines


def fold_line(f: FoldResult) -> str:
    mixed, route = f.strategies["cascade_routing"], f.strategies["route_only"]
    split = f.cascade_routing_split
    values = ", ".join(f"{form} {v:.3f}" for form, v in f.gain_form_values.items())
    return (f"fold {f.fold} ({f.n_heldout} rows): cascade_routing {mixed.quality_at_share:.3f} "
            f"vs route_only {route.quality_at_share:.3f} (routed {split.routed_rate:.3f} + "
            f"escalated {split.escalation_rate:.3f}); gain form {f.gain_form} (training OOF "
            f"escalation_value: {values}); "
            f"held-out large-better AUC: router {f.auc_large_better['router']:.3f}, {f.gain_form} "
            f"{f.auc_large_better[f.gain_form]:.3f}")


def beats_every_seed(seeds: list[SeedResult]) -> bool:
    return all(s.strategies["cascade_routing"].quality_at_share
               > s.strategies["route_only"].quality_at_share for s in seeds)


def plot(curves: dict[str, Curve], costs: Costs, share: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    budgets = cost_grid(costs)
    for name in HEADLINE:
        curve = curves[name]
        # Faint: each share's point in share order; bold: the best quality at each cost or less
        # (what the AUC averages).
        line, = ax.plot(curve.cost, curve.quality, lw=0.8, alpha=0.35)
        dashed = name == "cascade_routing"  # often on route_only's envelope: both stay visible
        ax.step(budgets, envelope(curve, budgets), where="post", color=line.get_color(),
                lw=1.6, ls="--" if dashed else "-", label=name)
        at = np.argmin(np.abs(curve.share - share))
        ax.plot(curve.cost[at], curve.quality[at], "o", color=line.get_color())
    ax.set_xlabel("mean cost per request (large answer = 1)")
    ax.set_ylabel("held-out quality")
    ax.set_title(title, fontsize=9)
    ax.legend(title=f"bold: best at that cost or less; dots: {share:.0%} large", fontsize=8,
              title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/routing_eval/cascade_outcomes.csv"))
    parser.add_argument("--small-col", default="score:small:auto")
    parser.add_argument("--large-col", default="score:large")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--folds", type=int, default=3,
                        help="held-out folds per seed (1: one 30%% split)")
    parser.add_argument("--share", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=RESULTS / "cascade.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    seed_list = [int(s) for s in args.seeds.split(",")]
    costs = default_costs()
    started = datetime.now(timezone.utc)
    data = load_outcomes(args.data, args.small_col, args.large_col)
    sig = signals(args.data, args.small_col, args.large_col, data)
    spec = EmbedderSpec(kind="static", max_tokens=256)
    embedder = build_embedder(spec.kind, spec.max_tokens)
    emb = embedder.embed(data.prompts)
    seeds, first = [], {}
    for seed in seed_list:
        result, curves = run_seed(seed, args.folds, data, sig, emb, embedder, spec, args.share,
                                  costs)
        seeds.append(result)
        first = first or curves
    median, beats = median_over_seeds(seeds), beats_every_seed(seeds)
    n_heldout = seeds[0].n_heldout
    document = {
        "n_heldout": n_heldout, "folds": args.folds, "share": args.share,
        "seeds": [s.model_dump() for s in seeds],
        "median": median, "cascade_routing_beats_route_only_every_seed": beats,
        "small_quality": float(data.small.mean()), "large_quality": float(data.large.mean()),
        "costs": costs.model_dump(),
        "data": {"path": str(args.data), "rows": len(data), "ungraded": data.ungraded,
                 "sha256": data_digest(args.data)},
        "date": started.isoformat(timespec="seconds"), "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "notes": NOTES,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    png = args.out.with_suffix(".png")
    plot(first, costs, args.share, png,
         f"cascades on {args.data.name}, seed {seed_list[0]}, fold 0: "
         f"{seeds[0].folds[0].n_heldout} held-out rows")
    print(f"{len(data)} rows, {n_heldout} held out per seed ({args.folds} folds); small "
          "quality "
          f"{data.small.mean():.3f}, large {data.large.mean():.3f}; cost small {costs.small:g}, "
          f"large {costs.large:g}\n")
    print(table(seeds, median, args.share))
    print("\n".join(verdict_lines(seeds)))
    print(f"cascade_routing beats route_only at {args.share:.0%} on every seed: "
          f"{'yes' if beats else 'no'}")
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
