"""End-to-end fixtures: the real gateway (`gateway serve`: Ray Serve + two real vLLM
engines), started once per test session as a subprocess, driven over HTTP.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from openai import OpenAI

from tests.support.processes import process

START_TIMEOUT_S = 900
LOG = Path(os.environ.get("GATEWAY_E2E_LOG", "/tmp/gateway-e2e.log"))
ADMIN_KEY = "e2e-admin-key"


# Ports for the servers a test starts: below the kernel's ephemeral range (32768-60999 by
# default) and clear of Ray's (10002-19999 for its workers, 30000 up for the ingress replicas'
# own servers). A port the kernel hands out for `bind(0)` is free only until the next outgoing
# connection takes it as its source port: once, Ray starting up did so before HAProxy bound it
# ("Address already in use"), and every e2e test of the session errored.
TEST_PORTS = range(20000, 30000)


def _free_port() -> int:
    for port in random.sample(TEST_PORTS, 64):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {TEST_PORTS.start}-{TEST_PORTS.stop - 1}")


def _wait_ready(
    url: str, proc: subprocess.Popen, path: str = "/ready", what: str = "gateway", log: Path = LOG
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{url}{path}", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise RuntimeError(f"{what} not ready after {START_TIMEOUT_S}s; see {log}")


def isolated_settings_env(cache: Path) -> dict[str, str]:
    """GATEWAY_* variables for a gateway whose state all lies under `cache`: its own key
    store (none: the API is open), shadow store, and copies of the adapter registry and the
    knowledge base. Only what is read, never written (prepared models, the router model,
    the reranker), comes from the user's cache. A developer's own `gateway keys create`
    or adapter swap then changes nothing here."""
    from deployments.settings import Settings

    user = Settings()
    registry, kb = cache / "adapters", cache / "kb" / "default.sqlite"
    if not (user.adapters.registry_dir / "state.json").exists():
        raise RuntimeError(f"no adapter registry at {user.adapters.registry_dir}: run `make models` first")
    shutil.copytree(user.adapters.registry_dir, registry, ignore=shutil.ignore_patterns(".lock", ".training-*"))
    if user.retrieval.kb.exists():
        kb.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(user.retrieval.kb, kb)
    return {
        "GATEWAY_CACHE_DIR": str(cache),
        "GATEWAY_MODELS_DIR": str(user.models_dir),
        "GATEWAY_ROUTER__MODEL_DIR": str(user.router.model_dir),
        "GATEWAY_GATE__MODEL_DIR": str(user.gate.model_dir),
        "GATEWAY_RETRIEVAL__RERANKER": str(user.retrieval.reranker),
        "GATEWAY_RETRIEVAL__KB_SOURCE": str(user.retrieval.kb_source),
        # The replicas' logs in the session's log too (LOG), where a failing test is read.
        "GATEWAY_HTTP__REPLICA_LOGS_TO_STDERR": "true",
    }


@pytest.fixture(scope="session")
def e2e_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-cache")


@pytest.fixture(scope="session")
def settings_env(e2e_cache: Path) -> dict[str, str]:
    return isolated_settings_env(e2e_cache)


@pytest.fixture(scope="session")
def registry_dir(e2e_cache: Path, settings_env: dict[str, str]) -> Path:
    """The session's copy of the default adapter registry (built by `make models`): the
    tests swap, roll back and unload adapters without touching the user's own registry."""
    return e2e_cache / "adapters"


# Mirroring only for traffic the shadow tests tag with these categories: the other tests'
# requests are served exactly as without shadowing.
SHADOW_CATEGORY, CANARY_CATEGORY = "shadow-e2e", "canary-e2e"
SHADOW_CONFIG = {
    "rules": [
        {"category": SHADOW_CATEGORY, "target": "large", "sample_rate": 1.0},
        {"category": CANARY_CATEGORY, "adapter": "refund", "target": "large", "sample_rate": 1.0},
    ],
    "max_tokens": 48,
    "canary": {"min_samples": 6, "margin": 0.05, "min_feedback": 1000},
    # The shadow tests compare the stored texts with the answers word for word.
    "journal": {"store_text": "full"},
}


