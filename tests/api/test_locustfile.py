"""The platform team's locustfile runs headless against the gateway (fake engines) and
writes its summary: request counts, exact latency/TTFT/tokens-per-second percentiles and
the routing mix. Locust and uvicorn run as subprocesses (locust monkey-patches with gevent)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_gateway():
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "tests.support.fake_app:app", "--port", str(port),
                               "--log-level", "warning"], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_steady_run_writes_the_summary(fake_gateway, tmp_path):
    summary = tmp_path / "summary.json"
    env = {**os.environ, "LOAD_SHAPE": "steady", "LOCUST_USERS": "3", "LOCUST_DURATION_S": "6",
           "LOCUST_SUMMARY": str(summary)}
    locust = Path(sys.executable).parent / "locust"
    done = subprocess.run(
        [str(locust), "-f", "load_tests/locustfile.py", "--headless", "--host", fake_gateway,
         "--csv", str(tmp_path / "run"), "--only-summary"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(summary.read_text())
    assert report["requests"] > 0 and report["failures"] == 0 and report["error_rate"] == 0.0
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert report["ttft_ms"]["p50"] <= report["latency_ms"]["p99"] and report["tokens_per_s"]["p50"] > 0
    assert sum(report["routing_counts"].values()) == report["requests"]
    assert set(report["routing_mix"]) <= {"small", "large"}
    assert (tmp_path / "run_stats.csv").exists()
