"""Cost arithmetic, the top and cheapest tiers, budget periods and standings (spend/)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from gateway.live_config import LiveConfig
from spend.budgets import budget_of, spent_category_tiers, spent_tiers, standing
from spend.config import Budget, SpendConfig, TierPrice
from spend.errors import BudgetExceeded
from spend.periods import hour_of, period_end, period_start
from spend.prices import PriceBook

PRICES = {
    "small": TierPrice(input_per_million=0.1, output_per_million=0.3),
    "large": TierPrice(input_per_million=1.0, output_per_million=3.0),
    "remote": TierPrice(input_per_million=5.0, output_per_million=15.0),
}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_cost_is_tokens_times_price_per_million():
    book = PriceBook(PRICES, ["small", "large"])
    assert book.cost("small", 1_000_000, 0) == pytest.approx(0.1)
    assert book.cost("large", 2_000, 500) == pytest.approx((2_000 * 1.0 + 500 * 3.0) / 1e6)
    charge = book.charge("small", 2_000, 500)
    assert charge.usd == pytest.approx((2_000 * 0.1 + 500 * 0.3) / 1e6)
    assert charge.top_usd == pytest.approx(book.cost("large", 2_000, 500))  # large is the top of these two


def test_top_and_cheapest_among_the_served_tiers_by_name():
    assert PriceBook(PRICES, ["large", "remote", "small"]).cheapest_first == ("small", "large", "remote")
    assert PriceBook(PRICES, ["small", "large"]).top == "large"  # remote priced but not served
    flipped = {"small": PRICES["remote"], "large": PRICES["small"]}
    assert PriceBook(flipped, ["small", "large"]).cheapest_first == ("large", "small")


def test_an_unpriced_tier_costs_nothing_and_ties_keep_tier_order():
    book = PriceBook({}, ["small", "large"])
    assert book.cost("large", 10**6, 10**6) == 0.0 and book.charge("small", 5, 5).top_usd == 0.0
    assert book.cheapest_first == ("small", "large")


def test_periods_are_utc_calendar_days_and_months():
    moment = at(2025, 12, 31, 23, 59)
    assert hour_of(moment) == at(2025, 12, 31, 23)
    assert period_start("day", moment) == at(2025, 12, 31)
    assert period_end("day", moment) == at(2026, 1, 1)
    assert period_start("month", moment) == at(2025, 12, 1)
    assert period_end("month", moment) == at(2026, 1, 1)
    assert period_end("month", at(2024, 1, 31, 12)) == at(2024, 2, 1)
    assert period_end("month", at(2024, 2, 29, 12)) == at(2024, 3, 1)


def test_a_key_budget_by_id_then_name_then_the_default():
    config = SpendConfig(
        budgets={"k1": Budget(hard_usd=1), "team": Budget(soft_usd=2)}, default_budget=Budget(hard_usd=9),
    )
    assert budget_of(config, "k1", "team").hard_usd == 1
    assert budget_of(config, "k2", "team").soft_usd == 2
    assert budget_of(config, "k3", "other").hard_usd == 9
    assert budget_of(SpendConfig(), "k3", "other") is None


def test_standing_against_soft_and_hard_budgets():
    budget = Budget(period="day", soft_usd=1.0, hard_usd=2.0)
    now = at(2025, 3, 10, 18)
    assert standing(budget, 0.99, now, "app") == "within"
    assert standing(budget, 1.0, now, "app") == "soft"
    with pytest.raises(BudgetExceeded) as caught:
        standing(budget, 2.0, now, "app")
    exc = caught.value
    assert exc.resets_at == at(2025, 3, 11) and exc.retry_after_s == 6 * 3600
    assert "daily hard budget of $2.00" in exc.message and "2025-03-11T00:00:00+00:00" in exc.message
    assert "'app'" in exc.message


@pytest.mark.parametrize("raw, problem", [
    ({"spend": {"budgets": {"k": {"period": "day"}}}}, "needs hard_usd, soft_usd or both"),
    ({"spend": {"budgets": {"k": {"hard_usd": 1, "soft_usd": 2}}}}, "soft_usd above hard_usd"),
    ({"spend": {"budgets": {"k": {"hard_usd": 1, "period": "week"}}}}, "period"),
    ({"spend": {"prices": {"Large Tier": {"input_per_million": 1}}}}, "prices"),
    ({"spend": {"prices": {"large": {"input_per_million": -1}}}}, "greater than or equal to 0"),
    ({"spend": {"prices": {"large": {"input": 1}}}}, "Extra inputs are not permitted"),
    ({"spend": {"tier_budgets": {"large": {"usd": 0}}}}, "greater than 0"),
    ({"spend": {"tier_budgets": {"large": {"period": "week", "usd": 1}}}}, "period"),
])
def test_bad_spend_config_is_refused(raw, problem):
    with pytest.raises(ValidationError) as caught:
        LiveConfig.parse(raw)
    assert problem in str(caught.value)


def test_default_prices_make_small_cheaper_than_large():
    book = PriceBook(SpendConfig().prices, ["small", "large"])
    assert book.cheapest_first == ("small", "large") and book.cost("small", 100, 100) < book.cost("large", 100, 100)


def test_a_tier_constraint_picks_its_first_tier_that_can_serve():
    from router.decision import TierConstraint

    constraint = TierConstraint(tiers=("small", "large"), reason="budget")
    assert constraint.pick(["large", "small"]) == "small"
    assert constraint.pick(["large"]) == "large"  # the cheapest cannot serve it: the next cheapest
    assert TierConstraint(tiers=("remote",), reason="budget").pick(["small"]) is None


def test_a_tier_is_spent_once_its_periods_spend_reaches_its_budget():
    config = SpendConfig.model_validate({"tier_budgets": {
        "large": {"period": "day", "usd": 10}, "remote": {"period": "month", "usd": 100},
    }})
    spend = {("large", "day"): 10.0, ("remote", "month"): 99.99, ("small", "day"): 1e6}
    assert spent_tiers(config, lambda tier, period: spend.get((tier, period), 0.0)) == {"large"}
    assert spent_tiers(SpendConfig(), lambda tier, period: 1e9) == frozenset()  # no tier budgets


def test_a_categorys_tier_is_spent_once_that_categorys_spend_on_it_reaches_its_budget():
    config = SpendConfig.model_validate({"category_tier_budgets": {" Billing ": {"large": {"usd": 5}}}})
    spend = {("billing", "large", "day"): 5.0, ("refund", "large", "day"): 1e6}

    def spent(category, tier, period):
        return spend.get((category, tier, period), 0.0)

    assert spent_category_tiers(config, "billing", spent) == {"large"}  # the key was normalised
    assert spent_category_tiers(config, "refund", spent) == frozenset()  # no budget of its own
