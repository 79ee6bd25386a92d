"""Background pruning: what the gateway records stays bounded however long it serves.

- the shadow store: rows older than the live `shadow.retention.days`, beyond its
  `max_rows` per table, and the WAL checkpointed;
- the adapter registry: versions past the rollback window that are neither active nor
  candidate (`AdapterRegistry.prune`, also `adapters prune`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Callable

from adapters.registry import AdapterRegistry
from background.periodic import Periodic
from background.failures import CountFailure
from shadow.config import RetentionConfig
from shadow.journal import Journal

logger = logging.getLogger(__name__)
REGISTRY_PRUNE_S = 3600.0


def store_pruner(
    store: Journal, retention: Callable[[], RetentionConfig], on_failure: CountFailure,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> Periodic:
    async def step() -> None:
        config = retention()  # read each time: the live config may have changed it
        removed = await asyncio.to_thread(store.prune, clock() - timedelta(days=config.days), config.max_rows)
        if any(removed.values()):
            logger.info("shadow store pruned: %s", removed)

    return Periodic(step, retention().interval_s, "shadow-retention", on_failure)


def registry_pruner(registry: AdapterRegistry, on_failure: CountFailure) -> Periodic:
    async def step() -> None:
        removed = await asyncio.to_thread(registry.prune)
        if removed:
            logger.info("adapter versions past the rollback window removed: %s", ", ".join(removed))

    return Periodic(step, REGISTRY_PRUNE_S, "adapter-prune", on_failure)
