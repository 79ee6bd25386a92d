"""`router train` and `router eval`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from router.data import OutcomeData, load_exclusions, load_outcomes, split_indices

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

DataOpt = Annotated[Path, typer.Option(help="CSV, JSONL, or a directory of CSVs (RouteLLM layout)")]
ColOpt = Annotated[str, typer.Option(help="Correctness (bool/0-1) or score column")]
ExcludeOpt = Annotated[Optional[Path], typer.Option(help="JSONL of prompts to drop (contamination)")]
SplitOpt = Annotated[str, typer.Option(help="Rows to use: all, train or test (of a seeded split)")]


def _load(data: Path, small_col: str, large_col: str, exclude: Path | None, split: str,
          seed: int, test_fraction: float) -> OutcomeData:
    outcomes = load_outcomes(data, small_col, large_col, exclude=load_exclusions(exclude))
    if split == "all":
        return outcomes
    train_idx, test_idx = split_indices(len(outcomes), seed, test_fraction)
    if split not in ("train", "test"):
        raise typer.BadParameter("split must be all, train or test")
    return outcomes.subset(train_idx if split == "train" else test_idx)


MMLU_SMALL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MMLU_LARGE = "gpt-4-1106-preview"


def ensure_default(out: Path, mmlu_dir: Path) -> None:
    """Train the default router from the shipped RouteLLM MMLU outcomes unless current."""
    train(
        data=mmlu_dir / "responses", small_col=MMLU_SMALL, large_col=MMLU_LARGE, out=out,
        exclude=mmlu_dir / "contaminated_prompts.jsonl", version="router-mmlu-default",
        if_stale=True,
    )


@app.command()
def train(
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
) -> None:
    """Train, calibrate and save a router model."""
    from router.embedding import build_embedder
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
    spec = EmbedderSpec(kind=embedder, max_tokens=max_tokens)
    started = time.monotonic()
    model = train_router(
        outcomes, build_embedder(spec.kind, spec.max_tokens), spec, version=version, threads=threads,
        progress=lambda step: typer.echo(f"[{time.monotonic() - started:6.1f}s] {step}", err=True),
    )
    model.save(out)
    metrics = model.manifest.metrics
    typer.echo(
        f"saved {model.manifest.version} to {out}: {len(outcomes)} rows, schema "
        f"{model.manifest.schema_hash}, out-of-fold APGR {metrics['out_of_fold_apgr']:.3f}, "
        f"ECE {metrics['out_of_fold_ece']:.3f}, {time.monotonic() - started:.0f}s"
    )


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
) -> None:
    """Score outcome data with a router model and report routing quality."""
    from router.embedding import build_embedder
    from router.evaluate import evaluate, plot_curves
    from router.model import RouterModel

    router = RouterModel.load(model)
    outcomes = _load(data, small_col, large_col, exclude, split, seed, test_fraction)
    spec = router.manifest.embedder
    emb = build_embedder(spec.kind, spec.max_tokens).embed(outcomes.prompts)
    scores = router.score_embedded(emb, outcomes.prompts, outcomes.categories if use_categories else None)
    report, curves = evaluate(scores, outcomes, threshold)
    at = report.at_threshold
    lines = [
        f"rows {report.rows}  small quality {report.small_quality:.3f}  large quality {report.large_quality:.3f}",
        f"AUC (small not ok) {report.auc_small_not_ok:.3f}   AUC (large helps) {report.auc_large_helps:.3f}",
        f"APGR {report.apgr:.3f}  (random {report.apgr_random:.3f}, oracle {report.apgr_oracle:.3f})",
        f"CPT(50%) {report.cpt50:.3f}   CPT(80%) {report.cpt80:.3f}   ECE {report.ece:.3f}",
        f"at threshold {at.threshold:.3f}: large share {at.large_share:.3f}, quality {at.quality:.3f}, "
        f"routing accuracy {at.routing_accuracy:.3f}, false escalation {at.false_escalation_rate:.3f}",
    ]
    typer.echo("\n".join(lines))
    if plot:
        plot_curves(curves, plot, f"{router.manifest.version} on {data.name} ({split})")
        typer.echo(f"plot: {plot}")
    if json_out:
        typer.echo(json.dumps({"model": router.manifest.version, **report.model_dump()}))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
