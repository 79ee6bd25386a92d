"""Keeps one small-tier replica's loaded adapters equal to the registry's served set.

Runs as a task on the replica's event loop: re-reads the registry state every poll
interval and, when its generation moved, loads what is new. A replica that starts
later converges the same way on its first pass. A version that fails to load is
reported (the admin API probes before activating, so this is rare) and retried at the
next generation.

Versions that stop being served are not removed: vLLM's adapter cache evicts the least
recently used one beyond `max_cpu_loras`. Removing an adapter that in-flight requests
still use blocked the swap for the length of those requests (~9 s under an 8-way
load on CPU), and keeping the previous version resident makes a rollback instant.
"""

from __future__ import annotations

import asyncio
import logging
import time

from adapters.registry import AdapterRegistry
from background.failures import CountFailure, FailureLog, uncounted
from engines.errors import EngineError
from engines.protocol import AdapterHost
from engines.types import AdapterLoadError, AdapterReport, AdapterSpec

# Ray Serve forwards the "ray.serve" logger's records to the replica's log.
logger = logging.getLogger("ray.serve")


class AdapterSync:
    def __init__(
        self, registry: AdapterRegistry, engine: AdapterHost, interval_s: float,
        count_failure: CountFailure = uncounted,
    ) -> None:
        self._registry = registry
        self._engine = engine
        self._interval = interval_s
        self.report = AdapterReport()
        # Counted as task "adapter-sync"; logged on the first failure, then once a minute.
        self.failures = FailureLog("adapter-sync", logger, count_failure)

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)

    async def run_once(self) -> None:
        try:
            await self.sync_once()
        except Exception as exc:  # a bad state file must not stop future syncs
            self.failures.failed(exc)
        else:
            self.failures.succeeded()

    async def sync_once(self) -> bool:
        state = await asyncio.to_thread(self._registry.state)
        if state.generation == self.report.generation:
            return False
        started = time.perf_counter()
        wanted = {ref.version: ref for ref in await asyncio.to_thread(self._registry.served, state)}
        # One engine round trip for the resident set: under load each waits for a step.
        loaded = await self._engine.adapters()
        failed = []
        for name, ref in wanted.items():
            if name in loaded:
                continue
            try:
                await self._engine.add_adapter(AdapterSpec(name=name, path=ref.path, domain=ref.domain))
                loaded.add(name)
            except EngineError as exc:
                logger.error("adapter %s failed to load: %s", name, exc.message)
                failed.append(AdapterLoadError(name=name, message=exc.message))
        self.report = AdapterReport(generation=state.generation, loaded=sorted(loaded), failed=failed)
        logger.info(
            "adapters at generation %d in %.3fs: %s",
            state.generation, time.perf_counter() - started, ", ".join(self.report.loaded) or "none",
        )
        return True
