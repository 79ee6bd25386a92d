"""`gateway config check`: the shipped serve config validates; a broken one is explained."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from deployments.commands import app

SHIPPED = Path(__file__).resolve().parents[2] / "deployments" / "serve_config.yaml"


def check(path: Path):
    return CliRunner().invoke(app, ["config", "check", str(path)])


def test_shipped_serve_config_is_valid():
    result = check(SHIPPED)
    assert result.exit_code == 0, result.output
    assert "gateway: ok" in result.output


def test_invalid_user_config_fails_with_the_path(tmp_path):
    document = yaml.safe_load(SHIPPED.read_text())
    ingress = document["applications"][0]["deployments"][0]
    ingress["user_config"]["limits"]["max_tokens"] = -5
    ingress["user_config"]["routing"]["polcy"] = "learned"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document))
    result = check(broken)
    assert result.exit_code == 1
    assert "limits.max_tokens: Input should be greater than or equal to 1" in result.output
    assert "routing.polcy: Extra inputs are not permitted" in result.output


def test_file_without_an_ingress_is_an_error(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("applications: []\n")
    assert check(empty).exit_code == 2
