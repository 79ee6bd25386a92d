"""`gateway` command line: prepare models, keys, live config, shadow review.

`gateway serve` starts Ray, so it lives beside the wiring (`deployments/cli.py`), which
adds it to this app and is the console entry point.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gate.cli import build_app as build_gate_app
from deployments.settings import Settings
from support.cli import build_app as build_rollout_app

if TYPE_CHECKING:
    from gateway.keys import KeyStore
    from shadow.journal import Journal
    from support.config import SupportConfig

SHIPPED_DATA = Path(__file__).resolve().parents[1] / "data"

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
models_app = typer.Typer(no_args_is_help=True, help="Prepare the embedded default models.")
app.add_typer(models_app, name="models")
keys_app = typer.Typer(no_args_is_help=True, help="API keys (stored hashed; every /v1 call needs one unless auth.open).")
app.add_typer(keys_app, name="keys")
config_app = typer.Typer(no_args_is_help=True, help="Live config (the ingress user_config).")
app.add_typer(config_app, name="config")
shadow_app = typer.Typer(no_args_is_help=True, help="Shadow traffic: review samples and canary events.")
app.add_typer(shadow_app, name="shadow")
app.add_typer(build_gate_app(lambda: Settings().gate), name="gate")


def _feedback_journal(path: Optional[Path]) -> Optional[Journal]:
    """The rollout's feedback journal: the shadow store (the settings' unless given), when it exists."""
    from shadow.journal import Journal

    path = path or Settings().shadow.store
    return Journal(path) if path.exists() else None


def _ingress_support(path: Path) -> Optional[SupportConfig]:
    """A `serve deploy` file's Ingress user_config.support; None when it has no Ingress."""
    import yaml

    from gateway.live_config import INGRESS, LiveConfig

    for application in (yaml.safe_load(path.read_text()) or {}).get("applications") or []:
        for deployment in application.get("deployments") or []:
            if deployment.get("name") == INGRESS:
                return LiveConfig.parse(deployment.get("user_config")).support
    return None


app.add_typer(
    build_rollout_app(lambda: Settings().support, _feedback_journal, _ingress_support), name="rollout"
)


@shadow_app.command("sample")
def shadow_sample(
    n: Annotated[int, typer.Option("--n", min=1, help="Pairs in the sample")] = 20,
    since: Annotated[str, typer.Option(help="How far back: 30m, 12h, 1d, 2w")] = "1d",
    fmt: Annotated[str, typer.Option("--format", help="csv or md")] = "md",
    seed: Annotated[int, typer.Option(help="Same seed, same sample")] = 0,
    out: Annotated[Optional[Path], typer.Option(help="Write here instead of stdout")] = None,
    store: Annotated[Optional[Path], typer.Option(help="Shadow store (default: settings)")] = None,
) -> None:
    """A random sample of recent primary/shadow pairs for the daily review."""
    from shadow.export import render

    if fmt not in ("csv", "md"):
        raise typer.BadParameter("use csv or md", param_hint="--format")
    shadow, start = _store_since(store, since)
    text = render(shadow.sample(n, since=start, seed=seed), fmt)  # type: ignore[arg-type]
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")


@shadow_app.command("events")
def shadow_events(
    store: Annotated[Optional[Path], typer.Option(help="Shadow store (default: settings)")] = None,
) -> None:
    """Every automatic canary decision (rejections, passes, rollbacks), oldest first."""
    from shadow.journal import Journal

    path = store or Settings().shadow.store
    for event in Journal(path).events():
        typer.echo(f"{event.created_at.isoformat(timespec='seconds')}  {event.kind:16s} {event.subject}  {event.detail}")


