"""`adapters` command line: train, inspect and operate the small tier's LoRA adapters.

Operations edit the registry directly; running replicas converge on it within their
poll interval. Through the gateway, the admin API does the same and also waits until
every small-tier replica has loaded the change (and reports how long that took).

The commands read no settings: the entry point (`deployments.commands`) hands them an
`AdapterWorkspace` as the click context's `obj`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from adapters.errors import AdapterError
from adapters.workspace import AdapterWorkspace

SHIPPED = Path(__file__).resolve().parents[1] / "data"
BITEXT = SHIPPED / "bitext" / "bitext_sample.csv"
CHANGES = SHIPPED / "adapters" / "changes.yaml"

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

RegistryOpt = Annotated[Optional[Path], typer.Option("--registry", help="Registry directory (default: settings)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def _workspace(ctx: typer.Context, registry: Path | None) -> AdapterWorkspace:
    workspace = ctx.find_root().obj
    if not isinstance(workspace, AdapterWorkspace):
        raise RuntimeError("the adapters commands need an AdapterWorkspace as the context obj")
    return workspace.with_registry(registry)


def _fail(exc: AdapterError) -> None:
    typer.echo(f"error: {exc.message}", err=True)
    raise typer.Exit(2)


@app.command()
def train(
    ctx: typer.Context,
    domain: Annotated[str, typer.Option(help="Domain (a category of the data), e.g. refund")],
    data: Annotated[Path, typer.Option(help="CSV/JSONL with instruction, response, category")] = BITEXT,
    changes: Annotated[Optional[Path], typer.Option(help="YAML of changed-behaviour examples per domain")] = CHANGES,
    rank: Annotated[int, typer.Option(min=1, max=64)] = 8,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    max_examples: Annotated[int, typer.Option(help="Positive examples trained on")] = 64,
    max_tokens: Annotated[int, typer.Option(help="Truncate examples to this many tokens")] = 128,
    learning_rate: Annotated[float, typer.Option()] = 2e-3,
    batch_size: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Register even if the evaluation fails")] = False,
    activate: Annotated[bool, typer.Option(help="Make it the domain's active version")] = False,
    shuffle_responses: Annotated[bool, typer.Option(
        "--shuffle-responses",
        help="Train on the domain's answers shuffled among its questions: a deliberately bad "
             "adapter for canary/rollback drills (add --force to register it whatever its evaluation)",
    )] = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a LoRA adapter for one domain, evaluate it, register it if it passes."""
    from adapters import drills
    from adapters.examples import DataError, SplitSpec, domain_examples, read_changes, read_support
    from adapters.training import TrainSpec

    workspace = _workspace(ctx, registry)
    domain = domain.lower()
    try:
        examples = domain_examples(
            read_support(data), domain, read_changes(changes, domain),
            SplitSpec(max_positive=max_examples, seed=seed),
        )
        if shuffle_responses:
            examples = drills.shuffle_responses(examples, seed)
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    spec = TrainSpec(
        rank=rank, epochs=epochs, max_tokens=max_tokens, learning_rate=learning_rate,
        batch_size=batch_size, seed=seed,
    )
    report = _build(workspace, examples, spec, force, activate)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_report(report)
    if not report.registered:
        raise typer.Exit(1)


def _build(workspace: AdapterWorkspace, examples, spec, force: bool, activate: bool):  # type: ignore[no-untyped-def]
    from adapters.building import build_adapter
    from adapters.manifest import SELECTOR_EMBEDDERS, SELECTOR_MAX_TOKENS
    from text.embedding import build_embedder

    registry = workspace.open_registry()
    embedders = {kind: build_embedder(kind, SELECTOR_MAX_TOKENS) for kind in SELECTOR_EMBEDDERS}
    try:
        report = build_adapter(
            examples, Path(workspace.small.model_dir), registry.base_fingerprint(), registry, spec,
            workspace.config.anchor_margin, embedders, force=force,
        )
        if report.registered and activate:
            registry.activate(report.domain, report.version)
    except AdapterError as exc:
        _fail(exc)
    return report


def _print_report(report) -> None:  # type: ignore[no-untyped-def]
    figures = report.eval
    forced = report.registered and figures is not None and not figures.passed
    typer.echo(f"{report.version}: {'registered' if report.registered else 'NOT registered'}"
               f"{' (forced: it failed its evaluation)' if forced else ''}")
    if report.training.get("responses") == "shuffled":
        typer.echo("  responses SHUFFLED among the domain's questions: a deliberately bad adapter "
                   "(for drills)")
    if figures is not None:
        typer.echo(
            f"  domain held-out loss  base {figures.domain.base:.4f} -> adapter {figures.domain.adapter:.4f}"
            f" ({figures.domain.relative_change:+.1%})"
        )
        typer.echo(
            f"  anchor held-out loss  base {figures.anchors.base:.4f} -> adapter {figures.anchors.adapter:.4f}"
            f" ({figures.anchors.relative_change:+.1%}, allowed {figures.anchor_margin:+.1%})"
        )
        typer.echo(f"  verdict: {figures.verdict()}")
    typer.echo(f"  training: {json.dumps(report.training)}")


@app.command("build-defaults")
def build_defaults(ctx: typer.Context, registry: RegistryOpt = None) -> None:
    """Train and activate the default adapters (settings' default_domains) that are missing."""
    ensure_defaults(_workspace(ctx, registry))


