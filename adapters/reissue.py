"""A stored version re-issued under a new name, outside the registry.

Ops use it to put the same trained weights through the registry again (a second real
version of a domain to swap to, a known-good copy to roll forward to) without training.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from adapters.manifest import MANIFEST, AdapterManifest, check_version


def reissue(registry_dir: Path, version: str, new_version: str, out: Path) -> Path:
    """`version`'s directory copied to `out/new_version`, its manifest renamed and dated now."""
    target = out / check_version(new_version)
    shutil.copytree(registry_dir / "versions" / check_version(version), target)
    manifest = AdapterManifest.model_validate_json((target / MANIFEST).read_bytes())
    manifest = manifest.model_copy(update={"version": new_version, "created_at": datetime.now(timezone.utc)})
    (target / MANIFEST).write_text(manifest.model_dump_json())
    return target
