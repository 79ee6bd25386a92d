"""SQLite files that hold users' text or secrets: the answer journal, the KB usage store, the
API keys. Readable by the gateway's own user only, and deleted rows overwritten.

A new directory is made 0700 and a new file 0600 before SQLite opens it; SQLite gives its
-wal and -shm siblings the main file's mode. An existing directory or file keeps its mode: it
may be shared on purpose. `secure_delete` is set on every connection, because a build without
SQLITE_SECURE_DELETE (python.org's, macOS's) leaves a pruned row's text in the free pages.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def create_private(path: Path) -> None:
    """Make `path`'s directory (0700) and an empty file (0600) if they do not exist yet."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


def connect_private(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=timeout)
    db.execute("PRAGMA secure_delete=ON")
    return db
