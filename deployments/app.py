"""Application builder: `serve deploy deployments/serve_config.yaml` and `gateway serve`
both build the app here, from the same settings tree.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.serve import Application
from ray.serve.config import BackpressureConfig

from adapters.registry import AdapterRegistry
from deployments.engine_deployment import EngineDeployment
from deployments.gpu_placement import engine_placement, executor_backend, tensor_parallel_size
from deployments.ingress import Ingress, IngressHandles, IngressParts
from deployments.limit_board import LimitBoardAddress
from deployments.load_board import BoardAddress
from deployments.options import deployment_scale, io_placement, pinned
from deployments.reranker import RerankerDeployment
from deployments.tier_engines import EngineRecipe, mock_spec, remote_spec
from engines.capabilities import tier_capabilities
from engines.types import Tier
from engines.vllm_engine import EngineSpec
from gateway.access import Access, decide_access
from gateway.catalog import TierSpec
from gateway.keys import census
from gateway.live_config import LiveConfig
from deployments.settings import Settings, TierSettings

DEPLOYMENT_NAMES: dict[Tier, str] = {"small": "SmallEngine", "large": "LargeEngine"}
# A tier's queue at each caller, in max_ongoing_requests (already far past vLLM's batch:
# the rest wait in vLLM's own queue, where the router sees them).
ENGINE_QUEUE_FACTOR = 2

logger = logging.getLogger(__name__)


def deployment_name(tier: Tier) -> str:
    """The tier's Ray Serve deployment: SmallEngine, LargeEngine, then Engine_<name>."""
    return DEPLOYMENT_NAMES.get(tier) or f"Engine_{tier}"


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
    settings: Settings, tier: Tier, board: BoardAddress, registry: AdapterRegistry | None
) -> Application | None:
    """The tier's replicas; None for a remote tier the ingress calls directly."""
    tier_settings = settings.tier(tier)
    if tier_settings.direct:
        return None
    # Only a vLLM tier computes; a remote or mock tier's replica just waits on I/O.
    placement = engine_placement(tier_settings) if tier_settings.kind == "vllm" else io_placement(tier_settings)
    queued = tier_settings.max_queued_requests or ENGINE_QUEUE_FACTOR * EngineDeployment.max_ongoing_requests
    return EngineDeployment.options(
        name=deployment_name(tier),
        **deployment_scale(tier_settings.num_replicas, tier_settings.autoscaling),  # type: ignore[arg-type]
        **placement,
        **bounded_queue(queued, settings.ingress.busy_retry_after_s),
        # The ingress's access line already names every client request (with its request id
        # and tier); one more per internal hop doubled the logging and cost ~0.1 ms a request.
        logging_config={"encoding": settings.log_encoding, "enable_access_log": False},
    ).bind(engine_recipe(settings, tier), tier, board, registry, settings.adapters.poll_interval_s)


def build(settings: Settings, access: Access | None = None) -> Application:
    """The application; `access` (open or closed) is decided here, once, unless the caller
    did (`gateway serve` decides before it starts Ray). Raises AccessRefused for a gateway
    nobody could call."""
    if access is None:
        access = decide_access(settings.auth, serve_bind_host(settings.http.host), census(settings.auth.keys_db))
    live = LiveConfig(
        routing=settings.routing, shadow=settings.shadow.config, grounding=settings.retrieval.grounding,
        support=settings.support.config, flags=settings.flags, spend=settings.spend.config,
        cascade=settings.cascade,
    )
    unknown = live.unknown_tiers(settings.tier_names())
    if unknown:
        raise ValueError("; ".join(unknown))
    board = BoardAddress()  # a Ray actor the replicas reach by name, not a deployment
    # Adapters live on the small tier only; its registry is the one source of truth.
    registry = settings.adapter_workspace().open_registry() if settings.small.enable_lora else None
    handles = IngressHandles(
        small=engine_deployment(settings, "small", board, registry),
        large=engine_deployment(settings, "large", board, None),
        extra={tier: engine_deployment(settings, tier, board, None) for tier in settings.extra_tiers},
        load_board=board,
        limit_board=LimitBoardAddress(),  # a Ray actor too, synced in the background
        reranker=reranker_deployment(settings),
    )
    return Ingress.options(
        **deployment_scale(settings.ingress.num_replicas, settings.ingress.autoscaling),  # type: ignore[arg-type]
        ray_actor_options=pinned({"num_cpus": 0}, settings.ingress.resources),
        **bounded_queue(settings.ingress.max_queued_requests, settings.ingress.busy_retry_after_s),
        user_config=live.model_dump(mode="json"),
        logging_config={"encoding": settings.log_encoding},
    ).bind(handles, ingress_parts(settings, registry, access))


def serve_bind_host(configured: str) -> str | None:
    """The address Ray Serve's HTTP proxies bind. `serve deploy` takes it from the config
    file's `http_options`, which the settings never see, so the running Serve instance is
    asked; building with no Ray connected (tests) takes the setting. None (unknown) counts
    as a public bind: the gateway stays closed."""
    import ray

    if not ray.is_initialized():
        return configured
    try:
        from ray.serve.context import _get_global_client  # no public API says the bind address

        client = _get_global_client(raise_if_no_controller_running=False)
        return client.http_config.host if client is not None else None
    except Exception:  # an unknown bind must not open the API
        logger.warning("could not ask Ray Serve for its HTTP bind address: treated as public", exc_info=True)
        return None


def bounded_queue(max_queued: int, retry_after_s: float) -> dict[str, Any]:
    """Ray Serve's queue of a deployment at each caller, bounded (Ray's default is no bound):
    past it the caller gets BackPressureError (a handle: `EngineBusy`, 503 tier_busy) or
    Ray's own 503 (the proxy, for the ingress), with Retry-After either way."""
    return {
        "max_queued_requests": max_queued,
        "backpressure_config": BackpressureConfig(status_code=503, retry_after_s=retry_after_s),
    }


def tier_spec(tier: TierSettings) -> TierSpec:
    """What the catalog says of a tier, its capabilities (tools, json_schema, n, logprobs)
    by its engine kind, narrowed by what ops declared of a remote upstream."""
    declared = tier.openai.capabilities if tier.openai is not None else None
    return TierSpec(
        served_name=tier.served_name, max_model_len=tier.max_model_len,
        capabilities=tier_capabilities(tier.kind, declared),
    )


def ingress_parts(settings: Settings, registry: AdapterRegistry | None, access: Access) -> IngressParts:
    tiers = {tier: tier_spec(settings.tier(tier)) for tier in settings.tier_names()}  # cheapest first
    direct = {
        tier: remote_spec(settings.tier(tier), settings.limits.max_tokens)
        for tier in settings.tier_names() if settings.tier(tier).direct
    }
    return IngressParts(
        tiers=tiers, direct=direct, limits=settings.limits, router=settings.router, adapters=settings.adapters,
        registry=registry, admin=settings.admin, auth=settings.auth, access=access, shadow=settings.shadow,
        retrieval=settings.retrieval, support=settings.support, gate=settings.gate, spend=settings.spend,
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
