"""Wires the gateway from its parts; used by the ingress and by API tests.

The request path itself is gateway/pipeline.py; here each optional capability is built
when its part is given (`Features`) and plugged in: its pipeline stage or answer sink,
its admin routes, its background tasks, its live-config section.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Mapping

from pydantic import ValidationError
from starlette.applications import Starlette

from adapters.choice import AdapterChooser
from adapters.directory import AdapterDirectory
from adapters.fleet import AdapterChanges, AdapterFleet
from background.periodic import Periodic, Poll
from engines.protocol import Engine
from engines.types import Tier
from flags.faithfulness import SupportScorer
from flags.sink import AnswerFlagger
from gate.verdict import Gate
from gateway.admin import AdapterAdmin, AdminGroup, AdminGuard, ConfigAdmin, RolloutAdmin, RouterAdmin, admin_routes
from gateway.access import IN_PROCESS
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.catalog import ModelCatalog, TierSpec, adapter_cards
from gateway.dispatch import Dispatcher
from gateway.feedback import Feedback
from gateway.health import Readiness
from gateway.http import GatewayApp, Operations
from gateway.labels import CategoryLabels
from gateway.live_config import LiveConfig, LiveConfigState, describe
from gateway.loads import EngineLoadSource, LoadPoller, LoadSource
from gateway.metrics import GatewayMetrics
from gateway.observers import Observers
from gateway.pipeline import AnswerSink, Pipeline, Stages
from shadow.retention import registry_pruner, store_pruner
from gateway.settings import AdminSettings, LimitSettings
from gateway.sinks import FlagSink, ShadowSink
from gateway.spending import SpendStage
from gateway.cascading import CascadePlanner, CascadeStage
from retrieval.grounding import Grounder
from router.canary_loop import Canary, RouterCanary, StepCanary, observe_all
from router.learned import ScoreFn
from router.live import LiveRouter, PolicyFactory, follow_steps, follow_versions
from router.loading import LoadedRouter
from router.registry import RouterRegistry
from router.versions import Loader
from shadow.agreement import Agreement
from shadow.canary import CanaryMonitor
from shadow.service import ShadowService
from shadow.journal import Journal
from spend.config import SpendSettings
from spend.ledger import SpendLedger
from spend.meter import SpendMeter
from support.controls import SupportControls
from support.wiring import SupportParts, build_support

logger = logging.getLogger(__name__)


class UnknownTiers(ValueError):
    """A live config names a tier this gateway does not serve."""


@dataclass
class Gateway:
    app: Starlette
    pipeline: Pipeline
    dispatcher: Dispatcher
    router: LiveRouter
    metrics: GatewayMetrics
    state: LiveConfigState
    policies: PolicyFactory
    base_limits: LimitSettings
    shadow: ShadowService | None = None
    grounder: Grounder | None = None
    flags: AnswerFlagger | None = None
    tiers: tuple[Tier, ...] = ("small", "large")  # cheapest first

    @property
    def config(self) -> LiveConfig:
        return self.state.config

    def apply(self, config: LiveConfig) -> None:
        self.router.replace_policy(self.policies.build(config.routing), self.policies.version)
        self.dispatcher.configure(config.resilience)
        self.pipeline.limits = config.limits or self.base_limits
        if self.shadow is not None:
            self.shadow.configure(config.shadow)
        if self.grounder is not None:
            self.grounder.configure(config.grounding)
        if self.flags is not None:
            self.flags.configure(config.flags)
        self.state.accept(config)

    def reconfigure(self, raw: dict[str, Any] | None, strict: bool = False) -> bool:
        """Apply a live config; an invalid one is logged and counted, the last good stays.

        Raising on an update would make Ray Serve replace the replica, and a replacement
        built with the same bad config fails too: the service would go down over a typo.
        `strict` (first config of a replica) raises instead: a deploy that never had a
        good config should fail loudly.
        """
        try:
            config = LiveConfig.parse(raw)
            unknown = config.unknown_tiers(self.tiers)
            if unknown:
                raise UnknownTiers("; ".join(unknown))
        except (ValidationError, UnknownTiers) as exc:
            if strict:
                raise
            message = describe(exc) if isinstance(exc, ValidationError) else str(exc)
            logger.error("rejected live config, keeping the last good one: %s", message)
            self.state.reject(message)
            self.metrics.config_rejected.inc()
            return False
        self.apply(config)
        self.metrics.config_applied.inc()
        return True


@dataclass(frozen=True)
class Tiers:
    """The tiers behind the gateway: their engines, what the catalog says of each, and
    where their live load comes from (None: asked of the engines themselves)."""

    engines: Mapping[Tier, Engine]
    specs: Mapping[Tier, TierSpec]
    loads: LoadSource | None = None


@dataclass(frozen=True)
class Edge:
    """The HTTP edge's own parts: keys and limits, the admin API, request ids."""

    # None: in-process (API tests, tools), open to the local user with no host check; the
    # ingress always builds its own from the settings (closed unless decided open at start).
    auth: Authenticator | None = None
    admin: AdminSettings = field(default_factory=AdminSettings)
    echo_request_id: bool = True  # False behind Ray Serve's proxy, which echoes it already
    metrics: GatewayMetrics | None = None  # None: a registry of its own
    polls: tuple[Poll, ...] = ()  # the edge's own steps (the shared rate limits' sync)


