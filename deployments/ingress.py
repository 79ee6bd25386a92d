"""The ingress deployment: serves the gateway's Starlette app over Ray Serve HTTP."""

from __future__ import annotations

from typing import Any, Mapping

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp

from deployments.handle_client import HandleEngine
from gateway.assembly import build_gateway
from gateway.catalog import TierSpec
from gateway.live_config import LiveConfig
from gateway.settings import LimitSettings


@serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class Ingress:
    def __init__(
        self,
        small: DeploymentHandle,
        large: DeploymentHandle,
        tiers: Mapping[str, TierSpec],
        limits: LimitSettings,
    ) -> None:
        self._configured = False
        engines = {"small": HandleEngine(small), "large": HandleEngine(large)}
        # Ray Serve's proxy already echoes x-request-id (and passes it in): don't add a second.
        self._gateway = build_gateway(  # type: ignore[arg-type]
            engines, tiers, limits, echo_request_id=False
        )

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self._gateway.reconfigure(user_config, strict=not self._configured)
        self._configured = True

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return self._gateway.app
