"""`router train` and `router eval`.

`--from-shadow` reads pairs through the `PairReader` the entry point
(`gateway.commands`) hands in as the click context's `obj`: `router/` never opens
another package's store.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from router.data import OutcomeData, load_exclusions, load_outcomes, split_indices
from router.flywheel import DEFAULT_THRESHOLD, PairReader, ShadowRows, concat, parse_since, shadow_outcomes

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from router.evaluate import EvalReport
    from router.model import RouterModel

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

DataOpt = Annotated[Path, typer.Option(help="CSV, JSONL, or a directory of CSVs (RouteLLM layout)")]
ColOpt = Annotated[str, typer.Option(help="Correctness (bool/0-1) or score column")]
ExcludeOpt = Annotated[Optional[Path], typer.Option(help="JSONL of prompts to drop (contamination)")]
SplitOpt = Annotated[str, typer.Option(help="Rows to use: all, train or test (of a seeded split)")]
ShadowOpt = Annotated[Optional[Path], typer.Option(
    exists=True, dir_okay=False,
    help="Shadow store (SQLite) to add labelled rows from: each scored pair whose large answer was "
         "mirrored to the small tier (or a small adapter) adds its prompt, large ok, and small ok when "
         "the two answers agree at least --shadow-threshold. Added to the --data rows (after --split).",
)]
ShadowThresholdOpt = Annotated[float, typer.Option(
    min=0.0, max=1.0, help="Agreement from which the small answer counts as fine (with --from-shadow)",
)]
ShadowSinceOpt = Annotated[Optional[str], typer.Option(
    help="Only shadow pairs this recent: a duration (30d, 12h, 90m, 2w) or an ISO date; default all",
)]
BaselineOpt = Annotated[Optional[Path], typer.Option(
    help="A second router model directory (e.g. the one in service): both are scored on the same rows "
         "and reported side by side with the deltas (model - baseline); with --json the last line is "
         '{"model": {...}, "baseline": {...}, "delta": {...}}',
)]


def _load(data: Path, small_col: str, large_col: str, exclude: Path | None, split: str,
          seed: int, test_fraction: float) -> OutcomeData:
    outcomes = load_outcomes(data, small_col, large_col, exclude=load_exclusions(exclude))
    if split == "all":
        return outcomes
    train_idx, test_idx = split_indices(len(outcomes), seed, test_fraction)
    if split not in ("train", "test"):
        raise typer.BadParameter("split must be all, train or test")
    return outcomes.subset(train_idx if split == "train" else test_idx)


def _shadow_rows(
    read: PairReader | None, store: Path, threshold: float, since: str | None, exclude: Path | None
) -> ShadowRows:
    if read is None:
        raise RuntimeError("--from-shadow needs a PairReader as the context obj")
    try:
        start = parse_since(since, datetime.now(timezone.utc)) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shadow-since") from None
    pairs = read(store, start)
    return shadow_outcomes(pairs, threshold, frozenset(load_exclusions(exclude)))


def _describe(rows: ShadowRows, store: Path) -> str:
    share = rows.small_ok_share
    ok = "n/a" if share is None else f"{share:.1%}"
    return (f"added {len(rows.outcomes)} shadow rows from {store} (small ok when agreement >= "
            f"{rows.threshold:.2f}): small-ok share {ok}")


MMLU_SMALL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MMLU_LARGE = "gpt-4-1106-preview"


def ensure_default(out: Path, mmlu_dir: Path) -> None:
    """Train the default router from the shipped RouteLLM MMLU outcomes unless current."""
    train(
        None,  # type: ignore[arg-type]  # no --from-shadow: no context is read
        data=mmlu_dir / "responses", small_col=MMLU_SMALL, large_col=MMLU_LARGE, out=out,
        exclude=mmlu_dir / "contaminated_prompts.jsonl", version="router-mmlu-default",
        if_stale=True,
    )


@app.command()
def train(
    ctx: typer.Context,
    data: DataOpt,
    small_col: ColOpt,
    large_col: ColOpt,
    out: Annotated[Path, typer.Option(help="Output directory of the model artifact")],
    exclude: ExcludeOpt = None,
    split: SplitOpt = "all",
    seed: int = 0,
    test_fraction: float = 0.5,
    embedder: Annotated[str, typer.Option(help="static or minilm")] = "static",
    max_tokens: int = 256,
    version: Optional[str] = None,
    threads: Annotated[int, typer.Option(help="LightGBM threads")] = 2,
    if_stale: Annotated[bool, typer.Option(help="Skip if OUT holds a model this code loads")] = False,
    from_shadow: ShadowOpt = None,
    shadow_threshold: ShadowThresholdOpt = DEFAULT_THRESHOLD,
    shadow_since: ShadowSinceOpt = None,
) -> None:
    """Train, calibrate and save a router model (optionally adding rows labelled by shadow traffic)."""
    from text.embedding import build_embedder
    from router.model import EmbedderSpec, RouterModel, SchemaMismatch
    from router.train import train_router

    if if_stale:
        try:
            current = RouterModel.load(out)
        except (FileNotFoundError, SchemaMismatch) as exc:
            typer.echo(f"(re)training: {exc}", err=True)
        else:
            typer.echo(f"router model {current.manifest.version} at {out} is current")
            return

    outcomes = _load(data, small_col, large_col, exclude, split, seed, test_fraction)
    shadow = None
    if from_shadow is not None:
        shadow = _shadow_rows(ctx.find_root().obj, from_shadow, shadow_threshold, shadow_since, exclude)
        typer.echo(_describe(shadow, from_shadow))
        outcomes = concat(outcomes, shadow.outcomes)
    spec = EmbedderSpec(kind=embedder, max_tokens=max_tokens)
    started = time.monotonic()
    model = train_router(
        outcomes, build_embedder(spec.kind, spec.max_tokens), spec, version=version, threads=threads,
        progress=lambda step: typer.echo(f"[{time.monotonic() - started:6.1f}s] {step}", err=True),
    )
    if shadow is not None:
        model.manifest.metrics["shadow"] = shadow.summary()
    model.save(out)
    metrics = model.manifest.metrics
    typer.echo(
        f"saved {model.manifest.version} to {out}: {len(outcomes)} rows, schema "
        f"{model.manifest.schema_hash}, out-of-fold APGR {metrics['out_of_fold_apgr']:.3f}, "
        f"ECE {metrics['out_of_fold_ece']:.3f}, {time.monotonic() - started:.0f}s"
    )


def _scores(
    router: RouterModel, outcomes: OutcomeData, categories: list[str | None] | None,
    embedded: dict[tuple[str, int], NDArray[np.float32]],
) -> NDArray[np.float64]:
    from text.embedding import build_embedder

    spec = router.manifest.embedder
    key = (spec.kind, spec.max_tokens)
    if key not in embedded:  # a baseline on the same embedder reuses the embeddings
        embedded[key] = build_embedder(spec.kind, spec.max_tokens).embed(outcomes.prompts)
    return router.score_embedded(embedded[key], outcomes.prompts, categories)


def _report_lines(report: EvalReport) -> list[str]:
    at = report.at_threshold
    return [
        f"rows {report.rows}  small quality {report.small_quality:.3f}  large quality {report.large_quality:.3f}",
        f"AUC (small not ok) {report.auc_small_not_ok:.3f}   AUC (large helps) {report.auc_large_helps:.3f}",
        f"APGR {report.apgr:.3f}  (random {report.apgr_random:.3f}, oracle {report.apgr_oracle:.3f})",
        f"CPT(50%) {report.cpt50:.3f}   CPT(80%) {report.cpt80:.3f}   ECE {report.ece:.3f}",
        f"at threshold {at.threshold:.3f}: large share {at.large_share:.3f}, quality {at.quality:.3f}, "
        f"routing accuracy {at.routing_accuracy:.3f}, false escalation {at.false_escalation_rate:.3f}",
    ]


@app.command("eval")
def eval_cmd(
    model: Annotated[Path, typer.Option(help="Router model directory")],
    data: DataOpt,
    small_col: ColOpt,
    large_col: ColOpt,
    exclude: ExcludeOpt = None,
    split: SplitOpt = "all",
    seed: int = 0,
    test_fraction: float = 0.5,
    threshold: Annotated[float, typer.Option(help="Probability threshold to report at")] = 0.5,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="PNG of quality vs large share")] = None,
    use_categories: Annotated[bool, typer.Option(help="Give the router each row's category")] = True,
    baseline: BaselineOpt = None,
) -> None:
    """Score outcome data with a router model (and optionally a baseline) and report routing quality."""
    from router.compare import delta, side_by_side
    from router.evaluate import evaluate, plot_curves
    from router.model import RouterModel

    router = RouterModel.load(model)
    old = RouterModel.load(baseline) if baseline is not None else None  # fail before scoring
    outcomes = _load(data, small_col, large_col, exclude, split, seed, test_fraction)
    categories = outcomes.categories if use_categories else None
    embedded: dict[tuple[str, int], NDArray[np.float32]] = {}
    report, curves = evaluate(_scores(router, outcomes, categories, embedded), outcomes, threshold)
    result: dict[str, object] = {"model": router.manifest.version, **report.model_dump()}
    if old is None:
        typer.echo("\n".join(_report_lines(report)))
    else:
        old_report, old_curves = evaluate(_scores(old, outcomes, categories, embedded), outcomes, threshold)
        curves["baseline"] = old_curves["router"]
        typer.echo(f"model {router.manifest.version} ({model})   baseline {old.manifest.version} ({baseline})")
        typer.echo("\n".join(side_by_side(report, old_report)))
        result = {
            "model": {"version": router.manifest.version, **report.model_dump()},
            "baseline": {"version": old.manifest.version, **old_report.model_dump()},
            "delta": delta(report, old_report).model_dump(),
        }
    if plot:
        plot_curves(curves, plot, f"{router.manifest.version} on {data.name} ({split})")
        typer.echo(f"plot: {plot}")
    if json_out:
        typer.echo(json.dumps(result))


def main(read_pairs: PairReader) -> None:
    app(obj=read_pairs)
