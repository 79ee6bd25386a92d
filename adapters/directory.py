"""The ingress's live view of the adapter registry: resolution, selection, listing.

`AdapterDirectory.refresh()` re-reads the registry's state file (a few hundred bytes)
and rebuilds its tables only when the generation changed; the ingress calls `poll()` on a
timer, so requests never touch the disk. Resolution and selection then read memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from adapters.domains import DomainChoice, DomainSelector
from adapters.errors import AdapterNotServed
from adapters.manifest import AdapterManifest
from adapters.registry import AdapterRegistry, RegistryState
from engines.types import AdapterSpec
from text.embedding import Embedder

logger = logging.getLogger(__name__)


class LiveAdapter(BaseModel):
    domain: str
    version: str
    path: str
    status: str  # active | candidate | available

    def spec(self) -> AdapterSpec:
        return AdapterSpec(name=self.version, path=self.path, domain=self.domain)


class Selection(BaseModel):
    adapter: LiveAdapter | None
    similarity: float


@dataclass(frozen=True)
class _View:
    """One registry generation's tables, replaced whole."""

    generation: int
    versions: dict[str, LiveAdapter]
    active: dict[str, LiveAdapter]
    selector: DomainSelector


class AdapterDirectory:
    def __init__(
        self,
        registry: AdapterRegistry,
        embed: Embedder | None,
        embedder_kind: str,
        min_similarity: float,
    ) -> None:
        self._registry = registry
        self._embed = embed
        self._kind = embedder_kind
        self._min_similarity = min_similarity
        self._view = _View(-1, {}, {}, DomainSelector({}, min_similarity))
        # The poller and an admin call may refresh at once: one at a time, so an older
        # registry generation read first can never replace a newer one.
        self._refreshing = threading.Lock()

    @property
    def generation(self) -> int:
        return self._view.generation

    @property
    def registry(self) -> AdapterRegistry:
        return self._registry

    def refresh(self) -> bool:
        """Re-read the registry; True when something changed."""
        with self._refreshing:
            state = self._registry.state()
            if state.generation == self.generation:
                return False
            return self._rebuild(state, self._registry.versions())

    async def poll(self) -> None:
        """One step of the ingress's poller: keeps the directory on the registry's
        generation (the read is off the event loop)."""
        if await asyncio.to_thread(self.refresh):
            logger.info("adapters: registry generation %d", self.generation)

    def _rebuild(self, state: RegistryState, manifests: list[AdapterManifest]) -> bool:
        """Install the tables of `state`; an older generation than the one served is ignored."""
        if state.generation < self._view.generation:
            logger.warning("adapters: registry generation %d is older than %d, ignored",
                           state.generation, self._view.generation)
            return False
        versions: dict[str, LiveAdapter] = {}
        centroids = {}
        for manifest in manifests:
            entry = state.domains.get(manifest.domain)
            status = "available"
            if entry and entry.active == manifest.version:
                status = "active"
                vector = manifest.centroid(self._kind)
                if vector is not None:
                    centroids[manifest.domain] = np.asarray(vector, dtype=np.float32)
            elif entry and entry.candidate == manifest.version:
                status = "candidate"
            versions[manifest.version] = LiveAdapter(
                domain=manifest.domain, version=manifest.version,
                path=str(self._registry.version_dir(manifest.version)), status=status,
            )
        # One snapshot swapped whole: a concurrent reader sees the old tables or the new, never a mix.
        active = {a.domain: a for a in versions.values() if a.status == "active"}
        self._view = _View(state.generation, versions, active, DomainSelector(centroids, self._min_similarity))
        return True

    def active(self) -> dict[str, LiveAdapter]:
        """The active version of each domain, by domain."""
        return dict(self._view.active)

    def versions(self) -> dict[str, LiveAdapter]:
        """Every stored version (active, candidate, available), by version."""
        return dict(self._view.versions)

    def resolve(self, domain: str, version: str | None = None) -> LiveAdapter:
        """`small:<domain>` pins the active version, `small:<domain>@<version>` any stored one."""
        view = self._view
        if version is not None:
            found = view.versions.get(version)
            if found is None or found.domain != domain:
                raise AdapterNotServed(f"Adapter version '{version}' of domain '{domain}' does not exist.")
            return found
        found = view.active.get(domain)
        if found is None:
            known = ", ".join(sorted(view.active)) or "none"
            raise AdapterNotServed(f"No active adapter for domain '{domain}'. Active domains: {known}.")
        return found

    def spec_for(self, domain: str, version: str | None) -> tuple[str, AdapterSpec] | None:
        """(version, spec) of the domain's active version or of `version`; None if unknown
        (shadow targets: a missing one is skipped, not an error)."""
        view = self._view
        adapter = view.versions.get(version) if version else view.active.get(domain)
        if adapter is None or adapter.domain != domain:
            return None
        return adapter.version, adapter.spec()

    def candidate_of(self, domain: str) -> str | None:
        for adapter in self._view.versions.values():
            if adapter.domain == domain and adapter.status == "candidate":
                return adapter.version
        return None

    def selects(self) -> bool:
        """Whether `select` has anything to choose from (else it answers None at once)."""
        return self._embed is not None and bool(self._view.active)

    def select(self, text: str) -> Selection:
        """The auto path: the closest active domain, or None (the base model answers)."""
        view = self._view
        if self._embed is None or not view.active:
            return Selection(adapter=None, similarity=0.0)
        choice: DomainChoice = view.selector.select(self._embed.embed([text])[0])
        adapter = view.active.get(choice.domain) if choice.domain else None
        return Selection(adapter=adapter, similarity=choice.similarity)
