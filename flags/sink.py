"""Flags on sent answers, the serving side (design note 002, phase 3): a sample of finished
answers is checked by the flag evaluators after the answer went out; flags are stored
(`FlagStore`: the shadow store) with the request id and counted.

The answer path only draws the sample and offers a job to a bounded queue (`WorkerQueue`):
a full queue drops the check and counts it; the evaluators (MiniLM included) run in a
worker thread, never on the event loop; nothing here can change, fail or delay an answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Callable

from background.workers import WorkerQueue
from flags.checker import check, evaluators
from flags.config import FlagsConfig
from flags.faithfulness import SupportScorer
from flags.metrics import FlagMetrics
from flags.store import FlagRecord, FlagStore
from flags.types import Answer, Evaluator, Passage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlagAsk:
    """A sent answer, as the flags read it."""

    request_id: str
    category: str | None  # the normalised category: the client's, else the adapter domain
    tier: str
    user_text: str  # the last user turn: what the answer answers
    text: str  # the answer sent
    passages: list[Passage] | None = None  # the grounding chunks; None = ungrounded


class AnswerFlagger:
    """The answer sink that samples sent answers for the flag evaluators."""

    def __init__(
        self, store: FlagStore, metrics: FlagMetrics, label: Callable[[str | None], str],
        config: FlagsConfig | None = None, support: SupportScorer | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._label = label  # the app's bounded category labels (a known one, else "other")
        self._support = support
        self._draw = draw
        config = config or FlagsConfig()
        # One worker: checks are a background chore, and each competes with answers for CPU.
        self.queue = WorkerQueue(config.queue_size, 1, on_failure=lambda: self._count("failed"))
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

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    def completed(self, ask: FlagAsk) -> None:
        try:
            self._offer(ask)
        except Exception:  # the answer is the client's already: a flag must not fail it
            logger.exception("flag check of request %s not queued", ask.request_id)
            self._count("failed")

    def _offer(self, ask: FlagAsk) -> None:
        config = self._config
        category = ask.category or ""
        if not config.enabled or not config.wants(category) or self._draw() >= config.sample_rate:
            return
        answer = Answer(
            request_id=ask.request_id, text=ask.text, user_text=ask.user_text, category=category,
            tier=ask.tier, passages=ask.passages,
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
        label = self._label(answer.category)
        for record in records:
            self._metrics.answer_flags.labels(label, record.kind).inc()
        self._count("failed" if checked.failed else "flagged" if records else "clean")

    def _count(self, outcome: str) -> None:
        self._metrics.flag_checks.labels(outcome).inc()
