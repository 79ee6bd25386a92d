"""Wires the HTTP edge together from its seams; used by the ingress and by API tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from starlette.applications import Starlette

from engines.protocol import Engine
from gateway.catalog import ModelCatalog, TierSpec
from gateway.health import Readiness
from gateway.http import GatewayApp
from gateway.live_config import LiveConfig
from gateway.metrics import GatewayMetrics
from gateway.routing import Router
from gateway.serving import CompletionService
from gateway.settings import LimitSettings
from router.baseline import BaselinePolicy
from router.decision import Tier


@dataclass
class Gateway:
    app: Starlette
    service: CompletionService
    router: Router
    metrics: GatewayMetrics

    def apply(self, config: LiveConfig) -> None:
        self.router.replace_policy(BaselinePolicy(config.routing))


def build_gateway(
    engines: Mapping[Tier, Engine],
    tiers: Mapping[Tier, TierSpec],
    limits: LimitSettings,
    config: LiveConfig | None = None,
    metrics: GatewayMetrics | None = None,
    echo_request_id: bool = True,
) -> Gateway:
    config = config or LiveConfig()
    metrics = metrics or GatewayMetrics()
    catalog = ModelCatalog(tiers)
    router = Router(BaselinePolicy(config.routing))
    service = CompletionService(engines, catalog, router, metrics)
    app = GatewayApp(
        service, catalog, Readiness(engines), metrics, limits, echo_request_id
    ).build()
    return Gateway(app=app, service=service, router=router, metrics=metrics)
