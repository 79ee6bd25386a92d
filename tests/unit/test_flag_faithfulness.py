"""Faithfulness of grounded answers: sentences scored against the chunks the answer
cited (all of them when it cites none), flagged above the configured unsupported share;
ungrounded answers are not judged. The real scorer (MiniLM) separates a paraphrase of
the chunk from an answer about something else at the default threshold."""

from __future__ import annotations

import pytest

from flags.config import FaithfulnessConfig
from flags.faithfulness import EmbeddingSupport, FaithfulnessEvaluator, cited
from flags.types import Answer, Passage
from tests.support.retrieval import WordEmbedder

REFUND = Passage(id="kb/refund#0", text="Refunds are paid to the original card. They take five to ten business days.")
SHIPPING = Passage(id="kb/shipping#0", text="Parcels ship from our warehouse. Tracking links arrive by email.")


def answer(text: str, passages: list[Passage] | None = (REFUND, SHIPPING)) -> Answer:
    return Answer(request_id="r", text=text, passages=list(passages) if passages is not None else None)


def evaluator(**config) -> FaithfulnessEvaluator:
    return FaithfulnessEvaluator(EmbeddingSupport(WordEmbedder(), batch=2), FaithfulnessConfig(**config))


def test_an_answer_built_from_its_chunks_is_not_flagged():
    text = "Refunds are paid to the original card. They take five to ten business days."
    assert evaluator(min_support=0.8).evaluate(answer(text)) == []


def test_an_answer_about_something_else_is_flagged_with_its_least_supported_sentence():
    text = "Your subscription renews every month automatically. Premium members get free gifts every year."
    (flag,) = evaluator(min_support=0.5).evaluate(answer(text))
    assert flag.kind == "unfaithful" and flag.score < 0.5
    assert flag.detail.startswith("2/2 sentences below 0.5 against kb/refund#0, kb/shipping#0")


def test_only_the_cited_chunk_counts_when_the_answer_cites_one():
    text = "Parcels ship from our warehouse and tracking links arrive by email [kb/refund#0]."
    assert cited(answer(text)) == [REFUND]
    assert evaluator(min_support=0.6).evaluate(answer(text))  # supported only by the chunk it did not cite
    uncited = text.replace(" [kb/refund#0]", "")
    assert evaluator(min_support=0.6).evaluate(answer(uncited)) == []


def test_the_unsupported_share_decides_and_short_sentences_are_not_judged():
    text = "Refunds are paid to the original card. Premium members get free gifts every year. Thanks!"
    assert evaluator(min_support=0.6, max_unsupported_share=0.5).evaluate(answer(text)) == []  # 1 of 2
    assert evaluator(min_support=0.6, max_unsupported_share=0.4).evaluate(answer(text))


def test_ungrounded_answers_are_not_judged():
    assert evaluator().evaluate(answer("Anything at all, unsupported by anything.", passages=None)) == []
    assert evaluator().evaluate(answer("Anything at all, unsupported by anything.", passages=[])) == []


@pytest.fixture(scope="module")
def minilm():
    from text.embedding import MiniLMEmbedder

    return MiniLMEmbedder(max_tokens=256)


def test_minilm_at_the_default_threshold_tells_a_paraphrase_from_another_topic(minilm):
    real = FaithfulnessEvaluator(EmbeddingSupport(minilm), FaithfulnessConfig())
    paraphrase = "Your money goes back to the card you paid with. It can take 5 to 10 business days."
    unrelated = "You can change your password in the security settings. Two-factor login is recommended."
    assert real.evaluate(answer(paraphrase)) == []
    assert [f.kind for f in real.evaluate(answer(unrelated))] == ["unfaithful"]


def test_evidence_is_embedded_once_and_the_cache_is_bounded():
    embedder = WordEmbedder()
    support = EmbeddingSupport(embedder, cache_size=2)
    evidence = ["Refunds are paid to the card.", "They take five days."]
    support.support(["Refunds go to the card."], evidence)
    cached = support.support(["Refunds take five days."], evidence)
    assert embedder.embedded.count(evidence[0]) == 1
    assert cached == EmbeddingSupport(WordEmbedder()).support(["Refunds take five days."], evidence)
    support.support(["Other."], ["A third sentence."])  # evicts the least recently used
    support.support(["Refunds go to the card."], evidence)
    assert embedder.embedded.count(evidence[0]) == 2
