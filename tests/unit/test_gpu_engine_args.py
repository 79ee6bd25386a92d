"""The GPU deployment, checked without a GPU: the vLLM engine arguments and Ray Serve
options built from `deployments/serve_config.gpu.yaml` and from the KubeRay manifest that
embeds it, held against vLLM's own rules and the GPUs of the node types they land on.

Nothing is loaded: the configured models are hub ids (Settings.model_location returns
them as they are), and what a model is made of comes from the tables below.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.app import engine_deployment, engine_spec
from deployments.gpu_placement import PLACEMENT_STRATEGY, engine_placement, tensor_parallel_size
from deployments.load_board import BoardAddress
from engines.vllm_engine import engine_args
from deployments.settings import Settings, TierSettings

ROOT = Path(__file__).resolve().parents[2]
GiB = 1024**3


@dataclass(frozen=True)
class Model:
    attention_heads: int
    kv_heads: int
    layers: int
    head_dim: int
    context: int  # max_position_embeddings
    weights_gib: float  # the checkpoint's weights as loaded


# From each model's config.json on the hub (num_attention_heads, num_key_value_heads,
# num_hidden_layers, hidden_size / num_attention_heads, max_position_embeddings).
# Weights: Llama 70.6 B parameters x 2 bytes (bf16); Qwen AWQ: 4-bit linear layers plus
# 16-bit embeddings, an upper bound of its 1.2 GB safetensors file.
MODELS = {
    "meta-llama/Llama-3.3-70B-Instruct": Model(64, 8, 80, 128, 131072, 70.6e9 * 2 / GiB),
    "Qwen/Qwen2.5-1.5B-Instruct-AWQ": Model(12, 2, 28, 128, 32768, 1.6),
}


@dataclass(frozen=True)
class Gpu:
    memory_gib: float  # as CUDA reports it
    capability: int  # compute capability x 10, as vLLM compares it


GPUS = {"A10G": Gpu(22.49, 86), "L40S": Gpu(44.99, 89)}
INSTANCE_GPUS = {"g5.xlarge": "A10G", "g6e.12xlarge": "L40S"}  # ray_cluster.yaml's GPU node types
BF16_MIN_CAPABILITY = 80  # vLLM's CUDA platform refuses bfloat16 below Ampere
OVERHEAD_GIB = 2.0  # activations, CUDA graphs (enforce_eager: false), NCCL buffers per GPU


@dataclass(frozen=True)
class Node:
    gpu: str
    resources: dict[str, float]  # what Ray sees on one node: CPU, GPU, custom
    max_nodes: int


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def cluster_nodes() -> list[Node]:
    types = _yaml("ray_cluster.yaml")["available_node_types"].values()
    return [
        Node(INSTANCE_GPUS[t["node_config"]["InstanceType"]], t["resources"], t["max_workers"])
        for t in types if t["resources"].get("GPU")
    ]


def kuberay_nodes() -> list[Node]:
    groups = _yaml("deployments/kuberay/rayservice.yaml")["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    nodes = []
    for group in groups:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        if "nvidia.com/gpu" not in limits:
            continue
        # KubeRay passes the value to `ray start --resources=...` through a shell: "{\"r\": 1}"
        custom = json.loads(group["rayStartParams"]["resources"].strip('"').replace('\\"', '"'))
        gpu = group["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"].removeprefix("NVIDIA-")
        resources = {"CPU": float(limits["cpu"]), "GPU": float(limits["nvidia.com/gpu"]), **custom}
        nodes.append(Node(gpu, resources, group["maxReplicas"]))
    return nodes


SOURCES = {
    "serve_config.gpu.yaml": (lambda: _yaml("deployments/serve_config.gpu.yaml"), cluster_nodes),
    "kuberay/rayservice.yaml": (
        lambda: yaml.safe_load(_yaml("deployments/kuberay/rayservice.yaml")["spec"]["serveConfigV2"]),
        kuberay_nodes,
    ),
}
CASES = [(source, tier) for source in SOURCES for tier in ("small", "large")]


@dataclass
class Case:
    settings: Settings
    tier: TierSettings
    model: Model
    node: Node
    args: Any  # vllm AsyncEngineArgs
    options: dict[str, Any]


@pytest.fixture(params=CASES, ids=[f"{s}-{t}" for s, t in CASES])
def case(request, monkeypatch) -> Case:
    # Offline, vLLM's engine arguments swap a hub id for its local snapshot, which is not
    # here: online, they keep the id and read nothing until the engine starts.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    source, tier = request.param
    config, nodes = SOURCES[source]
    settings = Settings(**config()["applications"][0]["args"])
    tier_settings = settings.tier(tier)
    # The node type its custom resources pin it to (the cluster test checks they exist).
    pins = tier_settings.resources.items()
    node = next(n for n in nodes() if all(n.resources.get(k, 0) >= v for k, v in pins))
    return Case(
        settings, tier_settings, MODELS[settings.model_location(tier)], node,
        engine_args(engine_spec(settings, tier)), engine_placement(tier_settings),
    )


# ---- tensor parallelism -------------------------------------------------------------------

def test_tensor_parallel_size_is_the_gpus_of_a_replica(case):
    assert case.args.tensor_parallel_size == max(1, int(case.tier.num_gpus))
    assert case.args.distributed_executor_backend == ("ray" if case.args.tensor_parallel_size > 1 else None)


def test_large_tier_shards_the_70b_model_over_its_4_gpus():
    settings = Settings(**_yaml("deployments/serve_config.gpu.yaml")["applications"][0]["args"])
    assert settings.large.num_gpus == 4 and engine_spec(settings, "large").tensor_parallel_size == 4


def test_tensor_parallel_size_divides_the_attention_heads(case):
    tp, model = case.args.tensor_parallel_size, case.model
    assert model.attention_heads % tp == 0
    # KV heads are split, or replicated when fewer than the GPUs: one of them divides the other.
    assert model.kv_heads % tp == 0 or tp % model.kv_heads == 0


def test_tensor_parallel_workers_fit_one_node(case):
    assert case.args.tensor_parallel_size <= case.node.resources["GPU"]


# ---- the replica's placement ------------------------------------------------------------------

def test_a_sharded_replica_holds_no_gpu_and_reserves_its_workers_gpus(case):
    tp = case.args.tensor_parallel_size
    actor = case.options["ray_actor_options"]
    if tp == 1:
        assert actor["num_gpus"] == case.tier.num_gpus and "placement_group_bundles" not in case.options
        return
    assert actor["num_gpus"] == 0
    bundles = case.options["placement_group_bundles"]
    assert bundles[1:] == [{"GPU": 1.0}] * tp  # vLLM takes one 1-GPU bundle per worker
    # Ray places the replica actor in bundle 0: its CPUs and pinning resources must be there.
    assert bundles[0]["CPU"] >= actor["num_cpus"] and "GPU" not in bundles[0]
    assert all(bundles[0].get(k, 0) >= v for k, v in actor.get("resources", {}).items())
    assert case.options["placement_group_strategy"] == PLACEMENT_STRATEGY == "STRICT_PACK"


def test_the_placement_group_fits_the_node_type_it_is_pinned_to(case):
    bundles = case.options.get("placement_group_bundles") or [
        {"CPU": case.tier.num_cpus, "GPU": case.tier.num_gpus, **case.tier.resources}
    ]
    wanted: dict[str, float] = {}
    for bundle in bundles:
        for key, value in bundle.items():
            wanted[key] = wanted.get(key, 0) + value
    assert all(case.node.resources.get(k, 0) >= v for k, v in wanted.items()), (wanted, case.node)


def test_every_replica_the_autoscaler_may_ask_for_has_a_node(case):
    replicas = case.tier.autoscaling.max_replicas if case.tier.autoscaling else case.tier.num_replicas
    per_node = min(case.node.resources[k] // v for k, v in case.tier.resources.items())
    assert replicas <= per_node * case.node.max_nodes


def test_ray_serve_accepts_the_deployment_options(case):
    # `.options()` runs Ray Serve's own checks (the replica actor fits bundle 0).
    tier = "large" if case.tier is case.settings.large else "small"
    deployment = engine_deployment(case.settings, tier, BoardAddress(), None)._bound_deployment
    assert deployment.init_args[0] == engine_spec(case.settings, tier)
    assert deployment._replica_config.placement_group_bundles == case.options.get("placement_group_bundles")
    assert deployment.ray_actor_options["num_gpus"] == case.options["ray_actor_options"]["num_gpus"]


# ---- vLLM's rules for the engine arguments ---------------------------------------------------

def test_dtype_is_one_the_quantization_supports(case):
    import torch
    from vllm.model_executor.layers.quantization import get_quantization_config

    gpu = GPUS[case.node.gpu]
    dtype = getattr(torch, case.args.dtype)
    if case.args.quantization is not None:
        method = get_quantization_config(case.args.quantization)
        assert dtype in method.get_supported_act_dtypes()
        assert gpu.capability >= method.get_min_capability()
    if dtype == torch.bfloat16:
        assert gpu.capability >= BF16_MIN_CAPABILITY


def test_lora_rank_is_one_vllm_allows(case):
    from vllm.config.lora import MaxLoRARanks

    if case.args.enable_lora:
        assert case.args.max_lora_rank in typing.get_args(MaxLoRARanks)
        assert case.args.max_loras <= case.args.max_cpu_loras


def test_gpu_memory_utilization_is_a_fraction(case):
    assert 0 < case.args.gpu_memory_utilization <= 1


def test_context_length_is_within_the_models(case):
    assert case.args.max_model_len <= case.model.context


def test_weights_and_one_full_sequence_fit_each_gpu(case):
    tp, model, gpu = case.args.tensor_parallel_size, case.model, GPUS[case.node.gpu]
    # K and V, 16-bit, of the KV heads one GPU holds
    kv_bytes_per_token = model.layers * 2 * max(1, model.kv_heads // tp) * model.head_dim * 2
    needed = model.weights_gib / tp + case.args.max_model_len * kv_bytes_per_token / GiB + OVERHEAD_GIB
    assert needed <= gpu.memory_gib * case.args.gpu_memory_utilization, (needed, gpu)


# ---- the rule itself ------------------------------------------------------------------------

@pytest.mark.parametrize("num_gpus, tp", [(0, 1), (0.5, 1), (1, 1), (2, 2), (4, 4), (8.0, 8)])
def test_tensor_parallel_size_from_num_gpus(num_gpus, tp):
    assert tensor_parallel_size(num_gpus) == tp


def test_a_fraction_of_a_gpu_above_one_is_refused():
    with pytest.raises(ValueError, match="whole number"):
        tensor_parallel_size(2.5)
