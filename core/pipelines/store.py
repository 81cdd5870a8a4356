"""Durable record of pipeline runs in SQLite (WAL), with action logs in plain files.

Tables ``runs``, ``stage_runs``, ``action_runs``, ``transitions`` and ``run_logs`` (an
index of log files) live in their own schema (versioned in ``pipeline_schema_version``),
so the file may be the history database. Every write is one small transaction, made on
the caller's thread (the scheduler's loop): a killed process loses nothing it committed.

Logs go to ``<logs_dir>/<run_id>/<stage>.<action>.<attempt>.log`` (``logs_dir`` defaults
to ``logs/`` beside the database). Appends are queued to one writer thread, so the loop
never waits on the disk and a log is never held in memory whole; :meth:`RunStore.read_log`
streams a file back line by line.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from core.model import Revision
from core.pipelines.types import Status
from core.sqlite_db import open_db, write_tx

__all__ = ["RunStore", "RunStoreError"]

MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE runs (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            pipeline TEXT NOT NULL,
            revision TEXT NOT NULL DEFAULT '',
            revision_info TEXT NOT NULL DEFAULT '{}',
            trigger TEXT NOT NULL DEFAULT '',
            who TEXT NOT NULL DEFAULT '',
            variables TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            started REAL NOT NULL,
            finished REAL,
            promoted_sha TEXT,
            rollback_of TEXT
        )""",
        "CREATE INDEX runs_pipeline ON runs(pipeline, seq)",
        "CREATE INDEX runs_promoted ON runs(promoted_sha)",
        """CREATE TABLE stage_runs (
            run_id TEXT NOT NULL REFERENCES runs(id),
            stage TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            inputs TEXT NOT NULL DEFAULT '{}',
            started REAL,
            finished REAL,
            PRIMARY KEY (run_id, stage)
        )""",
        "CREATE INDEX stage_runs_ok ON stage_runs(stage, status, finished)",
        """CREATE TABLE action_runs (
            run_id TEXT NOT NULL REFERENCES runs(id),
            stage TEXT NOT NULL,
            action TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            exit_code INTEGER,
            outputs TEXT NOT NULL DEFAULT '{}',
            started REAL NOT NULL,
            finished REAL,
            who TEXT NOT NULL DEFAULT '',
            comment TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, stage, action, attempt)
        )""",
        """CREATE TABLE run_logs (
            run_id TEXT NOT NULL,
            stage TEXT NOT NULL,
            action TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            path TEXT NOT NULL,
            lines INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, stage, action, attempt)
        )""",
        """CREATE TABLE transitions (
            pipeline TEXT NOT NULL,
            stage TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            who TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            ts REAL NOT NULL,
            PRIMARY KEY (pipeline, stage)
        )""",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)
CHECKPOINT_EVERY = 200  # commits between WAL checkpoints
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_OPEN_STATUSES = tuple(s.value for s in Status if not s.done)


class RunStoreError(RuntimeError):
    """The run database cannot be used."""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _safe(name: str) -> str:
    """A file-name-safe form of a stage or action name."""
    return _SAFE.sub("_", name) or "_"


