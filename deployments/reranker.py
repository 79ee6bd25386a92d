"""The cross-encoder as its own Ray Serve deployment, and the handle the ingress calls.

Its own deployment so it scales (and is placed) apart from the ingress: on a cluster
it belongs on CPU workers next to, not inside, the HTTP edge.
"""

from __future__ import annotations

import asyncio
from typing import Sequence

from ray import serve
from ray.serve.handle import DeploymentHandle

from retrieval.reranker import CrossEncoderScorer, Reranking


@serve.deployment(max_ongoing_requests=32, ray_actor_options={"num_cpus": 0})
class RerankerDeployment:
    def __init__(self, path: str, max_length: int = 256, threads: int = 1) -> None:
        self._scorer = CrossEncoderScorer(path, max_length, threads)
        self._scorer.score("warm up", ["the first call builds the tokenizer's caches"])

    async def rerank(self, query: str, passages: Sequence[str]) -> Reranking:
        # One scoring at a time per replica: torch threads are the replica's cores.
        return await asyncio.to_thread(self._scorer.score, query, list(passages))


class HandleReranker:
    """The gateway's `Reranker` seam over the deployment's handle."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle

    async def rerank(self, query: str, passages: Sequence[str]) -> Reranking:
        return await self._handle.rerank.remote(query, list(passages))
