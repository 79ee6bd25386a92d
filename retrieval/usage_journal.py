"""The serving side of the knowledge-base usage journal (the store: retrieval/usage.py).

Every grounded query is recorded: which documents served it, or which retrieval
failure it met, and its category. The request path only appends to a bounded buffer
(`record`: never waits, never raises, drops and counts when full); a background step
writes the buffer in one transaction a second off the event loop, another prunes the
journal by age and rows. What the gateway records stays bounded however long it serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Callable

from background.failures import CountFailure, uncounted
from background.periodic import Periodic
from retrieval.config import RotSettings
from retrieval.metrics import GroundingMetrics
from retrieval.usage import QueryUsage, UsageStore

logger = logging.getLogger(__name__)


class UsageJournal:
    def __init__(
        self, store: UsageStore, settings: RotSettings, on_dropped: Callable[[int], None] = lambda n: None,
        on_failure: CountFailure = uncounted, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.store = store
        self._settings = settings
        self._pending: deque[QueryUsage] = deque()
        self._on_dropped = on_dropped  # a metric: lost records must show, not only in logs
        self._clock = clock
        self._flusher = Periodic(self.flush, settings.flush_interval_s, "kb-usage-journal", on_failure)
        self._pruner = Periodic(self.prune, settings.prune_interval_s, "kb-usage-retention", on_failure)

    def record(self, usage: QueryUsage) -> None:
        """Queue one grounded query's record; the request path's only cost."""
        if len(self._pending) >= self._settings.queue_size:
            self._on_dropped(1)
            return
        self._pending.append(usage)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write what is queued, in one transaction, off the event loop."""
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        if not batch:
            return
        try:
            await asyncio.to_thread(self.store.add, batch)
        except Exception:
            self._on_dropped(len(batch))
            raise  # counted and logged by the Periodic's failure log

    async def prune(self) -> None:
        older_than = self._clock() - timedelta(days=self._settings.retention_days)
        removed = await asyncio.to_thread(self.store.prune, older_than, self._settings.max_rows)
        if removed:
            logger.info("knowledge-base usage journal pruned: %d queries", removed)

    def start(self) -> None:
        self._flusher.start()
        self._pruner.start()

    async def stop(self) -> None:
        await self._flusher.stop()
        await self._pruner.stop()
        try:
            await self.flush()  # what was served before shutdown is still recorded
        except Exception:  # shutdown goes on: the loss is counted (on_dropped)
            logger.exception("knowledge-base usage journal: last flush failed")


def usage_journal(settings: RotSettings, metrics: GroundingMetrics, on_failure: CountFailure) -> UsageJournal:
    """The journal at `settings.usage`, its losses counted in `metrics`, the failures of its
    writer and pruner in `on_failure` (the app's background-failure counter)."""
    return UsageJournal(
        UsageStore(settings.usage), settings, on_dropped=metrics.retrieval_usage_dropped.inc, on_failure=on_failure,
    )
