"""A small JSON state file shared by several processes: read freely, changed under a lock.

Registries (adapter versions, router versions) keep which version is active in one
state file that replicas poll several times a second. Writers serialise on a lock file
and replace the state atomically, so a reader never sees half a change and a failed
change writes nothing. Every change bumps `generation`, so pollers see that it moved.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol, TypeVar

from pydantic import BaseModel


class Versioned(Protocol):
    generation: int


S = TypeVar("S", bound=BaseModel)


def read_state(path: Path, model: type[S]) -> S:
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return model()


@contextmanager
def locked_state(path: Path, model: type[S]) -> Iterator[S]:
    """Read-modify-write under an exclusive lock; written back (generation + 1) only when
    the body changed the state and returned without raising."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read_state(path, model)
        before = state.model_dump_json()
        yield state
        if state.model_dump_json() != before:
            state.generation += 1  # type: ignore[attr-defined]
            atomic_write(path, state.model_dump_json(indent=2))


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
