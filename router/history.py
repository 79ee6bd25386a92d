"""Historical difficulty: how the small and large models did on the k nearest past queries.

Built from the training set's own outcomes: the router's memory of this pair's traffic.
A prior blended in at training (another pair's outcomes) is never part of it. The
outcomes may be grades in [0, 1]; the features are then mean grades.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

DEFAULT_KS: tuple[int, ...] = (10, 20, 50, 100)
# The compact index's dimensions: the history's top principal directions (uncentred, so a
# cosine stays a cosine). At 14k rows a decision's search reads 2.7 MB instead of 21.6 MB
# (0.44 -> 0.08 ms at idle with 96; with its cache emptied between decisions, as in a busy
# replica, a whole decision took 1.59 ms at 48 against 1.99 at 96); the model is trained on
# the same neighbours it is served with, so nothing is approximated between the two (router
# eval on the MMLU split, docs/routing.md: APGR 0.698 at 48, 0.699 at 96, 0.701 full).
COMPACT_DIMS = 48
# Below this many rows the full search is already cheap (a pair's own ~1k outcomes: 1.5 MB,
# ~0.03 ms) and a basis fitted on so few rows would only blur the neighbours.
COMPACT_MIN_ROWS = 4096


def compacts(rows: int, width: int, dims: int = COMPACT_DIMS) -> bool:
    """Whether a history of `rows` embeddings `width` wide gains from a `dims` index (0: never)."""
    return 0 < dims < width and rows >= max(COMPACT_MIN_ROWS, dims)


def compact_basis(embeddings: NDArray[np.float32], dims: int = COMPACT_DIMS) -> NDArray[np.float32] | None:
    """The `dims` leading right singular vectors of the history (rows: directions), or None
    where it would not gain from them (`compacts`)."""
    if not compacts(len(embeddings), embeddings.shape[1], dims):
        return None
    _, _, vt = np.linalg.svd(np.asarray(embeddings, dtype=np.float64), full_matrices=False)
    return np.ascontiguousarray(vt[:dims], dtype=np.float32)


def history_feature_names(ks: tuple[int, ...]) -> tuple[str, ...]:
    names = [f"knn{k}_{part}" for k in ks for part in ("small_ok", "large_ok", "gain")]
    return (*names, "nn_sim1", "nn_sim10")


class KnnHistory:
    def __init__(
        self,
        embeddings: NDArray[np.float32],
        small_ok: NDArray[np.float32],
        large_ok: NDArray[np.float32],
        ks: tuple[int, ...] = DEFAULT_KS,
        basis: NDArray[np.float32] | None = None,
    ) -> None:
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        # Neighbours are searched in `basis`'s span when given (see COMPACT_DIMS), by cosine.
        self.basis = None if basis is None else np.ascontiguousarray(basis, dtype=np.float32)
        self._index = self._project(self.embeddings)
        self.small_ok = np.asarray(small_ok, dtype=np.float32)
        self.large_ok = np.asarray(large_ok, dtype=np.float32)
        self.ks = ks

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def compact(self) -> bool:
        return self.basis is not None

    def _project(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.basis is None:
            return rows
        projected = np.asarray(rows, dtype=np.float32) @ self.basis.T
        norms = np.linalg.norm(projected, axis=-1, keepdims=True)
        return np.ascontiguousarray(projected / np.maximum(norms, 1e-12), dtype=np.float32)

    def features(self, queries: NDArray[np.float32], exclude_self: bool = False) -> NDArray[np.float32]:
        """One row of `history_feature_names(ks)` per query. `exclude_self` is for the
        history's own rows (leave-one-out), so training features match serving ones."""
        queries = self._project(queries)
        if len(queries) == 1 and not exclude_self:
            return self._one(queries[0])
        blocks = []
        for start in range(0, len(queries), 1024):
            block = queries[start : start + 1024]
            # E @ qᵀ runs down E's contiguous rows; q @ Eᵀ walks E transposed, ~10x slower
            # for the one query of a routing decision (0.6 vs 6 ms at 14k rows).
            sims = np.ascontiguousarray((self._index @ block.T).T)
            if exclude_self:
                rows = np.arange(sims.shape[0])
                sims[rows, rows + start] = -np.inf
            blocks.append(self._summarise(*self._nearest(sims)))
        return np.vstack(blocks) if blocks else np.zeros((0, len(history_feature_names(self.ks))))

    @property
    def _k_max(self) -> int:
        return min(max(self.ks), len(self._index) - 1)

    def _nearest(self, sims: NDArray[np.float32]) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
        """The k_max most similar rows per query, most similar first, and their similarities."""
        k_max = self._k_max
        top = np.argpartition(-sims, k_max - 1, axis=1)[:, :k_max]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)

    def _one(self, query: NDArray[np.float32]) -> NDArray[np.float32]:
        """One query's features (a routing decision): one float32 product over the index and
        a partial sort. A float16 screen once sat here; on the compact index it had nothing
        left to save (0.05 ms for the product), it ran emulated on CPUs without half-precision
        arithmetic (measured 2 ms on this 2-core host when its one-off timing misjudged), and
        it pulled torch's thread pool into the decision, where a busy replica stalled it."""
        return self._summarise(*self._nearest((self._index @ query)[None, :]))

    def _summarise(self, top: NDArray[np.intp], top_sims: NDArray[np.float32]) -> NDArray[np.float32]:
        k_max = self._k_max
        # One gather and one running sum serve every k (a mean per k re-gathered the rows).
        small_sums = np.cumsum(self.small_ok[top], axis=1, dtype=np.float64)
        large_sums = np.cumsum(self.large_ok[top], axis=1, dtype=np.float64)
        cols = []
        for k in self.ks:
            n = min(k, k_max)
            small, large = small_sums[:, n - 1] / n, large_sums[:, n - 1] / n
            cols += [small, large, large - small]
        cols += [top_sims[:, 0], top_sims[:, :10].mean(axis=1)]
        return np.stack(cols, axis=1).astype(np.float32)
