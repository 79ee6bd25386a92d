"""One embedding per request: the stages that read a request's words with the same
embedder (the gate, the router, a static adapter selector) embed them once."""

from __future__ import annotations

from typing import Sequence

import numpy as np

import router.loading as loading
from router.loading import EmbedderCache
from router.model import EmbedderSpec
from text.embedding import RecentEmbeddings


class Counting:
    dim = 3

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_a_text_asked_twice_is_embedded_once() -> None:
    inner = Counting()
    recent = RecentEmbeddings(inner)
    first, second = recent.embed(["where is my order"]), recent.embed(["where is my order"])
    assert inner.calls == [["where is my order"]]
    assert np.array_equal(first, second) and recent.dim == 3


def test_a_caller_writing_into_its_array_changes_no_one_elses() -> None:
    recent = RecentEmbeddings(Counting())
    recent.embed(["a"])[0, 0] = 99.0
    assert recent.embed(["a"])[0, 0] == 1.0


def test_batches_pass_through_and_the_memory_is_bounded() -> None:
    inner = Counting()
    recent = RecentEmbeddings(inner, size=2)
    recent.embed(["a", "b"])
    recent.embed(["a"]), recent.embed(["b"]), recent.embed(["c"])  # "a" is the oldest: forgotten
    recent.embed(["c"])
    recent.embed(["a"])
    assert inner.calls == [["a", "b"], ["a"], ["b"], ["c"], ["a"]]


def test_the_cache_hands_every_stage_the_same_remembering_embedder(monkeypatch) -> None:
    built: list[Counting] = []

    def build(kind: str, max_tokens: int) -> Counting:
        built.append(Counting())
        return built[-1]

    monkeypatch.setattr(loading, "build_embedder", build)
    cache = EmbedderCache()
    spec = EmbedderSpec(kind="static", max_tokens=128)
    router_side, gate_side = cache.get(spec), cache.get(EmbedderSpec(kind="static", max_tokens=128))
    gate_side.embed(["my card was charged twice"])
    router_side.embed(["my card was charged twice"])
    assert router_side is gate_side and len(built) == 1 and len(built[0].calls) == 1
    assert cache.get(EmbedderSpec(kind="static", max_tokens=256)) is not router_side
