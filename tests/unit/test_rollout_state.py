"""The rollout state file: modes with their events, written together, compare-and-set."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from support.rollout_state import MAX_EVENTS, RolloutBook, StaleRolloutChange

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def book(tmp_path):
    return RolloutBook(tmp_path / "rollout" / "state.json", clock=Clock())


def test_a_change_is_written_with_its_event(book):
    event = book.change("billing", "auto", initial="draft", reason="manual", by="cli:ops", note="launch",
                        evidence={"samples": 60})
    state = book.state()
    assert state.generation == 1
    assert state.categories["billing"].mode == "auto" and state.categories["billing"].by == "cli:ops"
    assert state.events == [event]
    assert (event.from_mode, event.to_mode, event.evidence) == ("draft", "auto", {"samples": 60})


def test_the_initial_mode_applies_until_the_file_names_the_category(book):
    assert book.change("billing", "draft", initial="draft", reason="manual", by="x") is None
    assert book.state().generation == 0 and not book.path.exists()  # nothing to write
    book.change("billing", "auto", initial="draft", reason="manual", by="x")
    # The file's mode wins over any later initial mode.
    event = book.change("billing", "draft", initial="off", reason="manual", by="x")
    assert event.from_mode == "auto"


def test_compare_and_set_refuses_a_stale_change_and_writes_nothing(book):
    book.change("billing", "auto", initial="draft", reason="auto_promote", by="replica", expected="draft")
    with pytest.raises(StaleRolloutChange, match="billing is auto now, not draft"):
        book.change("billing", "auto", initial="draft", reason="auto_promote", by="replica", expected="draft")
    state = book.state()
    assert state.generation == 1 and len(state.events) == 1


def test_events_are_bounded_and_filtered(book):
    for i in range(MAX_EVENTS + 5):
        book.change("billing" if i % 2 else "orders", "auto" if i % 4 < 2 else "draft", initial="off",
                    reason="manual", by="x")
    state = book.state()
    assert len(state.events) == MAX_EVENTS
    assert {e.category for e in book.events("orders")} == {"orders"}
    assert state.events[-1].at > state.events[0].at
