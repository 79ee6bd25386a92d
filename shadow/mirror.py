"""Fire-and-forget mirroring: a bounded queue drained by a bounded number of workers.

The primary path only ever calls `offer`, which never waits: when the queue is full
the job is dropped and counted. A failing shadow job is counted and forgotten; it can
never fail or slow the primary response beyond the cost of one `put_nowait`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Mirror:
    def __init__(self, queue_size: int = 64, concurrency: int = 2) -> None:
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self._concurrency = concurrency
        self._workers: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.failed = 0
        self.completed = 0

    def offer(self, job: Job) -> bool:
        """Queue a shadow job if there is room; never blocks the caller."""
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def start(self) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._concurrency)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def drain(self) -> None:
        """Wait until every queued job has run (tests, shutdown)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await job()
                self.completed += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a shadow failure must never reach the primary path
                self.failed += 1
                logger.warning("shadow job failed", exc_info=True)
            finally:
                self._queue.task_done()
