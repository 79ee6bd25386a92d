"""Fire-and-forget jobs: a bounded queue drained by a bounded number of workers.

The request path only ever calls `offer`, which never waits: when the queue is full
the job is dropped and counted. A failing job is counted and forgotten; it can never
fail or slow the answer beyond the cost of one `put_nowait`. Both bounds can be changed
live (`configure`). Shadow's mirror and journal and the answer flags' checks run on one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


class WorkerQueue:
    def __init__(
        self, queue_size: int = 64, concurrency: int = 2, on_failure: Callable[[], None] = lambda: None
    ) -> None:
        # Unbounded asyncio queue, bounded by `offer`: the bound can then change live.
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self.queue_size = queue_size
        self.concurrency = concurrency
        self._workers: list[asyncio.Task[None]] = []
        self._started = False
        self.dropped = 0
        self.failed = 0
        self.completed = 0
        self._on_failure = on_failure  # a metric: a full disk must show, not only in logs

    def offer(self, job: Job) -> bool:
        """Queue a job if there is room; never blocks the caller."""
        if self._queue.qsize() >= self.queue_size:
            self.dropped += 1
            return False
        if self._started and len(self._workers) != self.concurrency:
            self._scale()  # after a live change of `concurrency`
        self._queue.put_nowait(job)
        return True

    def configure(self, queue_size: int, concurrency: int) -> None:
        """Live bounds; workers follow on the next `offer` (this may run off the event loop)."""
        self.queue_size = queue_size
        self.concurrency = concurrency

    def start(self) -> None:
        self._started = True
        self._scale()

    def _scale(self) -> None:
        self._workers = [w for w in self._workers if not w.done()]
        while len(self._workers) < self.concurrency:
            self._workers.append(asyncio.get_running_loop().create_task(self._work(len(self._workers))))
        # Surplus workers finish their current job and exit (see `_work`).

    async def stop(self) -> None:
        self._started = False
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def drain(self) -> None:
        """Wait until every queued job has run (tests, shutdown)."""
        await self._queue.join()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def _work(self, index: int) -> None:
        while index < self.concurrency:
            job = await self._queue.get()
            try:
                await job()
                self.completed += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a background failure must never reach the request path
                self.failed += 1
                self._on_failure()
                logger.warning("shadow job failed", exc_info=True)
            finally:
                self._queue.task_done()
