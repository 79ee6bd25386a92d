"""The answer flags' sink at its own seam (no HTTP edge): a `FlagAsk` in, flags stored and
counted under the bounded category label; the sample and a full queue never touch the answer."""

from __future__ import annotations

from typing import Sequence

from prometheus_client import CollectorRegistry

from flags.config import FlagsConfig
from flags.metrics import FlagMetrics
from flags.sink import AnswerFlagger, FlagAsk
from flags.store import FlagRecord

EMAIL_ANSWER = "We will write to jane.doe@example.com today."


class ListStore:
    def __init__(self) -> None:
        self.records: list[FlagRecord] = []

    def add_flags(self, records: Sequence[FlagRecord]) -> None:
        self.records += records


def flagger(config: FlagsConfig, draw: float = 0.0) -> tuple[AnswerFlagger, ListStore, CollectorRegistry]:
    store, registry = ListStore(), CollectorRegistry()
    known = lambda category: category if category == "billing" else "other"  # noqa: E731
    return AnswerFlagger(store, FlagMetrics(registry), known, config, draw=lambda: draw), store, registry


def sent(category: str | None = "billing") -> FlagAsk:
    return FlagAsk(request_id="r1", category=category, tier="small", user_text="my mail is jane.doe@example.com",
                   text=EMAIL_ANSWER)


async def test_a_sampled_answer_is_checked_stored_and_counted_by_its_label():
    sink, store, registry = flagger(FlagsConfig(enabled=True, sample_rate=1.0))
    sink.start()
    sink.completed(sent())
    await sink.queue.drain()
    await sink.stop()
    (record,) = [r for r in store.records if r.kind == "pii"]
    assert (record.request_id, record.kind, record.category, record.tier) == ("r1", "pii", "billing", "small")
    assert registry.get_sample_value("gateway_answer_flags_total", {"category": "billing", "kind": "pii"}) == 1
    assert registry.get_sample_value("gateway_flag_checks_total", {"outcome": "flagged"}) == 1


def test_outside_the_sample_or_the_categories_nothing_is_queued():
    sink, _, _ = flagger(FlagsConfig(enabled=True, sample_rate=0.5, categories=["refund"]), draw=0.9)
    sink.completed(sent("refund"))  # drawn outside the sample
    sink.completed(sent("billing"))  # not a flagged category
    assert sink.queue.pending == 0


def test_a_full_queue_drops_the_check_and_counts_it():
    sink, _, registry = flagger(FlagsConfig(enabled=True, sample_rate=1.0, queue_size=1))
    sink.completed(sent())  # not started: nothing drains
    sink.completed(sent())
    assert registry.get_sample_value("gateway_flag_checks_total", {"outcome": "dropped"}) == 1


async def test_a_long_category_reaches_the_store_cut_to_64_characters():
    sink, store, _ = flagger(FlagsConfig(enabled=True, sample_rate=1.0))
    sink.start()
    sink.completed(sent("b" * 5000))
    await sink.queue.drain()
    await sink.stop()
    assert store.records and {record.category for record in store.records} == {"b" * 64}
