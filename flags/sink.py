"""Flags on sent answers, the gateway's side (design note 002, phase 3): a sample of
finished answers is checked by the flag evaluators (flags/) after the answer went out;
flags are stored in the shadow store with the request id and counted.

The answer path only draws the sample and offers a job to a bounded queue (`Mirror`):
a full queue drops the check and counts it; the evaluators (MiniLM included) run in a
worker thread, never on the event loop; nothing here can change, fail or delay an answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Callable

from flags.checker import check, evaluators
from flags.config import FlagsConfig
from flags.faithfulness import SupportScorer
from flags.types import Answer, Evaluator, Passage
from gateway.grounding import Context, retrieval_query
from gateway.labels import CategoryLabels
from gateway.metrics import GatewayMetrics
from gateway.serving import Plan
from shadow.mirror import Mirror
from shadow.store import FlagRecord, ShadowStore

logger = logging.getLogger(__name__)


class AnswerFlagger:
    """The `AnswerSink` that samples answers for the flag evaluators."""

    def __init__(
        self, store: ShadowStore, metrics: GatewayMetrics, categories: CategoryLabels,
        config: FlagsConfig | None = None, support: SupportScorer | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._categories = categories
        self._support = support
        self._draw = draw
        config = config or FlagsConfig()
        # One worker: checks are a background chore, and each competes with answers for CPU.
        self.queue = Mirror(config.queue_size, 1, on_failure=lambda: self._count("failed"))
        self.configure(config)

    def configure(self, config: FlagsConfig) -> None:
        self._config = config
        self._evaluators = evaluators(config, self._support)
        self.queue.configure(config.queue_size, 1)

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    # ---- the answer path: never waits, never raises -------------------------------

    def completed(self, plan: Plan, text: str, latency_s: float, context: Context | None = None) -> None:
        try:
            self._offer(plan, text, context)
        except Exception:  # the answer is the client's already: a flag must not fail it
            logger.exception("flag check of request %s not queued", plan.request_id)
            self._count("failed")

    def _offer(self, plan: Plan, text: str, context: Context | None) -> None:
        config = self._config
        category = plan.query.category or plan.domain or ""
        if not config.enabled or not config.wants(category) or self._draw() >= config.sample_rate:
            return
        answer = Answer(
            request_id=plan.request_id, text=text, user_text=retrieval_query(plan), category=category,
            tier=plan.decision.tier, passages=passages(context),
        )
        chosen = self._evaluators  # the config in force when the answer was served
        if not self.queue.offer(lambda: self._check(answer, chosen)):
            self._count("dropped")

    # ---- the worker -----------------------------------------------------------------

    async def _check(self, answer: Answer, chosen: list[Evaluator]) -> None:
        checked = await asyncio.to_thread(check, answer, chosen)
        records = [
            FlagRecord(request_id=answer.request_id, category=answer.category, tier=answer.tier,
                       kind=flag.kind, detail=flag.detail, score=flag.score)
            for flag in checked.flags
        ]
        if records:
            await asyncio.to_thread(self._store.add_flags, records)  # raises: counted as failed
        label = self._categories.label(answer.category)
        for record in records:
            self._metrics.answer_flags.labels(label, record.kind).inc()
        self._count("failed" if checked.failed else "flagged" if records else "clean")

    def _count(self, outcome: str) -> None:
        self._metrics.flag_checks.labels(outcome).inc()


def passages(context: Context | None) -> list[Passage] | None:
    """The grounding chunks of a grounded answer; None for an ungrounded one."""
    if context is None or not context.hits:
        return None
    return [Passage(id=hit.chunk.id, text=hit.chunk.text) for hit in context.hits]
