"""What each app applied (for pruning) and operator flags such as suspend,
kept in the history database so every process (CLI, watch, daemon) agrees."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from core.model import ObjRef

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory (app TEXT NOT NULL, ref TEXT NOT NULL, api_version TEXT NOT NULL,
                                      PRIMARY KEY (app, ref));
CREATE TABLE IF NOT EXISTS app_flags (app TEXT PRIMARY KEY, suspended INTEGER NOT NULL DEFAULT 0,
                                      who TEXT NOT NULL DEFAULT '', ts REAL NOT NULL DEFAULT 0);
"""


class Inventory:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def get(self, app: str) -> dict[ObjRef, str]:
        """ref -> apiVersion of every object the app applied."""
        with self._lock:
            rows = self._db.execute("SELECT ref, api_version FROM inventory WHERE app=?", (app,)).fetchall()
        return {ObjRef.from_inventory_id(ref): api_version for ref, api_version in rows}

    def replace(self, app: str, items: dict[ObjRef, str]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM inventory WHERE app=?", (app,))
            self._db.executemany(
                "INSERT INTO inventory VALUES (?,?,?)", [(app, r.inventory_id, v) for r, v in items.items()]
            )
            self._db.execute("COMMIT")

    def suspended(self, app: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT suspended FROM app_flags WHERE app=?", (app,)).fetchone()
        return bool(row and row[0])

    def set_suspended(self, app: str, value: bool, who: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO app_flags (app, suspended, who, ts) VALUES (?,?,?,?)"
                " ON CONFLICT(app) DO UPDATE SET suspended=excluded.suspended, who=excluded.who, ts=excluded.ts",
                (app, int(value), who, time.time()),
            )
