"""The support controls around routing (design notes 000 and 002), for both endpoints,
streamed or not:

1. the answerability gate, before routing: chitchat and messages without enough context
   get the hand-off text (`x-gateway-gate`), no tier is called;
2. the rollout mode of the request's category (the client's `metadata.category`, else
   the adapter domain routing picks): `off` gets the hand-off, `draft` and `auto` are
   answered and say so (`x-gateway-mode`); drafts are always journaled for feedback.

The gate runs before routing, so it knows the client's category only; the adapter domain
exists once routing chose it. A client category whose mode is `off` is answered without
routing at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Awaitable, Callable

from starlette.responses import Response

from gate.verdict import Gate, GateVerdict
from gateway.catalog import ModelCatalog
from gateway.errors import InvalidRequest
from gateway.handoff import handoff
from gateway.labels import OTHER, CategoryLabels
from gateway.protocol import ChatCompletionRequest, CompletionRequest
from gateway.rollout_modes import RolloutModes
from gateway.serving import Plan
from gateway.support_config import SupportConfig, category_key
from gateway.support_metrics import SupportMetrics

logger = logging.getLogger(__name__)

Body = ChatCompletionRequest | CompletionRequest
PlanFor = Callable[[Body, str], Awaitable[Plan]]


class SupportControls:
    def __init__(
        self, config: Callable[[], SupportConfig], modes: RolloutModes, catalog: ModelCatalog,
        metrics: SupportMetrics, labels: CategoryLabels, gate: Gate | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._config = config
        self._modes = modes
        self._catalog = catalog
        self._metrics = metrics
        self._labels = labels
        self._gate = gate
        self._clock = clock
        self._warned = False

    async def route(self, body: Body, request_id: str, plan_for: PlanFor) -> Plan | Response:
        config = self._config()  # one config for the whole request
        self._catalog.resolve(body.model)  # an unknown model is still a 404, never a hand-off
        client = category_key(body.category())
        verdict = await self._classify(body, client, config)
        if verdict is not None and verdict.gated:
            return handoff(body, request_id, config.handoff_text, {"x-gateway-gate": verdict.label})
        if client is not None and self._modes.mode(client) == "off":
            return self._off(body, request_id, client, config)
        plan = await plan_for(body, request_id)
        category = client or category_key(plan.domain)
        mode = self._modes.mode(category)
        if mode == "off":
            return self._off(body, request_id, category, config)
        self._metrics.rollout_requests.labels(self._label(category), mode).inc()
        return replace(plan, mode=mode, rollout_category=category)

    # ---- the answerability gate ------------------------------------------------------

    async def _classify(self, body: Body, category: str | None, config: SupportConfig) -> GateVerdict | None:
        if not (config.gate.enabled if body.gate is None else body.gate):
            return None
        if self._gate is None:
            return self._no_gate(requested=body.gate is True)
        started = self._clock()
        try:
            # CPU work (an embedding and a classifier): off the event loop, which streams.
            verdict = await asyncio.to_thread(
                self._gate.classify, user_text(body), category, config.gate.thresholds
            )
        except Exception:  # a broken gate must not refuse service: the request is answered
            logger.exception("answerability gate failed; answering the request")
            self._metrics.gate_decisions.labels(self._label(category), "error").inc()
            return None
        self._metrics.gate_latency.observe(self._clock() - started)
        self._metrics.gate_decisions.labels(self._label(category), verdict.label).inc()
        return verdict

    def _no_gate(self, requested: bool) -> None:
        if requested:
            raise InvalidRequest(
                "gate was requested but this gateway has no answerability classifier loaded.",
                param="gate", code="gate_unavailable",
            )
        if not self._warned:
            logger.warning("support.gate.enabled is set but no answerability classifier is loaded")
            self._warned = True
        return None

    # ---- rollout -------------------------------------------------------------------

    def _off(self, body: Body, request_id: str, category: str | None, config: SupportConfig) -> Response:
        self._metrics.rollout_requests.labels(self._label(category), "off").inc()
        return handoff(body, request_id, config.handoff_text, {"x-gateway-mode": "off"})

    def _label(self, category: str | None) -> str:
        """A bounded metric label: categories ops named, else the gateway's known ones."""
        if category is None:
            return ""
        if category in self._modes.known() or category in self._config().gate.thresholds.categories:
            return category
        label = self._labels.label(category)
        return label if label else OTHER


def user_text(body: Body) -> str:
    """What the gate reads: the user's own words (what routing reads too)."""
    if isinstance(body, ChatCompletionRequest):
        return "\n".join(m.text() for m in body.messages if m.role == "user")
    return body.text()
