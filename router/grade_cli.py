"""`router grade`: score a `router collect` answers file into the outcomes `router train` reads.

    router grade --answers answers.csv --out outcomes.csv                     # against the references
    router grade --answers answers.csv --grader judge --judge-model large --out outcomes.csv
    router grade --answers answers.csv --grader judge --pairwise small,large --judge-model large \\
        --out outcomes.csv                                                    # both orders
    router grade --labels reviewed.csv --grader human --out outcomes.csv     # a reviewed shadow sample
    router grade --answers answers.csv --labels reviewed.csv --also-grader human --out outcomes.csv

The outcomes file has id, prompt, category and one `score:<target>` column in [0, 1] per
target, empty where not graded (`--drop-ungraded` writes only fully scored rows); train with
`--small-col score:small --large-col score:large`, which leaves out rows without both. The
report gives pass rates per target and category and, with `--also-grader`, the graders'
agreement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from pydantic import BaseModel

from engines.environment import env_secret
from router.grading.answers import AnswersError, AnswerTable, read_answers
from router.grading.batch import Columns, grade_pairs_table, grade_table
from router.grading.human import HumanGrader, LabelsError, LabelSheet, read_labels, sheet_answers
from router.grading.judge import JudgeGrader, OpenAIChat, PairwiseJudge, load_rubric
from router.grading.outcomes import outcome_columns, outcome_records, write_outcomes
from router.grading.protocol import Grader
from router.grading.reference import MatchKind, ReferenceConfig, ReferenceGrader
from router.grading.report import GraderReport, GradingReport, agreements, grader_report, render
from router.grading.similarity import build_similarity

GraderKind = Literal["reference", "judge", "human"]
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"  # the gateway: any of its targets can judge


class GraderOptions(BaseModel):
    """What the graders are built from (the command's options, gathered once)."""

    match: MatchKind
    semantic_threshold: float
    semantic_model: str
    contains: bool
    judge_model: str | None
    judge_base_url: str
    judge_api_key_env: str
    rubric: Path | None
    judge_scale: tuple[int, int]
    judge_concurrency: int
    judge_max_tokens: int


def _scale(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split("-"))
    except ValueError:
        raise typer.BadParameter("expected LOW-HIGH, e.g. 1-5", param_hint="--judge-scale") from None
    if low >= high:
        raise typer.BadParameter("LOW must be below HIGH", param_hint="--judge-scale")
    return low, high


def _chat(options: GraderOptions) -> OpenAIChat:
    if not options.judge_model:
        raise typer.BadParameter("the judge needs --judge-model (a gateway target or a model name)")
    # Local servers (the gateway without auth, vLLM) take any key; the client insists on one.
    key = env_secret(options.judge_api_key_env) or "EMPTY"
    return OpenAIChat(options.judge_base_url, options.judge_model, key, options.judge_max_tokens)


def _build(kind: GraderKind, options: GraderOptions, sheet: LabelSheet | None) -> Grader:
    if kind == "human":
        if sheet is None:
            raise typer.BadParameter("the human grader needs --labels (a reviewed shadow sample)")
        return HumanGrader(sheet)
    if kind == "judge":
        rubric = load_rubric(options.rubric)
        return JudgeGrader(_chat(options), rubric, options.judge_scale, options.judge_concurrency)
    config = ReferenceConfig(match=options.match, threshold=options.semantic_threshold,
                             contains=options.contains)
    try:
        similarity = build_similarity(options.semantic_model)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--semantic-model") from None
    return ReferenceGrader(config, similarity)


def _pair_targets(pairwise: str, table: AnswerTable) -> tuple[str, str]:
    targets = [t.strip() for t in pairwise.split(",")]
    if len(targets) != 2 or targets[0] == targets[1]:
        raise typer.BadParameter("expected two different targets, e.g. small,large", param_hint="--pairwise")
    unknown = [t for t in targets if t not in table.targets]
    if unknown:
        raise typer.BadParameter(f"no answers of {unknown} (have {table.targets})", param_hint="--pairwise")
    return targets[0], targets[1]


def _unparseable_note(grader: object) -> None:
    samples = getattr(grader, "unparseable_samples", [])
    for sample in samples:
        typer.echo(f"unparseable judgement (left out): ...{sample[-200:]!r}", err=True)


def _run(kind: GraderKind, options: GraderOptions, sheet: LabelSheet | None, table: AnswerTable,
         pairwise: str | None) -> tuple[Columns, GraderReport]:
    if pairwise:
        pair = _pair_targets(pairwise, table)
        judge = PairwiseJudge(_chat(options), load_rubric(options.rubric, pairwise=True),
                              options.judge_concurrency)
        columns, missing = grade_pairs_table(judge, table, pair)
        name, counts = f"judge (pairwise {pair[0]} vs {pair[1]})", dict(judge.counts())
        _unparseable_note(judge)
    else:
        grader = _build(kind, options, sheet)
        columns, missing = grade_table(grader, table)
        name, counts = kind, dict(grader.counts())
        _unparseable_note(grader)
    if missing:
        counts["no_answer"] = missing
    return columns, grader_report(name, columns, [r.category for r in table.rows], counts)


def _inputs(answers: Path | None, labels: Path | None) -> tuple[AnswerTable, LabelSheet | None]:
    try:
        sheet = read_labels(labels) if labels is not None else None
        if answers is not None:
            return read_answers(answers), sheet
    except (AnswersError, LabelsError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if sheet is None:
        raise typer.BadParameter("give --answers (from router collect) or --labels (a reviewed sample)")
    return sheet_answers(sheet), sheet


AnswersOpt = Annotated[Optional[Path], typer.Option(
    exists=True, dir_okay=False, help="Answers file from `router collect` (CSV or JSONL); "
    "without it, the answers on the --labels sheet are graded")]
OutOpt = Annotated[Path, typer.Option(help="Outcomes file to write (.csv or .jsonl)")]
GraderOpt = Annotated[GraderKind, typer.Option(help="How to grade")]
AlsoOpt = Annotated[Optional[GraderKind], typer.Option(
    help="A second grader on the same answers: the report gives the two's agreement (Cohen's kappa); "
         "the outcomes file holds the first grader's scores")]
MatchOpt = Annotated[MatchKind, typer.Option(
    help="Reference grader: choice letter, final number, exact (normalised), semantic, or auto per row")]
ThresholdOpt = Annotated[float, typer.Option(
    min=0.0, max=1.0, help="Similarity that counts as a semantic match")]
SemanticModelOpt = Annotated[str, typer.Option(help="minilm, or a cross-encoder directory")]
ContainsOpt = Annotated[bool, typer.Option(help="Exact match also when the reference is inside the answer")]
JudgeModelOpt = Annotated[Optional[str], typer.Option(help="Judge: the model (a gateway target name)")]
BaseUrlOpt = Annotated[str, typer.Option(help="Judge: OpenAI-compatible endpoint")]
KeyEnvOpt = Annotated[str, typer.Option(help="Judge: environment variable holding the API key")]
RubricOpt = Annotated[Optional[Path], typer.Option(
    exists=True, dir_okay=False, help="Judge: rubric template with {prompt}, {answer}, {reference} "
    "({answer_a}, {answer_b} when pairwise); default: the shipped one")]
ScaleOpt = Annotated[str, typer.Option(help="Judge: the rubric's score scale, LOW-HIGH")]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, help="Judge: calls in flight")]
PairwiseOpt = Annotated[Optional[str], typer.Option(
    help="Judge TARGET_A,TARGET_B against each other, in both orders (with --grader judge)")]
