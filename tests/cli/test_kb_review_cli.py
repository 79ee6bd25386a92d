"""`retrieval review` on a temporary KB and usage journal: the queue as text and as JSON
(stale documents, contradicting pairs with the real MiniLM sentence alignment, failing
categories, each ranked by query volume)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from deployments.settings import Settings
from retrieval.cli import app
from retrieval.documents import Document, Section
from retrieval.store import KnowledgeStore
from retrieval.usage import QueryUsage, ServedChunk, UsageStore
from tests.support.retrieval import WordEmbedder

runner = CliRunner()
NOW = datetime.now(timezone.utc)
REFUNDS = "Unused items can be returned for a full refund within 30 days of delivery."


def article(doc_id: str, title: str, text: str, days_old: int) -> Document:
    return Document(id=doc_id, title=title, sections=[Section(heading="Policy", text=text)],
                    last_modified=NOW - timedelta(days=days_old))


def build(tmp_path):
    kb, usage = tmp_path / "kb.sqlite", tmp_path / "usage.sqlite"
    KnowledgeStore(kb).ingest([
        article("refunds", "Refund policy", REFUNDS, days_old=500),
        article("refunds-2024", "Refund policy", REFUNDS.replace("30 days", "14 days"), days_old=700),
        article("shipping", "Shipping", "Standard delivery takes 3 to 5 business days.", days_old=20),
        article("archive", "Old newsletter", "Our newsletter is sent every Monday.", days_old=900),
    ], WordEmbedder(), "words")
    records = [QueryUsage(request_id=f"r{i}", created_at=NOW - timedelta(hours=i), category="refund", outcome="grounded",
                     chunks=[ServedChunk(chunk_id="refunds#0", doc_id="refunds")]) for i in range(30)]
    records += [QueryUsage(request_id=f"s{i}", created_at=NOW - timedelta(hours=i), category="shipping", outcome="grounded",
                      chunks=[ServedChunk(chunk_id="shipping#0", doc_id="shipping")]) for i in range(50)]
    records += [QueryUsage(request_id=f"o{i}", created_at=NOW - timedelta(hours=i), category="refund", outcome="grounded",
                      chunks=[ServedChunk(chunk_id="refunds-2024#0", doc_id="refunds-2024")]) for i in range(5)]
    records += [QueryUsage(request_id=f"f{i}", created_at=NOW - timedelta(hours=i), category="billing", outcome="low_relevance",
                      relevance=0.1) for i in range(25)]
    UsageStore(usage).add(records)
    return ["--kb", str(kb), "--usage", str(usage)]


def test_review_json_ranks_the_queue_by_query_volume(tmp_path):
    result = runner.invoke(app, obj=Settings().retrieval, args=["review", *build(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    queue = json.loads(result.stdout)
    assert queue["grounded_queries"] == 110 and queue["documents"] == 4
    # Old and busy first; "archive" is old but serves nothing; "shipping" is busy but fresh.
    assert [(d["doc_id"], d["queries"]) for d in queue["stale"]] == [("refunds", 30), ("refunds-2024", 5)]
    # The freshness of the most-retrieved documents (the note's distribution to track).
    assert [(d["doc_id"], d["queries"]) for d in queue["most_retrieved"]] == [
        ("shipping", 50), ("refunds", 30), ("refunds-2024", 5)]
    [pair] = queue["contradictions"]
    assert (pair["doc_a"], pair["doc_b"], pair["queries"], pair["kinds"]) == ("refunds", "refunds-2024", 35, ["duration"])
    assert "30 days" in pair["examples"][0]["sentence_a"] and "14 days" in pair["examples"][0]["sentence_b"]
    assert [(c["category"], c["failures"], c["failure_rate"]) for c in queue["failing_categories"]] == [("billing", 25, 1.0)]


def test_review_prints_the_three_sections(tmp_path):
    result = runner.invoke(app, obj=Settings().retrieval, args=["review", *build(tmp_path), "--no-contradictions"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "stale documents (2)" in out and "refunds  (Refund policy)" in out
    assert "contradicting documents: not checked" in out
    assert "failing categories (1)" in out and "billing" in out
    assert out.index("refunds  (") < out.index("refunds-2024  (")


def test_review_without_a_journal_still_lists_contradictions_and_says_why_volume_is_missing(tmp_path):
    args = build(tmp_path)
    args[-1] = str(tmp_path / "missing.sqlite")
    result = runner.invoke(app, obj=Settings().retrieval, args=["review", *args, "--json"])
    assert result.exit_code == 0, result.output
    queue = json.loads(result.stdout)
    assert queue["grounded_queries"] == 0 and queue["stale"] == [] and len(queue["contradictions"]) == 1
    assert "no usage journal" in result.stderr
    assert not (tmp_path / "missing.sqlite").exists()  # a review never creates the gateway's journal


def test_review_of_a_missing_kb_fails_clearly(tmp_path):
    result = runner.invoke(app, obj=Settings().retrieval, args=["review", "--kb", str(tmp_path / "nope.sqlite")])
    assert result.exit_code == 1 and "no knowledge base" in result.stderr
