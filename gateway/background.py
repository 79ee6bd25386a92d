"""A step run periodically on the app's event loop, for the app's lifetime (pollers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

logger = logging.getLogger(__name__)


class Periodic:
    """Runs `step` every `interval_s` until stopped; a failing step is retried next time.

    Each failure is counted (`on_failure(name)`, a metric); the first of a streak is
    logged at WARNING and the recovery at INFO: a poller that fails every 200 ms must
    be visible without writing five lines a second.
    """

    def __init__(
        self, step: Callable[[], Awaitable[object]], interval_s: float, name: str,
        on_failure: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._step = step
        self._interval_s = interval_s
        self._name = name
        self._on_failure = on_failure
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval_s)

    async def run_once(self) -> None:
        try:
            await self._step()
        except Exception as exc:  # keep going: a restarting peer must not stop the poller
            self._on_failure(self._name)
            if not self._failing:
                logger.warning("%s failed (retried every %.1f s): %r", self._name, self._interval_s, exc)
            self._failing = True
            return
        if self._failing:
            logger.info("%s recovered", self._name)
        self._failing = False
