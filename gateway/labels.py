"""Metric label values taken from clients, mapped onto a known set.

Each label value is a time series of its own: `metadata.category` is whatever a client
sends, so used as is, a client sending random categories would grow the registry without
bound. A category is known when the gateway's own state names it: a live adapter domain,
a grounding domain, a routing override, a shadow rule's category, a category the answer
flags check. Anything else is `other`.
"""

from __future__ import annotations

from typing import Callable

from adapters.directory import AdapterDirectory
from gateway.live_config import LiveConfig
from text.category import normalise_category

OTHER = "other"


class CategoryLabels:
    """Read on every call: a live config push or an adapter activation applies at once."""

    def __init__(self, config: Callable[[], LiveConfig], adapters: AdapterDirectory | None = None) -> None:
        self._config = config
        self._adapters = adapters

    def known(self) -> frozenset[str]:
        config = self._config()
        names = {*config.grounding.domains, *config.routing.learned.thresholds.category_overrides}
        names.update(rule.category for rule in config.shadow.rules if rule.category)
        names.update(config.flags.categories)
        names.update(config.spend.category_tier_budgets)  # their spend must be its own, not 'other''s
        if self._adapters is not None:
            names.update(self._adapters.active())
        return frozenset(name.lower() for name in names)

    def label(self, category: str | None) -> str:
        """The label of a client's category: itself (lower case) when known, "" when none."""
        if not category:
            return ""
        value = normalise_category(category) or ""
        return value if value in self.known() else OTHER