@dataclass(frozen=True)
class Routing:
    """The learned router's scorer; without one, `model=auto` uses the baseline rule. With
    a registry, its active version replaces the scorer live and its candidate is canaried
    (with a shadow store)."""

    scorer: ScoreFn | None = None
    training_scores: list[float] | None = None  # seeds the live share threshold's window
    version: str = "default"
    registry: RouterRegistry | None = None
    loader: Loader | None = None
    poll_s: float = 1.0
    # The step routers' registries, by the tier above large whose climb each decides.
    steps: Mapping[Tier, RouterRegistry] = field(default_factory=dict)
    canary_interval_s: float = 5.0

    def started_with(self) -> LoadedRouter | None:
        if self.scorer is None:
            return None
        return LoadedRouter(version=self.version, score=self.scorer, training_scores=self.training_scores)


@dataclass(frozen=True)
class AdapterParts:
    """LoRA adapters of the small tier: the live directory, and the fleet the admin API
    converges (no fleet: adapters are served, the admin API for them is off)."""

    directory: AdapterDirectory
    fleet: AdapterFleet | None = None
    auto_select: bool = True
    poll_s: float = 0.5


@dataclass(frozen=True)
class ShadowParts:
    """Shadow traffic: where pairs are stored and how answers are compared. The store also
    keeps answer flags; `flag_support` scores their faithfulness (None: that evaluator is off)."""

    store: Journal
    agreement: Agreement
    flag_support: SupportScorer | None = None


@dataclass(frozen=True)
class SpendParts:
    """The spend ledger and how it is written and pruned; without it, spend is counted
    (Prometheus, budgets) in memory only."""

    ledger: SpendLedger
    settings: SpendSettings = field(default_factory=SpendSettings)


@dataclass(frozen=True)
class Features:
    """The optional capabilities; each is on when its part is given. `support` and `gate`:
    the support controls (rollout modes per category, the answerability gate; live config
    `support`), either one turns them on."""

    adapters: AdapterParts | None = None
    shadow: ShadowParts | None = None
    grounder: Grounder | None = None
    support: SupportParts | None = None
    gate: Gate | None = None
    spend: SpendParts | None = None


@dataclass
class Wiring:
    """What the capabilities plug in while the gateway is built."""

    config: LiveConfig
    metrics: GatewayMetrics
    state: LiveConfigState
    labels: CategoryLabels
    admin: list[AdminGroup] = field(default_factory=list)
    routes: list = field(default_factory=list)
    background: list = field(default_factory=list)
    sinks: list[AnswerSink] = field(default_factory=list)

    def failed(self, task: str) -> None:
        self.metrics.background_failures_of(task)


