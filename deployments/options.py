"""Settings → Ray options: replicas or autoscaling, and what a replica's actor needs."""

from __future__ import annotations

from typing import Any

from deployments.settings import AutoscalingSettings, TierSettings


def deployment_scale(num_replicas: int, autoscaling: AutoscalingSettings | None) -> dict[str, object]:
    """`serve.deployment(...).options` kwargs: a fixed count, or an autoscaling config."""
    if autoscaling is None:
        return {"num_replicas": num_replicas}
    return {"num_replicas": "auto", "autoscaling_config": autoscaling.model_dump()}


def actor_options(tier: TierSettings) -> dict[str, Any]:
    """Ray actor options of one engine replica."""
    # The engine core is a child process of the replica: it inherits these.
    env = {"VLLM_CPU_KVCACHE_SPACE": str(tier.kv_cache_gib)}
    if tier.cpu_threads_bind is not None:
        env["VLLM_CPU_OMP_THREADS_BIND"] = tier.cpu_threads_bind
    options = {"num_cpus": tier.num_cpus, "num_gpus": tier.num_gpus, "runtime_env": {"env_vars": env}}
    return pinned(options, tier.resources)


def io_placement(tier: TierSettings) -> dict[str, Any]:
    """`.options()` kwargs of a replica whose engine is elsewhere or synthetic (kind openai,
    mock): it only waits on I/O, so it holds no CPU and no GPU of the node's."""
    return {"ray_actor_options": pinned({"num_cpus": 0, "num_gpus": 0}, tier.resources)}


def pinned(base: dict[str, Any], resources: dict[str, float]) -> dict[str, Any]:
    """`base` actor options plus the custom resources that pin a replica to a node type."""
    return {**base, "resources": dict(resources)} if resources else dict(base)
