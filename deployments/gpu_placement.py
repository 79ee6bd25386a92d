"""Tensor parallelism from the GPUs a tier's replica holds, and the placement that makes
it work inside a Ray Serve replica.

One engine over N GPUs (N > 1) runs its N workers as Ray actors (vLLM's "ray" executor).
The replica must not hold those GPUs itself, or the workers could never get them: it
asks for a placement group instead, bundle 0 for the replica actor (CPU and the custom
resources that pin the tier to its node type) and one 1-GPU bundle per worker. The
engine hands the group to vLLM (`VLLMEngine.build(..., placement_group=...)`). The same
layout as Ray Serve LLM, except STRICT_PACK: a tensor-parallel step exchanges
activations between the GPUs on every layer, so all of them must share one node; PACK
would let a busy cluster spread them over the network.
"""

from __future__ import annotations

from typing import Any

from deployments.options import actor_options
from deployments.settings import TierSettings

PLACEMENT_STRATEGY = "STRICT_PACK"


def tensor_parallel_size(num_gpus: float) -> int:
    """GPUs one engine shards its model over: the replica's whole GPUs (1 below one GPU)."""
    if num_gpus <= 1:
        return 1
    if num_gpus != int(num_gpus):
        raise ValueError(f"num_gpus={num_gpus}: a replica above one GPU needs a whole number of them")
    return int(num_gpus)


def executor_backend(num_gpus: float) -> str | None:
    """vLLM's distributed executor: Ray actors above one GPU, vLLM's own choice otherwise."""
    return "ray" if tensor_parallel_size(num_gpus) > 1 else None


def engine_placement(tier: TierSettings) -> dict[str, Any]:
    """`.options()` kwargs of one engine replica: its actor options, and the placement
    group of its tensor-parallel workers when it shards over several GPUs."""
    actor = actor_options(tier)
    tp = tensor_parallel_size(tier.num_gpus)
    if tp == 1:
        return {"ray_actor_options": actor}
    replica_bundle = {"CPU": max(1.0, tier.num_cpus), **tier.resources}
    return {
        "ray_actor_options": {**actor, "num_gpus": 0},
        "placement_group_bundles": [replica_bundle] + [{"GPU": 1.0} for _ in range(tp)],
        "placement_group_strategy": PLACEMENT_STRATEGY,
    }
