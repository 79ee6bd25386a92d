"""Which adapter serves a request the client did not pin one for.

Auto traffic the router sent to the small tier (and `small:auto`) gets its domain's
adapter: the client's category when it names a live domain, else the embedding
selector's closest domain, else none (the base model). A pinned adapter
(`small:<domain>[@version]`) is resolved up front with `resolve`, before any work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from adapters.directory import AdapterDirectory, LiveAdapter
from adapters.metrics import AdapterMetrics


@dataclass(frozen=True)
class AdapterAsk:
    pinned_tier: bool  # the client named a tier (`small`, `large`, `small:auto`…)
    select: bool  # the model was `small:auto`: select as for auto traffic routed small
    tier: str  # the tier the request goes to (pinned, or routed)
    category: str | None  # the client's category, already normalised by the edge
    text: str  # the user's words, for the selector


class AdapterChooser:
    def __init__(
        self, directory: AdapterDirectory, metrics: AdapterMetrics, auto_select: bool = True
    ) -> None:
        self._directory = directory
        self._metrics = metrics
        self._auto_select = auto_select  # off: only `small:auto` selects

    def resolve(self, domain: str, version: str | None = None) -> LiveAdapter:
        """A pinned adapter; raises `AdapterNotServed` for one the directory does not serve."""
        return self._directory.resolve(domain, version)

    async def choose(self, ask: AdapterAsk) -> LiveAdapter | None:
        """The adapter for a request with no pinned adapter; None: the base model."""
        if (ask.pinned_tier and not ask.select) or ask.tier != "small":
            return None
        if not self._auto_select and not ask.select:
            return None
        # A client-supplied category that names a live domain beats the embedding guess.
        hinted = self._directory.active().get(ask.category) if ask.category else None
        if hinted is not None:
            self._metrics.selection.labels("category").inc()
            return hinted
        # The selector's encoder takes ~15 ms on CPU: off the event loop, which streams. With
        # no active domain there is nothing to encode, and the thread hop alone costs 1-2 ms
        # of wall time on a busy 2-core host.
        if self._directory.selects():
            selection = await asyncio.to_thread(self._directory.select, ask.text)
        else:
            selection = self._directory.select(ask.text)
        self._metrics.similarity.observe(selection.similarity)
        self._metrics.selection.labels("embedding" if selection.adapter else "base").inc()
        return selection.adapter

    def served(self, adapter: LiveAdapter) -> None:
        """Count a request the adapter serves (pinned or chosen), once, before dispatch."""
        self._metrics.requests.labels(adapter.domain, adapter.version).inc()
