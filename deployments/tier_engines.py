"""A tier's engine by its kind: vLLM inside the replica, an OpenAI-compatible endpoint
elsewhere, or the mock. The recipe is built from settings where the app is built and
crosses to the replica as plain data; the engine is built in the replica."""

from __future__ import annotations

import logging

from ray.util import get_current_placement_group

from engines.mock import MockEngine, MockSpec
from engines.openai_remote import OpenAIRemoteEngine, RemoteSpec
from engines.protocol import ReplicaEngine
from engines.vllm_engine import EngineSpec, VLLMEngine
from background.failures import CountFailure, FailureLog, uncounted
from deployments.settings import TierSettings, api_key_from_env

logger = logging.getLogger("ray.serve")

EngineRecipe = EngineSpec | RemoteSpec | MockSpec


def remote_spec(tier: TierSettings, max_tokens: int) -> RemoteSpec:
    """`max_tokens`: the gateway's cap (limits.max_tokens), sent upstream when a client omits it."""
    assert tier.openai is not None, "validated by TierSettings: kind=openai has its section"
    return RemoteSpec(
        settings=tier.openai, model=tier.upstream_model, max_model_len=tier.max_model_len,
        stop=tuple(tier.stop), enable_lora=tier.enable_lora, max_tokens=max_tokens,
    )


def mock_spec(tier: TierSettings) -> MockSpec:
    return MockSpec(settings=tier.mock, max_model_len=tier.max_model_len, enable_lora=tier.enable_lora)


def build_remote(recipe: RemoteSpec, count_failure: CountFailure = uncounted) -> OpenAIRemoteEngine:
    # Counted as task "upstream-metrics"; logged on the first failure, then once a minute.
    scrapes = FailureLog("upstream-metrics", logger, count_failure)
    return OpenAIRemoteEngine.build(recipe, api_key_from_env(recipe.settings.api_key_env), scrapes)


def build_engine(recipe: EngineRecipe, count_failure: CountFailure = uncounted) -> ReplicaEngine:
    if isinstance(recipe, RemoteSpec):
        return build_remote(recipe, count_failure)
    if isinstance(recipe, MockSpec):
        return MockEngine(recipe)
    # Tensor-parallel workers go into this replica's placement group (gpu_placement.py).
    placement = get_current_placement_group() if recipe.distributed_executor_backend == "ray" else None
    return VLLMEngine.build(recipe, placement_group=placement)
