"""The support controls around routing (design notes 000 and 002), for both endpoints,
streamed or not:

1. the answerability gate, before routing: chitchat and messages without enough context
   get the hand-off text (`x-gateway-gate`), no tier is called;
2. the rollout mode of the request's category (the client's `metadata.category`, else
   the adapter domain routing picks): `off` gets the hand-off, `draft` and `auto` are
   answered and say so (`x-gateway-mode`); drafts are always journaled for feedback.

The gate runs before routing, so it knows the client's category only; the adapter domain
exists once routing chose it. A client category whose mode is `off` is answered without
routing at all. The edge calls, in order: `check` (a refusal, before any work),
`before_routing`, then `after_routing`; a `Handoff` is a finished answer it renders.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from gate.verdict import Gate, GateVerdict
from support.config import SupportConfig
from support.errors import GateUnavailable
from support.metrics import SupportMetrics
from support.rollout_modes import RolloutModes

logger = logging.getLogger(__name__)

OTHER = "other"  # the metric label of a category nobody named (as the edge's own labels)
Label = Callable[[str | None], str]  # a client category -> a bounded metric label ("" for none)


@dataclass(frozen=True)
class Handoff:
    """A finished answer no tier is called for: the configured hand-off text."""

    text: str
    headers: dict[str, str]  # {"x-gateway-gate": label} or {"x-gateway-mode": "off"}


@dataclass(frozen=True)
class SupportAsk:
    user_text: str  # the user's own words (what routing reads too)
    category: str | None  # the client's, already normalised by the edge
    gate: bool | None  # the client's `gate` switch: None follows the config


class SupportControls:
    def __init__(
        self, config: Callable[[], SupportConfig], modes: RolloutModes, metrics: SupportMetrics,
        labels: Label, gate: Gate | None = None, clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._config = config
        self._modes = modes
        self._metrics = metrics
        self._labels = labels
        self._gate = gate
        self._clock = clock
        self._warned = False

    def check(self, ask: SupportAsk) -> None:
        """Refuse before any work: the client asked for a gate this gateway does not have."""
        if ask.gate is True and self._gate is None:
            raise GateUnavailable()

    async def before_routing(self, ask: SupportAsk) -> Handoff | None:
        """The gate's hand-off, or the hand-off of a client category whose mode is off."""
        config = self._config()  # one config for the gate and its hand-off
        verdict = await self._classify(ask, config)
        if verdict is not None and verdict.gated:
            return Handoff(config.handoff_text, {"x-gateway-gate": verdict.label})
        if ask.category is not None and self._modes.mode(ask.category) == "off":
            return self._off(ask.category, config)
        return None

    def after_routing(self, category: str | None) -> str | Handoff:
        """The mode the request is served in (`category`: the client's, else the adapter
        domain), counted; or the hand-off when that mode is off."""
        mode = self._modes.mode(category)
        if mode == "off":
            return self._off(category, self._config())
        self._metrics.rollout_requests.labels(self._label(category), mode).inc()
        return mode

    # ---- the answerability gate ------------------------------------------------------

    async def _classify(self, ask: SupportAsk, config: SupportConfig) -> GateVerdict | None:
        if not (config.gate.enabled if ask.gate is None else ask.gate):
            return None
        if self._gate is None:
            self.check(ask)  # asked for: refused (the edge normally checked already)
            self._warn_once()
            return None
        started = self._clock()
        try:
            # CPU work (an embedding and a classifier): off the event loop, which streams.
            verdict = await asyncio.to_thread(
                self._gate.classify, ask.user_text, ask.category, config.gate.thresholds
            )
        except Exception:  # a broken gate must not refuse service: the request is answered
            logger.exception("answerability gate failed; answering the request")
            self._metrics.gate_decisions.labels(self._label(ask.category), "error").inc()
            return None
        self._metrics.gate_latency.observe(self._clock() - started)
        self._metrics.gate_decisions.labels(self._label(ask.category), verdict.label).inc()
        return verdict

    def _warn_once(self) -> None:
        if not self._warned:
            logger.warning("support.gate.enabled is set but no answerability classifier is loaded")
            self._warned = True

    # ---- rollout -------------------------------------------------------------------

    def _off(self, category: str | None, config: SupportConfig) -> Handoff:
        self._metrics.rollout_requests.labels(self._label(category), "off").inc()
        return Handoff(config.handoff_text, {"x-gateway-mode": "off"})

    def _label(self, category: str | None) -> str:
        """A bounded metric label: categories ops named, else the gateway's known ones."""
        if category is None:
            return ""
        if category in self._modes.known() or category in self._config().gate.thresholds.categories:
            return category
        label = self._labels(category)
        return label if label else OTHER
