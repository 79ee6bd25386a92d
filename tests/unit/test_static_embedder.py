"""The router's static embedder: the mean of MiniLM's token table, as sentence-transformers'
StaticEmbedding computes it, with long prompts tokenized only as far as truncation reads."""

import numpy as np
import pytest

from text.embedding import StaticMiniLMEmbedder, default_minilm_path


@pytest.fixture(scope="module")
def embedders():
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import StaticEmbedding

    ours = StaticMiniLMEmbedder(max_tokens=32)
    encoder = SentenceTransformer(str(default_minilm_path()), device="cpu")
    weights = encoder[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
    backend = encoder.tokenizer.backend_tokenizer
    backend.enable_truncation(32)
    reference = SentenceTransformer(modules=[StaticEmbedding(backend, embedding_weights=weights)], device="cpu")
    return ours, reference


TEXTS = [
    "Where is my refund?",
    "",
    "   ",
    "word " * 40,  # more chunks than tokens: clipped
    "unbelievably-complicated re-authorisation " * 20,  # many tokens per chunk
    "a\x1cb " * 60,  # a separator Python splits on and BERT deletes: not clipped there
    "x" * 3000,  # one huge chunk
    "short one",
]


def test_matches_sentence_transformers_static_embedding(embedders):
    ours, reference = embedders
    expected = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    got = ours.embed(TEXTS)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_clipped_tokens_equal_full_truncated_tokens(embedders):
    ours, _ = embedders
    for text in TEXTS:
        assert ours._token_ids(text) == ours._tokenizer.encode(text, add_special_tokens=False).ids
