"""Builds the support controls from their parts (used by `build_gateway`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from starlette.routing import Route

from gate.verdict import Gate
from gateway.admin_auth import AdminGuard
from gateway.background import Periodic
from gateway.catalog import ModelCatalog
from gateway.failures import CountFailure
from gateway.labels import CategoryLabels
from gateway.rollout import Rollout
from gateway.rollout_admin import RolloutAdmin
from gateway.rollout_modes import RolloutModes
from gateway.rollout_state import RolloutBook, RolloutEvent
from gateway.support_config import SupportConfig
from gateway.support_controls import SupportControls
from gateway.support_metrics import SupportMetrics
from shadow.store import ShadowStore


@dataclass(frozen=True)
class SupportParts:
    """The support controls' shared state: the rollout state file every ingress replica
    reads (None: each category has its config mode, and no change can be made)."""

    rollout_state: Path | None = None
    poll_s: float = 1.0
    review_s: float = 30.0


@dataclass
class SupportWiring:
    controls: SupportControls
    routes: list[Route] = field(default_factory=list)
    background: list[Periodic] = field(default_factory=list)


def build_support(
    parts: SupportParts, gate: Gate | None, config: Callable[[], SupportConfig], catalog: ModelCatalog,
    metrics: SupportMetrics, labels: CategoryLabels, guard: AdminGuard, store: ShadowStore | None,
    failed: CountFailure,
) -> SupportWiring:
    book = RolloutBook(parts.rollout_state) if parts.rollout_state is not None else None
    modes = RolloutModes(book, lambda: config().rollout, metrics)
    modes.load()
    wiring = SupportWiring(SupportControls(config, modes, catalog, metrics, labels, gate))
    wiring.background.append(Periodic(modes.step, parts.poll_s, "rollout_modes", failed))
    if book is None:
        return wiring

    def counted(event: RolloutEvent) -> None:
        metrics.rollout_changes.labels(event.category, event.to_mode, event.reason).inc()

    rollout = Rollout(book, store, on_change=counted)

    async def review() -> None:
        if await asyncio.to_thread(rollout.review, config().rollout):
            await modes.step()

    wiring.routes.extend(RolloutAdmin(rollout, modes, lambda: config().rollout, guard).routes())
    wiring.background.append(Periodic(review, parts.review_s, "rollout_review", failed))
    return wiring