def build_gateway(
    tiers: Tiers, limits: LimitSettings, *, edge: Edge = Edge(), routing: Routing = Routing(),
    features: Features = Features(), config: LiveConfig | None = None,
) -> Gateway:
    """The gateway over `tiers`, with the capabilities `features` names."""
    config = config or LiveConfig()
    metrics = edge.metrics or GatewayMetrics()
    state = LiveConfigState(config)
    directory = features.adapters.directory if features.adapters else None
    wiring = Wiring(config, metrics, state, CategoryLabels(lambda: state.config, directory))
    catalog = ModelCatalog(tiers.specs)
    poller = LoadPoller(tiers.loads or EngineLoadSource(tiers.engines), on_failure=wiring.failed)
    wiring.background.append(poller)
    wiring.background.extend(Periodic(p.step, p.interval_s, p.name, wiring.failed) for p in edge.polls)
    policies = PolicyFactory(routing.started_with(), list(tiers.specs))
    router = LiveRouter(
        policies.build(config.routing), loads=poller.snapshot, version=policies.version, metrics=metrics.router
    )
    dispatcher = Dispatcher(tiers.engines, router, metrics, config.resilience)
    auth = edge.auth or Authenticator(None, LocalRateLimiter(), access=IN_PROCESS)
    wiring.admin.append(ConfigAdmin(state))
    chooser = _adapters(features.adapters, tiers, catalog, edge, wiring)
    shadow = _shadow(features.shadow, dispatcher, directory, auth, wiring)
    flagger = _flags(features.shadow, wiring)
    _router_loop(routing, features.shadow, policies, router, wiring)
    support = _support(features, wiring)
    if features.grounder is not None:
        _grounding(features.grounder, wiring)
    spend = _spend(features.spend, list(tiers.specs), wiring)
    cascade = CascadeStage(CascadePlanner(lambda: state.config.cascade, list(tiers.specs)), metrics.cascade)
    stages = Stages(
        auth, catalog, router, dispatcher, chooser, features.grounder, support, wiring.sinks, spend, cascade,
    )
    pipeline = Pipeline(stages, config.limits or limits)
    wiring.routes.extend(admin_routes(AdminGuard(edge.admin.api_key, edge.auth), *wiring.admin))
    ops = Operations(auth, catalog, Readiness(tiers.engines), metrics, Observers(auth, edge.admin.api_key))
    http = GatewayApp(pipeline, ops, wiring.routes, wiring.background, edge.echo_request_id)
    return Gateway(
        app=http.build(), pipeline=pipeline, dispatcher=dispatcher, router=router, metrics=metrics,
        state=state, policies=policies, base_limits=limits, shadow=shadow, grounder=features.grounder,
        flags=flagger, tiers=catalog.tiers(),
    )


def _adapters(
    parts: AdapterParts | None, tiers: Tiers, catalog: ModelCatalog, edge: Edge, wiring: Wiring,
) -> AdapterChooser | None:
    if parts is None:
        return None
    parts.directory.refresh()  # serve the registry's current set from the first request
    catalog.add_cards(partial(adapter_cards, parts.directory, tiers.specs["small"].served_name))
    wiring.background.append(Periodic(parts.directory.poll, parts.poll_s, "adapter-directory", wiring.failed))
    wiring.background.append(registry_pruner(parts.directory.registry, wiring.failed))
    if parts.fleet is not None:
        changes = AdapterChanges(
            parts.directory.registry, parts.fleet, parts.directory.refresh, wiring.metrics.adapters,
            edge.admin.converge_timeout_s,
        )
        wiring.admin.append(AdapterAdmin(changes))
    return AdapterChooser(parts.directory, wiring.metrics.adapters, parts.auto_select)


