"""End-to-end fixtures for three tiers: the two embedded vLLM tiers (small, large) plus
`frontier`, a kind=openai tier pointing at a real `vllm serve` on a loopback port (the
embedded large model served under another name: a stand-in for a hosted frontier model).

`auto` climbs on the learned router's score with probability cuts (large at LARGE_CUT,
frontier at FRONTIER_CUT); one category is routed to large and always escalates, so its
cascade goes large > frontier. Package scope: one Ray cluster on the machine at a time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import _free_port, _wait_ready, client, http, isolated_settings_env  # noqa: F401 (fixtures)
from tests.support.processes import process
from tests.support.vllm_upstream import upstream_command

LOG_DIR = Path(os.environ.get("GATEWAY_E2E_LOG", "/tmp/gateway-e2e.log")).parent
_CORES = sorted(os.sched_getaffinity(0))
SMALL_CORE, LARGE_CORE = str(_CORES[0]), str(_CORES[-1])
FRONTIER, FRONTIER_MODEL = "frontier", "frontier-gemma"
LARGE_CUT, FRONTIER_CUT = 0.15, 0.215
ESCALATE = "escalate-e2e"  # routed large, a bar no answer clears: always escalates to frontier
PRICES = {
    "small": {"input_per_million": 0.1, "output_per_million": 0.3},
    "large": {"input_per_million": 1.0, "output_per_million": 3.0},
    FRONTIER: {"input_per_million": 10.0, "output_per_million": 30.0},
}
QUIET = {"enabled": False}  # sequential test traffic: no queue shift muddles the cuts
ROUTING = {
    "learned": {
        "thresholds": {"mode": "probability", "probability": LARGE_CUT, "category_overrides": {ESCALATE: "large"}},
        "queue": QUIET,
        "upper": {FRONTIER: {"mode": "probability", "probability": FRONTIER_CUT, "queue": QUIET}},
    },
}


@pytest.fixture(scope="package")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from deployments.settings import Settings

    model_dir = Settings().model_location("large")
    upstream_port, port = _free_port(), _free_port()
    upstream_cmd, upstream_env = upstream_command(upstream_port, FRONTIER_MODEL)
    upstream_env["VLLM_CPU_OMP_THREADS_BIND"] = LARGE_CORE  # niced, beside the large tier's engine
    upstream = f"http://127.0.0.1:{upstream_port}"
    frontier = {
        "kind": "openai", "served_name": FRONTIER_MODEL, "max_model_len": Settings().large.max_model_len,
        "openai": {"base_url": f"{upstream}/v1", "metrics_url": f"{upstream}/metrics", "tokenizer": model_dir},
    }
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
        **isolated_settings_env(tmp_path_factory.mktemp("gateway-tiers")),
        "GATEWAY_SMALL__CPU_THREADS_BIND": SMALL_CORE, "GATEWAY_LARGE__CPU_THREADS_BIND": LARGE_CORE,
        "GATEWAY_EXTRA_TIERS": json.dumps({FRONTIER: frontier}),
        "GATEWAY_ROUTING": json.dumps(ROUTING),
        "GATEWAY_CASCADE": json.dumps({"categories": [ESCALATE], "threshold": 0.5}),
        "GATEWAY_SPEND__CONFIG": json.dumps({"prices": PRICES}),
    }
    cmd = [sys.executable, "-m", "deployments.cli", "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    # Both start at once: the upstream loads while Ray Serve does.
    with process(upstream_cmd, upstream_env, LOG_DIR / "gateway-e2e-tiers-upstream.log") as up, \
            process(cmd, env, LOG_DIR / "gateway-e2e-tiers.log") as proc:
        _wait_ready(upstream, up, "/v1/models", "vllm serve", LOG_DIR / "gateway-e2e-tiers-upstream.log")
        _wait_ready(url, proc, log=LOG_DIR / "gateway-e2e-tiers.log")
        yield url
