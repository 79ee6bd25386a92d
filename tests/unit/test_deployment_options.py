"""Settings → Ray Serve deployment options: fixed or autoscaled replicas, node pinning."""

import pytest

from deployments.app import build
from deployments.tier_engines import build_engine, mock_spec, remote_spec
from engines.mock import MockEngine, MockSpec
from engines.openai_remote import OpenAIRemoteEngine, RemoteSpec
from model_files.preparation import prepare_embedded_models
from deployments.options import deployment_scale
from deployments.settings import AutoscalingSettings, MissingSecret, Settings


def test_fixed_replicas_without_autoscaling():
    assert deployment_scale(3, None) == {"num_replicas": 3}


def test_autoscaling_replaces_the_fixed_count():
    scale = deployment_scale(3, AutoscalingSettings(min_replicas=1, max_replicas=4, target_ongoing_requests=8))
    assert scale["num_replicas"] == "auto"
    assert scale["autoscaling_config"]["max_replicas"] == 4 and scale["autoscaling_config"]["target_ongoing_requests"] == 8


def test_unknown_autoscaling_key_is_rejected():
    with pytest.raises(ValueError):
        AutoscalingSettings.model_validate({"max_replica": 3})


def test_app_carries_resources_and_autoscaling_per_deployment():
    settings = Settings(
        ingress={"resources": {"cpu_worker": 0.1}},
        large={"resources": {"gpu_large": 1}, "autoscaling": {"min_replicas": 1, "max_replicas": 2}},
    )
    ingress = build(settings)._bound_deployment
    handles = ingress.init_args[0]
    small, large = handles.small._bound_deployment, handles.large._bound_deployment
    assert ingress.ray_actor_options == {"num_cpus": 0, "resources": {"cpu_worker": 0.1}}
    assert large.ray_actor_options["resources"] == {"gpu_large": 1}
    assert large._deployment_config.autoscaling_config.max_replicas == 2
    assert small._deployment_config.autoscaling_config is None and "resources" not in small.ray_actor_options


def test_remote_and_mock_tiers_hold_no_cpu_or_gpu_and_prepare_no_model(tmp_path):
    settings = Settings(
        models_dir=tmp_path,  # nothing prepared here: neither tier may need it
        small={"kind": "mock", "mock": {"ttft_s": 0.01}},
        large={"kind": "openai", "num_gpus": 1, "resources": {"cpu_worker": 0.1},
               "openai": {"base_url": "http://up:8000/v1", "upstream_model": "org/big-7b", "direct": False}},
    )
    handles = build(settings)._bound_deployment.init_args[0]
    small, large = handles.small._bound_deployment, handles.large._bound_deployment
    assert large.ray_actor_options == {"num_cpus": 0, "num_gpus": 0, "resources": {"cpu_worker": 0.1}}
    assert small.ray_actor_options == {"num_cpus": 0, "num_gpus": 0}
    remote, mock = large.init_args[0], small.init_args[0]
    assert isinstance(remote, RemoteSpec) and remote.model == "org/big-7b" and remote.stop == ()
    assert isinstance(mock, MockSpec) and mock.settings.ttft_s == 0.01 and not mock.enable_lora
    assert settings.model_location("large") == "org/big-7b"
    prepare_embedded_models(tmp_path, progress=False, tiers=())
    assert list(tmp_path.iterdir()) == []


def test_a_replica_builds_its_engine_by_kind_with_the_key_from_the_named_variable(monkeypatch):
    import asyncio

    settings = Settings(small={"kind": "mock"}, large={"kind": "openai", "openai": {
        "base_url": "http://up:8000/v1", "api_key_env": "UPSTREAM_TEST_KEY"}})
    monkeypatch.delenv("UPSTREAM_TEST_KEY", raising=False)
    with pytest.raises(MissingSecret, match="UPSTREAM_TEST_KEY"):
        build_engine(remote_spec(settings.large, settings.limits.max_tokens))
    monkeypatch.setenv("UPSTREAM_TEST_KEY", "sk-never-shown")
    remote = build_engine(remote_spec(settings.large, settings.limits.max_tokens))
    assert isinstance(remote, OpenAIRemoteEngine) and "sk-never-shown" not in repr(remote)
    asyncio.run(remote.aclose())
    assert isinstance(build_engine(mock_spec(settings.small)), MockEngine)


def test_a_remote_tier_is_called_from_the_ingress_unless_it_serves_adapters():
    remote = {"kind": "openai", "openai": {"base_url": "http://up:8000/v1", "upstream_model": "org/big-7b"}}
    settings = Settings(large=remote)
    ingress = build(settings)._bound_deployment
    handles, parts = ingress.init_args
    assert handles.large is None and handles.small is not None  # no LargeEngine replica at all
    assert set(parts.direct) == {"large"} and parts.direct["large"].model == "org/big-7b"
    # The small tier's adapters are synced in its replicas: a remote small tier keeps them.
    with_adapters = Settings(small={**remote, "enable_lora": True})
    assert not with_adapters.small.direct and build(with_adapters)._bound_deployment.init_args[0].small
    with pytest.raises(ValueError, match="direct=true can't serve adapters"):
        Settings(small={**remote, "enable_lora": True, "openai": {**remote["openai"], "direct": True}})


def _yaml(path):
    import yaml

    return yaml.safe_load(open(path))


def test_gpu_serve_config_fits_the_cluster_node_types():
    """Every custom resource the GPU serve config asks for is offered by a node type of
    ray_cluster.yaml (and by the KubeRay manifest), with enough of it for one replica."""
    args = _yaml("deployments/serve_config.gpu.yaml")["applications"][0]["args"]
    settings = Settings(**args)
    node_types = _yaml("ray_cluster.yaml")["available_node_types"]
    offered = {k: v for node in node_types.values() for k, v in node["resources"].items() if k not in ("CPU", "GPU")}
    asked = {**settings.ingress.resources, **settings.small.resources, **settings.large.resources,
             **settings.retrieval.reranker_resources}
    assert asked and all(offered.get(k, 0) >= v for k, v in asked.items()), (asked, offered)
    kuberay = _yaml("deployments/kuberay/rayservice.yaml")
    groups = kuberay["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    import json

    # KubeRay passes the value to `ray start --resources=...` through a shell: "{\"r\": 1}"
    raw = [g["rayStartParams"]["resources"].strip('"').replace('\\"', '"') for g in groups]
    kube_offered = {k: v for text in raw for k, v in json.loads(text).items()}
    assert all(kube_offered.get(k, 0) >= v for k, v in asked.items()), (asked, kube_offered)
    embedded = _yaml("deployments/serve_config.gpu.yaml")["applications"]
    assert yaml_load(kuberay["spec"]["serveConfigV2"])["applications"] == embedded


def yaml_load(text):
    import yaml

    return yaml.safe_load(text)


def test_the_remote_serve_config_builds_with_large_called_from_the_ingress():
    from deployments.app import build_app
    from gateway.live_config import check_serve_config

    document = _yaml("deployments/serve_config.remote.yaml")
    assert check_serve_config(document) == {"gateway": None}
    application = document["applications"][0]
    ingress = build_app(application["args"])._bound_deployment
    handles, parts = ingress.init_args
    assert handles.large is None and handles.small is not None
    assert parts.direct["large"].settings.api_key_env == "LARGE_API_KEY"
    assert parts.direct["large"].model == "meta-llama/Llama-3.1-70B-Instruct"
