"""The adapter for auto traffic routed small: the client's category when it names a live
domain, else the selector's choice; none for a pinned tier or the large tier."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from adapters.choice import AdapterAsk, AdapterChooser
from adapters.directory import AdapterDirectory, LiveAdapter, Selection
from adapters.errors import AdapterNotServed
from adapters.metrics import AdapterMetrics
from adapters.registry import AdapterRegistry

REFUND = LiveAdapter(domain="refund", version="refund-v1", path="/a", status="active")
BILLING = LiveAdapter(domain="billing", version="billing-v1", path="/b", status="active")


class Directory:
    """The part of `AdapterDirectory` the chooser reads; the selector always says refund."""

    def active(self) -> dict[str, LiveAdapter]:
        return {"refund": REFUND, "billing": BILLING}

    def selects(self) -> bool:
        return True

    def select(self, text: str) -> Selection:
        return Selection(adapter=REFUND, similarity=0.8)


def ask(**change: object) -> AdapterAsk:
    fields: dict[str, object] = dict(pinned_tier=False, select=False, tier="small", category=None, text="hi")
    return AdapterAsk(**{**fields, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(("request_", "auto_select", "expected", "outcome"), [
    (ask(), True, REFUND, "embedding"),
    (ask(category="billing"), True, BILLING, "category"),
    (ask(category="unknown"), True, REFUND, "embedding"),
    (ask(tier="large"), True, None, None),
    (ask(pinned_tier=True), True, None, None),  # `small`: the base model
    (ask(pinned_tier=True, select=True), True, REFUND, "embedding"),  # `small:auto`
    (ask(), False, None, None),
    (ask(pinned_tier=True, select=True, category="billing"), False, BILLING, "category"),
])
def test_the_choice(request_: AdapterAsk, auto_select: bool, expected: LiveAdapter | None, outcome: str | None) -> None:
    registry = CollectorRegistry()
    chooser = AdapterChooser(Directory(), AdapterMetrics(registry), auto_select)  # type: ignore[arg-type]
    assert asyncio.run(chooser.choose(request_)) == expected
    for label in ("category", "embedding", "base"):
        counted = registry.get_sample_value("gateway_adapter_selection_total", {"outcome": label}) or 0.0
        assert counted == (1.0 if label == outcome else 0.0)


def test_served_counts_the_adapter() -> None:
    registry = CollectorRegistry()
    AdapterChooser(Directory(), AdapterMetrics(registry)).served(REFUND)  # type: ignore[arg-type]
    labels = {"domain": "refund", "version": "refund-v1"}
    assert registry.get_sample_value("gateway_adapter_requests_total", labels) == 1.0


def test_a_pinned_adapter_the_directory_does_not_serve_is_refused(tmp_path: Path) -> None:
    directory = AdapterDirectory(AdapterRegistry(tmp_path), None, "minilm", 0.9)
    directory.refresh()
    chooser = AdapterChooser(directory, AdapterMetrics(CollectorRegistry()))
    with pytest.raises(AdapterNotServed) as refused:
        chooser.resolve("refund")
    assert refused.value.param == "model"
    assert refused.value.message == "No active adapter for domain 'refund'. Active domains: none."
    with pytest.raises(AdapterNotServed, match="Adapter version 'v9' of domain 'refund' does not exist."):
        chooser.resolve("refund", "v9")


def test_no_active_domain_answers_the_base_model_without_a_thread(monkeypatch):
    import adapters.choice as choice

    class Empty(Directory):
        def active(self) -> dict[str, LiveAdapter]:
            return {}

        def selects(self) -> bool:
            return False

        def select(self, text: str) -> Selection:
            return Selection(adapter=None, similarity=0.0)

    async def no_thread(*args: object) -> None:
        raise AssertionError("a thread hop with nothing to select")

    monkeypatch.setattr(choice.asyncio, "to_thread", no_thread)
    metrics = AdapterMetrics(CollectorRegistry())
    chooser = AdapterChooser(Empty(), metrics)  # type: ignore[arg-type]
    assert asyncio.run(chooser.choose(ask())) is None
    assert metrics.selection.labels("base")._value.get() == 1
