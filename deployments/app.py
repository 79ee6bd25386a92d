"""Application builder: `serve deploy deployments/serve_config.yaml` and `gateway serve`
both build the app here, from the same settings tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.serve import Application

from adapters.registry import AdapterRegistry
from deployments.engine_deployment import EngineDeployment
from deployments.gpu_placement import engine_placement, executor_backend, tensor_parallel_size
from deployments.ingress import Ingress, IngressHandles, IngressParts
from deployments.limit_board import LimitBoard
from deployments.load_board import LoadBoard
from deployments.options import deployment_scale, io_placement, pinned
from deployments.reranker import RerankerDeployment
from deployments.tier_engines import EngineRecipe, mock_spec, remote_spec
from engines.capabilities import tier_capabilities
from engines.types import Tier
from engines.vllm_engine import EngineSpec
from gateway.catalog import TierSpec
from gateway.live_config import LiveConfig
from deployments.settings import Settings, TierSettings

DEPLOYMENT_NAMES: dict[Tier, str] = {"small": "SmallEngine", "large": "LargeEngine"}


def engine_spec(settings: Settings, tier: Tier) -> EngineSpec:
    tier_settings = settings.tier(tier)
    template = tier_settings.chat_template
    return EngineSpec(
        model=settings.model_location(tier),
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
        tensor_parallel_size=tensor_parallel_size(tier_settings.num_gpus),
        distributed_executor_backend=executor_backend(tier_settings.num_gpus),
        chat_template=Path(template).read_text() if template else None,
        stop=tuple(tier_settings.stop),
        tool_parser=tier_settings.tool_parser,
        max_logprobs=tier_settings.max_logprobs,
    )


def engine_recipe(settings: Settings, tier: Tier) -> EngineRecipe:
    """What the tier's replicas build their engine from, by the tier's kind."""
    tier_settings = settings.tier(tier)
    if tier_settings.kind == "openai":
        return remote_spec(tier_settings, settings.limits.max_tokens)
    if tier_settings.kind == "mock":
        return mock_spec(tier_settings)
    return engine_spec(settings, tier)


def engine_deployment(
    settings: Settings, tier: Tier, board: Application, registry: AdapterRegistry | None
) -> Application | None:
    """The tier's replicas; None for a remote tier the ingress calls directly."""
    tier_settings = settings.tier(tier)
    if tier_settings.direct:
        return None
    # Only a vLLM tier computes; a remote or mock tier's replica just waits on I/O.
    placement = engine_placement(tier_settings) if tier_settings.kind == "vllm" else io_placement(tier_settings)
    return EngineDeployment.options(
        name=DEPLOYMENT_NAMES[tier],
        **deployment_scale(tier_settings.num_replicas, tier_settings.autoscaling),  # type: ignore[arg-type]
        **placement,
        logging_config={"encoding": settings.log_encoding},
    ).bind(engine_recipe(settings, tier), tier, board, registry, settings.adapters.poll_interval_s)


def build(settings: Settings) -> Application:
    live = LiveConfig(
        routing=settings.routing, shadow=settings.shadow.config, grounding=settings.retrieval.grounding,
        support=settings.support.config, flags=settings.flags,
    )
    board = LoadBoard.bind()
    # Adapters live on the small tier only; its registry is the one source of truth.
    registry = settings.adapter_workspace().open_registry() if settings.small.enable_lora else None
    handles = IngressHandles(
        small=engine_deployment(settings, "small", board, registry),
        large=engine_deployment(settings, "large", board, None),
        load_board=board,
        limit_board=LimitBoard.bind(),
        reranker=reranker_deployment(settings),
    )
    return Ingress.options(
        **deployment_scale(settings.ingress.num_replicas, settings.ingress.autoscaling),  # type: ignore[arg-type]
        ray_actor_options=pinned({"num_cpus": 0}, settings.ingress.resources),
        user_config=live.model_dump(mode="json"),
        logging_config={"encoding": settings.log_encoding},
    ).bind(handles, ingress_parts(settings, registry))


def tier_spec(tier: TierSettings) -> TierSpec:
    """What the catalog says of a tier, its capabilities (tools, json_schema, n, logprobs)
    by its engine kind, narrowed by what ops declared of a remote upstream."""
    declared = tier.openai.capabilities if tier.openai is not None else None
    return TierSpec(
        served_name=tier.served_name, max_model_len=tier.max_model_len,
        capabilities=tier_capabilities(tier.kind, declared),
    )


def ingress_parts(settings: Settings, registry: AdapterRegistry | None) -> IngressParts:
    tiers = {tier: tier_spec(settings.tier(tier)) for tier in DEPLOYMENT_NAMES}
    direct = {
        tier: remote_spec(settings.tier(tier), settings.limits.max_tokens)
        for tier in DEPLOYMENT_NAMES if settings.tier(tier).direct
    }
    return IngressParts(
        tiers=tiers, direct=direct, limits=settings.limits, router=settings.router, adapters=settings.adapters,
        registry=registry, admin=settings.admin, auth=settings.auth, shadow=settings.shadow,
        retrieval=settings.retrieval, support=settings.support, gate=settings.gate,
    )


def reranker_deployment(settings: Settings) -> Application | None:
    retrieval = settings.retrieval
    if not retrieval.enabled:
        return None
    return RerankerDeployment.options(
        name="Reranker", num_replicas=retrieval.reranker_replicas,
        ray_actor_options=pinned({"num_cpus": retrieval.reranker_num_cpus}, retrieval.reranker_resources),
        logging_config={"encoding": settings.log_encoding},
    ).bind(str(retrieval.reranker), retrieval.max_length, retrieval.reranker_threads)


def build_app(args: dict[str, Any]) -> Application:
    """Ray Serve application builder (`import_path: deployments.app:build_app`)."""
    return build(Settings(**(args or {})))


__all__ = ["build", "build_app"]
