"""The answer sinks: a finished answer handed to each capability that wants it, in its own
terms (shadow's `Served`, the flags' answer). Each returns at once and never raises: the
answer is already the client's."""

from __future__ import annotations

import logging
from typing import Sequence

from engines.types import ToolCall
from flags.sink import AnswerFlagger, FlagAsk
from flags.types import Passage
from gateway.metrics import GatewayMetrics
from gateway.state import RequestState
from retrieval.grounding import retrieval_query
from router.asks import PLAIN
from shadow.rules import Served
from shadow.service import ShadowService

logger = logging.getLogger(__name__)


class ShadowSink:
    """The journal and the mirror to shadow targets (shadow.service)."""

    def __init__(self, service: ShadowService, metrics: GatewayMetrics) -> None:
        self.service = service
        self._metrics = metrics

    def completed(self, state: RequestState, text: str, latency_s: float, calls: Sequence[ToolCall] = ()) -> None:
        try:
            if self.service.wants(state.mode):
                self._hand_over(state, text, latency_s, calls)
        except Exception:  # the answer is already the client's: shadowing must not fail it
            logger.exception("shadowing request %s failed", state.request_id)
            self._metrics.shadow.shadow_dropped("error")

    def _hand_over(self, state: RequestState, text: str, latency_s: float, calls: Sequence[ToolCall]) -> None:
        decision = state.decision
        assert decision is not None
        served = Served(
            request_id=state.request_id, tier=decision.tier, reason=decision.reason,
            domain=state.domain, version=decision.adapter_version, category=state.query.category,
            mode=state.mode, rollout_category=state.rollout_category, client_tags=client_tags(state),
            key_id=state.key.id if state.key is not None else None,
            ask_tags=state.query.asks.tags() if state.query.asks != PLAIN else {},
        )
        self.service.completed(served, state.generation, state.query.text, text, latency_s, calls)


def client_tags(state: RequestState) -> dict[str, str]:
    """The client's own tags of the request: `user`, and `metadata` (string values, as OpenAI allows)."""
    tags = {f"metadata.{k}": v for k, v in (state.body.metadata or {}).items() if isinstance(v, str)}
    if state.body.user:
        tags["user"] = state.body.user
    return tags


class FlagSink:
    """A sample of answers checked by the flag evaluators (flags.sink), off the request."""

    def __init__(self, flagger: AnswerFlagger, metrics: GatewayMetrics) -> None:
        self.flagger = flagger
        self._metrics = metrics

    def completed(self, state: RequestState, text: str, latency_s: float, calls: Sequence[ToolCall] = ()) -> None:
        try:  # the customer reads the text: the flags check it, not tool arguments
            if self.flagger.enabled:  # off: no ask built per request
                self.flagger.completed(_flag_ask(state, text))
        except Exception:  # the answer is already the client's: flagging must not fail it
            logger.exception("flagging request %s failed", state.request_id)
            self._metrics.flags.flag_checks.labels("failed").inc()


def _flag_ask(state: RequestState, text: str) -> FlagAsk:
    assert state.decision is not None
    hits = state.context.hits if state.context is not None else []
    return FlagAsk(
        request_id=state.request_id, category=state.category, tier=state.decision.tier,
        user_text=retrieval_query(state.generation.messages, state.query.text), text=text,
        passages=[Passage(id=h.chunk.id, text=h.chunk.text) for h in hits] or None,
    )