@app.command("flags")
def list_flags(
    since: Annotated[str, typer.Option(help="How far back: 30m, 12h, 1d, 2w")] = "1d",
    kind: Annotated[
        Optional[list[str]], typer.Option(help="Only this kind (repeatable): promise, tone, pii, unfaithful")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array instead of lines")] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many, newest first")] = None,
    store: Annotated[Optional[Path], typer.Option(help="Shadow store (default: settings)")] = None,
) -> None:
    """Served answers flagged for follow-up (live config `flags`), newest first."""
    import json

    from flags.types import KINDS

    unknown = sorted(set(kind or ()) - set(KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown kind {', '.join(unknown)}; use {', '.join(KINDS)}", param_hint="--kind")
    shadow, start = _store_since(store, since)
    found = shadow.flags(since=start, kinds=kind or (), limit=limit)
    if as_json:
        typer.echo(json.dumps([f.model_dump(mode="json") for f in found], indent=1))
        return
    for f in found:
        score = "" if f.score is None else f"{f.score:g}"
        typer.echo(f"{f.created_at.isoformat(timespec='seconds')}  {f.kind:10s} {f.category or '-':12s} "
                   f"{f.tier:5s} {f.request_id}  {score:>6s}  {f.detail}")


@app.command("spend")
def spend(
    since: Annotated[str, typer.Option(help="How far back: 30m, 12h, 7d, 2w, or an ISO date (rounded down to the hour)")] = "7d",
    by: Annotated[Optional[str], typer.Option(help="key, category or tier (default: the total only)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of a table")] = False,
    ledger: Annotated[Optional[Path], typer.Option(help="Spend ledger (default: settings spend.ledger)")] = None,
) -> None:
    """What answers cost since a time (live prices of the tier that served each), what the same
    tokens would have cost on the top tier, and the difference saved. Reads the local ledger."""
    import json

    from spend.ledger import SpendLedger
    from spend.report import as_json as report_json, as_text

    if by not in (None, "key", "category", "tier"):
        raise typer.BadParameter("use key, category or tier", param_hint="--by")
    start = _since(since)
    path = ledger or Settings().spend.ledger
    if not path.is_file():
        typer.echo(f"error: no spend ledger at {path}", err=True)
        raise typer.Exit(2)
    lines = SpendLedger(path).report(start, by)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(report_json(lines, start, by), indent=1))  # type: ignore[arg-type]
    else:
        typer.echo(as_text(lines, start, by))  # type: ignore[arg-type]


@app.command("cascade-calibrate")
def cascade_calibrate(
    data: Annotated[Path, typer.Option(help="Graded answers with logprobs (router collect --logprobs, router grade)")],
    rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Target escalation rate")] = 0.3,
    signal: Annotated[str, typer.Option(help="mean_logprob, min_logprob or mean_margin")] = "mean_logprob",
    target: Annotated[str, typer.Option(help="The cheap tier's column suffix")] = "small:auto",
    upper: Annotated[str, typer.Option(help="The tier it escalates to")] = "large",
) -> None:
    """The cascade threshold that escalates `rate` of the cheap tier's answers, with the quality
    served at it and at neighbouring rates; prints the `user_config.cascade` lines to set."""
    import pandas as pd

    from cascade.calibrate import calibration_table, graded_columns
    from engines.confidence import COLUMN_PREFIXES

    if signal not in COLUMN_PREFIXES:
        raise typer.BadParameter(f"use one of {', '.join(COLUMN_PREFIXES)}", param_hint="--signal")
    frame = pd.read_csv(data)
    try:
        columns = graded_columns(list(frame.columns), signal, target, upper)
    except ValueError as exc:
        typer.echo(f"error: {data}: {exc}", err=True)
        raise typer.Exit(2) from None
    rates = sorted({0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0, rate})
    points = calibration_table(*(frame[c].to_numpy(dtype=float) for c in columns), rates)
    typer.echo(f"{'escalated':>9s}  {'threshold':>10s}  {'quality':>7s}  {'kept quality':>12s}")
    for point in points:
        kept = "-" if point.kept_quality is None else f"{point.kept_quality:.3f}"
        typer.echo(f"{point.escalation_rate:9.1%}  {point.threshold:10.4f}  {point.quality:7.3f}  {kept:>12s}")
    chosen = points[rates.index(rate)]
    tier = target.split(":", 1)[0]
    bar = f"threshold: {chosen.threshold:.4f}" if tier == "small" else f"per_tier: {{{tier}: {chosen.threshold:.4f}}}"
    typer.echo(f"\ncascade:\n  signal: {signal}\n  {bar}")


@app.command("cascade-train-verifier")
def cascade_train_verifier(
    data: Annotated[Path, typer.Option(help="Graded answers with logprobs (router collect --logprobs 2, router grade)")],
    out: Annotated[Path, typer.Option(help="The verifier's JSON file (set it as user_config.cascade.verifiers.<tier>)")],
    target: Annotated[str, typer.Option(help="The cheap tier's column suffix: the tier whose answers it judges")] = "small:auto",
    upper: Annotated[str, typer.Option(help="The tier it escalates to")] = "large",
    label: Annotated[str, typer.Option(help="upper_better (what an escalation buys) or acceptable")] = "upper_better",
    router: Annotated[Optional[Path], typer.Option(help="Router model scoring the prompts (default: the settings' model_dir)")] = None,
    no_router: Annotated[bool, typer.Option("--no-router", help="Train without the router score")] = False,
    rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Target escalation rate: sets the bar printed")] = 0.3,
) -> None:
    """Train the cascade verifier of one tier's answers from graded outcomes: P(the upper answer
    is better | the answer's logprob signals, its length, the router's score, the category).
    Prints its out-of-fold AUC (5 folds) and the config lines to set, with the bar that
    escalates `rate` of the answers."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from cascade.verifier import fit_verifier, save_verifier
    from cascade.verifier_data import TrainingRows

    if label not in ("upper_better", "acceptable"):
        raise typer.BadParameter("use upper_better or acceptable", param_hint="--label")
    try:
        rows = TrainingRows(pd.read_csv(data), target, upper)
    except ValueError as exc:
        typer.echo(f"error: {data}: {exc}", err=True)
        raise typer.Exit(2) from None
    scores = None if no_router else _router_scores(router or Settings().router.model_dir, rows.prompts, rows.categories)
    numbers, y = rows.numbers(scores), rows.labels(label)  # type: ignore[arg-type]
    if len(rows) < 20 or y.min() == y.max():
        typer.echo(f"error: {data}: {len(rows)} graded rows, {int(y.sum())} positive: too few to train on", err=True)
        raise typer.Exit(2)
    oof = np.empty(len(y))
    for fit, held in StratifiedKFold(5, shuffle=True, random_state=0).split(numbers, y):
        model = fit_verifier(numbers[fit], [rows.categories[i] for i in fit], y[fit], label)  # type: ignore[arg-type]
        oof[held] = model.probabilities(numbers[held], [rows.categories[i] for i in held])
    model = fit_verifier(numbers, rows.categories, y, label)  # type: ignore[arg-type]
    tier = target.split(":", 1)[0]
    model.trained_on = {"data": str(data), "rows": len(rows), "tier": tier, "upper": upper, "positive_rate": float(y.mean()),
                        "oof_auc": float(roc_auc_score(y, oof)), "router": "none" if scores is None else "yes"}
    save_verifier(model, out)
    typer.echo(f"{len(rows)} rows, {y.mean():.1%} {label}; out-of-fold AUC {roc_auc_score(y, oof):.3f}; wrote {out}")
    # The bar that escalates `rate` of these answers, read off the out-of-fold probabilities.
    bar = float(np.quantile(oof, 1.0 - rate)) if label == "upper_better" else float(np.quantile(oof, rate))
    typer.echo(f"\ncascade:\n  verifiers: {{{tier}: {out}}}\n  verifier_bar: {bar:.4f}  # escalates {rate:.0%} out of fold")


def _router_scores(model_dir: Path, prompts: list[str], categories: list[Optional[str]]) -> list[float]:
    from router.asks import PLAIN
    from router.loading import EmbedderCache, load_router

    loaded = load_router(model_dir, None, EmbedderCache())
    return [loaded.score(prompt, category, PLAIN) for prompt, category in zip(prompts, categories)]


@config_app.command("check")
def check_config(path: Annotated[Path, typer.Argument(help="A `serve deploy` config file")]) -> None:
    """Validate the ingress user_config before `serve deploy` (a running gateway would
    reject the same config and keep its last good one)."""
    import yaml

    from gateway.live_config import check_serve_config

    results = check_serve_config(yaml.safe_load(path.read_text()) or {})
    if not results:
        typer.echo(f"error: {path} has no application with an Ingress deployment", err=True)
        raise typer.Exit(2)
    for name, problem in results.items():
        typer.echo(f"{name}: {'ok' if problem is None else 'invalid: ' + problem}")
    if any(problem is not None for problem in results.values()):
        raise typer.Exit(1)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="Who the key is for")],
    admin: Annotated[bool, typer.Option(help="May call the admin API (same as --role admin)")] = False,
    role: Annotated[Optional[str], typer.Option(
        help="user (calls /v1), admin (also /admin, /metrics, detail headers) or metrics (reads /metrics "
        "and /ready only: a scrape token)"
    )] = None,
    rpm: Annotated[Optional[int], typer.Option(min=1, help="Requests per minute (default: unlimited)")] = None,
    tpm: Annotated[Optional[int], typer.Option(min=1, help="Tokens per minute (default: unlimited)")] = None,
    max_concurrent: Annotated[Optional[int], typer.Option(
        min=1, help="Requests in flight at once per ingress replica (default: auth.default_max_concurrent, 16)"
    )] = None,
    allow_switch: Annotated[Optional[list[str]], typer.Option(
        "--allow-switch", help="A client switch this key may turn off (repeatable): gate (`gate: false` "
        "skips the answerability gate), grounding (`grounding: false` skips the knowledge base)"
    )] = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    from gateway.keys import SWITCHES, KeyStore

    chosen = role or ("admin" if admin else "user")
    if chosen not in ("user", "admin", "metrics") or (admin and chosen != "admin"):
        raise typer.BadParameter("use user, admin or metrics (--admin is --role admin)", param_hint="--role")
    unknown = sorted(set(allow_switch or ()) - set(SWITCHES))
    if unknown:
        raise typer.BadParameter(f"unknown switch {', '.join(unknown)}; use {', '.join(SWITCHES)}",
                                 param_hint="--allow-switch")
    record, secret = KeyStore(Settings().auth.keys_db).create(
        name, chosen, rpm, tpm, max_concurrent, tuple(allow_switch or ()),  # type: ignore[arg-type]
    )
    typer.echo(f"{record.id}  {secret}")


@keys_app.command("list")
def list_keys() -> None:
    """Keys with their role, limits and state (never the key itself)."""
    for r in _existing_keys().list():
        state = f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active"
        switches = ",".join(r.switches) or "-"
        typer.echo(f"{r.id}  {r.name:<20} {r.role:<7} rpm={r.rpm} tpm={r.tpm} max_concurrent={r.max_concurrent} "
                   f"switches={switches}  {state}")


def _existing_keys() -> KeyStore:
    """The key store; only `keys create` makes one."""
    from gateway.keys import KeyStore, KeyStoreMissing

    try:
        return KeyStore(Settings().auth.keys_db, create=False)
    except KeyStoreMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@keys_app.command("revoke")
def revoke_key(key_id: str) -> None:
    """Revoke a key (effective within the gateway's key cache TTL, 5 s by default). Revoking the
    last key does not open the API: every call is then refused."""
    from gateway.keys import KeyNotFound

    try:
        record = _existing_keys().revoke(key_id)
    except KeyNotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"revoked {record.id} ({record.name})")


@models_app.command("prepare")
def prepare_models(
    cache_dir: Annotated[Optional[Path], typer.Option(help="Cache directory")] = None,
) -> None:
    """Prepare the embedded models (GGUF -> HF directories vLLM serves), train the
    default router from the shipped outcome data and the default domain adapters of the
    small model; each step skips when current."""
    from adapters.cli import ensure_defaults
    from model_files.preparation import prepare_embedded_models
    from gate.cli import ensure_default as ensure_gate
    from router.cli import ensure_default

    settings = Settings() if cache_dir is None else Settings(models_dir=cache_dir)
    # A tier served elsewhere (kind openai or mock) has no model here to prepare.
    local = tuple(tier for tier in ("small", "large") if settings.tier(tier).kind == "vllm")
    prepared = prepare_embedded_models(settings.models_dir, tiers=local)
    for tier in ("small", "large"):
        where = getattr(prepared, tier) if tier in local else f"kind={settings.tier(tier).kind}, nothing to prepare"
        typer.echo(f"{tier}: {where}")
    ensure_default(settings.router.model_dir, SHIPPED_DATA / "routellm" / "mmlu")
    ensure_gate(settings.gate)  # the answerability classifier, from data/gate
    if settings.small.enable_lora and settings.small.model is None and "small" in local:
        ensure_defaults(settings.adapter_workspace())  # adapters of the embedded small model only
    if settings.retrieval.enabled:
        from retrieval.cli import ensure_default as ensure_knowledge

        ensure_knowledge(settings.retrieval)  # the support KB and its trained reranker


def _store_since(store: Optional[Path], since: str) -> tuple[Journal, datetime]:
    """The shadow store (the settings' unless given; exit 2 when missing) and the start of
    the `--since` window."""
    from shadow.journal import Journal

    start = _since(since)
    path = store or Settings().shadow.store
    if not path.exists():
        typer.echo(f"error: no shadow store at {path}", err=True)
        raise typer.Exit(2)
    return Journal(path), start


# ---- the capability commands (`router`, `adapters`, `retrieval`): each reads no settings;
# the settings tree is read once here and each is handed what it needs.
def router() -> None:
    from router.cli import main
    from router.context import RouterContext
    from shadow.journal import read_pairs

    settings = Settings()
    main(RouterContext(read_pairs=read_pairs, registry=settings.router_registry(), steps=settings.step_registries()))


def adapters() -> None:
    from adapters.cli import main

    main(Settings().adapter_workspace())


def retrieval() -> None:
    from retrieval.cli import main

    main(Settings().retrieval)


def _since(since: str) -> datetime:
    """`--since` as an instant, or a usage error naming the option."""
    from router.flywheel import parse_since

    try:
        return parse_since(since, datetime.now(timezone.utc))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
