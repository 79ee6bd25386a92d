"""A small JSON state file shared by several processes: read freely, changed under a lock.

Registries (adapter versions, router versions, rollout modes) keep which version is active
in one state file that replicas poll several times a second. Writers serialise on a lock file
and replace the state atomically, so a reader never sees half a change and a failed
change writes nothing. How a change is made (generation, compare-and-set, history) is
`model_files/versioned.py`; this module is only the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TypeVar

from pydantic import BaseModel

S = TypeVar("S", bound=BaseModel)


def read_state(path: Path, model: type[S]) -> S:
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return model()


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Held by every writer of the state file at `path`; readers never take it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A lock file beside the state, not the state itself: the state is replaced, not rewritten.
    with (path.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
