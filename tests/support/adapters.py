"""Builds small PEFT-shaped adapter directories (random weights) for registry tests.

They exercise the registry's checks and the gateway's bookkeeping; real, trained
adapters are what the end-to-end tests serve, among them `drill_adapter`'s
deliberately bad one (trained once, cached on disk) for canary and rollback drills."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from adapters.manifest import MANIFEST, AdapterManifest, BaseFingerprint, Centroid, EvalFigures, LossFigures
from model_files.state_file import sha256_file
from adapters.reissue import reissue

BASE = BaseFingerprint(name="tiny", model_type="llama", hidden_size=16, num_hidden_layers=2)


def make_adapter(
    root: Path,
    domain: str,
    version: str,
    rank: int = 8,
    hidden: int = 16,
    base: BaseFingerprint = BASE,
    created_at: datetime | None = None,
    domain_loss: tuple[float, float] = (2.0, 1.5),
    centroid: list[float] | None = None,
) -> Path:
    path = root / version
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    save_file({
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": rng.standard_normal((rank, hidden)).astype(np.float32),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": np.zeros((hidden, rank), np.float32),
    }, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 16, "peft_type": "LORA"}))
    manifest = AdapterManifest(
        version=version, domain=domain, base=base, rank=rank, alpha=16, target_modules=["q_proj"],
        sha256=sha256_file(path / "adapter_model.safetensors"),
        created_at=created_at or datetime.now(timezone.utc),
        eval=EvalFigures(domain=LossFigures(base=domain_loss[0], adapter=domain_loss[1]),
                         anchors=LossFigures(base=2.0, adapter=2.0), anchor_margin=0.05),
        centroids=[Centroid(embedder="minilm", vector=centroid)] if centroid else [],
    )
    (path / MANIFEST).write_text(manifest.model_dump_json())
    return path


def clone_version(registry_dir: Path, version: str, new_version: str, out: Path) -> Path:
    """A stored (trained) version re-issued under a new version name, outside the registry:
    a second real version of a domain to swap to, without training one more."""
    return reissue(registry_dir, version, new_version, out)


def drill_adapter(domain: str = "refund") -> Path:
    """A real adapter trained on the domain's answers shuffled among its questions
    (`adapters train --shuffle-responses --force`), as a version directory to register.

    Training takes about two minutes on 2 idle CPU cores (12 under `nice` on a busy
    machine), so it happens once: the directory is cached beside the prepared models and
    reused while its manifest and weights check out. Its version is `<domain>-v1-<day of
    training>`, its manifest `forced` (registers without --force): re-issue it under a fresh
    name (as `clone_version` does) for a registry that already has that version.
    """
    import shutil
    import tempfile

    from deployments.settings import Settings

    cache = Settings().models_dir.parent / "drills" / f"{domain}-shuffled"
    if _is_drill(cache, domain):
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the cache, so the final rename is atomic: a reader sees no half copy.
    with tempfile.TemporaryDirectory(dir=cache.parent, prefix=f".{domain}-building-") as scratch:
        built = _train_drill(domain, Path(scratch) / "registry")
        if cache.exists():  # present but unusable (an older or broken build)
            shutil.rmtree(cache)
        try:
            built.rename(cache)
        except OSError:  # another process finished first
            if not _is_drill(cache, domain):
                raise
    return cache


def _train_drill(domain: str, registry: Path) -> Path:
    """Trains through the CLI's own code path into a scratch registry; the version's directory."""
    from typer.testing import CliRunner

    from adapters.cli import app
    from deployments.settings import Settings

    args = ["train", "--domain", domain, "--shuffle-responses", "--force",
            "--registry", str(registry)]
    result = CliRunner().invoke(app, args, obj=Settings().adapter_workspace())
    if result.exit_code != 0:
        raise RuntimeError(
            f"training the {domain} drill adapter failed ({result.exit_code}): "
            f"{result.exception!r}\n{result.output}"
        )
    (version,) = (registry / "versions").iterdir()
    return version


def _is_drill(path: Path, domain: str) -> bool:
    try:
        manifest = AdapterManifest.model_validate_json((path / MANIFEST).read_bytes())
        weights = sha256_file(path / "adapter_model.safetensors")
    except (OSError, ValueError):  # missing, unreadable or not a manifest
        return False
    return (
        manifest.domain == domain and manifest.training.get("responses") == "shuffled"
        and weights == manifest.sha256 and (path / "adapter_config.json").is_file()
    )