def _shadow(
    parts: ShadowParts | None, dispatcher: Dispatcher, directory: AdapterDirectory | None,
    auth: Authenticator, wiring: Wiring,
) -> ShadowService | None:
    if parts is None:
        return None
    metrics = wiring.metrics
    canary = None
    if directory is not None:
        canary = CanaryMonitor(
            parts.store, directory.registry,
            on_decision=lambda d, _v, decision: metrics.shadow.canary_decision(d, decision),
        )
    service = ShadowService(
        dispatcher, parts.store, parts.agreement, metrics.shadow, wiring.config.shadow, directory, canary
    )
    wiring.routes.extend(Feedback(service, parts.agreement, metrics, auth, wiring.labels).routes())
    wiring.background.append(service)
    wiring.background.append(store_pruner(parts.store, lambda: service.config.retention, wiring.failed))
    wiring.sinks.append(ShadowSink(service, metrics))
    return service


def _flags(parts: ShadowParts | None, wiring: Wiring) -> AnswerFlagger | None:
    if parts is None:  # flags are kept in the shadow store
        return None
    flagger = AnswerFlagger(
        parts.store, wiring.metrics.flags, wiring.labels.label, wiring.config.flags, parts.flag_support
    )
    wiring.background.append(flagger)
    wiring.sinks.append(FlagSink(flagger, wiring.metrics))
    return flagger


def _router_loop(
    routing: Routing, shadow: ShadowParts | None, policies: PolicyFactory, router: LiveRouter, wiring: Wiring,
) -> None:
    """Router versions from the registry, and the candidate's canary (with a shadow store)."""
    if routing.registry is None or routing.loader is None:
        return
    state = wiring.state
    config, counters = (lambda: state.config.routing), wiring.metrics.router.canary
    canaries: list[Canary] = []
    for tier, registry in routing.steps.items():
        steps = follow_steps(registry, tier, routing.loader, policies, router, config)
        wiring.background.append(Periodic(steps.step, routing.poll_s, f"router_steps_{tier}", wiring.failed))
        wiring.admin.append(RouterAdmin(registry, steps, f"/router/steps/{tier}"))
        if shadow is not None:
            canaries.append(StepCanary(
                tier, policies.order, shadow.store, registry, steps, config, counters(tier), wiring.failed,
            ))
    versions = follow_versions(routing.registry, routing.loader, routing.started_with(), policies, router, config)
    wiring.background.append(Periodic(versions.step, routing.poll_s, "router_versions", wiring.failed))
    wiring.admin.append(RouterAdmin(routing.registry, versions))
    if shadow is not None:
        canaries.insert(0, RouterCanary(shadow.store, routing.registry, versions, config, counters(), wiring.failed))
    for canary in canaries:
        wiring.background.append(Periodic(canary.review, routing.canary_interval_s, canary.name, wiring.failed))
    if canaries:
        router.on_decision = observe_all(canaries)


def _support(features: Features, wiring: Wiring) -> SupportControls | None:
    if features.support is None and features.gate is None:
        return None
    state = wiring.state
    built = build_support(
        features.support or SupportParts(), features.gate, lambda: state.config.support,
        wiring.metrics.support, wiring.labels.label, features.shadow.store if features.shadow else None,
    )
    if built.rollout is not None:
        wiring.admin.append(RolloutAdmin(built.rollout, built.modes, lambda: state.config.support.rollout))
    wiring.background.extend(Periodic(p.step, p.interval_s, p.name, wiring.failed) for p in built.polls)
    return built.controls


def _spend(parts: SpendParts | None, tiers: list[str], wiring: Wiring) -> SpendStage:
    """Spend is always counted (prices have defaults); budgets act once live config sets them."""
    metrics = wiring.metrics.spend
    meter = SpendMeter(
        metrics, parts.ledger if parts else None, parts.settings if parts else None, on_failure=wiring.failed,
    )
    wiring.background.append(meter)
    state = wiring.state
    return SpendStage(lambda: state.config.spend, tiers, meter, metrics, wiring.labels.label)


def _grounding(grounder: Grounder, wiring: Wiring) -> None:
    # Grounded-query metrics and usage per category: the app's bounded labels.
    grounder.label_categories(wiring.labels.label)
    grounder.configure(wiring.config.grounding)
    wiring.background.extend(grounder.background())  # the KB usage journal's writer and pruner