LabelsOpt = Annotated[Optional[Path], typer.Option(
    exists=True, dir_okay=False, help="Reviewed `gateway shadow sample` CSV with a label column")]
DropOpt = Annotated[bool, typer.Option(help="Write only the rows scored for every target")]
ReportOpt = Annotated[Optional[Path], typer.Option(help="Write the grading report as JSON")]


def grade(
    out: OutOpt,
    answers: AnswersOpt = None,
    grader: GraderOpt = "reference",
    also_grader: AlsoOpt = None,
    match: MatchOpt = "auto",
    semantic_threshold: ThresholdOpt = 0.6,
    semantic_model: SemanticModelOpt = "minilm",
    contains: ContainsOpt = True,
    judge_model: JudgeModelOpt = None,
    judge_base_url: BaseUrlOpt = DEFAULT_BASE_URL,
    judge_api_key_env: KeyEnvOpt = "OPENAI_API_KEY",
    rubric: RubricOpt = None,
    judge_scale: ScaleOpt = "1-5",
    judge_concurrency: ConcurrencyOpt = 8,
    judge_max_tokens: int = 512,
    pairwise: PairwiseOpt = None,
    labels: LabelsOpt = None,
    drop_ungraded: DropOpt = False,
    report: ReportOpt = None,
) -> None:
    """Grade answers into per-target scores in [0, 1]: the outcomes file `router train` reads."""
    if pairwise and grader != "judge":
        raise typer.BadParameter("--pairwise needs --grader judge")
    if out.suffix not in (".csv", ".jsonl"):  # before any judge call is spent
        raise typer.BadParameter("write outcomes as .csv or .jsonl", param_hint="--out")
    options = GraderOptions(
        match=match, semantic_threshold=semantic_threshold, semantic_model=semantic_model,
        contains=contains, judge_model=judge_model, judge_base_url=judge_base_url,
        judge_api_key_env=judge_api_key_env, rubric=rubric, judge_scale=_scale(judge_scale),
        judge_concurrency=judge_concurrency, judge_max_tokens=judge_max_tokens,
    )
    table, sheet = _inputs(answers, labels)
    columns, first = _run(grader, options, sheet, table, pairwise)
    result = GradingReport(graders=[first], agreement=[])
    if also_grader is not None:
        also_columns, second = _run(also_grader, options, sheet, table, None)
        result = GradingReport(graders=[first, second], agreement=agreements(columns, also_columns),
                               agreement_between=[first.grader, second.grader])
    records = outcome_records(table.rows, columns, drop_ungraded)
    write_outcomes(out, outcome_columns(list(columns)), records)
    if report is not None:
        report.write_text(result.model_dump_json(indent=2))
    typer.echo(render(result))
    typer.echo(f"wrote {len(records)} of {len(table.rows)} rows to {out}")
