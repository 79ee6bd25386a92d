"""The answer sinks: a finished answer handed to each capability that wants it, in its own
terms (shadow's `Served`, the flags' answer). Each returns at once and never raises: the
answer is already the client's."""

from __future__ import annotations

import logging

from gateway.metrics import GatewayMetrics
from gateway.state import RequestState
from shadow.rules import Served
from shadow.service import ShadowService

logger = logging.getLogger(__name__)


class ShadowSink:
    """The journal and the mirror to shadow targets (shadow.service)."""

    def __init__(self, service: ShadowService, metrics: GatewayMetrics) -> None:
        self.service = service
        self._metrics = metrics

    def completed(self, state: RequestState, text: str, latency_s: float) -> None:
        try:
            self._hand_over(state, text, latency_s)
        except Exception:  # the answer is already the client's: shadowing must not fail it
            logger.exception("shadowing request %s failed", state.request_id)
            self._metrics.shadow_dropped("error")

    def _hand_over(self, state: RequestState, text: str, latency_s: float) -> None:
        decision = state.decision
        assert decision is not None
        served = Served(
            request_id=state.request_id, tier=decision.tier, reason=decision.reason,
            domain=state.domain, version=decision.adapter_version, category=state.query.category,
            mode=state.mode, rollout_category=state.rollout_category,
        )
        self.service.completed(served, state.generation, state.query.text, text, latency_s)
