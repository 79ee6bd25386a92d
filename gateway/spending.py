"""The spend stage: a key's budget checked before any work (a hard budget spent: 429
budget_exceeded; a soft one: `auto` constrained to the cheapest tier), the tiers whose own
budget is spent (`auto` routes below them), and each answer's cost charged after it, from
the usage the client is sent (spend/)."""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from engines.types import Usage
from gateway.state import RequestState
from router.decision import TierConstraint
from spend.budgets import budget_of, spent_category_tiers, spent_tiers, standing
from spend.config import SpendConfig
from spend.errors import BudgetExceeded
from spend.meter import SpendMeter
from spend.metrics import SpendMetrics
from spend.prices import PriceBook

logger = logging.getLogger(__name__)
BUDGET = "budget"  # the route reason of a request the soft budget sent to the cheapest tier
TIER_BUDGET = "tier_budget"  # the route reason of a request moved below a tier whose budget is spent


class SpendStage:
    def __init__(
        self, config: Callable[[], SpendConfig], tiers: Sequence[str], meter: SpendMeter, metrics: SpendMetrics,
        label: Callable[[str | None], str],
    ) -> None:
        self._config = config  # read per request: a live push applies to the next one
        self._tiers = tuple(tiers)
        self._meter = meter
        self._metrics = metrics
        self._label = label  # the category's bounded label (the ledger's and the counters')
        self._book: tuple[SpendConfig, PriceBook] | None = None

    def prices(self) -> PriceBook:
        config = self._config()
        if self._book is None or self._book[0] is not config:
            self._book = (config, PriceBook(config.prices, self._tiers))
        return self._book[1]

    def check(self, state: RequestState) -> None:
        """Before admission: refuse a key whose hard budget is spent; constrain `auto` for a
        key over its soft one to the cheapest tier that can serve the request (a pinned model
        still goes where it is pinned); note the tiers whose budget is spent, for `auto`."""
        config = self._config()
        if state.target.tier is None and (config.tier_budgets or config.category_tier_budgets):
            state.spent_tiers = spent_tiers(config, self._meter.tier_spent) | spent_category_tiers(
                config, self._label(state.category), self._meter.category_tier_spent,
            )
        key = state.key
        budget = budget_of(config, key.id, key.name) if key is not None else None
        if key is None or budget is None:
            return
        try:
            over = standing(budget, self._meter.spent(key.id, budget.period), self._meter.now(), key.name)
        except BudgetExceeded:
            self._metrics.budget_actions.labels("refused").inc()
            raise
        if over == "soft" and state.target.tier is None:
            self._metrics.budget_actions.labels("cheapest").inc()
            state.constraint = TierConstraint(tiers=self.prices().cheapest_first, reason=BUDGET)

    def moved(self) -> None:
        """A request `auto` routed below a tier whose budget is spent."""
        self._metrics.budget_actions.labels(TIER_BUDGET).inc()

    def charge(self, state: RequestState, usage: Usage) -> None:
        """After the answer (a cut stream too): never raises, the answer is the client's."""
        try:
            if state.decision is None:
                return
            served = state.decision.tier
            # A cascade's passed-over answers at their own tier's price, the rest at the served tier's.
            parts = state.cascade.parts(served, usage) if state.cascade is not None else [(served, usage)]
            key, label = state.key, self._label(state.category)
            for tier, part in parts:
                charge = self.prices().charge(tier, part.prompt_tokens, part.completion_tokens)
                self._meter.record(
                    charge, key.id if key is not None else "", key.name if key is not None else "", label,
                )
        except Exception:
            logger.exception("charging the spend of request %s failed", state.request_id)