# Answer flags check every answer of this category, and only those: the other tests'
# answers are neither checked nor slowed by the evaluators' CPU.
FLAGS_CATEGORY = "flags-e2e"
FLAGS_CONFIG = {"enabled": True, "sample_rate": 1.0, "categories": [FLAGS_CATEGORY]}


# The router canary's guardrails for the own-pair loop test: strictly better quality on
# the graded replayed prompts promotes, anything else rejects.
ROUTER_CANARY = {"min_samples": 30, "min_graded": 30, "max_share_drift": 1.0, "min_quality_gain": 0.001}
ROUTER_CANARY_INTERVAL_S = 5.0


@pytest.fixture(scope="session")
def canary_outcomes(e2e_cache: Path) -> Path:
    """Where the loop test writes its graded outcomes (configured before they exist)."""
    return e2e_cache / "router-canary-outcomes.csv"


@pytest.fixture(scope="session")
def shadow_store(e2e_cache: Path, settings_env: dict[str, str]) -> Path:
    return e2e_cache / "shadow.sqlite"


# Package scope: the app stops when tests/e2e is done, before tests/e2e_remote starts its
# own (one Ray cluster on the machine at a time).
CASCADE_CONFIG = {"categories": ["cascade-e2e"], "signal": "mean_logprob", "threshold": 0.5}


LIMITED_RPM = 2


@pytest.fixture(scope="session")
def limited_key(e2e_cache: Path, settings_env: dict[str, str]) -> str:
    """A key with a requests-per-minute limit, in the session's own key store (created
    before the gateway starts: the ingress opens a store only if it is there). The API
    stays open (auth.open): the other tests call without a key."""
    from gateway.keys import KeyStore

    _, secret = KeyStore(e2e_cache / "keys.sqlite").create("e2e-limited", rpm=LIMITED_RPM)
    return secret


@pytest.fixture(scope="package")
def gateway_url(settings_env: dict[str, str], canary_outcomes: Path, limited_key: str) -> Iterator[str]:
    import json

    port = _free_port()
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", **settings_env,
        "GATEWAY_AUTH__KEYS_DB": str(Path(settings_env["GATEWAY_CACHE_DIR"]) / "keys.sqlite"),
        "GATEWAY_AUTH__OPEN": "true",
        "GATEWAY_ADMIN__API_KEY": ADMIN_KEY, "GATEWAY_SHADOW__CONFIG": json.dumps(SHADOW_CONFIG),
        "GATEWAY_FLAGS": json.dumps(FLAGS_CONFIG),
        # Only requests that ask for grounding get it: the other tests' answers stay ungrounded.
        # A stream waits for the reranker however slow this shared 2-core machine is.
        "GATEWAY_RETRIEVAL__GROUNDING": json.dumps({"domains": [], "stream_deadline_s": 20}),
        "GATEWAY_ROUTING": json.dumps({
            "canary": {**ROUTER_CANARY, "outcomes_file": str(canary_outcomes)},
            # The cascade's category starts on the small tier whatever the router scores.
            "learned": {"thresholds": {"category_overrides": {CASCADE_CONFIG["categories"][0]: "small"}}},
        }),
        # One category cascades, with a bar no answer clears (a mean logprob is never above 0):
        # its requests always escalate (tests/e2e/test_cascade.py); the others never cascade.
        "GATEWAY_CASCADE": json.dumps(CASCADE_CONFIG),
    }
    cmd = [sys.executable, "-m", "deployments.cli", "serve", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with process(cmd, env, LOG) as proc:
        _wait_ready(url, proc)
        yield url


@pytest.fixture(scope="package")
def client(gateway_url: str) -> OpenAI:
    return OpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=300) as client:
        yield client


@pytest.fixture
def admin(gateway_url: str) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=gateway_url, timeout=120, headers=headers) as client:
        yield client
