"""The rollout mode of each category, shared by every ingress replica, and its events.

Kept in a locked, atomically replaced state file (`model_files/state_file.py`, as the
router and adapter registries keep their active versions) rather than in the shadow
store: the modes must work without a shadow store, replicas poll the file cheaply (its
mtime first), and a change is written together with its event under one lock, so there
is never a mode change without its evidence nor an event for a change that failed.
Changes are compare-and-set (`expected`): two replicas reaching the same automatic
verdict act once. A category the file does not name has its config mode.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, Field

from gateway.support_config import Mode
from model_files.state_file import locked_state, read_state

Reason = Literal["manual", "auto_promote", "auto_demote"]
MAX_EVENTS = 500  # bounded: every replica reads the file when it changes


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class CategoryMode(BaseModel):
    mode: Mode
    since: datetime = Field(description="When the category entered this mode (its figures count from here)")
    by: str


class RolloutEvent(BaseModel):
    at: datetime
    category: str
    from_mode: Mode
    to_mode: Mode
    reason: Reason
    by: str = Field(description="Who: an admin key, `cli:<user>`, or `replica` for automatic changes")
    note: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict, description="Figures and the gate's verdict")


class RolloutState(BaseModel):
    generation: int = 0
    categories: dict[str, CategoryMode] = Field(default_factory=dict)
    events: list[RolloutEvent] = Field(default_factory=list)


class StaleRolloutChange(Exception):
    """The category's mode is no longer the one the change was decided on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RolloutBook:
    def __init__(self, path: Path, clock: Callable[[], datetime] = now_utc) -> None:
        self.path = path
        self._clock = clock

    def state(self) -> RolloutState:
        return read_state(self.path, RolloutState)

    def change(
        self, category: str, to: Mode, *, initial: Mode, reason: Reason, by: str, note: str | None = None,
        evidence: dict[str, Any] | None = None, expected: Mode | None = None,
    ) -> RolloutEvent | None:
        """Set the category's mode; None when it already is `to` (nothing written).
        `initial`: its mode while the file does not name it (the config's)."""
        with locked_state(self.path, RolloutState) as state:
            entry = state.categories.get(category)
            current = entry.mode if entry else initial
            if expected is not None and current != expected:
                raise StaleRolloutChange(f"{category} is {current} now, not {expected}: not changed")
            if current == to:
                return None
            at = self._clock()
            state.categories[category] = CategoryMode(mode=to, since=at, by=by)
            event = RolloutEvent(
                at=at, category=category, from_mode=current, to_mode=to, reason=reason, by=by, note=note,
                evidence=evidence or {},
            )
            state.events.append(event)
            del state.events[:-MAX_EVENTS]
        return event

    def events(self, category: str | None = None) -> list[RolloutEvent]:
        return [e for e in self.state().events if category is None or e.category == category]
