"""Knowledge-base rot: the fact mismatch detector, the staleness queue, the usage journal
(and its pruning), the contradiction finder, the review queue and the planted-set scoring."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from retrieval.usage_journal import UsageJournal
from gateway.metrics import GatewayMetrics
from retrieval.config import RotSettings
from retrieval.contradictions import Contradiction, ContradictionFinder, candidate_pairs
from retrieval.documents import Document, Section
from retrieval.facts import conflicts, facts, split_sentences
from retrieval.planted import PlantedDoc, PlantedSet, build_planted, score
from retrieval.review import WindowUsage as Recorded, contradicting_pairs, review
from retrieval.staleness import stale_documents
from retrieval.store import DocumentInfo, KnowledgeStore
from retrieval.usage import QueryUsage, ServedChunk, UsageStore
from tests.support.retrieval import WordEmbedder

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
SHIPPED_BITEXT = Path(__file__).resolve().parents[2] / "data" / "bitext" / "bitext_sample.csv"


# ---- the mismatch detector -------------------------------------------------------------

SAME_FACT = [
    ("Refunds are possible within 14 days of delivery.", "Refunds are possible within two weeks of delivery."),
    ("A fee of $5 applies.", "A fee of 5 USD applies."),
    ("A fee of $5 applies.", "A fee of five dollars applies."),
    ("We keep 50% of the price.", "We keep fifty percent of the price."),
    ("Open Monday to Friday, 9 AM to 5 PM.", "Open Mon-Fri, 9:00 to 17:00."),
    ("Delivery takes 3-5 business days.", "Delivery takes between three and five business days."),
    ("Links expire after 24 hours.", "Links expire after twenty-four hours."),
    ("Links expire after 24 hours.", "Links expire after one day."),
    ("Restore it within 30 days.", "Restore it within a month."),
    ("Cancelling is free.", "Cancelling is free of charge."),
    ("A $5 fee applies to orders cancelled after shipping.", "A $5 fee applies to orders cancelled after shipping."),
]

CHANGED_FACT = [
    ("Refunds are possible within 14 days of delivery.", "Refunds are possible within 30 days of delivery.", "duration"),
    ("Refunds are possible within 14 days of delivery.", "Refunds are possible within three weeks of delivery.", "duration"),
    ("A fee of $5 applies.", "A fee of 10 USD applies.", "money"),
    ("Cancelling is free.", "Cancelling costs $5.", "money"),
    ("We keep 50% of the price.", "We keep 40 percent of the price.", "percent"),
    ("Open Monday to Friday, 9 AM to 5 PM.", "Open Monday to Friday, 8 AM to 5 PM.", "hours"),
    ("Open Monday to Friday, 9 AM to 5 PM.", "Open Monday to Saturday, 9 AM to 5 PM.", "weekdays"),
    ("Our team is available 24/7.", "Our team is available 9 AM to 5 PM.", "hours"),
    ("Delivery takes 3-5 business days.", "Delivery takes 5-7 business days.", "business_days"),
    ("You can add up to 3 items.", "You can add up to 5 items.", "count:item"),
    ("Gift cards cannot be refunded.", "Gift cards can be refunded.", "policy"),
]


@pytest.mark.parametrize("a, b", SAME_FACT)
def test_one_fact_written_two_ways_does_not_conflict(a, b):
    assert facts(a).quantities or facts(a).policy  # there is a fact to compare
    assert conflicts(facts(a), facts(b)) == []


@pytest.mark.parametrize("a, b, kind", CHANGED_FACT)
def test_a_changed_value_conflicts_by_its_kind(a, b, kind):
    assert [k for k, _, _ in conflicts(facts(a), facts(b))] == [kind]


def test_facts_under_different_conditions_do_not_conflict():
    before = facts("Cancelling an order before it ships costs $5.")
    after = facts("Cancelling an order after it ships costs $10.")
    standard = facts("Standard shipping takes 3-5 business days.")
    express = facts("Express shipping takes 1-2 business days.")
    assert conflicts(before, after) == [] and conflicts(standard, express) == []


def test_other_currencies_are_not_compared_and_identifiers_are_no_facts():
    assert conflicts(facts("The fee is $5."), facts("The fee is 5 EUR.")) == []
    ids = facts("Call 1-800-555-0199 about order #12345 from 2024.")
    assert ids.quantities == ()
    assert not facts("Feel free to contact us.").checkable  # "free" here is no price


def test_masked_sentences_read_alike_whatever_the_value():
    assert facts("Refunds within 14 days.").masked == facts("Refunds within thirty days.").masked
    assert facts("Gift cards cannot be refunded.").masked == facts("Gift cards can be refunded.").masked


def test_sentences_split_on_ends_and_list_items_but_not_on_times():
    text = "We open at 9 a.m. daily. Prices: $5.00 each!\n1. Sign in first.\n- Then pay."
    assert split_sentences(text) == ["We open at 9 am daily.", "Prices: $5.00 each!", "Sign in first.", "Then pay."]


# ---- staleness ----------------------------------------------------------------------------

def info(doc_id: str, days_old: float) -> DocumentInfo:
    return DocumentInfo(doc_id=doc_id, title=doc_id.title(), last_modified=NOW - timedelta(days=days_old), chunks=1)


def test_stale_queue_keeps_old_busy_documents_ranked_by_volume():
    docs = [info("old-busy", 400), info("old-busier", 500), info("fresh-busy", 30), info("old-quiet", 800)]
    volume = {"old-busy": 40, "old-busier": 90, "fresh-busy": 500, "old-quiet": 4}
    queue = stale_documents(docs, volume, total=1000, now=NOW, stale_after_days=365, min_share=0.005)
    assert [d.doc_id for d in queue] == ["old-busier", "old-busy"]  # old-quiet: 0.4 % < 0.5 %
    assert queue[0].share == pytest.approx(0.09) and queue[0].age_days == 500


def test_stale_thresholds_are_strict_and_a_date_without_zone_is_utc():
    exactly = [info("a-year", 365), DocumentInfo(doc_id="naive", title="N", last_modified=datetime(2024, 1, 1), chunks=1)]
    queue = stale_documents(exactly, {"a-year": 5, "naive": 5}, total=1000, now=NOW, stale_after_days=365, min_share=0.005)
    assert queue == []  # 365 days is not older than 365; 0.5 % is not more than 0.5 %
    queue = stale_documents(exactly, {"naive": 6}, total=1000, now=NOW, stale_after_days=365, min_share=0.005)
    assert [d.doc_id for d in queue] == ["naive"]
    assert stale_documents(exactly, {}, total=0, now=NOW, stale_after_days=1, min_share=0) == []


# ---- the usage journal ------------------------------------------------------------------------

def served(request_id: str, when: datetime, *chunks: str, category: str = "refund") -> QueryUsage:
    return QueryUsage(
        request_id=request_id, created_at=when, category=category, outcome="grounded", context="first-stage",
        relevance=0.8, chunks=[ServedChunk(chunk_id=c, doc_id=c.split("#")[0]) for c in chunks],
    )


def failed(request_id: str, when: datetime, category: str = "refund") -> QueryUsage:
    return QueryUsage(request_id=request_id, created_at=when, category=category, outcome="low_relevance", relevance=0.1)


def test_usage_counts_queries_per_document_over_the_window(tmp_path):
    store = UsageStore(tmp_path / "usage.sqlite")
    store.add([
        served("r1", NOW - timedelta(days=1), "refunds#0", "refunds#1", "shipping#0"),
        served("r2", NOW - timedelta(days=2), "refunds#1"),
        served("r3", NOW - timedelta(days=200), "shipping#0"),
        failed("r4", NOW - timedelta(days=3)),
        failed("r5", NOW - timedelta(days=3), category="billing"),
    ])
    since = NOW - timedelta(days=90)
    assert store.queries(since) == 4
    assert store.document_volume(since) == {"refunds": 2, "shipping": 1}  # two chunks of one query count once
    by_category = {c.category: (c.queries, c.failures) for c in store.categories(since)}
    assert by_category == {"refund": (3, 1), "billing": (1, 1)}


def test_usage_pruning_bounds_rows_by_age_and_count_with_their_chunks(tmp_path):
    store = UsageStore(tmp_path / "usage.sqlite")
    store.add([served(f"old{i}", NOW - timedelta(days=200), "a#0") for i in range(3)])
    store.add([served(f"new{i}", NOW - timedelta(minutes=10 - i), "b#0", "b#1") for i in range(5)])
    removed = store.prune(NOW - timedelta(days=120), max_rows=2)
    assert removed == 3 + 3
    assert store.rows() == {"queries": 2, "served": 4}
    assert store.document_volume(NOW - timedelta(days=1)) == {"b": 2}


async def test_journal_writes_off_the_request_path_and_drops_when_full(tmp_path):
    metrics = GatewayMetrics()
    settings = RotSettings(usage=tmp_path / "usage.sqlite", queue_size=2)
    journal = UsageJournal(UsageStore(settings.usage), settings, on_dropped=metrics.grounding.retrieval_usage_dropped.inc)
    for i in range(3):
        journal.record(served(f"r{i}", NOW, "a#0"))
    assert journal.pending == 2 and journal.store.rows()["queries"] == 0  # nothing written on record
    assert metrics.registry.get_sample_value("gateway_retrieval_usage_dropped_total") == 1
    await journal.flush()
    assert journal.pending == 0 and journal.store.rows()["queries"] == 2


async def test_journal_prunes_with_its_clock_and_counts_a_failed_write(tmp_path):
    metrics = GatewayMetrics()
    settings = RotSettings(usage=tmp_path / "usage.sqlite", retention_days=120)
    journal = UsageJournal(
        UsageStore(settings.usage), settings, on_dropped=metrics.grounding.retrieval_usage_dropped.inc, clock=lambda: NOW
    )
    journal.store.add([served("old", NOW - timedelta(days=121), "a#0"), served("new", NOW - timedelta(days=1), "a#0")])
    await journal.prune()
    assert journal.store.rows()["queries"] == 1
    journal.store.path.unlink()
    journal.store.path.mkdir()  # the file is now a directory: every write fails
    journal.record(served("lost", NOW, "a#0"))
    with pytest.raises(Exception):
        await journal.flush()
    assert metrics.registry.get_sample_value("gateway_retrieval_usage_dropped_total") == 1


def test_rot_settings_keep_the_window_inside_the_retention():
    with pytest.raises(ValueError, match="retention_days"):
        RotSettings(retention_days=30, window_days=90)


# ---- the KB's dates -----------------------------------------------------------------------------

def test_a_re_dated_document_is_updated_without_re_embedding(tmp_path):
    store = KnowledgeStore(tmp_path / "kb.sqlite")
    old = Document(id="refunds", title="Refunds", sections=[Section(text="Within 30 days.")],
                   last_modified=NOW - timedelta(days=400))
    store.ingest([old], WordEmbedder(), "words")
    report = store.ingest([old.model_copy(update={"last_modified": NOW})], WordEmbedder(), "words")
    assert report.embedded == 0
    assert store.documents() == [DocumentInfo(doc_id="refunds", title="Refunds", last_modified=NOW, chunks=1)]


# ---- contradictions ----------------------------------------------------------------------------

def doc(doc_id: str, text: str) -> Document:
    return Document(id=doc_id, title="Refund policy", sections=[Section(text=text)], last_modified=NOW)


POLICY = "Unused items can be returned within 30 days of delivery. Refunds reach your card in 5 business days."


def test_finder_flags_the_changed_copy_and_not_the_unchanged_one(tmp_path):
    docs = [
        doc("policy", POLICY),
        doc("copy", POLICY),
        doc("changed", POLICY.replace("30 days", "14 days")),
        doc("reworded", "Unused items can be returned within thirty days of delivery. Refunds reach your card in five business days."),
    ]
    store = KnowledgeStore(tmp_path / "kb.sqlite")
    store.ingest(docs, WordEmbedder(), "words")
    chunks, vectors, _ = store.load()
    found = ContradictionFinder(WordEmbedder(), sentence_similarity=0.7).find(chunks, vectors, 0.5, 5)
    pairs = {tuple(sorted((c.doc_a, c.doc_b))) for c in found}
    assert pairs == {("changed", "copy"), ("changed", "policy"), ("changed", "reworded")}
    assert all(c.kinds == ["duration"] for c in found)


def test_candidate_pairs_never_pair_a_document_with_itself(tmp_path):
    store = KnowledgeStore(tmp_path / "kb.sqlite")
    two_sections = Document(id="a", title="A", sections=[Section(text="x y"), Section(text="x y")], last_modified=NOW)
    store.ingest([two_sections, doc("b", "x y z")], WordEmbedder(), "words")
    chunks, vectors, _ = store.load()
    pairs = candidate_pairs(chunks, vectors, min_similarity=0.0, neighbours=5)
    assert pairs and all(chunks[i].doc_id != chunks[j].doc_id for i, j, _ in pairs)


# ---- the review queue --------------------------------------------------------------------------

def finding(a: str, b: str) -> Contradiction:
    return Contradiction(chunk_a=f"{a}#0", doc_a=a, chunk_b=f"{b}#0", doc_b=b, kinds=["duration"], sentence_a="x",
                         sentence_b="y", values_a=[], values_b=[], chunk_similarity=0.9, sentence_similarity=0.9)


def test_review_ranks_pairs_and_categories_by_volume():
    from retrieval.usage import CategoryOutcomes

    docs = [info("a", 10), info("b", 10), info("c", 10)]
    pairs = contradicting_pairs([finding("a", "b"), finding("b", "a"), finding("c", "a")], docs, {"a": 5, "b": 1, "c": 50})
    assert [(p.doc_a, p.doc_b, p.queries, p.findings) for p in pairs] == [("a", "c", 55, 1), ("a", "b", 6, 2)]
    recorded = Recorded(total=100, categories=[
        CategoryOutcomes(category="refund", queries=40, failures=20),
        CategoryOutcomes(category="billing", queries=50, failures=5),
        CategoryOutcomes(category="rare", queries=10, failures=10),
    ])
    queue = review(docs, recorded, None, RotSettings(min_category_queries=20, max_failure_rate=0.2), NOW)
    assert [c.category for c in queue.failing_categories] == ["refund"]  # rare: too few queries to judge
    assert queue.contradictions is None


# ---- the planted set -----------------------------------------------------------------------------

def test_planted_set_truth_and_scoring():
    planted = build_planted(SHIPPED_BITEXT)
    roles = {d.role for d in planted.truth}
    assert roles == {"base", "changed", "copy", "equivalent", "paraphrase"}
    assert len({d.id for d in planted.documents}) == len(planted.documents)
    changed = next(d for d in planted.truth if d.role == "changed" and d.part == "written")
    copy = next(d for d in planted.truth if d.role == "copy" and d.source == changed.source
                and d.facts.keys() == changed.facts.keys())
    assert planted.contradicting(changed.doc_id, changed.source)
    assert not planted.contradicting(copy.doc_id, changed.source)


def test_score_counts_pairs_for_precision_and_documents_for_recall():
    truth = [
        PlantedDoc(doc_id="base", part="written", role="base", facts={"fee": "canonical"}),
        PlantedDoc(doc_id="changed1", part="written", role="changed", facts={"fee": "$5"}),
        PlantedDoc(doc_id="changed2", part="written", role="changed", facts={"fee": "$9"}),
        PlantedDoc(doc_id="copy", part="written", role="copy", facts={"fee": "canonical"}),
    ]
    planted = PlantedSet(documents=[], truth=truth)
    result = score([finding("base", "changed1"), finding("changed1", "base"), finding("base", "copy")], planted)
    assert (result.precision, result.recall, result.n_planted) == (0.5, 0.5, 2)
    assert result.missed == ["changed2"] and result.negatives_flagged == 1
