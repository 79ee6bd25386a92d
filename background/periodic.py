"""A step run periodically on the app's event loop, for the app's lifetime (pollers)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from background.failures import CountFailure, FailureLog, uncounted

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Poll:
    """A step to run every `interval_s` for the app's lifetime, handed to the app to run
    (as a `Periodic`, its failures counted with the app's); a failure is retried next time."""

    step: Callable[[], Awaitable[None]]
    interval_s: float
    name: str


class Periodic:
    """Runs `step` every `interval_s` until stopped; a failing step is retried next time,
    its failures counted and logged through a `FailureLog`."""

    def __init__(
        self, step: Callable[[], Awaitable[object]], interval_s: float, name: str,
        on_failure: CountFailure = uncounted,
    ) -> None:
        self._step = step
        self._interval_s = interval_s
        self._failures = FailureLog(name, logger, on_failure)
        self._name = name
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
            self._failures.failed(exc)
            return
        self._failures.succeeded()
