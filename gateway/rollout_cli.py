"""`gateway rollout`: each support category's mode (draft, auto, off), its figures from
the feedback journal and its promotion gate; promote, demote, and the events of changes.

Changes are written to the rollout state file the ingress replicas poll (the admin API
`/admin/rollout` does the same over HTTP). The gate's thresholds are the settings tree's
`support.config` (GATEWAY_SUPPORT__CONFIG), or a `serve deploy` file's (`--config`).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from gateway.rollout import CategoryStatus, Rollout
    from gateway.rollout_state import RolloutEvent
    from gateway.support_config import RolloutConfig

rollout_app = typer.Typer(no_args_is_help=True, help="Per-category rollout: draft, auto, off.")

StateOption = Annotated[Optional[Path], typer.Option("--state", help="Rollout state file (default: settings)")]
StoreOption = Annotated[Optional[Path], typer.Option("--store", help="Shadow store (default: settings)")]
ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", help="A `serve deploy` file: its Ingress user_config.support")
]


@rollout_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document")] = False,
    state: StateOption = None, store: StoreOption = None, config: ConfigOption = None,
) -> None:
    """Per category: mode, rated samples, match rate, negative share, gate cleared or not and why."""
    rollout, rules = _rollout(state, store), _config(config)
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


@rollout_app.command("promote")
def promote(
    category: Annotated[str, typer.Argument(help="A client's metadata.category or an adapter domain")],
    to: Annotated[Optional[str], typer.Option("--to", help="auto, draft or off (default: one phase up)")] = None,
    note: Annotated[Optional[str], typer.Option(help="Why, for the event")] = None,
    force: Annotated[bool, typer.Option(help="Promote to auto although the gate is not cleared")] = False,
    state: StateOption = None, store: StoreOption = None, config: ConfigOption = None,
) -> None:
    """Move a category up a phase (off -> draft -> auto), or to --to."""
    _change(category, to, True, note, force, state, store, config)


@rollout_app.command("demote")
def demote(
    category: Annotated[str, typer.Argument(help="The category")],
    to: Annotated[Optional[str], typer.Option("--to", help="draft or off (default: one phase down)")] = None,
    note: Annotated[Optional[str], typer.Option(help="Why, for the event")] = None,
    state: StateOption = None, store: StoreOption = None, config: ConfigOption = None,
) -> None:
    """Move a category down a phase (auto -> draft -> off), or to --to."""
    _change(category, to, False, note, False, state, store, config)


@rollout_app.command("events")
def events(
    category: Annotated[Optional[str], typer.Option(help="Only this category")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
    state: StateOption = None,
) -> None:
    """Every mode change with who made it, why and its figures, oldest first."""
    from gateway.rollout_state import RolloutBook

    for event in RolloutBook(_state_path(state)).events(category):
        typer.echo(event.model_dump_json() if as_json else _event_line(event))


# ---- helpers ------------------------------------------------------------------------


def _change(
    category: str, to: str | None, promote: bool, note: str | None, force: bool,
    state: Path | None, store: Path | None, config: Path | None,
) -> None:
    from gateway.rollout import GateNotCleared
    from gateway.rollout_state import StaleRolloutChange
    from gateway.support_config import MODES

    if to is not None and to not in MODES:
        raise typer.BadParameter(f"use one of {', '.join(MODES)}", param_hint="--to")
    try:
        status, event = _rollout(state, store).change(
            _config(config), category, to, by=_who(), promote=promote,  # type: ignore[arg-type]
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


def _rollout(state: Path | None, store: Path | None) -> "Rollout":
    from gateway.rollout import Rollout
    from gateway.rollout_state import RolloutBook
    from gateway.settings import Settings
    from shadow.store import ShadowStore

    path = store or Settings().shadow.store
    return Rollout(RolloutBook(_state_path(state)), ShadowStore(path) if path.exists() else None)


def _state_path(state: Path | None) -> Path:
    from gateway.settings import Settings

    return state or Settings().support.rollout_state


def _config(path: Path | None) -> "RolloutConfig":
    from gateway.settings import Settings

    if path is None:
        return Settings().support.config.rollout
    import yaml

    from gateway.live_config import INGRESS, LiveConfig

    for application in (yaml.safe_load(path.read_text()) or {}).get("applications") or []:
        for deployment in application.get("deployments") or []:
            if deployment.get("name") == INGRESS:
                return LiveConfig.parse(deployment.get("user_config")).support.rollout
    raise typer.BadParameter(f"{path} has no Ingress deployment", param_hint="--config")


def _header() -> str:
    return f"{'category':<20} {'mode':<6} {'samples':>7} {'match':>6} {'negative':>8}  gate"


def _row(s: "CategoryStatus") -> str:
    if s.mode == "auto" and s.answers is not None and s.guardrail is not None:
        ratings, verdict = s.answers, s.guardrail
        gate = f"guardrail {'BREACHED' if verdict.cleared else 'ok'}: {verdict.why}"
    else:
        ratings, verdict = s.drafts, s.promotion
        gate = f"{'cleared' if verdict.cleared else 'not cleared'}: {verdict.why}"
    return (f"{s.category:<20} {s.mode:<6} {ratings.n:>7} {_share(ratings.match_rate):>6} "
            f"{_share(ratings.negative_share):>8}  {gate}")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _event_line(e: "RolloutEvent") -> str:
    note = f"  ({e.note})" if e.note else ""
    at = e.at.isoformat(timespec="seconds")
    return f"{at}  {e.category:<16} {e.from_mode} -> {e.to_mode}  {e.reason:<12} by {e.by}{note}"
