"""Durable history and audit log in SQLite (WAL).

Register :meth:`History.record` as a bus listener: sync runs, drift episodes and reverts
become rows, each write its own small transaction, so a killed process loses nothing it
committed. Commands add audit rows with :meth:`History.add_audit`. Only what events carry
is stored: field paths and messages, never object values (so never secret values).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from core.events import (
    DriftDetected,
    DriftResolved,
    Event,
    RevertCommitted,
    SyncFinished,
    SyncStarted,
    encode,
)
from core.model import ObjRef
from core.sqlite_db import open_db, write_tx

# MIGRATIONS[i] takes the schema from version i to version i + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE syncs (
            id INTEGER PRIMARY KEY,
            app TEXT NOT NULL,
            revision TEXT NOT NULL DEFAULT '',
            started REAL NOT NULL,
            finished REAL,
            ok INTEGER,
            message TEXT NOT NULL DEFAULT '',
            who TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '{}',
            duration REAL,
            dry_run INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX syncs_app ON syncs(app, started)",
        "CREATE INDEX syncs_open ON syncs(app, finished)",
        """CREATE TABLE drifts (
            id INTEGER PRIMARY KEY,
            app TEXT NOT NULL,
            ref TEXT NOT NULL,
            detected REAL NOT NULL,
            resolved REAL,
            how TEXT,
            fields TEXT NOT NULL DEFAULT '[]',
            managers TEXT NOT NULL DEFAULT '[]',
            missing INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX drifts_app ON drifts(app, detected)",
        "CREATE INDEX drifts_open ON drifts(app, ref, resolved)",
        """CREATE TABLE reverts (
            id INTEGER PRIMARY KEY,
            app TEXT NOT NULL,
            source TEXT NOT NULL,
            reverted TEXT NOT NULL DEFAULT '[]',
            new_sha TEXT NOT NULL,
            who TEXT NOT NULL DEFAULT '',
            ts REAL NOT NULL
        )""",
        "CREATE INDEX reverts_app ON reverts(app, ts)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            who TEXT NOT NULL DEFAULT '',
            terminal TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            args TEXT NOT NULL DEFAULT '{}',
            result TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX audit_ts ON audit(ts)",
        "CREATE INDEX audit_target ON audit(target, ts)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryError(RuntimeError):
    """The database cannot be used (e.g. written by a newer driftdeck)."""


def default_path() -> Path:
    """``$XDG_STATE_HOME/driftdeck/history.db`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "driftdeck" / "history.db"


def _dumps(value: Any) -> str:
    return json.dumps(encode(value), separators=(",", ":"), sort_keys=True)


def _ref_json(ref_id: str) -> dict[str, Any]:
    ref = ObjRef.from_inventory_id(ref_id)
    return {"ref": encode(ref), "object": str(ref)}


def _sync_row(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "app": r["app"],
        "revision": r["revision"],
        "started": r["started"],
        "finished": r["finished"],
        "ok": None if r["ok"] is None else bool(r["ok"]),
        "message": r["message"],
        "who": r["who"],
        "summary": json.loads(r["summary"]),
        "duration": r["duration"],
        "dry_run": bool(r["dry_run"]),
    }


def _drift_row(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "app": r["app"],
        **_ref_json(r["ref"]),
        "detected": r["detected"],
        "resolved": r["resolved"],
        "how": r["how"],
        "fields": json.loads(r["fields"]),
        "managers": json.loads(r["managers"]),
        "missing": bool(r["missing"]),
    }


def _revert_row(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "app": r["app"],
        "source": r["source"],
        "reverted": json.loads(r["reverted"]),
        "new_sha": r["new_sha"],
        "who": r["who"],
        "ts": r["ts"],
    }


def _audit_row(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "ts": r["ts"],
        "who": r["who"],
        "terminal": r["terminal"],
        "action": r["action"],
        "target": r["target"],
        "args": json.loads(r["args"]),
        "result": r["result"],
    }


class History:
    """The history database. One connection guarded by a lock: safe from any thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = open_db(self.path)
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self._handlers: dict[type[Event], Callable[[sqlite3.Connection, Any], None]] = {
            SyncStarted: self._sync_started,
            SyncFinished: self._sync_finished,
            DriftDetected: self._drift_detected,
            DriftResolved: self._drift_resolved,
            RevertCommitted: self._revert,
        }

    # ----- connection -------------------------------------------------------------------------

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise HistoryError("history database is closed")
        return self._db

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_tx(self._conn, self._lock)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path}: schema version {version} is newer than this driftdeck's ({SCHEMA_VERSION})"
                )
            for step in MIGRATIONS[version:]:
                for statement in step:
                    db.execute(statement)
            if version < SCHEMA_VERSION:
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT max(version) FROM schema_version")[0][0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- writing ----------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Store what ``event`` means for history; other event types are ignored."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            with self._tx() as db:
                handler(db, event)

    def _sync_started(self, db: sqlite3.Connection, ev: SyncStarted) -> None:
        db.execute(
            "INSERT INTO syncs (app, revision, started, who, dry_run) VALUES (?, ?, ?, ?, ?)",
            (ev.app, ev.revision_sha, ev.ts, ev.who, int(ev.dry_run)),
        )

    def _sync_finished(self, db: sqlite3.Connection, ev: SyncFinished) -> None:
        summary = _dumps({"applied": ev.applied, "pruned": ev.pruned})
        row = db.execute(
            "SELECT id, who FROM syncs WHERE app = ? AND finished IS NULL ORDER BY revision = ? DESC, id DESC LIMIT 1",
            (ev.app, ev.revision_sha),
        ).fetchone()
        if row is None:  # the start was not seen (e.g. recorded before history was attached)
            db.execute(
                "INSERT INTO syncs (app, revision, started, finished, ok, message, who, summary, duration)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ev.app, ev.revision_sha, ev.ts - ev.duration, ev.ts, int(ev.ok), ev.message, ev.who, summary, ev.duration),
            )
            return
        db.execute(
            "UPDATE syncs SET finished = ?, ok = ?, message = ?, who = ?, summary = ?, duration = ?,"
            " revision = CASE WHEN ? != '' THEN ? ELSE revision END WHERE id = ?",
            (
                ev.ts,
                int(ev.ok),
                ev.message,
                ev.who or row["who"],
                summary,
                ev.duration,
                ev.revision_sha,
                ev.revision_sha,
                row["id"],
            ),
        )

    def _drift_detected(self, db: sqlite3.Connection, ev: DriftDetected) -> None:
        ref = ev.ref.inventory_id
        row = db.execute(
            "SELECT id, fields, managers FROM drifts WHERE app = ? AND ref = ? AND resolved IS NULL ORDER BY id DESC LIMIT 1",
            (ev.app, ref),
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO drifts (app, ref, detected, fields, managers, missing) VALUES (?, ?, ?, ?, ?, ?)",
                (ev.app, ref, ev.ts, _dumps(sorted(set(ev.fields))), _dumps(sorted(set(ev.managers))), int(ev.missing)),
            )
            return
        # The same episode changed shape: keep every field and manager it touched.
        fields = sorted(set(json.loads(row["fields"])) | set(ev.fields))
        managers = sorted(set(json.loads(row["managers"])) | set(ev.managers))
        db.execute(
            "UPDATE drifts SET fields = ?, managers = ?, missing = ? WHERE id = ?",
            (_dumps(fields), _dumps(managers), int(ev.missing), row["id"]),
        )

    def _drift_resolved(self, db: sqlite3.Connection, ev: DriftResolved) -> None:
        db.execute(
            "UPDATE drifts SET resolved = ?, how = ? WHERE app = ? AND ref = ? AND resolved IS NULL",
            (ev.ts, ev.how, ev.app, ev.ref.inventory_id),
        )

    def _revert(self, db: sqlite3.Connection, ev: RevertCommitted) -> None:
        db.execute(
            "INSERT INTO reverts (app, source, reverted, new_sha, who, ts) VALUES (?, ?, ?, ?, ?, ?)",
            (ev.app, ev.source, _dumps(list(ev.reverted)), ev.new_sha, ev.who, ev.ts),
        )

    def add_audit(
        self,
        who: str,
        action: str,
        target: str = "",
        args: Mapping[str, Any] | None = None,
        result: str = "",
        terminal: str = "",
        ts: float | None = None,
    ) -> int:
        """Append an audit row (``who`` did ``action`` on ``target`` from ``terminal``); returns its id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO audit (ts, who, terminal, action, target, args, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time() if ts is None else ts, who, terminal, action, target, _dumps(dict(args or {})), result),
            )
            return int(cur.lastrowid or 0)

    def set_audit_result(self, audit_id: int, result: str) -> None:
        """Fill in the outcome of an audited command (its row is written before it runs)."""
        with self._tx() as db:
            db.execute("UPDATE audit SET result = ? WHERE id = ?", (result, audit_id))

    def mark_interrupted(self, message: str = "interrupted: driftdeck stopped during the sync") -> int:
        """Close syncs left open by a crash (call once at daemon start); returns how many."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE syncs SET finished = ?, ok = 0, message = ?, duration = ? - started WHERE finished IS NULL",
                (now, message, now),
            )
            return cur.rowcount

    # ----- reading ----------------------------------------------------------------------------

    def syncs(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        """Sync runs of ``app``, newest first."""
        rows = self._query("SELECT * FROM syncs WHERE app = ? ORDER BY started DESC, id DESC LIMIT ?", (app, limit))
        return [_sync_row(r) for r in rows]

    def last_sync(self, app: str) -> dict[str, Any] | None:
        """The most recent finished, non-dry-run sync of ``app``."""
        rows = self._query(
            "SELECT * FROM syncs WHERE app = ? AND finished IS NOT NULL AND dry_run = 0"
            " ORDER BY finished DESC, id DESC LIMIT 1",
            (app,),
        )
        return _sync_row(rows[0]) if rows else None

    def drifts(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        """Drift episodes of ``app`` (open ones have ``resolved`` None), newest first."""
        rows = self._query("SELECT * FROM drifts WHERE app = ? ORDER BY detected DESC, id DESC LIMIT ?", (app, limit))
        return [_drift_row(r) for r in rows]

    def open_drifts(self, app: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM drifts WHERE app = ? AND resolved IS NULL ORDER BY detected, id", (app,))
        return [_drift_row(r) for r in rows]

    def reverts(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        """Revert commits made for ``app``, newest first."""
        rows = self._query("SELECT * FROM reverts WHERE app = ? ORDER BY ts DESC, id DESC LIMIT ?", (app, limit))
        return [_revert_row(r) for r in rows]

    def audit(self, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
        """Audit rows, newest first, optionally for one target."""
        if target is None:
            rows = self._query("SELECT * FROM audit ORDER BY ts DESC, id DESC LIMIT ?", (limit,))
        else:
            rows = self._query(
                "SELECT * FROM audit WHERE target = ? ORDER BY ts DESC, id DESC LIMIT ?", (target, limit)
            )
        return [_audit_row(r) for r in rows]

    def app_history(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        """Syncs, drifts, reverts and audit rows targeting ``app``, merged newest first.

        Each entry has ``kind`` (sync | drift | revert | audit) and ``ts`` (when it began).
        """
        entries: list[dict[str, Any]] = []
        entries += [{"kind": "sync", "ts": s["started"], **s} for s in self.syncs(app, limit)]
        entries += [{"kind": "drift", "ts": d["detected"], **d} for d in self.drifts(app, limit)]
        entries += [{"kind": "revert", **r} for r in self.reverts(app, limit)]
        entries += [{"kind": "audit", **a} for a in self.audit(limit, target=app)]
        entries.sort(key=lambda e: e["ts"], reverse=True)
        return entries[:limit]
