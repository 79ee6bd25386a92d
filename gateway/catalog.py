"""Which `model` names the gateway serves, where each one goes, and what each tier can do
beyond plain text (tools, JSON schemas, n, logprobs): a request asking a tier for what it
cannot do is refused naming the field and the tier, never served with the field dropped."""

from __future__ import annotations

from typing import Callable, Mapping

from pydantic import BaseModel

from adapters.directory import AdapterDirectory
from engines.capabilities import ALL_CAPABILITIES, PARAMS
from engines.types import Tier
from gateway.errors import InvalidRequest, ModelNotFound
from wire.chat import ModelCard

AUTO = "auto"




class TierSpec(BaseModel):
    served_name: str
    max_model_len: int
    capabilities: frozenset[str] = ALL_CAPABILITIES


class AdapterPin(BaseModel):
    domain: str
    version: str | None = None  # None: the domain's active version


SELECTED = "auto"  # `small:auto`; no adapter domain may be called that


class ModelTarget(BaseModel):
    """A resolved `model` field: a pinned tier, or None for the router to decide."""

    tier: Tier | None
    adapter: AdapterPin | None = None
    # `small:auto`: the small tier with the adapter the selector picks, as `auto` traffic
    # routed small gets it (what `router collect` asks to learn the small tier's outcomes).
    select_adapter: bool = False


class ModelCatalog:
    def __init__(self, tiers: Mapping[Tier, TierSpec]) -> None:
        self._tiers = dict(tiers)
        self._by_name = self._index(self._tiers)
        self._extra_cards: list[Callable[[], list[ModelCard]]] = []

    def add_cards(self, source: Callable[[], list[ModelCard]]) -> None:
        """Live entries for /v1/models (the adapters), read at each listing."""
        self._extra_cards.append(source)

    @staticmethod
    def _index(tiers: Mapping[Tier, TierSpec]) -> dict[str, ModelTarget]:
        names: dict[str, ModelTarget] = {AUTO: ModelTarget(tier=None)}
        for tier, spec in tiers.items():
            names[tier] = ModelTarget(tier=tier)
            names[spec.served_name] = ModelTarget(tier=tier)
        return names

    def resolve(self, model: str) -> ModelTarget:
        target = self._by_name.get(model) or self._adapter_target(model)
        if target is None:
            known = ", ".join(sorted(self._by_name))
            raise ModelNotFound(
                f"The model '{model}' does not exist. Served models: {known}.", param="model"
            )
        return target

    def _adapter_target(self, model: str) -> ModelTarget | None:
        """`small:<domain>` or `small:<domain>@<version>` (the small tier's served name works too)."""
        prefix, sep, rest = model.partition(":")
        small = self._tiers.get("small")
        if not sep or not rest or small is None or prefix not in ("small", small.served_name):
            return None
        if rest == SELECTED:
            return ModelTarget(tier="small", select_adapter=True)
        domain, _, version = rest.partition("@")
        pin = AdapterPin(domain=domain.lower(), version=version or None)
        return ModelTarget(tier="small", adapter=pin)

    def tiers(self) -> tuple[Tier, ...]:
        """Every tier, cheapest first."""
        return tuple(self._tiers)

    def check_capable(self, tier: Tier, needs: set[str]) -> None:
        """Refuse what `tier` cannot honour, naming the first such field."""
        for capability in sorted(needs - self._tiers[tier].capabilities):
            field = PARAMS[capability]  # the request field that asks for it
            raise InvalidRequest(
                f"The {tier} tier ({self._tiers[tier].served_name}) cannot honour '{field}' "
                f"(it does not serve {capability}).", param=field, code="unsupported_by_tier",
            )

    def check_any_capable(self, needs: set[str]) -> None:
        """Refuse what no tier can honour (for `auto`), naming the field."""
        if not self.capable(needs):
            for tier in self._tiers:
                self.check_capable(tier, needs)

    def capable(self, needs: set[str], context_tokens: int = 0) -> list[Tier]:
        """The tiers that can honour everything in `needs`, narrowed to those whose context
        holds `context_tokens`, else to the longest context. The count is an estimate
        (chars / 4): it steers `auto` away from a tier too short for the request but never
        refuses on its own; the engine that serves it counts exactly and answers OpenAI's
        `context_length_exceeded` if it really does not fit."""
        able = [tier for tier, spec in self._tiers.items() if needs <= spec.capabilities]
        fits = [tier for tier in able if context_tokens <= self._tiers[tier].max_model_len]
        if fits or not able:
            return fits
        longest = max(self._tiers[tier].max_model_len for tier in able)
        return [tier for tier in able if self._tiers[tier].max_model_len == longest]

    def served_name(self, tier: Tier, adapter_version: str | None = None) -> str:
        name = self._tiers[tier].served_name
        return f"{name}:{adapter_version}" if adapter_version else name

    def cards(self) -> list[ModelCard]:
        # `auto` can serve what any tier can: it routes a request only among the tiers that can.
        every = sorted(set().union(*(spec.capabilities for spec in self._tiers.values())))
        cards = [ModelCard(id=AUTO, owned_by="gateway-router", capabilities=every)]
        for tier, spec in self._tiers.items():
            can = sorted(spec.capabilities)
            cards.append(ModelCard(
                id=tier, tier=tier, parent=spec.served_name, max_model_len=spec.max_model_len, capabilities=can,
            ))
            cards.append(ModelCard(id=spec.served_name, tier=tier, max_model_len=spec.max_model_len, capabilities=can))
        for source in self._extra_cards:
            cards.extend(source())
        return cards


def adapter_cards(directory: AdapterDirectory, parent: str) -> list[ModelCard]:
    """/v1/models entries of the adapters: `small:<domain>` per active domain, then every
    stored version; `parent` is the small tier's served name."""
    versions = directory.versions()  # one snapshot: the active ones are among them
    active = {a.domain: a for a in versions.values() if a.status == "active"}
    cards = []
    for domain, adapter in sorted(active.items()):
        cards.append(ModelCard(
            id=f"small:{domain}", tier="small", parent=parent,
            owned_by="gateway-adapters", active_version=adapter.version,
        ))
    for adapter in sorted(versions.values(), key=lambda a: a.version):
        cards.append(ModelCard(
            id=f"small:{adapter.domain}@{adapter.version}", tier="small", parent=f"small:{adapter.domain}",
            owned_by="gateway-adapters", status=adapter.status,
        ))
    return cards
