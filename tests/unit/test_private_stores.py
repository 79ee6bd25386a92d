"""The SQLite stores that hold users' text or secrets (the answer journal, the KB usage store,
the API keys) are private to the gateway's user (a new directory 0700, the file and its -wal
and -shm siblings 0600) and overwrite what they delete (`secure_delete`), so a pruned answer
is gone from the file's bytes, not left in its free pages."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from gateway.keys import KeyStore
from retrieval.usage import QueryUsage, UsageStore
from shadow.journal import FeedbackRecord, Journal, RequestRecord, ShadowPair

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
SECRET = "customer-4417-home-address-Elm-Street"

STORES: dict[str, Callable[[Path], Any]] = {"journal": Journal, "usage": UsageStore, "keys": KeyStore}


@pytest.fixture(autouse=True)
def sqlite_without_secure_delete(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Like a build without SQLITE_SECURE_DELETE (python.org's, macOS's): connections start
    with it off, so only the store's own pragma turns it on. Files start 0644 by default."""
    connect = sqlite3.connect

    def insecure(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        db.execute("PRAGMA secure_delete=OFF")
        return db

    monkeypatch.setattr(sqlite3, "connect", insecure)
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("name", STORES)
def test_a_new_store_is_private(tmp_path: Path, name: str) -> None:
    path = tmp_path / "state" / f"{name}.sqlite"
    store = STORES[name](path)
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    with closing(store._connect()) as db, db:  # an open WAL connection: -wal and -shm exist
        db.execute("PRAGMA user_version=1")
        siblings = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert [mode(p) for p in siblings] == [0o600, 0o600]


@pytest.mark.parametrize("name", STORES)
def test_an_existing_directory_keeps_its_mode(tmp_path: Path, name: str) -> None:
    tmp_path.chmod(0o755)
    STORES[name](tmp_path / f"{name}.sqlite")
    assert mode(tmp_path) == 0o755


@pytest.mark.parametrize("name", STORES)
def test_every_connection_deletes_securely(tmp_path: Path, name: str) -> None:
    store = STORES[name](tmp_path / f"{name}.sqlite")
    with closing(store._connect()) as db:
        assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def raw_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_a_pruned_answer_is_gone_from_the_journal_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    old = NOW - timedelta(days=40)
    journal.add_request(RequestRecord(request_id="r1", created_at=old, target="large", prompt=SECRET, draft="d"))
    journal.add_pair(ShadowPair(request_id="r1", created_at=old, primary_target="large", shadow_target="small",
                                prompt=SECRET, primary_text="a", shadow_text="b",
                                primary_latency_s=1.0, shadow_latency_s=1.0))
    journal.add_feedback(FeedbackRecord(request_id="r1", created_at=old, rating=1, sent_text=SECRET, comment=SECRET))
    journal.add_request(RequestRecord(request_id="r2", created_at=NOW, target="large", prompt="kept", draft="d"))
    with closing(journal._connect()) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows reach the main file's pages
    assert SECRET.encode() in raw_bytes(journal.path)

    journal.prune(older_than=NOW - timedelta(days=30), max_rows=100)
    assert journal.rows()["requests"] == 1
    assert SECRET.encode() not in raw_bytes(journal.path)


def test_a_pruned_query_is_gone_from_the_usage_file(tmp_path: Path) -> None:
    usage = UsageStore(tmp_path / "usage.sqlite")
    usage.add([QueryUsage(request_id=SECRET, created_at=NOW - timedelta(days=40), outcome="empty"),
               QueryUsage(request_id="kept", created_at=NOW, outcome="empty")])
    with closing(usage._connect()) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert SECRET.encode() in raw_bytes(usage.path)

    usage.prune(older_than=NOW - timedelta(days=30), max_rows=100)
    assert usage.rows()["queries"] == 1
    assert SECRET.encode() not in raw_bytes(usage.path)
