"""Which shadow targets a served request is mirrored to: pure, sampling injected."""

from __future__ import annotations

from typing import Callable, Sequence

from pydantic import BaseModel

from engines.types import Tier
from shadow.config import MirrorRule


class Served(BaseModel):
    """What answered a primary request: the facts the rules and the store key on."""

    request_id: str
    tier: Tier
    reason: str
    domain: str | None = None  # adapter domain, when an adapter answered
    version: str | None = None  # adapter version
    category: str | None = None
    mode: str | None = None  # the category's rollout mode (draft, auto), when the controls are on
    rollout_category: str | None = None  # the category the rollout keyed it by (client's or domain)
    key_id: str | None = None  # the API key that asked (None: anonymous): only it may rate the answer
    # What the client tagged the request with: OpenAI's end-user id and its metadata
    # (journaled with the answer, for review and feedback by them).
    client_tags: dict[str, str] = {}
    # What an agent's request asked beyond text (router.asks: ask.tools, ...), for the
    # own-pair loop to learn from; empty for a plain prompt.
    ask_tags: dict[str, str] = {}

    @property
    def target(self) -> str:
        """The same notation as a rule's target: `large`, `small`, `small:<domain>@<version>`."""
        if self.domain and self.version:
            return f"{self.tier}:{self.domain}@{self.version}"
        return self.tier

    def tags(self) -> dict[str, str]:
        tags = {f"client.{key}": value for key, value in self.client_tags.items()}
        tags.update(self.ask_tags)
        tags.update({"tier": self.tier, "reason": self.reason})
        for key in ("domain", "version", "category", "mode", "rollout_category"):
            value = getattr(self, key)
            if value:
                tags[key] = value
        return tags


def matches(rule: MirrorRule, served: Served) -> bool:
    if rule.tier is not None and rule.tier != served.tier:
        return False
    if rule.adapter == "*" and served.domain is None:
        return False
    if rule.adapter not in (None, "*") and rule.adapter != served.domain:
        return False
    if rule.reason is not None and not served.reason.startswith(rule.reason):
        return False
    return rule.category is None or rule.category == (served.category or "")


def select_targets(rules: Sequence[MirrorRule], served: Served, draw: Callable[[], float]) -> list[str]:
    """Targets of the matching rules that won their sample draw, each once, never the
    primary's own target (mirroring a request to what answered it measures nothing)."""
    chosen: list[str] = []
    for rule in rules:
        if rule.sample_rate <= 0.0 or not matches(rule, served):
            continue
        if draw() >= rule.sample_rate:
            continue
        if rule.target not in chosen and rule.target != served.target:
            chosen.append(rule.target)
    return chosen
