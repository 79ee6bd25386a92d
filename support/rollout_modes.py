"""This replica's view of the rollout state file: the mode each category is served in.

Polled off the request path (as the router versions are); the file is read again only
when it was replaced (inode, mtime, size), so a poll is a `stat` most of the time.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Callable

from support.config import Mode, RolloutConfig
from support.metrics import SupportMetrics
from support.rollout_state import RolloutBook, RolloutState

Stamp = tuple[int, int, int] | None


class RolloutModes:
    def __init__(
        self, book: RolloutBook | None, config: Callable[[], RolloutConfig],
        metrics: SupportMetrics | None = None,
    ) -> None:
        self._book = book
        self._config = config
        self._metrics = metrics
        self._state = RolloutState()
        self._stamp: Stamp = None

    def mode(self, category: str | None) -> Mode:
        entry = self._state.categories.get(category) if category else None
        return entry.mode if entry else self._config().initial_mode(category)

    def known(self) -> set[str]:
        """Categories ops named (config, changes): safe as metric labels."""
        return {*self._config().categories, *self._state.categories}

    def load(self) -> None:
        """Read the state file now (at start: serve its modes from the first request)."""
        if self._book is not None:
            stamp = _stamp(self._book.path)
            if stamp != self._stamp:
                self._state, self._stamp = self._book.state(), stamp

    async def step(self) -> None:
        await asyncio.to_thread(self.load)
        if self._metrics is not None:
            for category in self.known():
                self._metrics.mode(category, self.mode(category))


def _stamp(path: Path) -> Stamp:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
