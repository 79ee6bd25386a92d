"""The rollout mode of each category, shared by every ingress replica, and its events.

Kept in a locked, atomically replaced state file (`model_files/versioned.py`, as the
router and adapter registries keep their active versions) rather than in the shadow
store: the modes must work without a shadow store, replicas poll the file cheaply (its
mtime first), and a change is written together with its event under one lock, so there
is never a mode change without its evidence nor an event for a change that failed.
Changes are compare-and-set (`expected`, refused with the kit's `StaleChange`): two
replicas reaching the same automatic verdict act once. A category the file does not name
has its config mode.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from model_files.state_file import read_state
from model_files.versioned import (
    Clock,
    StaleChange,
    VersionedState,
    append_bounded,
    changing,
    check_expected,
    now_utc,
)
from support.config import Mode

Reason = Literal["manual", "auto_promote", "auto_demote"]
MAX_EVENTS = 500  # bounded: every replica reads the file when it changes


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


class RolloutState(VersionedState):
    categories: dict[str, CategoryMode] = Field(default_factory=dict)
    events: list[RolloutEvent] = Field(default_factory=list)


# The kit's one stale error, under the name the rollout's callers catch.
StaleRolloutChange = StaleChange


class RolloutBook:
    def __init__(self, path: Path, clock: Clock = now_utc) -> None:
        self.path = path
        self._clock = clock

    def state(self) -> RolloutState:
        return read_state(self.path, RolloutState)

    def change(
        self, category: str, to: Mode, *, initial: Mode, reason: Reason, by: str, note: str | None = None,
        evidence: dict[str, Any] | None = None, expected: Mode | None = None,
    ) -> RolloutEvent | None:
        """Set the category's mode; None when it already is `to` (nothing written).
        `initial`: its mode while the file does not name it (the config's).
        `expected`: the mode the change was decided on; `StaleChange` if it is not the mode now."""
        with changing(self.path, RolloutState) as state:
            entry = state.categories.get(category)
            current = entry.mode if entry else initial
            check_expected(expected, current, f"{category} is {current} now, not {expected}: not changed")
            if current == to:
                return None
            at = self._clock()
            state.categories[category] = CategoryMode(mode=to, since=at, by=by)
            event = RolloutEvent(
                at=at, category=category, from_mode=current, to_mode=to, reason=reason, by=by, note=note,
                evidence=evidence or {},
            )
            append_bounded(state.events, event, MAX_EVENTS)
        return event

    def events(self, category: str | None = None) -> list[RolloutEvent]:
        return [e for e in self.state().events if category is None or e.category == category]
