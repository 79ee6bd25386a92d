"""A router artifact made ready to score on the serving path.

Loading a version builds its embedder; embedders are shared between versions with the
same spec (a swap must not load MiniLM again), so the cache is handed in by the caller.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from router.learned import ScoreFn
from router.model import EmbedderSpec, RouterModel, Scorer
from text.embedding import Embedder, RecentEmbeddings, build_embedder


@dataclass(frozen=True)
class LoadedRouter:
    version: str  # the registry version, or the artifact's own for the default model
    score: ScoreFn
    training_scores: list[float] | None = None  # seeds the share threshold's window


@dataclass
class EmbedderCache:
    _built: dict[tuple[str, int], Embedder] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, spec: EmbedderSpec) -> Embedder:
        key = (spec.kind, spec.max_tokens)
        with self._lock:
            if key not in self._built:
                # One embedding per request for every stage that shares this embedder.
                self._built[key] = RecentEmbeddings(build_embedder(spec.kind, spec.max_tokens))
            return self._built[key]


def load_router(path: Path, version: str | None, embedders: EmbedderCache) -> LoadedRouter:
    """Raises `SchemaMismatch` for an artifact this code cannot score (never silently)."""
    model = RouterModel.load(path)
    scorer = Scorer(model, embedders.get(model.manifest.embedder))
    return LoadedRouter(
        version=version or model.manifest.version, score=scorer.score,
        training_scores=model.manifest.metrics.get("training_scores_quantiles"),
    )