def ensure_defaults(workspace: AdapterWorkspace) -> None:
    """Each default domain without an active version gets one trained (~2 min each on CPU)."""
    from adapters.examples import SplitSpec, domain_examples, read_changes, read_support
    from adapters.training import TrainSpec

    state = workspace.open_registry().state()
    support = read_support(BITEXT)
    for domain in workspace.config.default_domains:
        entry = state.domains.get(domain)
        if entry is not None and entry.active:
            typer.echo(f"adapter {domain}: {entry.active} is active")
            continue
        examples = domain_examples(support, domain, read_changes(CHANGES, domain), SplitSpec())
        _print_report(_build(workspace, examples, TrainSpec(), force=False, activate=True))


@app.command("list")
def list_versions(ctx: typer.Context, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Versions per domain, with the active and candidate ones marked."""
    reg = _workspace(ctx, registry).open_registry()
    state = reg.state()
    rows = []
    for manifest in reg.versions():
        entry = state.domains.get(manifest.domain)
        status = "active" if entry and entry.active == manifest.version else (
            "candidate" if entry and entry.candidate == manifest.version else "available")
        loss = manifest.eval.domain if manifest.eval else None
        rows.append({
            "domain": manifest.domain, "version": manifest.version, "status": status,
            "rank": manifest.rank, "created_at": manifest.created_at.isoformat(),
            "domain_loss_base": loss.base if loss else None, "domain_loss_adapter": loss.adapter if loss else None,
        })
    if as_json:
        typer.echo(json.dumps({"generation": state.generation, "versions": rows}, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['domain']:<12} {row['version']:<28} {row['status']:<10} r={row['rank']}")


@app.command()
def register(
    ctx: typer.Context,
    directory: Path, force: bool = False, activate: bool = False, registry: RegistryOpt = None
) -> None:
    """Register an adapter directory (PEFT files + manifest.json) trained elsewhere."""
    reg = _workspace(ctx, registry).open_registry()
    try:
        manifest = reg.register(directory, force=force, activate=activate)
    except AdapterError as exc:
        _fail(exc)
    typer.echo(f"registered {manifest.version}")


@app.command()
def activate(ctx: typer.Context, domain: str, version: str, registry: RegistryOpt = None) -> None:
    """Make a version the domain's active adapter."""
    _operate(ctx, registry, lambda reg: reg.activate(domain, version))


@app.command()
def rollback(
    ctx: typer.Context,
    domain: str,
    to: Annotated[Optional[str], typer.Option(help="Version (default: the previous active one)")] = None,
    registry: RegistryOpt = None,
) -> None:
    """Return a domain to an earlier version inside the retention window."""
    _operate(ctx, registry, lambda reg: reg.rollback(domain, to))


@app.command()
def unload(ctx: typer.Context, domain: str, registry: RegistryOpt = None) -> None:
    """Stop serving a domain's adapter (the base model answers); versions are kept."""
    _operate(ctx, registry, lambda reg: reg.unload(domain))


@app.command()
def candidate(
    ctx: typer.Context,
    domain: str,
    version: Annotated[Optional[str], typer.Argument(help="Version; omit to clear")] = None,
    registry: RegistryOpt = None,
) -> None:
    """Set (or clear) the domain's canary candidate: loaded beside the active version."""
    _operate(ctx, registry, lambda reg: reg.set_candidate(domain, version))


@app.command()
def prune(ctx: typer.Context, registry: RegistryOpt = None) -> None:
    """Delete versions older than the retention window that are not in use."""
    removed = _workspace(ctx, registry).open_registry().prune()
    typer.echo("\n".join(removed) or "nothing to prune")


def _operate(ctx: typer.Context, registry: Path | None, operation) -> None:  # type: ignore[no-untyped-def]
    reg = _workspace(ctx, registry).open_registry()
    try:
        state = operation(reg)
    except AdapterError as exc:
        _fail(exc)
    typer.echo(json.dumps({d: {"active": s.active, "candidate": s.candidate} for d, s in state.domains.items()}))


@app.command("eval-selector")
def eval_selector(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Support data with held-out queries")] = BITEXT,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
    out: Annotated[Optional[Path], typer.Option(help="Also write the JSON report here")] = None,
) -> None:
    """Accuracy of the domain selector on held-out queries of the active domains, and
    how often queries of other domains correctly fall back to the base model."""
    from adapters.selection import evaluate_selector

    report = evaluate_selector(_workspace(ctx, registry), data)
    text = report.model_dump_json(indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    if as_json:
        typer.echo(text)
        return
    typer.echo(f"domains: {', '.join(report.domains)}  (min_similarity {report.min_similarity})")
    typer.echo(f"in-domain top-1 accuracy      {report.in_domain_accuracy:.3f}  (n={report.in_domain_n})")
    typer.echo(f"other domains -> base model   {report.out_of_domain_rejection:.3f}  (n={report.out_of_domain_n})")
    typer.echo(f"overall accuracy              {report.overall_accuracy:.3f}")
    for row in report.sweep:
        typer.echo(f"  min_similarity {row.min_similarity:.2f}: in-domain {row.in_domain_accuracy:.3f}"
                   f"  rejection {row.out_of_domain_rejection:.3f}  overall {row.overall_accuracy:.3f}")


def main(workspace: AdapterWorkspace) -> None:
    logging.basicConfig(level=logging.WARNING)
    app(obj=workspace)

