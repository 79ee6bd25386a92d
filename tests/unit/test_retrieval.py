"""Knowledge base, first stage, fusion and evaluation: pure or on a temp SQLite file."""

import json

import pytest
from pydantic import ValidationError

from retrieval.config import GroundingConfig
from retrieval.documents import Document, IngestError, Section, chunk_document, read_folder
from retrieval.evaluate import article_ranking, rank_of, score_stage
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.knowledge import reorder
from retrieval.lexical import FieldBM25
from retrieval.reranker import Reranking
from retrieval.store import KnowledgeStore
from retrieval.support_kb import LabelledQuery, build_support_kb
from tests.support.retrieval import ARTICLES, DATE, WordEmbedder, first_stage
from retrieval.cli import SHIPPED_BITEXT


def test_rrf_rewards_agreement_between_rankings():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]])
    assert [item for item, _ in fused][:2] == [1, 3]
    assert dict(fused)[1] == pytest.approx(1 / 61 + 1 / 62)


def test_long_sections_split_on_paragraphs_with_stable_ids():
    body = "\n\n".join(f"paragraph {i} " + "x" * 300 for i in range(5))
    doc = Document(id="guide", title="Guide", sections=[Section(heading="A", text=body)], last_modified=DATE)
    chunks = chunk_document(doc, max_chars=700)
    assert [c.id for c in chunks] == [f"guide#{i}" for i in range(len(chunks))]
    assert len(chunks) == 3 and all(len(c.text) <= 700 for c in chunks)
    assert chunk_document(doc, max_chars=700)[0].digest == chunks[0].digest


def test_folder_reads_markdown_sections_and_jsonl(tmp_path):
    (tmp_path / "faq").mkdir()
    (tmp_path / "faq" / "billing.md").write_text("# Billing help\nintro\n## Invoices\nfind them here\n## Cards\nupdate card\n")
    (tmp_path / "more.jsonl").write_text(json.dumps({"id": "x1", "title": "Shipping", "text": "ships in 2 days"}) + "\n")
    docs = {d.id: d for d in read_folder(tmp_path)}
    billing = docs["faq/billing"]
    assert billing.title == "Billing help"
    assert [(s.heading, s.text) for s in billing.sections] == [("", "intro"), ("Invoices", "find them here"), ("Cards", "update card")]
    assert docs["x1"].sections[0].text == "ships in 2 days"


def test_bad_jsonl_line_names_file_and_line(tmp_path):
    (tmp_path / "kb.jsonl").write_text('{"id": "a", "title": "A", "text": "ok"}\n{"title": "no id"}\n')
    with pytest.raises(IngestError, match=r"kb.jsonl:2"):
        read_folder(tmp_path)


def test_reingest_embeds_only_changed_chunks(tmp_path):
    store = KnowledgeStore(tmp_path / "kb.sqlite")
    embedder = WordEmbedder()
    first = store.ingest(ARTICLES, embedder, "words")
    assert (first.added, first.unchanged) == (4, 0)
    edited = ARTICLES[0].model_copy(update={"sections": [Section(heading="Eligibility", text="Refunds within 14 days.")]})
    embedder.embedded.clear()
    second = store.ingest([edited, *ARTICLES[1:3]], embedder, "words")
    assert (second.added, second.changed, second.removed, second.unchanged) == (0, 1, 1, 2)
    assert len(embedder.embedded) == 1 and "14 days" in embedder.embedded[0]
    chunks, vectors, encoder = store.load()
    assert [c.doc_id for c in chunks] == ["refund_policy", "track_refund", "cancel_order"]
    assert vectors.shape == (3, WordEmbedder.dim) and encoder == "words"


def test_title_match_outranks_a_passing_mention(tmp_path):
    docs = [
        Document(id="guide", title="Password reset", sections=[Section(text="Follow the steps below.")], last_modified=DATE),
        Document(id="other", title="Account settings", sections=[Section(text="You can also do a password reset here, among other things.")], last_modified=DATE),
    ]
    stage = first_stage(tmp_path, docs)
    assert [h.chunk.doc_id for h in stage.bm25("password reset", 2)] == ["guide", "other"]
    plain = FieldBM25(stage.chunks, title_weight=0.0).scores("password reset")
    assert plain[0] < plain[1]  # without the title field the passing mention wins


def test_hybrid_fuses_lexical_and_dense(tmp_path):
    stage = first_stage(tmp_path)
    retrieval = stage.hybrid("how do I cancel my order", 3)
    assert retrieval.hits[0].chunk.doc_id == "cancel_order"
    assert retrieval.relevance > 0 and retrieval.bm25_ms >= 0


def test_reorder_sorts_by_cross_encoder_score(tmp_path):
    hits = first_stage(tmp_path).hybrid("refund", 3).hits
    reordered = reorder(hits, Reranking(scores=[0.1, 0.9, 0.5], latency_ms=1))
    assert [h.chunk.id for h in reordered] == [hits[1].chunk.id, hits[2].chunk.id, hits[0].chunk.id]


def test_metrics_of_known_ranks():
    assert article_ranking(["a", "a", "b", "a", "c"]) == ["a", "b", "c"]
    assert rank_of(["a", "b"], "b") == 2 and rank_of(["a"], "z") is None
    rankings = {"q1": ["gold", "x"], "q2": ["x", "gold"], "q3": ["x", "y"]}
    queries = [LabelledQuery(query=q, doc_id="gold") for q in rankings]
    score = score_stage("s", lambda q: rankings[q], queries)
    assert score.recall_at_1 == pytest.approx(1 / 3)
    assert score.recall_at_5 == pytest.approx(2 / 3)
    assert score.mrr_at_10 == pytest.approx((1 + 0.5) / 3)
    assert score.ndcg_at_10 == pytest.approx((1 + 1 / 1.5849625) / 3, rel=1e-6)


def test_support_split_keeps_evaluation_queries_out_of_the_kb():
    split = build_support_kb(SHIPPED_BITEXT)
    assert len(split.documents) == 27
    kb_text = {s.text for d in split.documents for s in d.sections}
    heldout = {q.query for q in split.heldout}
    assert heldout.isdisjoint({q.query for q in split.train})
    assert all(len(d.sections) == 3 for d in split.documents) and len(kb_text) == 81
    assert {q.doc_id for q in split.heldout} == {d.id for d in split.documents}


def test_grounding_config_is_validated():
    with pytest.raises(ValidationError, match="candidates"):
        GroundingConfig(top_k=5, candidates=3)
    with pytest.raises(ValidationError):
        GroundingConfig(rerank="sometimes")
    assert GroundingConfig(domains=["Refund"]).domains == ["refund"]


def test_training_groups_pair_each_question_with_its_article_and_hard_negatives(tmp_path):
    from retrieval.training import RerankerTraining, training_groups

    stage = first_stage(tmp_path)
    queries = [LabelledQuery(query="refund status in my account", doc_id="track_refund"),
               LabelledQuery(query="cancel my order before it ships", doc_id="cancel_order")]
    groups = training_groups(stage, queries, RerankerTraining(hard_negatives=2))
    assert len(groups) == 2
    titles = {c.passage(): c.doc_id for c in stage.chunks}
    for (query, positive, *negatives), labelled in zip(sorted(groups), sorted(queries, key=lambda q: q.query)):
        assert query == labelled.query and titles[positive] == labelled.doc_id
        assert len(negatives) == 2 and all(titles[n] != labelled.doc_id for n in negatives)
