"""Pipelines inside a running engine: triggers, repo-declared pipelines, cross-process commands.

:class:`PipelineService` wires a :class:`~core.pipelines.scheduler.Scheduler` to an
:class:`~core.engine.Engine`: a new head of a source (``RevisionDetected`` on the engine's
bus, or the service's own watch of sources no app uses) starts the pipelines built from
it, with the files changed since the previous head for path filters. Pipelines declared in
a source's ``.driftdeck/pipeline.yaml`` are read at the triggering revision and merged
(config pipelines win on a name clash).

Other processes (the CLI) reach the runs this process executes through the
``pipeline_commands`` table of the run store's database (:class:`CommandQueue`): they
insert a row, the owning process polls the table, carries the command out and writes
the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core import paths
from core.config import pipeline_lines
from core.engine import Engine
from core.events import Event, RevisionDetected
from core.model import Config, Problem, Revision
from core.pipelines.scheduler import Scheduler, SchedulerError
from core.pipelines.spec import REPO_PIPELINE_FILE, parse_pipelines, parse_repo_pipeline
from core.pipelines.store import RunStore
from core.pipelines.types import PipelineSpec, Status

__all__ = ["COMMAND_POLL_SECONDS", "CommandQueue", "PipelineService", "changed_files", "default_store_path"]

log = logging.getLogger(__name__)

COMMAND_POLL_SECONDS = 0.5
VERBS = ("approve", "reject", "stop", "retry", "transition")  # transition: run_id holds the pipeline

_SCHEMA = """CREATE TABLE IF NOT EXISTS pipeline_commands (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    who TEXT NOT NULL DEFAULT '',
    verb TEXT NOT NULL,
    run_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    args TEXT NOT NULL DEFAULT '{}',
    done INTEGER NOT NULL DEFAULT 0,
    result TEXT
)"""


def default_store_path() -> Path:
    return paths.state_dir() / "pipelines" / "runs.db"


def default_work_root() -> Path:
    return paths.cache_dir() / "pipelines"


class CommandQueue:
    """The ``pipeline_commands`` table (in the run store's SQLite file), from either side."""

    def __init__(self, db_path: str | Path) -> None:
        self._db = sqlite3.connect(str(db_path), timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def submit(self, verb: str, run_id: str, target: str = "", args: Mapping[str, Any] | None = None,
               who: str = "") -> int:
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}")
        cur = self._db.execute(
            "INSERT INTO pipeline_commands (ts, who, verb, run_id, target, args) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), who, verb, run_id, target, json.dumps(dict(args or {}))),
        )
        return int(cur.lastrowid or 0)

    def pending(self) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM pipeline_commands WHERE done = 0 ORDER BY id").fetchall()

    def claim(self, command_id: int) -> bool:
        """Take a pending command (done 0 -> 2) so that exactly one process carries it out."""
        cur = self._db.execute("UPDATE pipeline_commands SET done = 2 WHERE id = ? AND done = 0", (command_id,))
        return cur.rowcount == 1

    def finish(self, command_id: int, ok: bool, message: str) -> None:
        self._db.execute(
            "UPDATE pipeline_commands SET done = 1, result = ? WHERE id = ?",
            (json.dumps({"ok": ok, "message": message}), command_id),
        )

    def result(self, command_id: int) -> dict[str, Any] | None:
        """``{"ok": bool, "message": str}`` once the command was carried out, else None."""
        row = self._db.execute("SELECT done, result FROM pipeline_commands WHERE id = ?", (command_id,)).fetchone()
        if row is None or row["done"] != 1:
            return None
        value: dict[str, Any] = json.loads(row["result"] or "{}")
        return value


def changed_files(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[str]:
    """Paths added, removed or modified between two tree snapshots (``GitSource.files``)."""
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


class PipelineService:
    """Runs the config's (and the repositories') pipelines inside an engine's process."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        *,
        store: RunStore | None = None,
        work_root: Path | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        lines = pipeline_lines(config.path) if config.path else {}
        specs, problems = parse_pipelines(
            config.pipelines, file=config.path, lines=lines, sources=config.sources, apps=config.apps
        )
        self.problems: list[Problem] = list(problems)
        self.config_specs: dict[str, PipelineSpec] = specs
        self.repo_specs: dict[str, dict[str, PipelineSpec]] = {}  # source -> name -> spec
        self.store = store or RunStore(default_store_path())
        self._own_store = store is None
        self.commands = CommandQueue(self.store.path)
        self.scheduler = Scheduler(
            specs,
            self.store,
            engine.bus,
            source_for=engine.source,
            sync_app=self._sync_app,
            work_root=work_root or default_work_root(),
        )
        self._last: dict[str, str] = {}  # source -> the head the last trigger saw
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._started = False

    def reconfigure(self, config: Config) -> list[str]:
        """Use a reloaded configuration's pipelines; runs in flight keep the spec they started with."""
        lines = pipeline_lines(config.path) if config.path else {}
        specs, problems = parse_pipelines(
            config.pipelines, file=config.path, lines=lines, sources=config.sources, apps=config.apps
        )
        before = set(self.config_specs)
        self.config = config
        self.config_specs = specs
        self.problems = list(problems)
        self.scheduler.update_specs(self.specs())
        changes = [f"pipeline {n} added" for n in sorted(set(specs) - before)]
        changes += [f"pipeline {n} removed" for n in sorted(before - set(specs))]
        return changes

    # ----- executors ---------------------------------------------------------------------------

    async def _sync_app(self, app: str, timeout: float) -> tuple[bool, str]:
        run_id = await asyncio.to_thread(self._syncing_run, app)
        outcome = await self.engine.sync(app, who=f"pipeline {run_id}".rstrip(), wait=timeout > 0)
        return outcome.ok, outcome.message

    def _syncing_run(self, app: str) -> str:
        """The active run with an in-progress sync action of ``app`` (the sync executor is not told)."""
        for run_id in self.scheduler.active:
            row = self.store.run(run_id)
            spec = self.scheduler.specs.get(row["pipeline"]) if row else None
            for stage in row["stages"] if row and spec else ():
                st = spec.stage(stage["stage"]) if spec else None
                for a in stage["actions"]:
                    if a["status"] is not Status.IN_PROGRESS or st is None:
                        continue
                    action = next((x for x in st.actions if x.name == a["action"]), None)
                    if action is not None and action.sync is not None and action.sync.app == app:
                        return run_id
        return ""

    # ----- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, watch: bool = True, recover: bool = True) -> None:
        """Recover interrupted runs, listen for new revisions, poll the commands table.

        ``recover=False`` leaves unfinished runs alone (they may belong to another process)."""
        if self._started:
            return
        self._started = True
        n = self.scheduler.recover() if recover else 0
        if n:
            log.info("pipelines: %d run(s) interrupted by a previous stop", n)
        for src in self._trigger_sources():
            with contextlib.suppress(Exception):
                self._last[src] = (await asyncio.to_thread(self.engine.source(src).head)).sha
        self.engine.bus.on(self._on_event)
        app_sources = {a.source for a in self.config.apps.values()}
        if watch:
            for src in sorted(self._trigger_sources() - app_sources):
                self._loops.append(asyncio.create_task(self._watch(src), name=f"pipelines watch {src}"))
        self._loops.append(asyncio.create_task(self._poll_commands(), name="pipelines commands"))

    async def stop(self) -> None:
        for t in self._loops:
            t.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        self._loops.clear()
        await self.scheduler.aclose()
        self.commands.close()
        if self._own_store:
            self.store.close()
        self._started = False

    def _trigger_sources(self) -> set[str]:
        """Sources whose commits may start runs: those of config pipelines and every source
        (any of them may carry a ``.driftdeck/pipeline.yaml``)."""
        return {s.source for s in self.config_specs.values()} | set(self.config.sources)

    async def _watch(self, src: str) -> None:
        source = self.engine.source(src)
        async for rev in source.watch(since=self._last.get(src), on_error=lambda e: log.warning("%s", e)):
            await self.on_revision(src, rev)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, RevisionDetected) and self._started:
            task = asyncio.get_running_loop().create_task(self.on_revision(event.source, event.revision))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # ----- triggering --------------------------------------------------------------------------

    async def on_revision(self, src: str, revision: Revision) -> list[str]:
        """Start the runs a new head of ``src`` triggers; their ids."""
        prev = self._last.get(src)
        if prev == revision.sha:
            return []
        self._last[src] = revision.sha
        source = self.engine.source(src)
        try:
            await asyncio.to_thread(self._load_repo_specs, src, revision.sha)
            changed: list[str] | None = None
            if prev:
                old, _ = await asyncio.to_thread(source.files, prev)
                new, _ = await asyncio.to_thread(source.files, revision.sha)
                changed = changed_files(old, new)
        except Exception as exc:
            log.warning("pipelines: cannot read %s at %s: %s", src, revision.short, exc)
            return []
        return await self.scheduler.on_revision(src, revision, changed)

    def _load_repo_specs(self, src: str, sha: str) -> None:
        files, _ = self.engine.source(src).files(sha, ".driftdeck")
        text = files.get(REPO_PIPELINE_FILE)
        found: dict[str, PipelineSpec] = {}
        if text is not None:
            specs, problems = parse_repo_pipeline(
                text, file=f"{src}:{REPO_PIPELINE_FILE}", source=src,
                sources=self.config.sources, apps=self.config.apps,
            )
            self.problems = [p for p in self.problems if not (p.location and p.location.file.startswith(f"{src}:"))]
            self.problems.extend(problems)
            for p in problems:
                log.warning("pipelines: %s", p)
            found = {s.name: s for s in specs if s.name not in self.config_specs}
        self.repo_specs[src] = found
        self.scheduler.update_specs(self.specs())

    def specs(self) -> dict[str, PipelineSpec]:
        """Config pipelines plus those declared in repositories (config wins on a clash)."""
        out: dict[str, PipelineSpec] = {}
        for specs in self.repo_specs.values():
            out.update(specs)
        out.update(self.config_specs)
        return out

    async def load_repo_pipelines(self) -> None:
        """Read ``.driftdeck/pipeline.yaml`` at the head of every source (for manual runs)."""
        for src in sorted(self.config.sources):
            try:
                head = await asyncio.to_thread(self.engine.source(src).head)
                await asyncio.to_thread(self._load_repo_specs, src, head.sha)
            except Exception as exc:
                log.warning("pipelines: cannot read %s: %s", src, exc)

    # ----- commands from other processes -------------------------------------------------------

    async def _poll_commands(self) -> None:
        while True:
            try:
                # Transitions another process (or the CLI, directly) changed in the store.
                self.scheduler.sync_transitions()
            except Exception as exc:
                log.warning("pipelines: cannot read the transitions: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                for row in await asyncio.to_thread(self.commands.pending):
                    if not await asyncio.to_thread(self._ours, row):
                        continue  # a run another process executes
                    if await asyncio.to_thread(self.commands.claim, int(row["id"])):
                        await self.execute(row)
            await asyncio.sleep(COMMAND_POLL_SECONDS)

    def _ours(self, row: sqlite3.Row) -> bool:
        """Whether this process should carry out ``row``: its run is active here, or (a retry)
        the run has finished and this process knows its pipeline."""
        if row["run_id"] in self.scheduler.active:
            return True
        if row["verb"] == "transition":
            return bool(row["run_id"] in self.scheduler.specs)
        if row["verb"] != "retry":
            return False
        run = self.store.run(row["run_id"])
        return run is not None and Status(run["status"]).done and run["pipeline"] in self.scheduler.specs

    async def execute(self, row: sqlite3.Row) -> None:
        args = json.loads(row["args"] or "{}")
        verb, run_id, target, who = row["verb"], row["run_id"], row["target"], row["who"]
        try:
            if verb == "approve":
                self.scheduler.approve(run_id, target, who=who, comment=args.get("comment", ""))
                msg = f"approved {target} of {run_id}"
            elif verb == "reject":
                self.scheduler.reject(run_id, target, who=who, comment=args.get("comment", ""))
                msg = f"rejected {target} of {run_id}"
            elif verb == "stop":
                self.scheduler.stop(run_id, abandon=bool(args.get("abandon")), who=who)
                msg = f"stopping {run_id}"
            elif verb == "retry":
                await self.scheduler.retry(run_id, target, failed_only=bool(args.get("failed_only", True)), who=who)
                msg = f"retrying {target} of {run_id}"
            elif verb == "transition":
                enabled = bool(args.get("enabled"))
                self.scheduler.set_transition(run_id, target, enabled, who=who, reason=str(args.get("reason", "")))
                msg = f"{'enabled' if enabled else 'disabled'} the transition to {target} of {run_id}"
            else:
                raise SchedulerError(f"unknown verb {verb!r}")
            ok = True
        except SchedulerError as exc:
            ok, msg = False, str(exc)
        await asyncio.to_thread(self.commands.finish, int(row["id"]), ok, msg)


# ----- trace ---------------------------------------------------------------------------------------


def trailers(message: str) -> dict[str, str]:
    """``Key: value`` trailers of the last paragraph of a commit message."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    out: dict[str, str] = {}
    for line in paragraphs[-1].splitlines() if paragraphs else ():
        key, sep, value = line.partition(":")
        if sep and key and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def trace_app(engine: Engine, store: RunStore, app: str) -> dict[str, Any]:
    """What is live for ``app`` and how it got there: last successful sync -> config commit
    (with promote's trailers) -> pipeline run -> the run's source revision."""
    spec = engine.app(app).spec
    out: dict[str, Any] = {"app": app, "sync": None, "commit": None, "run": None, "source_revision": None,
                           "message": ""}
    sync = next((s for s in engine.history.syncs(app, limit=200) if s["ok"] and not s["dry_run"]), None)
    if sync is None:
        out["message"] = "no successful sync recorded"
        return out
    out["sync"] = {k: sync[k] for k in ("revision", "finished", "who", "message")}
    try:
        commit = engine.source(spec.source).revision(sync["revision"])
    except Exception as exc:
        out["message"] = f"commit {sync['revision'][:7]} not found in source {spec.source!r}: {exc}"
        return out
    found = trailers(commit.message)
    out["commit"] = {"source": spec.source, "sha": commit.sha, "subject": commit.subject, "author": commit.author,
                     "time": commit.time, "trailers": found}
    run = None
    if found.get("Driftdeck-Run"):
        run = store.run(found["Driftdeck-Run"])
    if run is None:
        runs = store.runs_by_promoted_sha(commit.sha)
        run = store.run(runs[0]["id"]) if runs else None
    if run is None:
        out["message"] = "the live commit was not made by a recorded pipeline run"
        if found.get("Driftdeck-Source-Revision"):
            out["source_revision"] = {"sha": found["Driftdeck-Source-Revision"]}
        return out
    out["run"] = {k: run[k] for k in ("id", "pipeline", "status", "trigger", "who", "started", "finished")}
    out["run"]["status"] = str(run["status"])
    info = run.get("revision_info")
    info = info if isinstance(info, dict) else {}
    out["source_revision"] = {
        "sha": found.get("Driftdeck-Source-Revision") or run["revision"],
        "subject": str(info.get("message", "")).split("\n")[0],
        "author": info.get("author", ""),
        "time": info.get("time", ""),
    }
    return out
