"""`router register | list | activate | rollback | candidate`: router versions, live.

`--step <tier>` does the same for the step router of a tier above large: its candidate is
canaried on the queries that reach the tier below (`routing.learned.upper.<tier>.canary`).

Every ingress replica polls the registry and serves its active version within a poll
interval, without a restart; the candidate is scored beside it on live `auto` traffic
(the router canary) and promoted or rejected by the guardrails in `user_config`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from router.context import RouterContext
from router.errors import RouterVersionError
from router.registry import RouterRegistry, RouterState, RouterVersion


STEP_HELP = "A tier above large: its step router's registry (trained on the tier below's and its outcomes)"
Step = Annotated[Optional[str], typer.Option("--step", help=STEP_HELP)]


def _registry(ctx: typer.Context, step: str | None = None) -> RouterRegistry:
    obj = ctx.find_root().obj
    if not isinstance(obj, RouterContext) or obj.registry is None:
        raise RuntimeError("the router registry is handed in by the entry point (deployments.commands)")
    if step is None:
        return obj.registry
    if step not in obj.steps:
        typer.echo(f"error: no tier '{step}' above large here (tiers with step routers: "
                   f"{', '.join(obj.steps) or 'none: settings extra_tiers is empty'})", err=True)
        raise typer.Exit(2)
    return obj.steps[step]


def _fail(exc: RouterVersionError) -> None:
    typer.echo(f"error: {exc.message}", err=True)
    raise typer.Exit(2)


def _state_line(state: RouterState) -> str:
    return (f"active {state.active or '(default model)'}   candidate {state.candidate or '-'}   "
            f"generation {state.generation}")


def register(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="Router model directory (`router train --out`)")],
    eval_file: Annotated[Optional[Path], typer.Option(
        "--eval", exists=True, dir_okay=False, help="JSON of eval figures (`router eval --json-out`) to keep with it")] = None,
    candidate: Annotated[bool, typer.Option(help="Also make it the candidate (start its canary)")] = False,
    activate: Annotated[bool, typer.Option(help="Also make it active (no canary)")] = False,
    step: Step = None,
) -> None:
    """Check a trained router against this gateway's schema and tiers and store it as a version."""
    registry = _registry(ctx, step)
    figures = json.loads(eval_file.read_text()) if eval_file else None
    try:
        entry = registry.register(model, figures)
        if candidate:
            registry.set_candidate(entry.version)
        if activate:
            registry.activate(entry.version)
    except RouterVersionError as exc:
        _fail(exc)
        return
    typer.echo(f"registered {entry.version} (model {entry.model_version}, schema {entry.schema_hash})")
    typer.echo(_state_line(registry.state()))


def _row(entry: RouterVersion, state: RouterState) -> str:
    role = "active" if entry.version == state.active else "candidate" if entry.version == state.candidate else ""
    figures = " ".join(f"{k}={v:.3f}" for k, v in entry.eval.items() if isinstance(v, (int, float)))
    return (f"{entry.version:28s} {role:9s} {entry.registered_at:%Y-%m-%d %H:%M}  "
            f"data {str(entry.data_digest)[:12]:12s} {figures}")


def list_versions(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    step: Step = None,
) -> None:
    """Versions in the registry, which one is active and which is the candidate."""
    registry = _registry(ctx, step)
    state, entries = registry.state(), registry.versions()
    if json_out:
        typer.echo(json.dumps({"state": state.model_dump(mode="json"),
                               "versions": [e.model_dump(mode="json") for e in entries]}))
        return
    typer.echo(_state_line(state))
    for entry in entries:
        typer.echo(_row(entry, state))


def _apply(ctx: typer.Context, change: Callable[[RouterRegistry], RouterState], step: str | None = None) -> None:
    try:
        state = change(_registry(ctx, step))
    except RouterVersionError as exc:
        _fail(exc)
        return
    typer.echo(_state_line(state))


def activate(ctx: typer.Context, version: Annotated[str, typer.Argument()], step: Step = None) -> None:
    """Serve `version` on every ingress replica (within a poll interval)."""
    _apply(ctx, lambda registry: registry.activate(version, reason="cli"), step)


def rollback(
    ctx: typer.Context,
    version: Annotated[Optional[str], typer.Argument(help="Default: the version active before")] = None,
    step: Step = None,
) -> None:
    """Back to the previous active version (or the default model when there is none; for a
    step, none: the pair's score decides that climb again)."""
    _apply(ctx, lambda registry: registry.rollback(version), step)


def candidate(
    ctx: typer.Context,
    version: Annotated[Optional[str], typer.Argument(help="Version to canary")] = None,
    clear: Annotated[bool, typer.Option(help="Clear the candidate slot")] = False,
    step: Step = None,
) -> None:
    """Set (or clear) the candidate the router canary scores beside the active version (with
    --step, the step canary: on the queries that reach the tier below, graded by that rung's
    `canary.outcomes_file`)."""
    if version is None and not clear:
        raise typer.BadParameter("give a VERSION or --clear")
    _apply(ctx, lambda registry: registry.set_candidate(None if clear else version, reason="cli"), step)


def add_commands(app: typer.Typer) -> None:
    app.command("register")(register)
    app.command("list")(list_versions)
    app.command("activate")(activate)
    app.command("rollback")(rollback)
    app.command("candidate")(candidate)
