"""Failures of background work (pollers, pruners, load reports, adapter sync): counted,
and logged without flooding the log.

A task that fails on every 200 ms tick must be visible without writing five lines a
second: the first failure of a streak is a WARNING (with its traceback), then one reminder
a minute with the count, and the recovery an INFO line. Every failure is counted: the
ingress into `gateway_background_failures_total`, an engine replica into Ray's metrics
(`deployments.failure_log.ray_failure_counter`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

CountFailure = Callable[[str], None]  # called with the task's name, once per failure

REMIND_EVERY_S = 60.0


def uncounted(task: str) -> None:
    pass


class FailureLog:
    def __init__(
        self,
        task: str,
        logger: logging.Logger,
        count: CountFailure = uncounted,
        remind_every_s: float = REMIND_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._task = task
        self._logger = logger
        self._count = count
        self._remind_every_s = remind_every_s
        self._clock = clock
        self.streak = 0  # failures in a row
        self._logged_at = 0.0

    def failed(self, exc: BaseException) -> None:
        self._count(self._task)
        self.streak += 1
        now = self._clock()
        if self.streak == 1:
            self._logger.warning(
                "%s failed (retried; logged again once a minute while failing): %r",
                self._task, exc, exc_info=exc,
            )
        elif now - self._logged_at >= self._remind_every_s:
            self._logger.warning(
                "%s still failing: %d failures in a row, latest: %r", self._task, self.streak, exc
            )
        else:
            return
        self._logged_at = now

    def succeeded(self) -> None:
        if self.streak:
            self._logger.info("%s recovered after %d failures", self._task, self.streak)
        self.streak = 0


def log_if_it_dies(task: asyncio.Task[None], name: str, logger: logging.Logger, count: CountFailure) -> None:
    """A task meant to run for the replica's life ends only on a bug: say so."""

    def ended(done: asyncio.Task[None]) -> None:
        if done.cancelled() or done.exception() is None:
            return
        count(name)
        logger.error("%s stopped for good: %r", name, done.exception(), exc_info=done.exception())

    task.add_done_callback(ended)
