"""Wires the HTTP edge together from its seams; used by the ingress and by API tests."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Mapping

from pydantic import ValidationError

from starlette.applications import Starlette

from engines.types import Tier
from engines.protocol import Engine
from adapters.directory import AdapterDirectory
from gateway.admin import AdapterFleet, AdminApi
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.grounding import Grounder
from gateway.answer_flags import AnswerFlagger
from gateway.shadow_edge import ShadowEdge
from gateway.rollout_admin import RolloutAdmin
from support.wiring import SupportParts, build_support
from gate.verdict import Gate
from flags.faithfulness import SupportScorer
from shadow.agreement import Agreement
from shadow.canary import CanaryMonitor
from shadow.service import ShadowService
from shadow.store import ShadowStore
from gateway.catalog import ModelCatalog, TierSpec, adapter_cards
from gateway.health import Readiness
from gateway.http import AnswerSinks, GatewayApp
from gateway.labels import CategoryLabels
from gateway.admin_auth import AdminGuard
from gateway.config_admin import ConfigAdmin
from gateway.live_config import LiveConfig, LiveConfigState, describe
from gateway.loads import EngineLoadSource, LoadPoller, LoadSource
from gateway.metrics import GatewayMetrics
from gateway.retention import registry_pruner, store_pruner
from router.live import LiveRouter, PolicyFactory, follow_versions
from gateway.serving import CompletionService
from gateway.settings import AdminSettings, LimitSettings
from router.learned import ScoreFn
from router.loading import LoadedRouter
from router.registry import RouterRegistry
from gateway.background import Periodic
from gateway.router_admin import RouterAdmin
from router.canary_loop import RouterCanary
from router.versions import Loader

logger = logging.getLogger(__name__)


@dataclass
class Gateway:
    app: Starlette
    service: CompletionService
    router: LiveRouter
    metrics: GatewayMetrics

    http: GatewayApp
    state: LiveConfigState
    policies: PolicyFactory
    base_limits: LimitSettings
    shadow: ShadowEdge | None = None
    grounder: Grounder | None = None
    flags: AnswerFlagger | None = None

    @property
    def config(self) -> LiveConfig:
        return self.state.config

    def apply(self, config: LiveConfig) -> None:
        self.router.replace_policy(self.policies.build(config.routing), self.policies.version)
        self.service.configure(config.resilience)
        self.http.limits = config.limits or self.base_limits
        if self.shadow is not None:
            self.shadow.service.configure(config.shadow)
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
        except ValidationError as exc:
            if strict:
                raise
            message = describe(exc)
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

    auth: Authenticator | None = None  # None: open, limited per replica
    admin: AdminSettings = field(default_factory=AdminSettings)
    echo_request_id: bool = True  # False behind Ray Serve's proxy, which echoes it already


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

    store: ShadowStore
    agreement: Agreement
    flag_support: SupportScorer | None = None


def build_gateway(
    tiers: Tiers,
    limits: LimitSettings,
    *,
    edge: Edge = Edge(),
    routing: Routing = Routing(),
    adapters: AdapterParts | None = None,
    shadow: ShadowParts | None = None,
    grounder: Grounder | None = None,
    config: LiveConfig | None = None,
    metrics: GatewayMetrics | None = None,
    support: SupportParts | None = None,
    gate: Gate | None = None,
) -> Gateway:
    """The gateway over `tiers`; each optional capability is on when its part is given.

    `support` and `gate`: the support controls (rollout modes per category, the
    answerability gate; live config `support`); either one turns them on."""
    config = config or LiveConfig()
    metrics = metrics or GatewayMetrics()
    catalog = ModelCatalog(tiers.specs)
    failed = metrics.background_failures_of
    poller = LoadPoller(tiers.loads or EngineLoadSource(tiers.engines), on_failure=failed)
    policies = PolicyFactory(routing.started_with())
    router = LiveRouter(
        policies.build(config.routing), loads=poller.snapshot, version=policies.version, metrics=metrics.router
    )
    directory = adapters.directory if adapters else None
    service = CompletionService(
        tiers.engines, catalog, router, metrics, directory, adapters.auto_select if adapters else True,
        config.resilience,
    )
    guard = AdminGuard(edge.admin.api_key, edge.auth)
    state = LiveConfigState(config)
    routes, background = ConfigAdmin(state, guard).routes(), []
    if adapters is not None:
        adapters.directory.refresh()  # serve the registry's current set from the first request
        catalog.add_cards(partial(adapter_cards, adapters.directory, tiers.specs["small"].served_name))
        background.append(Periodic(adapters.directory.poll, adapters.poll_s, "adapter-directory", failed))
        background.append(registry_pruner(adapters.directory.registry, failed))
        if adapters.fleet is not None:
            api = AdminApi(adapters.directory, adapters.fleet, metrics, guard, edge.admin.converge_timeout_s)
            routes.extend(api.routes())
    auth = edge.auth or Authenticator(None, LocalRateLimiter())
    shadow_edge, answers, flagger = None, None, None
    if shadow is not None:
        categories = CategoryLabels(lambda: state.config, directory)
        shadow_edge = _shadow_edge(tiers.engines, shadow, metrics, config, auth, directory, categories)
        routes.extend(shadow_edge.routes())
        background.append(shadow_edge.service)
        shadow_service = shadow_edge.service
        background.append(store_pruner(shadow.store, lambda: shadow_service.config.retention, failed))
        flagger = AnswerFlagger(shadow.store, metrics, categories, config.flags, shadow.flag_support)
        background.append(flagger)
        answers = AnswerSinks([shadow_edge, flagger])
    versions = None
    if routing.registry is not None and routing.loader is not None:
        versions = follow_versions(
            routing.registry, routing.loader, routing.started_with(), policies, router,
            lambda: state.config.routing,
        )
        background.append(Periodic(versions.step, routing.poll_s, "router_versions", failed))
        routes.extend(RouterAdmin(routing.registry, versions, guard).routes())
        if shadow is not None:
            canary = RouterCanary(
                shadow.store, routing.registry, versions, lambda: state.config.routing, metrics.router, failed
            )
            router.on_decision = canary.observe
            background.append(Periodic(canary.review, routing.canary_interval_s, "router_canary", failed))
    controls = None
    if support is not None or gate is not None:
        wiring = build_support(
            support or SupportParts(), gate, lambda: state.config.support, metrics.support,
            CategoryLabels(lambda: state.config, directory).label, shadow.store if shadow else None,
        )
        controls = wiring.controls
        if wiring.rollout is not None:
            admin = RolloutAdmin(
                wiring.rollout, wiring.modes, lambda: state.config.support.rollout, guard
            )
            routes.extend(admin.routes())
        background.extend(Periodic(p.step, p.interval_s, p.name, failed) for p in wiring.polls)
    if grounder is not None:
        # Grounded-query metrics and usage per category: the app's bounded labels.
        grounder.label_categories(CategoryLabels(lambda: state.config, directory).label)
        background.extend(grounder.background())  # the KB usage journal's writer and pruner
    http = GatewayApp(
        service, catalog, Readiness(tiers.engines), metrics, config.limits or limits, poller, auth,
        edge.echo_request_id, extra_routes=routes, background=background, answers=answers,
        grounder=grounder, support=controls,
    )
    if grounder is not None:
        grounder.configure(config.grounding)
    return Gateway(
        app=http.build(), service=service, router=router, metrics=metrics, http=http,
        state=state, policies=policies, base_limits=limits, shadow=shadow_edge, grounder=grounder,
        flags=flagger,
    )


def _shadow_edge(
    engines: Mapping[Tier, Engine], shadow: ShadowParts, metrics: GatewayMetrics,
    config: LiveConfig, auth: Authenticator, adapters: AdapterDirectory | None,
    categories: CategoryLabels,
) -> ShadowEdge:
    canary = None
    if adapters is not None:
        canary = CanaryMonitor(
            shadow.store, adapters.registry,
            on_decision=lambda d, _v, decision: metrics.canary_decision(d, decision),
        )
    service = ShadowService(engines, shadow.store, shadow.agreement, metrics, config.shadow, adapters, canary)
    return ShadowEdge(service, shadow.agreement, metrics, auth, categories)
