"""No product package deserialises with pickle (issue 27): a model file an admin points at
must never run code. Artifacts are LightGBM text, JSON, safetensors and .npz loaded with
`allow_pickle=False`. Tests may pickle (e.g. exceptions that cross Ray handles)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("gateway", "router", "engines", "deployments", "adapters", "evals", "shadow", "retrieval", "text",
           "model_files", "gate", "flags", "support", "background", "wire")
# Uses, not the word: docstrings may say "not a pickle".
UNSAFE = re.compile(
    r"^\s*(import|from)\s+(c?pickle|_pickle|dill|cloudpickle|shelve)\b"
    r"|\bpickle\.(loads?|Unpickler)\b|\bjoblib\.load\b|from\s+joblib\s+import[^\n]*\bload\b"
    r"|\btorch\.load\(|allow_pickle\s*=\s*True|\bread_pickle\(",
    re.MULTILINE,
)


def product_sources() -> list[Path]:
    return sorted(p for package in PRODUCT for p in (ROOT / package).rglob("*.py"))


def test_the_product_packages_are_all_scanned():
    assert len(product_sources()) > 100
    assert ROOT / "router" / "model.py" in product_sources()


@pytest.mark.parametrize("line", [
    "import joblib\nmodels = joblib.load(path)", "import pickle", "from pickle import loads",
    "state = torch.load(f)", "np.load(p, allow_pickle=True)", "pd.read_pickle(p)",
])
def test_the_pattern_catches_each_unsafe_load(line):
    assert UNSAFE.search(line)


def test_no_unsafe_deserialisation_in_the_product():
    found = [f"{path.relative_to(ROOT)}:{source.count(chr(10), 0, match.start()) + 1}: {match.group(0).strip()}"
             for path in product_sources()
             for source in [path.read_text(encoding="utf-8")]
             for match in UNSAFE.finditer(source)]
    assert found == []