class _LogWriter:
    """One thread that appends queued chunks to log files (open files kept until closed)."""

    def __init__(self, db_path: str | None) -> None:
        self._db_path = db_path
        self._q: queue.SimpleQueue[tuple[str, Path, str] | None] = queue.SimpleQueue()
        self._files: dict[Path, IO[str]] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queued = 0
        self.backlog = 0  # characters queued, not yet written
        self.error: str | None = None

    def put(self, op: str, path: Path, data: str = "") -> None:
        with self._lock:
            self._queued += 1
            self.backlog += len(data)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="driftdeck-runlogs", daemon=True)
                self._thread.start()
        self._q.put((op, path, data))

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                break
            op, path, data = item
            try:
                if op == "write":
                    f = self._files.get(path)
                    if f is None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        f = self._files[path] = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
                    f.write(data)
                elif op == "close":
                    f = self._files.pop(path, None)
                    if f is not None:
                        f.close()
                elif op == "flush":
                    for f in self._files.values():
                        f.flush()
                elif op == "checkpoint" and self._db_path is not None:
                    with contextlib.closing(sqlite3.connect(self._db_path, timeout=10.0)) as db:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except (OSError, sqlite3.Error) as e:  # keep running: a full disk must not stop the pipeline
                self.error = f"{path}: {e}"
            with self._lock:
                self._queued -= 1
                self.backlog -= len(data)
                if self._queued == 0:
                    self._idle.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every queued chunk is written to the OS (not for the event loop)."""
        with self._lock:
            if self._thread is None:
                return True
            self._queued += 1
            self._q.put(("flush", Path(), ""))
            return self._idle.wait_for(lambda: self._queued == 0, timeout)

    def stop(self) -> None:
        self.flush()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._q.put(None)
            thread.join()
        for f in self._files.values():
            f.close()
        self._files.clear()


class RunStore:
    """Runs, stages, action attempts, transitions and log files. Safe from any thread."""

    def __init__(self, path: str | os.PathLike[str], logs_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = str(path)
        if self.path == ":memory:" and logs_dir is None:
            raise RunStoreError("an in-memory RunStore needs an explicit logs_dir")
        self.logs_dir = Path(logs_dir) if logs_dir is not None else Path(self.path).parent / "logs"
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = open_db(self.path)
        # Checkpoints (which fsync) run on the writer thread, not in the caller's commits.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._commits = 0
        self._migrate()
        self._writer = _LogWriter(None if self.path == ":memory:" else self.path)
        self._log_counts: dict[tuple[str, str, str, int], list[int]] = {}

    # ----- connection -------------------------------------------------------------------------

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RunStoreError("run store is closed")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, write_tx(self._conn, self._lock) as db:
            yield db
            self._commits += 1
            if self._commits % CHECKPOINT_EVERY == 0:
                self._writer.put("checkpoint", Path())

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS pipeline_schema_version (version INTEGER NOT NULL)")
            version = db.execute("SELECT max(version) FROM pipeline_schema_version").fetchone()[0] or 0
            if version > SCHEMA_VERSION:
                raise RunStoreError(f"{self.path}: pipeline schema {version} is newer than ours ({SCHEMA_VERSION})")
            for step in MIGRATIONS[version:]:
                for statement in step:
                    db.execute(statement)
            if version < SCHEMA_VERSION:
                db.execute("DELETE FROM pipeline_schema_version")
                db.execute("INSERT INTO pipeline_schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        """Write out queued logs and close the database."""
        self._writer.stop()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        pipeline: str,
        revision: Revision,
        *,
        trigger: str = "manual",
        who: str = "",
        variables: Mapping[str, str] | None = None,
        stages: tuple[str, ...] = (),
        rollback_of: str | None = None,
        started: float | None = None,
    ) -> None:
        """A new Pending run with a Pending row per stage it will go through."""
        now = time.time() if started is None else started
        info = {"sha": revision.sha, "author": revision.author, "message": revision.message,
                "time": revision.time, "branch": revision.branch}
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, pipeline, revision, revision_info, trigger, who, variables, status,"
                " started, rollback_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, pipeline, revision.sha, _dumps(info), trigger, who, _dumps(dict(variables or {})),
                 Status.PENDING.value, now, rollback_of),
            )
            db.executemany(
                "INSERT INTO stage_runs (run_id, stage, position, status) VALUES (?, ?, ?, ?)",
                [(run_id, s, i, Status.PENDING.value) for i, s in enumerate(stages)],
            )

    def set_run(
        self, run_id: str, status: Status, message: str | None = None, *, promoted_sha: str | None = None
    ) -> None:
        """Update a run's status (and message); a done status also sets ``finished``."""
        finished = time.time() if status.done else None
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, message = COALESCE(?, message), finished = ?,"
                " promoted_sha = COALESCE(?, promoted_sha) WHERE id = ?",
                (status.value, message, finished, promoted_sha, run_id),
            )

    def set_stage(
        self,
        run_id: str,
        stage: str,
        status: Status,
        message: str = "",
        *,
        inputs: Mapping[str, str] | None = None,
    ) -> None:
        """Update (or add) a stage row; InProgress sets ``started``, a done status ``finished``."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO stage_runs (run_id, stage, position, status) VALUES (?, ?,"
                " (SELECT COUNT(*) FROM stage_runs WHERE run_id = ?), ?) ON CONFLICT DO NOTHING",
                (run_id, stage, run_id, status.value),
            )
            db.execute(
                "UPDATE stage_runs SET status = ?, message = ?, inputs = COALESCE(?, inputs),"
                " started = CASE WHEN ? THEN ? ELSE started END,"
                " finished = CASE WHEN ? THEN ? ELSE NULL END WHERE run_id = ? AND stage = ?",
                (status.value, message, None if inputs is None else _dumps(dict(inputs)),
                 status is Status.IN_PROGRESS, now, status.done, now, run_id, stage),
            )

    def start_action(self, run_id: str, stage: str, action: str, attempt: int, status: Status) -> Path:
        """Record a new attempt (status InProgress or Waiting); returns its log file's path."""
        path = self.log_path(run_id, stage, action, attempt)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO action_runs (run_id, stage, action, attempt, status, started)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, stage, action, attempt, status.value, time.time()),
            )
            db.execute(
                "INSERT OR REPLACE INTO run_logs (run_id, stage, action, attempt, path) VALUES (?, ?, ?, ?, ?)",
                (run_id, stage, action, attempt, str(path)),
            )
        return path

    def set_action(
        self,
        run_id: str,
        stage: str,
        action: str,
        attempt: int,
        status: Status,
        message: str = "",
        *,
        exit_code: int | None = None,
        outputs: Mapping[str, str] | None = None,
        who: str | None = None,
        comment: str | None = None,
    ) -> None:
        """Update an attempt; a done status sets ``finished`` (and the log file's counts)."""
        counts = self._log_counts.pop((run_id, stage, action, attempt), None) if status.done else None
        with self._tx() as db:
            if counts is not None:
                db.execute(
                    "UPDATE run_logs SET lines = lines + ?, bytes = bytes + ?"
                    " WHERE run_id = ? AND stage = ? AND action = ? AND attempt = ?",
                    (counts[0], counts[1], run_id, stage, action, attempt),
                )
            db.execute(
                "UPDATE action_runs SET status = ?, message = ?, exit_code = COALESCE(?, exit_code),"
                " outputs = COALESCE(?, outputs), who = COALESCE(?, who), comment = COALESCE(?, comment),"
                " finished = ? WHERE run_id = ? AND stage = ? AND action = ? AND attempt = ?",
                (status.value, message, exit_code, None if outputs is None else _dumps(dict(outputs)), who,
                 comment, time.time() if status.done else None, run_id, stage, action, attempt),
            )

    def mark_interrupted(self, message: str = "interrupted: driftdeck stopped during the run") -> int:
        """Close everything a crash left open (call once at start); returns how many runs."""
        now = time.time()
        with self._tx() as db:
            marks = ",".join("?" * len(_OPEN_STATUSES))
            db.execute(
                f"UPDATE action_runs SET status = ?, message = ?, finished = ? WHERE status IN ({marks})",
                (Status.INTERRUPTED.value, message, now, *_OPEN_STATUSES),
            )
            db.execute(
                f"UPDATE stage_runs SET status = CASE WHEN started IS NULL THEN ? ELSE ? END,"
                f" finished = ? WHERE status IN ({marks})",
                (Status.CANCELLED.value, Status.INTERRUPTED.value, now, *_OPEN_STATUSES),
            )
            cur = db.execute(
                f"UPDATE runs SET status = ?, message = ?, finished = ? WHERE status IN ({marks})",
                (Status.INTERRUPTED.value, message, now, *_OPEN_STATUSES),
            )
            return cur.rowcount

    # ----- transitions ------------------------------------------------------------------------

    def set_transition(self, pipeline: str, stage: str, enabled: bool, who: str = "", reason: str = "") -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO transitions (pipeline, stage, enabled, who, reason, ts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (pipeline, stage, int(enabled), who, reason, time.time()),
            )

    def disabled_transitions(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        """Disabled transitions (into ``stage``) with who disabled them, why and when."""
        sql = "SELECT * FROM transitions WHERE enabled = 0"
        rows = self._query(sql + " AND pipeline = ?", (pipeline,)) if pipeline else self._query(sql)
        return [{"pipeline": r["pipeline"], "stage": r["stage"], "who": r["who"], "reason": r["reason"],
                 "ts": r["ts"]} for r in rows]

    # ----- logs -------------------------------------------------------------------------------

    def log_path(self, run_id: str, stage: str, action: str, attempt: int) -> Path:
        return self.logs_dir / _safe(run_id) / f"{_safe(stage)}.{_safe(action)}.{attempt}.log"

    def append_log(self, run_id: str, stage: str, action: str, attempt: int, lines: list[str]) -> None:
        """Queue ``lines`` (without newlines) for the attempt's log file; never blocks on the disk."""
        if not lines:
            return
        data = "\n".join(lines) + "\n"
        counts = self._log_counts.setdefault((run_id, stage, action, attempt), [0, 0])
        counts[0] += len(lines)
        counts[1] += len(data)
        self._writer.put("write", self.log_path(run_id, stage, action, attempt), data)

    def close_log(self, run_id: str, stage: str, action: str, attempt: int) -> None:
        """Close the attempt's log file once written (its counts are recorded by :meth:`set_action`)."""
        self._writer.put("close", self.log_path(run_id, stage, action, attempt))

    @property
    def log_backlog(self) -> int:
        """Characters queued for log files, not yet written."""
        return self._writer.backlog

    def flush_logs(self, timeout: float | None = None) -> bool:
        """Block until queued log lines are written (call from a thread, not the loop)."""
        return self._writer.flush(timeout)

    def read_log(self, run_id: str, stage: str, action: str, attempt: int | None = None) -> Iterator[str]:
        """The attempt's log lines (default: the latest attempt), streamed from its file."""
        if attempt is None:
            rows = self._query(
                "SELECT max(attempt) FROM run_logs WHERE run_id = ? AND stage = ? AND action = ?",
                (run_id, stage, action),
            )
            if rows[0][0] is None:
                return
            attempt = int(rows[0][0])
        self._writer.flush()
        path = self.log_path(run_id, stage, action, attempt)
        try:
            f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
        except FileNotFoundError:
            return
        with f:
            for line in f:
                yield line[:-1] if line.endswith("\n") else line

    # ----- queries ----------------------------------------------------------------------------

    @staticmethod
    def _run_row(r: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": r["id"],
            "pipeline": r["pipeline"],
            "revision": r["revision"],
            "revision_info": json.loads(r["revision_info"]),
            "trigger": r["trigger"],
            "who": r["who"],
            "variables": json.loads(r["variables"]),
            "status": Status(r["status"]),
            "message": r["message"],
            "started": r["started"],
            "finished": r["finished"],
            "promoted_sha": r["promoted_sha"],
            "rollback_of": r["rollback_of"],
        }

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Runs (without stages), newest first."""
        if pipeline is None:
            rows = self._query("SELECT * FROM runs ORDER BY seq DESC LIMIT ?", (limit,))
        else:
            rows = self._query("SELECT * FROM runs WHERE pipeline = ? ORDER BY seq DESC LIMIT ?", (pipeline, limit))
        return [self._run_row(r) for r in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run with ``stages`` (in order), each with ``actions``: every attempt, oldest first."""
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        out = self._run_row(rows[0])
        actions: dict[str, list[dict[str, Any]]] = {}
        for a in self._query(
            "SELECT a.*, l.lines AS log_lines, l.bytes AS log_bytes FROM action_runs a LEFT JOIN run_logs l"
            " USING (run_id, stage, action, attempt) WHERE a.run_id = ? ORDER BY a.started, a.action, a.attempt",
            (run_id,),
        ):
            actions.setdefault(a["stage"], []).append({
                "action": a["action"],
                "attempt": a["attempt"],
                "status": Status(a["status"]),
                "message": a["message"],
                "exit_code": a["exit_code"],
                "outputs": json.loads(a["outputs"]),
                "started": a["started"],
                "finished": a["finished"],
                "who": a["who"],
                "comment": a["comment"],
                "log_lines": a["log_lines"] or 0,
                "log_bytes": a["log_bytes"] or 0,
            })
        out["stages"] = [
            {
                "stage": s["stage"],
                "status": Status(s["status"]),
                "message": s["message"],
                "inputs": json.loads(s["inputs"]),
                "started": s["started"],
                "finished": s["finished"],
                "actions": actions.get(s["stage"], []),
            }
            for s in self._query("SELECT * FROM stage_runs WHERE run_id = ? ORDER BY position", (run_id,))
        ]
        return out

    def last_successful(self, pipeline: str, stage: str, *, exclude: str | None = None) -> dict[str, Any] | None:
        """The run (see :meth:`run`) whose ``stage`` most recently succeeded."""
        rows = self._query(
            "SELECT r.id FROM stage_runs s JOIN runs r ON r.id = s.run_id WHERE r.pipeline = ? AND s.stage = ?"
            " AND s.status = ? AND r.id != ? ORDER BY s.finished DESC, r.seq DESC LIMIT 1",
            (pipeline, stage, Status.SUCCEEDED.value, exclude or ""),
        )
        return self.run(rows[0]["id"]) if rows else None

    def runs_by_promoted_sha(self, sha: str) -> list[dict[str, Any]]:
        """Runs whose promote action made config commit ``sha`` (a prefix of 4+ characters matches)."""
        if len(sha) < 4:
            return []
        if len(sha) >= 40:
            rows = self._query("SELECT * FROM runs WHERE promoted_sha = ? ORDER BY seq DESC", (sha,))
        else:
            rows = self._query(
                "SELECT * FROM runs WHERE promoted_sha LIKE ? ORDER BY seq DESC", (sha.replace("%", "") + "%",)
            )
        return [self._run_row(r) for r in rows]

    def run_exists(self, run_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM runs WHERE id = ?", (run_id,)))
