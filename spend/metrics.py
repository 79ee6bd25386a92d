"""Prometheus metrics of spend, on the registry the app hands in. Labels are bounded: the
tier, and the category's metric label (a known category, `other` or ''); per key spend is
in the ledger (`gateway spend --by key`), never a label.

Saved versus sending everything to the top tier:
`sum(gateway_spend_top_tier_usd_total) - sum(gateway_spend_usd_total)`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from spend.prices import Charge


class SpendMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.usd = Counter(
            "gateway_spend_usd", "What answers cost (USD, the live prices of the tier that served them)",
            ["tier", "category"], registry=r,
        )
        self.top_usd = Counter(
            "gateway_spend_top_tier_usd", "What the same tokens would have cost on the top (most expensive) tier",
            ["tier", "category"], registry=r,
        )
        self.tokens = Counter(
            "gateway_spend_tokens", "Tokens charged, as the client's usage reports them", ["tier", "category", "kind"],
            registry=r,
        )
        self.ledger_dropped = Counter(
            "gateway_spend_ledger_dropped", "Aggregated spend rows lost before the ledger (queue full or a "
            "failed write)", registry=r,
        )
        self.budget_actions = Counter(
            "gateway_budget_actions", "Requests a budget acted on: refused (a key's hard), cheapest (a key's soft, auto "
            "only), tier_budget (auto routed below a tier whose budget is spent)",
            ["action"], registry=r,
        )

    def charged(self, charge: Charge, category: str) -> None:
        self.usd.labels(charge.tier, category).inc(charge.usd)
        self.top_usd.labels(charge.tier, category).inc(charge.top_usd)
        self.tokens.labels(charge.tier, category, "prompt").inc(charge.prompt_tokens)
        self.tokens.labels(charge.tier, category, "completion").inc(charge.completion_tokens)
