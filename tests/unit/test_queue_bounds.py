"""Ray Serve's queues are bounded (Ray's default, -1, is none): the ingress's at the proxy
and each tier's at every caller, from the settings, in the app every shipped config builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployments.app import ENGINE_QUEUE_FACTOR, build, build_app
from deployments.engine_deployment import EngineDeployment
from deployments.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def deployments(app) -> dict[str, object]:
    ingress = app._bound_deployment
    handles = ingress.init_args[0]
    found = {"Ingress": ingress}
    for tier in ("small", "large"):
        handle = getattr(handles, tier)
        if handle is not None:
            found[tier] = handle._bound_deployment
    return found


def queue(deployment) -> tuple[int, float | None]:
    config = deployment._deployment_config
    return config.max_queued_requests, config.backpressure_config.retry_after_s


def test_defaults_bound_every_queue_with_a_retry_after():
    found = deployments(build(Settings()))
    engine_queue = ENGINE_QUEUE_FACTOR * EngineDeployment.max_ongoing_requests
    assert queue(found["Ingress"]) == (1024, 1.0)
    assert queue(found["small"]) == (engine_queue, 1.0) and queue(found["large"]) == (engine_queue, 1.0)


def test_the_settings_size_them():
    settings = Settings(
        ingress={"max_queued_requests": 64, "busy_retry_after_s": 3}, small={"max_queued_requests": 8},
    )
    found = deployments(build(settings))
    assert queue(found["Ingress"]) == (64, 3.0) and queue(found["small"]) == (8, 3.0)


def test_a_queue_can_not_be_made_unbounded():
    with pytest.raises(ValueError):
        Settings(ingress={"max_queued_requests": -1})
    with pytest.raises(ValueError):
        Settings(large={"max_queued_requests": 0})


def _applications(path: str) -> list[dict]:
    document = yaml.safe_load((ROOT / path).read_text())
    if document.get("kind") == "RayService":
        document = yaml.safe_load(document["spec"]["serveConfigV2"])
    return document["applications"]


@pytest.mark.parametrize("path", [
    "deployments/serve_config.yaml", "deployments/serve_config.gpu.yaml",
    "deployments/serve_config.remote.yaml", "deployments/kuberay/rayservice.yaml",
])
def test_every_shipped_config_builds_bounded_queues(path):
    for application in _applications(path):
        for name, deployment in deployments(build_app(application["args"])).items():
            limit, retry_after = queue(deployment)
            assert 0 < limit <= 4096 and retry_after is not None, (path, name, limit)
        # and no deployment override in the config lifts the bound again
        for override in application.get("deployments", []):
            assert override.get("max_queued_requests", 1) > 0, (path, override["name"])
