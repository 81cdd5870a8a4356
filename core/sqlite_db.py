"""Opening driftdeck's SQLite files and writing to them: one place for the
settings every store shares (WAL, owner-only permissions, immediate write locks)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_db(path: str) -> sqlite3.Connection:
    """A connection in WAL mode with ``synchronous=NORMAL`` (a killed process loses nothing
    committed); the file is created readable by its owner only (it holds the audit log)."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


@contextmanager
def write_tx(db: sqlite3.Connection, lock: threading.RLock | threading.Lock) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE: take the write lock up front)."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
