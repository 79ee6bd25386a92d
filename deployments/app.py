"""Application builder: `serve deploy deployments/serve_config.yaml` and `gateway serve`
both build the app here, from the same settings tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.serve import Application

from adapters.registry import AdapterRegistry
from deployments.engine_deployment import EngineDeployment
from deployments.ingress import Ingress
from deployments.limit_board import LimitBoard
from deployments.load_board import LoadBoard
from deployments.reranker import RerankerDeployment
from engines.embedded import resolve_model as resolve
from engines.vllm_engine import EngineSpec
from gateway.catalog import TierSpec
from gateway.adapters import open_registry
from gateway.live_config import LiveConfig
from gateway.settings import Settings, TierName, TierSettings, deployment_scale

DEPLOYMENT_NAMES: dict[TierName, str] = {"small": "SmallEngine", "large": "LargeEngine"}


def resolve_model(settings: Settings, tier: TierName) -> str:
    return resolve(settings.tier(tier).model, settings.models_dir, tier)


def engine_spec(settings: Settings, tier: TierName) -> EngineSpec:
    tier_settings = settings.tier(tier)
    template = tier_settings.chat_template
    return EngineSpec(
        model=resolve_model(settings, tier),
        served_name=tier_settings.served_name,
        max_model_len=tier_settings.max_model_len,
        dtype=tier_settings.dtype,
        quantization=tier_settings.quantization,
        enable_lora=tier_settings.enable_lora,
        max_lora_rank=tier_settings.max_lora_rank,
        max_loras=tier_settings.max_loras,
        max_cpu_loras=max(tier_settings.max_cpu_loras, tier_settings.max_loras),
        enforce_eager=tier_settings.enforce_eager,
        max_num_seqs=tier_settings.max_num_seqs,
        gpu_memory_utilization=tier_settings.gpu_memory_utilization,
        chat_template=Path(template).read_text() if template else None,
        stop=tuple(tier_settings.stop),
    )


def actor_options(tier: TierSettings) -> dict[str, Any]:
    # The engine core is a child process of the replica: it inherits these.
    env = {"VLLM_CPU_KVCACHE_SPACE": str(tier.kv_cache_gib)}
    if tier.cpu_threads_bind is not None:
        env["VLLM_CPU_OMP_THREADS_BIND"] = tier.cpu_threads_bind
    options: dict[str, Any] = {"num_cpus": tier.num_cpus, "num_gpus": tier.num_gpus, "runtime_env": {"env_vars": env}}
    if tier.resources:
        options["resources"] = dict(tier.resources)
    return options


def engine_deployment(
    settings: Settings, tier: TierName, board: Application, registry: AdapterRegistry | None
) -> Application:
    tier_settings = settings.tier(tier)
    return EngineDeployment.options(
        name=DEPLOYMENT_NAMES[tier],
        **deployment_scale(tier_settings.num_replicas, tier_settings.autoscaling),  # type: ignore[arg-type]
        ray_actor_options=actor_options(tier_settings),
        logging_config={"encoding": settings.log_encoding},
    ).bind(engine_spec(settings, tier), tier, board, registry, settings.adapters.poll_interval_s)


def build(settings: Settings) -> Application:
    tiers = {
        tier: TierSpec(served_name=settings.tier(tier).served_name,
                       max_model_len=settings.tier(tier).max_model_len)
        for tier in DEPLOYMENT_NAMES
    }
    live = LiveConfig(routing=settings.routing, shadow=settings.shadow.config, grounding=settings.retrieval.grounding)
    board = LoadBoard.bind()
    # Adapters live on the small tier only; its registry is the one source of truth.
    registry = open_registry(settings) if settings.small.enable_lora else None
    ingress_options: dict[str, Any] = {"num_cpus": 0}
    if settings.ingress.resources:
        ingress_options["resources"] = dict(settings.ingress.resources)
    return Ingress.options(
        **deployment_scale(settings.ingress.num_replicas, settings.ingress.autoscaling),  # type: ignore[arg-type]
        ray_actor_options=ingress_options,
        user_config=live.model_dump(mode="json"),
        logging_config={"encoding": settings.log_encoding},
    ).bind(
        engine_deployment(settings, "small", board, registry),
        engine_deployment(settings, "large", board, None),
        board,
        tiers,
        settings.limits,
        settings.router,
        registry,
        settings.adapters,
        settings.admin,
        settings.auth,
        LimitBoard.bind(),
        settings.shadow,
        settings.retrieval,
        reranker_deployment(settings),
    )


def reranker_deployment(settings: Settings) -> Application | None:
    retrieval = settings.retrieval
    if not retrieval.enabled:
        return None
    options: dict[str, Any] = {"num_cpus": retrieval.reranker_num_cpus}
    if retrieval.reranker_resources:
        options["resources"] = dict(retrieval.reranker_resources)
    return RerankerDeployment.options(
        name="Reranker", num_replicas=retrieval.reranker_replicas, ray_actor_options=options,
        logging_config={"encoding": settings.log_encoding},
    ).bind(str(retrieval.reranker), retrieval.max_length, retrieval.reranker_threads)


def build_app(args: dict[str, Any]) -> Application:
    """Ray Serve application builder (`import_path: deployments.app:build_app`)."""
    return build(Settings(**(args or {})))


__all__ = ["build", "build_app"]
