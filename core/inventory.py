"""What each app applied (for pruning) and operator flags such as suspend,
kept in the history database so every process (CLI, watch, daemon) agrees."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from core.model import ObjRef
from core.sqlite_db import open_db, write_tx

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory (app TEXT NOT NULL, ref TEXT NOT NULL, api_version TEXT NOT NULL,
                                      PRIMARY KEY (app, ref));
CREATE TABLE IF NOT EXISTS app_flags (app TEXT PRIMARY KEY, suspended INTEGER NOT NULL DEFAULT 0,
                                      who TEXT NOT NULL DEFAULT '', ts REAL NOT NULL DEFAULT 0);
"""


class Inventory:
    def __init__(self, path: str | Path) -> None:
        self._db = open_db(str(path))
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
        with write_tx(self._db, self._lock) as db:
            db.execute("DELETE FROM inventory WHERE app=?", (app,))
            db.executemany(
                "INSERT INTO inventory VALUES (?,?,?)", [(app, r.inventory_id, v) for r, v in items.items()]
            )

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
