"""Wires the HTTP edge together from its seams; used by the ingress and by API tests."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import ValidationError

from starlette.applications import Starlette

from engines.protocol import Engine
from gateway.adapters import AdapterDirectory, directory_poller
from gateway.admin import AdapterFleet, AdminApi
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.grounding import Grounder
from gateway.shadow_edge import ShadowEdge
from shadow.agreement import Agreement
from shadow.canary import CanaryMonitor
from shadow.service import ShadowService
from shadow.store import ShadowStore
from gateway.catalog import ModelCatalog, TierSpec
from gateway.health import Readiness
from gateway.http import GatewayApp
from gateway.admin_auth import AdminGuard
from gateway.config_admin import ConfigAdmin
from gateway.live_config import LiveConfig, LiveConfigState, describe
from gateway.loads import EngineLoadSource, LoadPoller, LoadSource
from gateway.metrics import GatewayMetrics
from gateway.routing import Router
from gateway.serving import CompletionService
from gateway.settings import AdminSettings, LimitSettings
from router.baseline import BaselinePolicy
from router.config import RoutingConfig
from router.learned import LearnedPolicy, ScoreFn
from router.policy import RoutingPolicy
from router.thresholds import ShareThreshold
from router.decision import Tier

logger = logging.getLogger(__name__)

class PolicyFactory:
    """Builds the policy a live config asks for. The share window outlives rebuilds."""

    def __init__(self, scorer: ScoreFn | None, training_scores: list[float] | None = None) -> None:
        self._scorer = scorer
        self._share: ShareThreshold | None = None
        self._training_scores = training_scores

    def build(self, config: RoutingConfig) -> RoutingPolicy:
        if config.policy == "baseline" or self._scorer is None:
            if config.policy == "learned":
                logger.warning("no router model loaded: routing with the baseline rule")
            return BaselinePolicy(config.baseline)
        window = config.learned.thresholds.window
        if self._share is None or self._share.window != window:
            self._share = ShareThreshold(window, self._training_scores)
        return LearnedPolicy(self._scorer, config.learned, self._share)


@dataclass
class Gateway:
    app: Starlette
    service: CompletionService
    router: Router
    metrics: GatewayMetrics

    http: GatewayApp
    state: LiveConfigState
    policies: PolicyFactory
    base_limits: LimitSettings
    shadow: ShadowEdge | None = None
    grounder: Grounder | None = None

    @property
    def config(self) -> LiveConfig:
        return self.state.config

    def apply(self, config: LiveConfig) -> None:
        self.router.replace_policy(self.policies.build(config.routing))
        self.service.configure(config.resilience)
        self.http.limits = config.limits or self.base_limits
        if self.shadow is not None:
            self.shadow.service.configure(config.shadow)
        if self.grounder is not None:
            self.grounder.configure(config.grounding)
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


def build_gateway(
    engines: Mapping[Tier, Engine],
    tiers: Mapping[Tier, TierSpec],
    limits: LimitSettings,
    config: LiveConfig | None = None,
    metrics: GatewayMetrics | None = None,
    loads: LoadSource | None = None,
    scorer: ScoreFn | None = None,
    training_scores: list[float] | None = None,
    echo_request_id: bool = True,
    adapters: AdapterDirectory | None = None,
    fleet: AdapterFleet | None = None,
    admin: AdminSettings | None = None,
    auto_select_adapters: bool = True,
    adapter_poll_s: float = 0.5,
    auth: Authenticator | None = None,
    shadow_store: ShadowStore | None = None,
    agreement: Agreement | None = None,
    grounder: Grounder | None = None,
) -> Gateway:
    config = config or LiveConfig()
    metrics = metrics or GatewayMetrics()
    catalog = ModelCatalog(tiers)
    poller = LoadPoller(loads or EngineLoadSource(engines))
    policies = PolicyFactory(scorer, training_scores)
    router = Router(policies.build(config.routing), loads=poller.snapshot)
    service = CompletionService(
        engines, catalog, router, metrics, adapters, auto_select_adapters, config.resilience
    )
    admin = admin or AdminSettings()
    guard = AdminGuard(admin.api_key, auth)
    state = LiveConfigState(config)
    routes, background = ConfigAdmin(state, guard).routes(), []
    if adapters is not None:
        adapters.refresh()  # serve the registry's current set from the first request
        catalog.add_cards(adapters.cards)
        background.append(directory_poller(adapters, adapter_poll_s))
        if fleet is not None:
            api = AdminApi(adapters, fleet, metrics, guard, admin.converge_timeout_s)
            routes.extend(api.routes())
    auth = auth or Authenticator(None, LocalRateLimiter())
    shadow = None
    if shadow_store is not None and agreement is not None:
        shadow = _shadow_edge(engines, shadow_store, agreement, metrics, config, auth, adapters)
        routes.extend(shadow.routes())
        background.append(shadow.service)
    http = GatewayApp(
        service, catalog, Readiness(engines), metrics, config.limits or limits, poller, auth,
        echo_request_id, extra_routes=routes, background=background, answers=shadow, grounder=grounder,
    )
    if grounder is not None:
        grounder.configure(config.grounding)
    return Gateway(
        app=http.build(), service=service, router=router, metrics=metrics, http=http,
        state=state, policies=policies, base_limits=limits, shadow=shadow, grounder=grounder,
    )


def _shadow_edge(
    engines: Mapping[Tier, Engine], store: ShadowStore, agreement: Agreement, metrics: GatewayMetrics,
    config: LiveConfig, auth: Authenticator, adapters: AdapterDirectory | None,
) -> ShadowEdge:
    canary = None
    if adapters is not None:
        canary = CanaryMonitor(store, adapters.registry, on_decision=lambda d, _v, decision: metrics.canary_decision(d, decision))
    service = ShadowService(engines, store, agreement, metrics, config.shadow, adapters, canary)
    return ShadowEdge(service, agreement, metrics, auth, adapters)
