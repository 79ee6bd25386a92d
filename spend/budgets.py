"""Budgets: which budget is a key's and where its spend stands against it; which tiers have
spent theirs. Pure: the spend is handed in (the meter's running totals), the clock too."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Literal, Mapping

from spend.config import Budget, Period, SpendConfig, TierBudget
from spend.errors import BudgetExceeded
from spend.periods import period_end

Standing = Literal["within", "soft"]
ADJECTIVE = {"day": "daily", "month": "monthly"}


def budget_of(config: SpendConfig, key_id: str, key_name: str) -> Budget | None:
    """The key's own budget (by id, else by name), else the default one."""
    return config.budgets.get(key_id) or config.budgets.get(key_name) or config.default_budget


def standing(budget: Budget, spent_usd: float, now: datetime, key_name: str) -> Standing:
    """`soft` once the soft budget is spent; raises BudgetExceeded once the hard one is."""
    if budget.hard_usd is not None and spent_usd >= budget.hard_usd:
        resets = period_end(budget.period, now)
        raise BudgetExceeded(
            f"Key '{key_name}' has spent ${spent_usd:.4f} of its {ADJECTIVE[budget.period]} hard budget of "
            f"${budget.hard_usd:.2f}; its requests are refused until the budget resets at "
            f"{resets.isoformat(timespec='seconds')}.",
            resets_at=resets, retry_after_s=(resets - now).total_seconds(),
        )
    if budget.soft_usd is not None and spent_usd >= budget.soft_usd:
        return "soft"
    return "within"


def spent_tiers(config: SpendConfig, spent: Callable[[str, Period], float]) -> frozenset[str]:
    """The tiers whose budget (`tier_budgets`) is spent this period: `auto` routes below them."""
    return _spent(config.tier_budgets, spent)


def spent_category_tiers(
    config: SpendConfig, category: str, spent: Callable[[str, str, Period], float],
) -> frozenset[str]:
    """The tiers whose budget for this category (`category_tier_budgets`) is spent this period."""
    return _spent(config.category_tier_budgets.get(category, {}), lambda tier, period: spent(category, tier, period))


def _spent(budgets: Mapping[str, TierBudget], spent: Callable[[str, Period], float]) -> frozenset[str]:
    return frozenset(tier for tier, budget in budgets.items() if spent(tier, budget.period) >= budget.usd)
