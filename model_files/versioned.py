"""Versioned state: the one way the adapter, router and rollout registries change their state.

Each keeps a small JSON state file (`model_files/state_file.py`) that replicas poll. A change
is one read-modify-write under the file's lock (`changing`): refused when the state moved
since the caller decided (compare-and-set, on the generation or on a value), written back
atomically with its generation bumped only when the body changed something and returned, and
its history stays bounded because every replica re-reads the whole file. The errors:

    StateError
     ├── StaleChange           the state moved since the caller decided; carries expected and actual
     └── RollbackUnavailable   no earlier version to go back to, or it left the rollback window

Each registry's own errors derive from these and from its error base as well (e.g.
`adapters.errors.StaleRollback` is both an `AdapterError` and a `StaleChange`), so its
callers keep catching its own tree, and generic code can catch the kit's.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

from pydantic import BaseModel

from model_files.state_file import atomic_write, exclusive_lock, read_state

Clock = Callable[[], datetime]
HISTORY_LIMIT = 200  # entries a history keeps: every replica re-reads the file when it changes
# The events that made a version the live one: what a rollback returns to.
LIVE_EVENTS = ("activated", "rolled_back")

T = TypeVar("T")
E = TypeVar("E")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class VersionedState(BaseModel):
    generation: int = 0


S = TypeVar("S", bound=VersionedState)


class Change(BaseModel):
    """One history entry: what happened to which version, and when."""

    event: str
    version: str | None
    at: datetime


class StateError(Exception):
    def __init__(self, message: str) -> None:
        # Cooperative: a registry's error may derive from this and from its own base.
        super().__init__(message)
        self.message = message


class StaleChange(StateError):
    """Compare-and-set refused: the generation (or the value) is not the one the caller read."""

    def __init__(self, message: str, *, expected: object, actual: object) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class RollbackUnavailable(StateError):
    """Nothing earlier to go back to, or it is older than the rollback window."""


@contextmanager
def changing(path: Path, model: type[S], *, expected_generation: int | None = None) -> Iterator[S]:
    """Read-modify-write of the state file at `path` under its lock.

    With `expected_generation`, refused (`StaleChange`, nothing written) unless the file is
    still at that generation. Written back, generation + 1, only when the body changed the
    state and returned without raising: a no-op change does not wake every poller."""
    with exclusive_lock(path):
        state = read_state(path, model)
        if expected_generation is not None and state.generation != expected_generation:
            raise StaleChange(
                f"{path} is at generation {state.generation}, not {expected_generation}: not changed",
                expected=expected_generation, actual=state.generation,
            )
        before = state.model_dump_json()
        yield state
        if state.model_dump_json() != before:
            state.generation += 1
            atomic_write(path, state.model_dump_json(indent=2))


def check_expected(
    expected: T | None, actual: T | None, message: str, error: type[StaleChange] = StaleChange
) -> None:
    """Compare-and-set on a value read under the lock; `expected` None: the caller does not care.
    `error`: the registry's own subclass, so its callers' handlers still catch it."""
    if expected is not None and actual != expected:
        raise error(message, expected=expected, actual=actual)


def append_bounded(history: list[E], entry: E, limit: int = HISTORY_LIMIT) -> E:
    """Append `entry`, dropping the oldest beyond `limit`."""
    history.append(entry)
    del history[:-limit]
    return entry


def previous_version(history: Sequence[Change], current: str | None) -> str | None:
    """The version live before `current`: the newest activation or rollback of another one."""
    for item in reversed(history):
        if item.event in LIVE_EVENTS and item.version not in (None, current):
            return item.version
    return None


def check_window(
    version: str, made_at: datetime, now: datetime, window: timedelta,
    error: type[RollbackUnavailable] = RollbackUnavailable,
) -> None:
    """Refused past the window: `prune` may delete such a version at any moment."""
    if now - made_at > window:
        raise error(f"{version} is older than the rollback window ({window.days} days)")
