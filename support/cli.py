"""`gateway rollout`: each support category's mode (draft, auto, off), its figures from
the feedback journal and its promotion gate; promote, demote, and the events of changes.

Changes are written to the rollout state file the ingress replicas poll (the admin API
`/admin/rollout` does the same over HTTP). The gate's thresholds are the settings tree's
`support.config` (GATEWAY_SUPPORT__CONFIG), or a `serve deploy` file's (`--config`).

The commands read no settings: `build_app` is handed how to read the support settings,
open the feedback journal and read a `serve deploy` file (the `gateway` command line
passes its own), each called only when an option does not say it.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from support.config import RolloutConfig, SupportConfig, SupportSettings
from support.ratings import RatingsJournal

if TYPE_CHECKING:
    from support.rollout import CategoryStatus, Rollout
    from support.rollout_state import RolloutEvent

# The feedback journal at a path (None: the default one); None when there is none yet.
OpenJournal = Callable[[Optional[Path]], Optional[RatingsJournal]]
# A `serve deploy` file's Ingress support config; None when it has no Ingress deployment.
DeployConfig = Callable[[Path], Optional[SupportConfig]]


@dataclass(frozen=True)
class RolloutContext:
    settings: Callable[[], SupportSettings]
    journal: OpenJournal
    deploy_config: DeployConfig


def _context(ctx: typer.Context) -> RolloutContext:
    obj = ctx.obj
    if not isinstance(obj, RolloutContext):
        raise RuntimeError("the rollout commands need a RolloutContext as the context obj (support.cli.build_app)")
    return obj


def build_app(
    settings: Callable[[], SupportSettings], journal: OpenJournal, deploy_config: DeployConfig,
) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, help="Per-category rollout: draft, auto, off.")

    @app.callback()
    def _load(ctx: typer.Context) -> None:
        ctx.obj = RolloutContext(settings, journal, deploy_config)

    app.command("status")(status)
    app.command("promote")(promote)
    app.command("demote")(demote)
    app.command("events")(events)
    return app


StateOption = Annotated[Optional[Path], typer.Option("--state", help="Rollout state file (default: settings)")]
StoreOption = Annotated[Optional[Path], typer.Option("--store", help="Shadow store (default: settings)")]
ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", help="A `serve deploy` file: its Ingress user_config.support")
]


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document")] = False,
    state: StateOption = None, store: StoreOption = None, config: ConfigOption = None,
) -> None:
    """Per category: mode, rated samples, match rate, negative share, gate cleared or not and why."""
    context = _context(ctx)
    rollout, rules = _rollout(context, state, store), _config(context, config)
    statuses = rollout.status(rules)
    if as_json:
        typer.echo(json.dumps({"default_mode": rules.default_mode,
                               "categories": [s.model_dump(mode="json") for s in statuses]}, indent=2))
        return
    if not statuses:
        typer.echo(f"no category is configured, changed or rated (every category: {rules.default_mode})")
        return
    for line in [_header(), *(_row(s) for s in statuses)]:
        typer.echo(line)


def promote(
    ctx: typer.Context,
    category: Annotated[str, typer.Argument(help="A client's metadata.category or an adapter domain")],
    to: Annotated[Optional[str], typer.Option("--to", help="auto, draft or off (default: one phase up)")] = None,
    note: Annotated[Optional[str], typer.Option(help="Why, for the event")] = None,
    force: Annotated[bool, typer.Option(help="Promote to auto although the gate is not cleared")] = False,
    state: StateOption = None, store: StoreOption = None, config: ConfigOption = None,
) -> None:
    """Move a category up a phase (off -> draft -> auto), or to --to."""
    _change(_context(ctx), category, to, True, note, force, state, store, config)


def demote(
    ctx: typer.Context,
    category: Annotated[str, typer.Argument(help="The category")],
    to: Annotated[Optional[str], typer.Option("--to", help="draft or off (default: one phase down)")] = None,
    note: Annotated[Optional[str], typer.Option(help="Why, for the event")] = None,
    state: StateOption = None, store: StoreOption = None, config: ConfigOption = None,
) -> None:
    """Move a category down a phase (auto -> draft -> off), or to --to."""
    _change(_context(ctx), category, to, False, note, False, state, store, config)


def events(
    ctx: typer.Context,
    category: Annotated[Optional[str], typer.Option(help="Only this category")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
    state: StateOption = None,
) -> None:
    """Every mode change with who made it, why and its figures, oldest first."""
    from support.rollout_state import RolloutBook

    for event in RolloutBook(_state_path(_context(ctx), state)).events(category):
        typer.echo(event.model_dump_json() if as_json else _event_line(event))


# ---- helpers ------------------------------------------------------------------------


def _change(
    context: RolloutContext, category: str, to: str | None, promote: bool, note: str | None, force: bool,
    state: Path | None, store: Path | None, config: Path | None,
) -> None:
    from support.config import MODES
    from support.errors import GateNotCleared
    from support.rollout_state import StaleRolloutChange

    if to is not None and to not in MODES:
        raise typer.BadParameter(f"use one of {', '.join(MODES)}", param_hint="--to")
    try:
        status, event = _rollout(context, state, store).change(
            _config(context, config), category, to, by=_who(), promote=promote,  # type: ignore[arg-type]
            note=note, force=force,
        )
    except (GateNotCleared, StaleRolloutChange) as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="CATEGORY") from None
    if event is None:
        typer.echo(f"{status.category} is already {status.mode}: nothing changed")
        return
    typer.echo(f"{event.category}: {event.from_mode} -> {event.to_mode} (replicas apply it within a poll)")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container user with no name
        return "cli"


def _rollout(context: RolloutContext, state: Path | None, store: Path | None) -> "Rollout":
    from support.rollout import Rollout
    from support.rollout_state import RolloutBook

    journal = context.journal(store)
    return Rollout(RolloutBook(_state_path(context, state)), journal)


def _state_path(context: RolloutContext, state: Path | None) -> Path:
    return state or context.settings().rollout_state


def _config(context: RolloutContext, path: Path | None) -> RolloutConfig:
    if path is None:
        return context.settings().config.rollout
    config = context.deploy_config(path)
    if config is None:
        raise typer.BadParameter(f"{path} has no Ingress deployment", param_hint="--config")
    return config.rollout


def _header() -> str:
    return f"{'category':<20} {'mode':<6} {'samples':>7} {'match':>6} {'negative':>8}  gate"


def _row(s: "CategoryStatus") -> str:
    if s.mode == "auto" and s.answers is not None and s.guardrail is not None:
        ratings, guardrail = s.answers, s.guardrail
        gate = f"guardrail {'BREACHED' if guardrail.breached else 'ok'}: {guardrail.why}"
    else:
        ratings, promotion = s.drafts, s.promotion
        gate = f"{'cleared' if promotion.cleared else 'not cleared'}: {promotion.why}"
    return (f"{s.category:<20} {s.mode:<6} {ratings.n:>7} {_share(ratings.match_rate):>6} "
            f"{_share(ratings.negative_share):>8}  {gate}")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _event_line(e: "RolloutEvent") -> str:
    note = f"  ({e.note})" if e.note else ""
    at = e.at.isoformat(timespec="seconds")
    return f"{at}  {e.category:<16} {e.from_mode} -> {e.to_mode}  {e.reason:<12} by {e.by}{note}"
