"""Settings → Ray Serve deployment options: fixed or autoscaled replicas, node pinning."""

import pytest

from deployments.app import build
from deployments.options import deployment_scale
from gateway.settings import AutoscalingSettings, Settings


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
