"""Live load of the tiers, polled in the background so routing never waits on it.

The router reads the last snapshot synchronously; the poller refreshes it every
`interval_s` (200 ms by default; the routing issue asks for at most 250 ms).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Mapping

from engines.types import Tier
from engines.protocol import Engine
from background.periodic import Periodic
from background.failures import CountFailure, uncounted
from router.decision import TierLoad


LoadSource = Callable[[], Awaitable[Mapping[Tier, TierLoad]]]


class EngineLoadSource:
    """Asks each tier's engine directly (one replica per tier: in-process and tests)."""

    def __init__(self, engines: Mapping[Tier, Engine]) -> None:
        self._engines = dict(engines)

    async def __call__(self) -> Mapping[Tier, TierLoad]:
        loads = await asyncio.gather(*(e.load() for e in self._engines.values()))
        return {
            tier: TierLoad(running=load.running, waiting=load.waiting)
            for tier, load in zip(self._engines, loads)
        }


class LoadPoller:
    def __init__(
        self, source: LoadSource, interval_s: float = 0.2, stale_after_s: float = 2.0,
        on_failure: CountFailure = uncounted,
    ) -> None:
        self._source = source
        self._interval_s = interval_s
        self._stale_after_s = stale_after_s
        self._snapshot: Mapping[Tier, TierLoad] = {}
        self._updated = 0.0
        self._task = Periodic(self.refresh, interval_s, "load-poller", on_failure)

    def snapshot(self) -> Mapping[Tier, TierLoad]:
        """The latest loads; empty when stale, so a stuck poller never pins a shift."""
        if time.monotonic() - self._updated > self._stale_after_s:
            return {}
        return self._snapshot

    async def refresh(self) -> None:
        self._snapshot = await self._source()
        self._updated = time.monotonic()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
