"""Shared objects used from several threads: the MiniLM encoder is entered by one call at
a time, and the adapter directory only ever moves forward in registry generations."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from adapters.registry import DomainState, RegistryState
from adapters.directory import AdapterDirectory
from adapters.manifest import MANIFEST, AdapterManifest
from tests.support.adapters import make_adapter
from text.embedding import MiniLMEmbedder


class CountingModel:
    """Stands in for the SentenceTransformer: records how many calls overlap."""

    def __init__(self) -> None:
        self.inside = self.most = 0
        self._count = threading.Lock()

    def encode(self, texts, **_):  # noqa: ANN001, ANN003 - the encoder's own signature
        with self._count:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(0.005)
        with self._count:
            self.inside -= 1
        return np.ones((len(texts), 4), dtype=np.float32)


def test_minilm_is_entered_by_one_thread_at_a_time():
    embedder = MiniLMEmbedder.__new__(MiniLMEmbedder)
    model = CountingModel()
    embedder._model, embedder.dim, embedder._lock = model, 4, threading.Lock()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: embedder.embed([f"query {i}"]), range(64)))
    assert model.most == 1


class TwoGenerations:
    """A registry read twice, the older state arriving last (a slow concurrent refresh)."""

    def __init__(self, root) -> None:  # noqa: ANN001
        self.root = root
        v1, v2 = (AdapterManifest.model_validate_json((make_adapter(root, "refund", v) / MANIFEST).read_text())
                  for v in ("refund-v1-2026-11-01", "refund-v2-2026-11-02"))
        self.manifests = [v1, v2]
        self.states = {
            5: RegistryState(generation=5, domains={"refund": DomainState(active=v2.version)}),
            3: RegistryState(generation=3, domains={"refund": DomainState(active=v1.version)}),
        }

    def version_dir(self, version: str):  # noqa: ANN201
        return self.root / version


def test_an_older_generation_never_replaces_a_newer_one(tmp_path):
    registry = TwoGenerations(tmp_path)
    directory = AdapterDirectory(registry, None, "static", 0.5)  # type: ignore[arg-type]
    assert directory._rebuild(registry.states[5], registry.manifests)
    assert not directory._rebuild(registry.states[3], registry.manifests)
    assert directory.generation == 5
    assert directory.resolve("refund").version == "refund-v2-2026-11-02"
