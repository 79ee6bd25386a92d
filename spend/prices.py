"""Cost arithmetic: one answer's cost on the tier that served it, and on the top tier.

The top tier is the most expensive tier this gateway serves, the cheapest the least, each
ranked by its input and output price per million summed (ties: the later tier is the top,
the earlier the cheapest). "Saved" is what the same tokens would have cost on the top tier
minus what they cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from spend.config import TierPrice

MILLION = 1_000_000
FREE = TierPrice()


@dataclass(frozen=True)
class Charge:
    tier: str
    prompt_tokens: int
    completion_tokens: int
    usd: float
    top_usd: float  # the same tokens on the top tier


class PriceBook:
    def __init__(self, prices: Mapping[str, TierPrice], tiers: Sequence[str]) -> None:
        if not tiers:
            raise ValueError("a price book needs the tiers it prices")
        self._prices = {tier: prices.get(tier, FREE) for tier in tiers}
        ranked = sorted(enumerate(tiers), key=lambda it: (self._rank(it[1]), it[0]))
        self.cheapest_first: tuple[str, ...] = tuple(tier for _, tier in ranked)

    def _rank(self, tier: str) -> float:
        price = self._prices[tier]
        return price.input_per_million + price.output_per_million

    @property
    def top(self) -> str:
        return self.cheapest_first[-1]

    def cost(self, tier: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self._prices.get(tier, FREE)
        return (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / MILLION

    def charge(self, tier: str, prompt_tokens: int, completion_tokens: int) -> Charge:
        return Charge(
            tier=tier, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            usd=self.cost(tier, prompt_tokens, completion_tokens),
            top_usd=self.cost(self.top, prompt_tokens, completion_tokens),
        )
