"""The versioned-state kit: compare-and-set, generations, bounded history, rollback targets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import Field

from adapters.errors import AdapterError, StaleRollback
from adapters.errors import RollbackUnavailable as AdapterRollbackUnavailable
from model_files.versioned import (
    Change,
    RollbackUnavailable,
    StaleChange,
    VersionedState,
    append_bounded,
    changing,
    check_expected,
    check_window,
    previous_version,
)
from router.errors import RollbackUnavailable as RouterRollbackUnavailable
from router.errors import RouterVersionError
from router.errors import StaleChange as RouterStaleChange

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


class Book(VersionedState):
    active: str | None = None
    history: list[Change] = Field(default_factory=list)


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "book" / "state.json"


def activate(path: Path, version: str, expected_generation: int | None = None) -> Book:
    with changing(path, Book, expected_generation=expected_generation) as state:
        state.active = version
        append_bounded(state.history, Change(event="activated", version=version, at=T0), limit=3)
    return state


def test_a_change_bumps_the_generation_and_a_no_op_writes_nothing(path):
    assert activate(path, "v1").generation == 1
    with changing(path, Book) as state:
        state.active = "v1"  # already so
    assert Book.model_validate_json(path.read_bytes()).generation == 1


def test_compare_and_set_on_the_generation_refuses_and_writes_nothing(path):
    activate(path, "v1")
    activate(path, "v2", expected_generation=1)
    before = path.read_bytes()
    with pytest.raises(StaleChange, match="generation 2, not 1") as caught:
        activate(path, "v3", expected_generation=1)  # decided on generation 1, which moved
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert path.read_bytes() == before


def test_a_body_that_raises_writes_nothing(path):
    activate(path, "v1")
    with pytest.raises(RuntimeError):
        with changing(path, Book) as state:
            state.active = "v2"
            raise RuntimeError("refused half way")
    assert Book.model_validate_json(path.read_bytes()).active == "v1"


def test_compare_and_set_on_a_value():
    check_expected(None, "v2", "no expectation: never refused")
    check_expected("v2", "v2", "as expected")
    with pytest.raises(StaleChange, match="v1 moved") as caught:
        check_expected("v1", "v2", "v1 moved")
    assert (caught.value.expected, caught.value.actual, caught.value.message) == ("v1", "v2", "v1 moved")


def test_history_is_bounded_to_the_newest_entries(path):
    for n in range(5):
        activate(path, f"v{n}")
    state = Book.model_validate_json(path.read_bytes())
    assert [c.version for c in state.history] == ["v2", "v3", "v4"]
    assert append_bounded([1, 2], 3, limit=2) == 3


def test_rollback_with_no_history_has_no_target():
    assert previous_version([], None) is None
    only = [Change(event="activated", version="v1", at=T0)]
    assert previous_version(only, "v1") is None


def test_rollback_target_is_the_newest_other_live_version():
    history = [
        Change(event="activated", version="v1", at=T0),
        Change(event="registered", version="v3", at=T0),  # never live
        Change(event="activated", version="v2", at=T0),
        Change(event="unloaded", version=None, at=T0),
        Change(event="activated", version="v2", at=T0),
    ]
    assert previous_version(history, "v2") == "v1"
    history.append(Change(event="rolled_back", version="v1", at=T0))
    assert previous_version(history, "v1") == "v2"


def test_rollback_window():
    check_window("v1", T0, T0 + timedelta(days=30), timedelta(days=30))
    with pytest.raises(RollbackUnavailable, match="v1 is older than the rollback window \\(30 days\\)"):
        check_window("v1", T0, T0 + timedelta(days=31), timedelta(days=30))


@pytest.mark.parametrize(("error", "own"), [(StaleRollback, AdapterError), (RouterStaleChange, RouterVersionError)])
def test_registry_stale_errors_are_the_kits_and_their_own(error, own):
    """The admin API maps each registry's own tree to HTTP; generic code catches the kit's."""
    with pytest.raises(StaleChange) as caught:
        check_expected("v1", "v2", "moved", error)
    assert isinstance(caught.value, own) and (caught.value.message, caught.value.actual) == ("moved", "v2")


@pytest.mark.parametrize(
    ("error", "own"), [(AdapterRollbackUnavailable, AdapterError), (RouterRollbackUnavailable, RouterVersionError)]
)
def test_registry_rollback_errors_are_the_kits_and_their_own(error, own):
    with pytest.raises(RollbackUnavailable) as caught:
        check_window("v1", T0, T0 + timedelta(days=2), timedelta(days=1), error)
    assert isinstance(caught.value, own) and "rollback window" in caught.value.message
