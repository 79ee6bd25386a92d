"""The import contracts in pyproject.toml (import-linter) hold, and they catch a
wrong-way import: a copy of the packages with one added upward import breaks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("deployments", "gateway", "shadow", "support", "router", "adapters", "retrieval", "evals",
            "flags", "gate", "model_files", "text", "background", "wire", "engines", "tests", "spend")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "lint-imports"), "--config", str(root / "pyproject.toml"),
               "--no-cache"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_layers_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_them(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc", "results"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "router" / "decision.py").open("a") as module:
        module.write("\nfrom gateway.settings import Settings  # wrong way: a capability reaching up\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "router.decision -> gateway.settings" in result.stdout
