"""HAProxy's run directory for a test: short by necessity (HAProxy's socket paths hold 97
bytes), so /tmp/rgXXXXXXXX, the test's own; and the proxy left at its default."""

import shutil
import tempfile

import pytest


@pytest.fixture(autouse=True)
def short_run_dir(monkeypatch):
    monkeypatch.delenv("GATEWAY_HTTP__PROXY", raising=False)
    run = tempfile.mkdtemp(prefix="rg", dir="/tmp")
    monkeypatch.setenv("GATEWAY_HTTP__HAPROXY__RUN_DIR", run)
    yield
    shutil.rmtree(run, ignore_errors=True)
