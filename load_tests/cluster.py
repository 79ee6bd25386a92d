"""The app deployed the production way for drills and benchmarks: `ray start --head`,
then `serve deploy` of deployments/serve_config.yaml with the run's own `args` (settings)
and ingress `user_config` patches. Later `serve deploy`s change only the user_config:
Ray Serve applies them to the running replicas (no restart).

The ingress proxy follows the settings (`http.proxy` in `args`, or GATEWAY_HTTP__PROXY):
Ray Serve picks it when Ray starts, so HAProxy's variables go into `ray start`'s
environment.

The run owns that Ray instance and stops it at the end: never start one beside another
Ray on the same machine.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from deployments.haproxy import ray_env
from deployments.settings import Settings

SERVE_CONFIG = Path(__file__).resolve().parents[1] / "deployments" / "serve_config.yaml"
BIN = Path(sys.executable).parent
# Ray 2.60 turns token auth on for `ray start`; the serve CLI then has to send the token.
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
SERVE_LOGS = Path("/tmp/ray/session_latest/logs/serve")


class Cluster:
    def __init__(self, port: int, scratch: Path, args: dict[str, Any]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._scratch = scratch
        self._args = args
        settings = Settings(**args)
        self.proxy = settings.http.proxy
        self.env = {**RAY_ENV, **ray_env(settings)}

    def config(self, user_config: dict[str, Any] | None = None) -> Path:
        """The shipped serve config with this run's args; `user_config` patches the ingress's."""
        document = yaml.safe_load(SERVE_CONFIG.read_text())
        document["http_options"]["port"] = self.port
        application = document["applications"][0]
        application["args"] = self._args
        ingress = next(d for d in application["deployments"] if d["name"] == "Ingress")
        merge(ingress["user_config"], user_config or {})
        path = self._scratch / f"serve-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    def deploy(self, user_config: dict[str, Any] | None = None) -> None:
        subprocess.run([str(BIN / "serve"), "deploy", str(self.config(user_config))], env=self.env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, user_config: dict[str, Any] | None = None, timeout_s: float = 900) -> None:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is taken (another gateway, or a leftover HAProxy?)")
        subprocess.run([str(BIN / "ray"), "start", "--head", "--dashboard-host", "127.0.0.1",
                        "--disable-usage-stats"], env=self.env, check=True, stdout=subprocess.DEVNULL)
        self.deploy(user_config)
        wait_ready(self.url, timeout_s)

    def stop(self) -> None:
        if self.proxy == "haproxy":
            # HAProxy is a child process of Serve's HAProxyManager actor, not one `ray stop`
            # looks for: Serve's own shutdown stops it first.
            try:
                subprocess.run([str(BIN / "serve"), "shutdown", "-y"], env=self.env, check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
            except subprocess.TimeoutExpired:
                pass  # `ray stop` below still runs
        subprocess.run([str(BIN / "ray"), "stop"], env=self.env, check=False, stdout=subprocess.DEVNULL)


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_ready(url: str, timeout_s: float = 900) -> None:
    """Until the gateway at `url` answers /ready with 200 (its engines have loaded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise RuntimeError(f"the gateway did not become ready in {timeout_s:.0f} s")


def scrape(url: str, key: str | None = None) -> list[Sample]:
    """Every sample the gateway at `url` exports on /metrics (all ingress metrics, one scrape).
    `key`: an admin or metrics key, for a gateway with keys (an open loopback one needs none)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    response.raise_for_status()  # a 401 must not read as "no samples"
    text = response.text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


def replica_pids(deployment: str) -> list[int]:
    """Ray titles an actor's worker process `ray::ServeReplica:<app>:<deployment>...`."""
    return _titled(rf"ray::ServeReplica:gateway:{deployment}")


def actor_pids(cls: str) -> list[int]:
    """A plain actor's worker process (the load board): `ray::<class>`, `ray::<class>.<method>`."""
    return _titled(rf"ray::{cls}(\.|\s|$)")


def _titled(pattern: str) -> list[int]:
    import psutil

    title = re.compile(pattern)
    return sorted(proc.pid for proc in psutil.process_iter(["cmdline"])
                  if title.match(" ".join(proc.info["cmdline"] or [])))


def replicas_serving(request_ids: set[str]) -> int:
    """How many ingress replicas logged one of these requests (Ray Serve's access log
    line carries the replica and the request id)."""
    logs = SERVE_LOGS.glob("replica_gateway_Ingress_*.log")
    return sum(1 for log in logs if any(rid in log.read_text(errors="replace") for rid in request_ids))
