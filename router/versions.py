"""Follows the router registry on this replica: the active version routes `auto`, the
candidate is scored beside it (the router canary).

Polled off the request path; a version is loaded on a worker thread and swapped in
whole, so requests in flight finish with the scorer they started with and no request
fails over a swap. A version that fails to load keeps the previous one serving and is
counted as a failure of the poller (retried on the next poll).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

from router.loading import LoadedRouter
from router.registry import RouterRegistry, RouterState

Loader = Callable[[Path, str], LoadedRouter]


class RouterVersions:
    def __init__(
        self, registry: RouterRegistry, load: Loader, default: LoadedRouter | None,
        on_change: Callable[[], None],
    ) -> None:
        self._registry = registry
        self._load = load
        self._default = default  # served while no version is active (the started-with model)
        self._on_change = on_change
        self.active: LoadedRouter | None = default
        self.candidate: LoadedRouter | None = None
        self._generation: int | None = None

    async def step(self) -> None:
        state = await asyncio.to_thread(self._registry.state)
        if state.generation == self._generation:
            return
        active, candidate = await asyncio.to_thread(self._resolve, state)
        changed = (active, candidate) != (self.active, self.candidate)
        self.active, self.candidate, self._generation = active, candidate, state.generation
        if changed:
            self._on_change()

    def _resolve(self, state: RouterState) -> tuple[LoadedRouter | None, LoadedRouter | None]:
        active = self._default if state.active is None else self._get(state.active, self.active)
        candidate = None if state.candidate is None else self._get(state.candidate, self.candidate)
        return active, candidate

    def _get(self, version: str, current: LoadedRouter | None) -> LoadedRouter:
        if current is not None and current.version == version:
            return current
        for loaded in (self.active, self.candidate):  # a promoted candidate is already loaded
            if loaded is not None and loaded.version == version:
                return loaded
        return self._load(self._registry.path_of(version), version)
