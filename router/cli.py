"""`router train` and `router eval`.

`--from-shadow` reads pairs through the `PairReader` the entry point
(`deployments.commands`) hands in as the click context's `obj`: `router/` never opens
another package's store.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from engines.environment import env_secret
from router.data import OutcomeData, concat, data_digest, load_exclusions, load_outcomes, split_indices
from router.flywheel import DEFAULT_THRESHOLD, ShadowRows, parse_since, shadow_outcomes
from router.history import COMPACT_DIMS, compacts
from router.context import RouterContext
from router.collect_cli import collect
from router.grade_cli import grade
from router.versions_cli import add_commands as add_version_commands

if TYPE_CHECKING:
    from router.grading.protocol import Grader
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
PriorOpt = Annotated[Optional[Path], typer.Option(
    help="Outcomes of another pair to blend in (e.g. the shipped data/routellm/mmlu/responses), each row "
         "weighted --prior-weight (--data rows weigh 1). The kNN history, the categories and the score "
         "quantiles come from --data only.",
)]
PriorWeightOpt = Annotated[float, typer.Option(
    min=0.0, help="Sample weight of each --prior row; 0 leaves the prior out",
)]
ShareOpt = Annotated[float, typer.Option(
    min=0.0, max=1.0, help="Large share to report quality at: the top share of rows by score go large",
)]


def _outdated(current: RouterModel, knn_dims: int) -> str | None:
    """Why a loadable model is not what this code trains (None: it is): a kNN index of
    another width, heads with more trees than this code grows (each tree is decision
    time), or no distilled scorer considered, or a student with more trees than it grows."""
    from router.student import STUDENT_PARAMS
    from router.train import HEAD_PARAMS

    history = current.history
    wanted = knn_dims if compacts(len(history), history.embeddings.shape[1], knn_dims) else 0
    held = 0 if history.basis is None else len(history.basis)
    if held != wanted:
        return f"kNN index has {held or 'all'} dimensions; this code builds {wanted or 'all'}"
    trees = max(head.num_trees() for head in current.heads.values())
    if trees > HEAD_PARAMS["n_estimators"]:
        return f"heads have {trees} trees; this code grows {HEAD_PARAMS['n_estimators']}"
    if "scorer_choice" not in current.manifest.metrics:
        return "it was trained before the distilled scorer (router/student.py)"
    student_trees = current.student.booster.num_trees() if current.student is not None else 0
    if student_trees > STUDENT_PARAMS["n_estimators"]:
        return f"student has {student_trees} trees; this code grows {STUDENT_PARAMS['n_estimators']}"
    return None


def _load(data: Path, small_col: str, large_col: str, exclude: Path | None, split: str,
          seed: int, test_fraction: float) -> OutcomeData:
    outcomes = load_outcomes(data, small_col, large_col, exclude=load_exclusions(exclude))
    if split == "all":
        return outcomes
    train_idx, test_idx = split_indices(len(outcomes), seed, test_fraction)
    if split not in ("train", "test"):
        raise typer.BadParameter("split must be all, train or test")
    return outcomes.subset(train_idx if split == "train" else test_idx)


ShadowGraderOpt = Annotated[str, typer.Option(
    help="How a shadow pair's small answer is labelled: 'agreement' (the stored agreement against "
         "--shadow-threshold), 'reference' (the reference grader, semantic match against the large "
         "answer), or 'judge:<model>' (an LLM judge through the gateway at --shadow-judge-base-url)",
)]


def _shadow_grader(kind: str, judge_base_url: str) -> Grader | None:
    """The grader `--shadow-grader` names; None: the stored agreement labels the pairs."""
    from router.grading.reference import ReferenceConfig, ReferenceGrader

    if kind == "agreement":
        return None
    if kind == "reference":
        return ReferenceGrader(ReferenceConfig(match="semantic"))
    if kind.startswith("judge:") and len(kind) > len("judge:"):
        from router.grading.judge import JudgeGrader, OpenAIChat, load_rubric

        key = env_secret("OPENAI_API_KEY") or "EMPTY"
        return JudgeGrader(OpenAIChat(judge_base_url, kind.split(":", 1)[1], key), load_rubric(None))
    raise typer.BadParameter("agreement, reference or judge:<model>", param_hint="--shadow-grader")


def _shadow_rows(
    context: RouterContext | None, store: Path, threshold: float, since: str | None, exclude: Path | None,
    grader: Grader | None = None,
) -> ShadowRows:
    read = context.read_pairs if context is not None else None
    if read is None:
        raise RuntimeError("--from-shadow needs a RouterContext with a pair reader as the context obj")
    try:
        start = parse_since(since, datetime.now(timezone.utc)) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shadow-since") from None
    pairs = read(store, start)
    return shadow_outcomes(pairs, threshold, frozenset(load_exclusions(exclude)), grader)


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
    shadow_grader: ShadowGraderOpt = "agreement",
    shadow_judge_base_url: Annotated[str, typer.Option(help="Where --shadow-grader judge:<model> asks")] = (
        "http://127.0.0.1:8000/v1"),
    prior: PriorOpt = None,
    prior_small_col: Annotated[str, typer.Option(help="--prior's small column")] = MMLU_SMALL,
    prior_large_col: Annotated[str, typer.Option(help="--prior's large column")] = MMLU_LARGE,
    prior_exclude: Annotated[Optional[Path], typer.Option(help="JSONL of --prior prompts to drop")] = None,
    prior_weight: PriorWeightOpt = 0.1,
    knn_dims: Annotated[int, typer.Option(
        help="Dimensions of the kNN history's compact index (0: the full embeddings)")] = COMPACT_DIMS,
) -> None:
    """Train, calibrate and save a router model (optionally adding rows labelled by shadow traffic,
    and a prior: another pair's outcomes at a lower weight)."""
    from text.embedding import build_embedder
    from router.model import EmbedderSpec, RouterModel, SchemaMismatch
    from router.train import train_router

    if if_stale:
        try:
            current = RouterModel.load(out)
        except (FileNotFoundError, SchemaMismatch) as exc:
            typer.echo(f"(re)training: {exc}", err=True)
        else:
            reason = _outdated(current, knn_dims)
            if reason is None:
                typer.echo(f"router model {current.manifest.version} at {out} is current")
                return
            typer.echo(f"(re)training: {out}'s {reason}", err=True)

    outcomes = _load(data, small_col, large_col, exclude, split, seed, test_fraction)
    if outcomes.ungraded:
        typer.echo(f"left out {outcomes.ungraded} rows of {data} without both grades")
    shadow = None
    if from_shadow is not None:
        grader = _shadow_grader(shadow_grader, shadow_judge_base_url)
        shadow = _shadow_rows(ctx.find_root().obj, from_shadow, shadow_threshold, shadow_since, exclude, grader)
        typer.echo(_describe(shadow, from_shadow))
        outcomes = concat(outcomes, shadow.outcomes)
    prior_rows = None
    if prior is not None and prior_weight > 0:
        prior_rows = load_outcomes(prior, prior_small_col, prior_large_col, exclude=load_exclusions(prior_exclude))
        typer.echo(f"prior: {len(prior_rows)} rows of {prior} at weight {prior_weight:g}")
    spec = EmbedderSpec(kind=embedder, max_tokens=max_tokens)
    started = time.monotonic()
    model = train_router(
        outcomes, build_embedder(spec.kind, spec.max_tokens), spec, version=version, threads=threads,
        progress=lambda step: typer.echo(f"[{time.monotonic() - started:6.1f}s] {step}", err=True),
        prior=prior_rows, prior_weight=prior_weight, knn_dims=knn_dims,
    )
    used_prior = prior if prior_rows is not None else None
    model.manifest.metrics.update(_provenance(data, used_prior, outcomes.ungraded, split, seed, test_fraction))
    model.manifest.tiers = _tiers(small_col, large_col)
    if shadow is not None:
        model.manifest.metrics["shadow"] = shadow.summary()
    model.save(out)
    typer.echo(
        f"saved {model.manifest.version} to {out}: {len(outcomes)} rows"
        + (f" + {len(prior_rows)} prior" if prior_rows is not None else "")
        + f", schema {model.manifest.schema_hash}, {_fit_summary(model.manifest.metrics)}, "
        f"{time.monotonic() - started:.0f}s"
    )


def _provenance(data: Path, prior: Path | None, ungraded: int, split: str, seed: int,
                test_fraction: float) -> dict[str, object]:
    """What the manifest records of the rows a model was trained on: enough to tell which
    held-out split is honest for it, and whether its data changed since."""
    return {
        "data_digest": data_digest(data),  # sha256
        "prior_digest": data_digest(prior) if prior is not None else None,
        "ungraded_rows": ungraded,
        "split": {"rows": split, "seed": seed, "test_fraction": test_fraction},
    }


def _tiers(small_col: str, large_col: str) -> dict[str, str] | None:
    """The served targets whose outcomes these are, when the columns are `router grade`'s
    `score:<target>`; None for another pair's columns (e.g. RouteLLM's model names)."""
    cols = {"small": small_col, "large": large_col}
    if not all(col.startswith("score:") for col in cols.values()):
        return None
    return {role: col.removeprefix("score:") for role, col in cols.items()}


def _fit_summary(metrics: dict[str, object]) -> str:
    apgr = metrics["out_of_fold_apgr"]
    shown = f"{apgr:.3f}" if isinstance(apgr, float) else "n/a (large not better on average)"
    choice = metrics.get("scorer_choice")
    serves = (f"; serves the {choice['served']} ({choice['own_rows']} own rows, student follows the "
              f"ensemble at r={choice['fidelity']:.2f})") if isinstance(choice, dict) else ""
    return (f"ensemble's out-of-fold APGR {shown}, AUC (large better) {metrics['out_of_fold_auc_large_better']:.3f}, "
            f"ECE {metrics['out_of_fold_ece']:.3f}{serves}")


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


def _not_held_out(model: RouterModel, digest: str, split: str, seed: int, test_fraction: float) -> str | None:
    """A warning when the rows evaluated may include rows the model was trained on."""
    metrics = model.manifest.metrics
    trained = metrics.get("split")
    if metrics.get("data_digest") != digest or not isinstance(trained, dict):
        return None
    if trained.get("rows") == "train" and split == "test" and (trained.get("seed"), trained.get("test_fraction")) == (
        seed, test_fraction
    ):
        return None
    return (f"warning: {model.manifest.version} was trained on this data ({trained}); rows evaluated here "
            f"(--split {split} --seed {seed} --test-fraction {test_fraction}) are not all held out")


def _write_json(path: Path, document: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def _report_lines(report: EvalReport) -> list[str]:
    from router.compare import category_lines, data_lines

    at = report.at_threshold

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    return [
        *data_lines(report),
        f"AUC (small not ok) {report.auc_small_not_ok:.3f}   AUC (large helps) {report.auc_large_helps:.3f}   "
        f"AUC (large better) {report.auc_large_better:.3f}",
        f"quality at {report.share:.0%} large {report.quality_at_share:.3f}",
        f"APGR {show(report.apgr)}   CPT(50%) {show(report.cpt50)}   CPT(80%) {show(report.cpt80)}   "
        f"ECE {report.ece:.3f}",
        f"at threshold {at.threshold:.3f}: large share {at.large_share:.3f}, quality {at.quality:.3f}, "
        f"routing accuracy {at.routing_accuracy:.3f}, false escalation {at.false_escalation_rate:.3f}",
        *category_lines({"router": report}),
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
    share: ShareOpt = 0.3,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last")] = False,
    result_file: Annotated[Optional[Path], typer.Option(
        "--json-out", help="Write a result file: each headline figure keyed by --name (and --baseline-name), "
                           "the oracle's beside them, per-category figures, and the full reports",
    )] = None,
    name: Annotated[str, typer.Option(help="The model's key in the --json-out file")] = "model",
    baseline_name: Annotated[str, typer.Option(help="The baseline's key in the --json-out file")] = "baseline",
    plot: Annotated[Optional[Path], typer.Option(help="PNG of quality vs large share")] = None,
    use_categories: Annotated[bool, typer.Option(help="Give the router each row's category")] = True,
    baseline: BaselineOpt = None,
) -> None:
    """Score outcome data with a router model (and optionally a baseline) and report routing quality."""
    from router.compare import delta, side_by_side, summary
    from router.evaluate import evaluate, plot_curves
    from router.model import RouterModel

    if baseline is not None and name == baseline_name:
        raise typer.BadParameter("--name and --baseline-name must differ", param_hint="--baseline-name")
    router = RouterModel.load(model)
    old = RouterModel.load(baseline) if baseline is not None else None  # fail before scoring
    outcomes = _load(data, small_col, large_col, exclude, split, seed, test_fraction)
    digest = data_digest(data)
    for loaded in [m for m in (router, old) if m is not None]:
        warning = _not_held_out(loaded, digest, split, seed, test_fraction)
        if warning:
            typer.echo(warning)
    categories = outcomes.categories if use_categories else None
    embedded: dict[tuple[str, int], NDArray[np.float32]] = {}
    report, curves = evaluate(_scores(router, outcomes, categories, embedded), outcomes, threshold, share)
    result: dict[str, object] = {"model": router.manifest.version, **report.model_dump()}
    reports, versions = {name: report}, {name: router.manifest.version}
    if old is None:
        typer.echo("\n".join(_report_lines(report)))
    else:
        old_report, old_curves = evaluate(_scores(old, outcomes, categories, embedded), outcomes, threshold, share)
        curves["baseline"] = old_curves["router"]
        typer.echo(f"model {router.manifest.version} ({model})   baseline {old.manifest.version} ({baseline})")
        typer.echo("\n".join(side_by_side(report, old_report)))
        result = {
            "model": {"version": router.manifest.version, **report.model_dump()},
            "baseline": {"version": old.manifest.version, **old_report.model_dump()},
            "delta": delta(report, old_report).model_dump(),
        }
        reports[baseline_name], versions[baseline_name] = old_report, old.manifest.version
    if plot:
        plot_curves(curves, plot, f"{router.manifest.version} on {data.name} ({split})")
        typer.echo(f"plot: {plot}")
    if result_file:
        about = {"data": str(data), "data_digest": digest, "split": split, "seed": seed,
                 "test_fraction": test_fraction}
        _write_json(result_file, summary(reports, versions, about))
        typer.echo(f"result: {result_file}")
    if json_out:
        typer.echo(json.dumps(result))


add_version_commands(app)
app.command("collect")(collect)
app.command("grade")(grade)


def main(context: RouterContext) -> None:
    app(obj=context)
