"""`adapters` operations on a registry of small generated adapter directories."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from adapters.cli import app
from deployments.settings import Settings
from tests.support.adapters import BASE, make_adapter


@pytest.fixture
def env(tmp_path, monkeypatch):
    base = tmp_path / "base-model"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({
        "model_type": BASE.model_type, "hidden_size": BASE.hidden_size,
        "num_hidden_layers": BASE.num_hidden_layers,
    }))
    monkeypatch.setenv("GATEWAY_SMALL__MODEL", str(base))
    monkeypatch.setenv("GATEWAY_SMALL__SERVED_NAME", BASE.name)
    monkeypatch.setenv("GATEWAY_ADAPTERS__REGISTRY_DIR", str(tmp_path / "registry"))
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(app, list(args), obj=Settings().adapter_workspace())


def test_register_activate_list_rollback(env):
    for n in (1, 2):
        path = make_adapter(env / "src", "refund", f"refund-v{n}-2026-11-0{n}")
        assert run("register", str(path), "--activate").exit_code == 0
    listed = json.loads(run("list", "--json").output)
    status = {row["version"]: row["status"] for row in listed["versions"]}
    assert status == {"refund-v1-2026-11-01": "available", "refund-v2-2026-11-02": "active"}
    result = run("rollback", "refund")
    assert result.exit_code == 0 and json.loads(result.output)["refund"]["active"] == "refund-v1-2026-11-01"


def test_corrupt_adapter_is_a_clear_error(env):
    path = make_adapter(env / "src", "refund", "refund-v1-2026-11-01")
    (path / "adapter_model.safetensors").write_bytes(b"junk")
    result = run("register", str(path))
    assert result.exit_code == 2 and "corrupt" in result.output


def test_unknown_version_and_domain(env):
    assert "no adapter version" in run("activate", "refund", "refund-v7-2026-01-01").output
    assert run("unload", "billing").exit_code == 2


def test_train_unknown_domain(env):
    result = run("train", "--domain", "billing")
    assert result.exit_code == 2 and "no examples for domain 'billing'" in result.output
