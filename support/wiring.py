"""Builds the support controls from their parts (the gateway's assembly calls it).

What runs periodically comes back as `Poll`s and the rollout as objects: the app runs the
polls on its own poller and serves the rollout's admin routes, so support knows neither.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from background.periodic import Poll
from gate.verdict import Gate
from support.config import SupportConfig
from support.controls import Label, SupportControls
from support.metrics import SupportMetrics
from support.ratings import RatingsJournal
from support.rollout import Rollout
from support.rollout_modes import RolloutModes
from support.rollout_state import RolloutBook, RolloutEvent


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
    modes: RolloutModes
    rollout: Rollout | None = None  # None: no state file, so no changes (and no admin routes)
    polls: list[Poll] = field(default_factory=list)


def build_support(
    parts: SupportParts, gate: Gate | None, config: Callable[[], SupportConfig], metrics: SupportMetrics,
    labels: Label, journal: RatingsJournal | None,
) -> SupportWiring:
    book = RolloutBook(parts.rollout_state) if parts.rollout_state is not None else None
    modes = RolloutModes(book, lambda: config().rollout, metrics)
    modes.load()
    wiring = SupportWiring(SupportControls(config, modes, metrics, labels, gate), modes)
    wiring.polls.append(Poll(modes.step, parts.poll_s, "rollout_modes"))
    if book is None:
        return wiring

    def counted(event: RolloutEvent) -> None:
        metrics.rollout_changes.labels(event.category, event.to_mode, event.reason).inc()

    rollout = Rollout(book, journal, on_change=counted)

    async def review() -> None:
        if await asyncio.to_thread(rollout.review, config().rollout):
            await modes.step()

    wiring.rollout = rollout
    wiring.polls.append(Poll(review, parts.review_s, "rollout_review"))
    return wiring
