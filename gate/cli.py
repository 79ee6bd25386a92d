"""`gateway gate train` and `gateway gate eval`: the answerability classifier.

The commands read no settings: `build_app` is handed a function that returns the gate's
settings section (the `gateway` command line passes the settings tree's), called once
per invocation, and how to build an embedder (tests pass a small fake).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional

import typer

from gate.config import GateSettings
from gate.data import SHIPPED_DATA, GateData, Split, data_digest, load_data
from gate.model import EmbedderSpec, GateModel
from gate.train import DEFAULT_C

if TYPE_CHECKING:
    from gate.answerability import AnswerabilityGate
    from gate.evaluate import EvalReport, Latency
    from text.embedding import Embedder

EmbedderFactory = Callable[["EmbedderSpec"], "Embedder"]
RESULT_FILE = Path(__file__).resolve().parents[1] / "load_tests" / "results" / "gate_eval.json"
TARGETS = {"precision": 0.90, "recall": 0.70, "p99_ms": 5.0}


def default_embedder(spec: EmbedderSpec) -> Embedder:
    from text.embedding import build_embedder

    return build_embedder(spec.kind, spec.max_tokens)


@dataclass(frozen=True)
class GateContext:
    settings: GateSettings
    embedder: EmbedderFactory = default_embedder


def _context(ctx: typer.Context) -> GateContext:
    obj = ctx.obj
    if not isinstance(obj, GateContext):
        raise RuntimeError("the gate commands need a GateContext as the context obj (gate.cli.build_app)")
    return obj


def build_app(settings: Callable[[], GateSettings], embedder: EmbedderFactory = default_embedder) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, add_completion=False, help="Answerability gate: train and evaluate.")

    @app.callback()
    def _load(ctx: typer.Context) -> None:
        ctx.obj = GateContext(settings(), embedder)

    app.command("train")(train)
    app.command("eval")(eval_cmd)
    return app


DataOpt = Annotated[Path, typer.Option(help="Labelled messages (text,label[,source,group,split])")]
SplitOpt = Annotated[str, typer.Option(help="Rows of --data to use: all, train or test (the `split` column)")]


def ensure_default(settings: GateSettings, embedder: EmbedderFactory = default_embedder) -> None:
    """Train the default gate from the shipped data unless the model there is current
    (loads with this code and was trained on this data file)."""
    from gate.model import SchemaMismatch, read_manifest

    try:
        manifest = read_manifest(settings.model_dir)
    except (FileNotFoundError, SchemaMismatch) as exc:
        typer.echo(f"gate: (re)training: {exc}", err=True)
    else:
        if manifest.data_digest == data_digest(SHIPPED_DATA):
            typer.echo(f"gate model {manifest.version} at {settings.model_dir} is current")
            return
        typer.echo("gate: (re)training: the shipped data changed", err=True)
    _train(GateContext(settings, embedder), SHIPPED_DATA, settings.model_dir, split="train",
           spec=EmbedderSpec(), version="gate-default", c=DEFAULT_C)


def train(
    ctx: typer.Context,
    data: DataOpt = SHIPPED_DATA,
    out: Annotated[Optional[Path], typer.Option(help="Model directory (default: settings' gate.model_dir)")] = None,
    split: SplitOpt = "train",
    embedder: Annotated[str, typer.Option(help="static (MiniLM's token table) or minilm (contextual)")] = "static",
    max_tokens: Annotated[int, typer.Option(help="Tokens embedded per message")] = 256,
    version: Optional[str] = None,
    c: Annotated[float, typer.Option("--c", help="Inverse regularisation of the logistic regression")] = DEFAULT_C,
) -> None:
    """Train and calibrate the gate on --data (by default its train split: `gate eval`
    then scores held-out groups) and save it with a manifest."""
    if embedder not in ("static", "minilm"):
        raise typer.BadParameter("static or minilm", param_hint="--embedder")
    context = _context(ctx)
    spec = EmbedderSpec(kind=embedder, max_tokens=max_tokens)  # type: ignore[arg-type]  # checked above
    _train(context, data, out or context.settings.model_dir, split=_split(split), spec=spec, version=version, c=c)


def _train(context: GateContext, data: Path, out: Path, *, split: Split, spec: EmbedderSpec,
           version: str | None, c: float) -> None:
    from gate.train import train_gate

    rows = load_data(data, split)
    started = time.monotonic()
    embedder = context.embedder(spec)
    model = train_gate(
        rows, embedder, spec, data_digest=data_digest(data), split=split, version=version, c=c,
        progress=lambda step: typer.echo(f"[{time.monotonic() - started:5.1f}s] {step}", err=True),
    )
    model.manifest.metrics["train_seconds"] = round(time.monotonic() - started, 1)
    if split == "train":  # the manifest says how the model does on the rows it never saw
        model.manifest.metrics["held_out"] = _held_out(model, embedder, load_data(data, "test"))
    model.save(out)
    typer.echo(f"saved gate {model.manifest.version} to {out}: {len(rows)} rows ({split}), "
               f"{model.manifest.metrics['label_counts']}, {time.monotonic() - started:.0f}s")


def _held_out(model: GateModel, embedder: Embedder, rows: GateData) -> dict[str, object]:
    from gate.evaluate import evaluate

    if not len(rows):
        return {"rows": 0}
    report = evaluate(model.predict_proba(embedder.embed(rows.texts), rows.texts), rows, 0.5, table=())
    return {"rows": report.rows, "threshold": 0.5, "precision": report.precision, "recall": report.recall}


def _split(split: str) -> Split:
    if split not in ("all", "train", "test"):
        raise typer.BadParameter("all, train or test", param_hint="--split")
    return split  # type: ignore[return-value]  # checked above


def eval_cmd(
    ctx: typer.Context,
    model: Annotated[Optional[Path], typer.Option(help="Model directory (default: settings' gate.model_dir)")] = None,
    data: DataOpt = SHIPPED_DATA,
    split: SplitOpt = "test",
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="P(not answerable) from which a message is gated")] = 0.5,
    ood: Annotated[Optional[Path], typer.Option(
        help="Answerable messages from elsewhere to count false gates on: a CSV with a `text` or `prompt` "
             "column, or a folder of them",
    )] = None,
    latency_calls: Annotated[int, typer.Option(min=0, help="Messages timed one at a time (0: skip)")] = 2000,
    json_out: Annotated[bool, typer.Option("--json", help="Write the figures to --json-path")] = False,
    json_path: Annotated[Path, typer.Option(help="Where --json writes")] = RESULT_FILE,
) -> None:
    """Precision/recall per class and for 'not answerable' on held-out messages, a threshold
    table, and the latency of one decision (sequential single-message calls after warm-up)."""
    from gate.answerability import AnswerabilityGate
    from gate.evaluate import evaluate, latency
    from gate.verdict import GateThresholds

    context = _context(ctx)
    loaded = GateModel.load(model or context.settings.model_dir)
    gate = AnswerabilityGate(loaded, context.embedder(loaded.manifest.embedder))
    rows = load_data(data, _split(split))
    _warn_if_trained_on(loaded, data, split)
    report = evaluate(loaded.predict_proba(gate.embed_many(rows.texts), rows.texts), rows, threshold)
    typer.echo("\n".join(_report_lines(report, loaded.manifest.version, data, split)))
    result: dict[str, object] = {"model": loaded.manifest.version, "data": _shown(data), "split": split,
                                 "embedder": loaded.manifest.embedder.model_dump(), **report.model_dump()}
    if ood is not None:
        result["ood_answerable"] = figures = _ood(gate, ood, threshold)
        typer.echo(f"out of distribution ({ood}, all answerable): {figures['rows']} rows, "
                   f"{figures['gated_share']:.1%} gated")
    if latency_calls:
        texts = [rows.texts[i % len(rows)] for i in range(latency_calls)]
        timed = latency(gate, texts, GateThresholds(default=threshold))
        typer.echo("\n".join(_latency_lines(timed, loaded.manifest.embedder.kind)))
        result.update(_latency_fields(timed, loaded.manifest.embedder.kind))
    if json_out:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({**result, "targets": TARGETS}, indent=2) + "\n")
        typer.echo(f"result: {json_path}")


def _warn_if_trained_on(model: GateModel, data: Path, split: str) -> None:
    trained = model.manifest.split
    if model.manifest.data_digest == data_digest(data) and (split != "test" or trained != "train"):
        typer.echo(f"warning: {model.manifest.version} was trained on {trained} rows of this data; "
                   f"--split {split} is not held out")


def _texts(path: Path) -> list[str]:
    import csv

    texts = []
    for file in sorted(path.glob("*.csv")) if path.is_dir() else [path]:
        with file.open(newline="") as f:
            texts += [row.get("text") or row.get("prompt") or "" for row in csv.DictReader(f)]
    return [t for t in texts if t]


def _ood(gate: AnswerabilityGate, path: Path, threshold: float) -> dict[str, Any]:
    from gate.evaluate import predicted_labels

    texts = _texts(path)
    predicted = predicted_labels(gate.model.predict_proba(gate.embed_many(texts), texts), threshold)
    gated = [t for t, p in zip(texts, predicted) if p != 0]
    return {"data": _shown(path), "rows": len(texts), "gated_share": len(gated) / max(len(texts), 1),
            "gated_examples": gated[:10]}


def _shown(path: Path) -> str:
    """A path inside the repository relative to it: the result file is committed."""
    root = RESULT_FILE.parents[2]
    resolved = path.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _report_lines(report: EvalReport, version: str, data: Path, split: str) -> list[str]:
    lines = [
        f"gate {version} on {data.name} ({split}: {report.rows} messages), threshold {report.threshold:.2f}",
        f"not answerable (chitchat + no_context): precision {_show(report.precision)}  recall {_show(report.recall)}",
        f"{'class':12s} {'precision':>9s} {'recall':>7s} {'support':>7s}",
        *(f"{label:12s} {_show(f.precision):>9s} {_show(f.recall):>7s} {f.support:7d}"
          for label, f in report.per_class.items()),
        f"{'threshold':>9s} {'precision':>9s} {'recall':>7s} {'answerable gated':>16s}",
        *(f"{row.threshold:9.2f} {_show(row.precision):>9s} {_show(row.recall):>7s} {_show(row.answerable_gated):>16s}"
          for row in report.thresholds),
        "gated share by source:",
        *(f"  {source:17s} {f.label:20s} {f.rows:5d} rows  {f.gated_share:6.1%}" for source, f in report.by_source.items()),
    ]
    return lines


def _latency_lines(timed: dict[str, Latency], kind: str) -> list[str]:
    return [f"latency {name} ({kind} embedder): p50 {t.p50_ms:.2f} ms  p99 {t.p99_ms:.2f} ms  ({t.calls} calls)"
            for name, t in timed.items()]


def _latency_fields(timed: dict[str, Latency], kind: str) -> dict[str, object]:
    import os

    whole = timed["with_embedding"]
    return {
        # A p99 of ~0.1 ms work is the scheduler's on a shared machine: say how busy it was.
        "load_average_1m": os.getloadavg()[0], "cpu_count": os.cpu_count(),
        "p50_ms": whole.p50_ms,
        "p99_ms": whole.p99_ms,
        "p99_ms_measures": f"one whole decision: {kind} MiniLM embedding + features + calibrated classifier, "
                          "sequential single-message calls after warm-up",
        "latency": {name: t.model_dump() for name, t in timed.items()},
    }
