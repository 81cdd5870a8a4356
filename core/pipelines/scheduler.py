"""Run pipelines: stages in order, ``runOrder`` groups in order, a group's actions in parallel.

Semantics follow CodePipeline (see ``anchors-gitops-pipelines.md`` §3):

* **Gates.** Before each stage a run passes a gate. In ``superseded`` and ``queued`` mode a
  stage holds one run at a time (a run leaves it once the stage ends); ``queued`` lets the
  waiting runs in FIFO, ``superseded`` keeps only the newest waiting run (an older one
  becomes ``Superseded``; a run inside a stage is never interrupted). ``parallel`` runs
  never wait for each other. A disabled transition holds every run before its stage
  (status ``Waiting``, "transition disabled") until it is enabled again.
* **Failure.** A failed action fails its stage (the rest of its group finishes, later
  groups do not start) and the run. ``onFailure: rollback`` then starts a run of type
  rollback: that stage again with the revision, variables and stage inputs of the last
  run in which it succeeded (it enters the stage before any waiting run).
* **Retry** (:meth:`Scheduler.retry`) re-runs the failed, abandoned or never-run actions of
  a finished run's stage (or all of them), then the later stages; it works on runs
  interrupted by a restart too (state is read back from the store).
* **Stop.** Stop-and-wait lets in-flight actions finish, stop-and-abandon kills them
  (``Abandoned``); either way the run ends ``Stopped``; wait can be upgraded to abandon.
  A pending approval is abandoned by both.
* **Approvals** wait (``Waiting``) for :meth:`Scheduler.approve` / :meth:`Scheduler.reject`
  or their timeout.

Executors (``run_command``, ``promote``, ``sync_app``) are injected callables, the
runner's by default. Output lines reach the bus (``LogLines``) and the log file in
batches (every :data:`LOG_BATCH_SECONDS` or :data:`LOG_BATCH_LINES` lines), never one
event per line. Everything runs on one asyncio loop; store writes are small and logs are
written by the store's writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.events import (
    ActionChanged,
    ApprovalDecided,
    ApprovalRequested,
    EventBus,
    LogLines,
    RunFinished,
    RunStarted,
    StageChanged,
    TransitionChanged,
)
from core.model import Revision
from core.pipelines import runner
from core.pipelines.runner import ActionContext, ActionResult
from core.pipelines.store import RunStore
from core.pipelines.triggers import should_trigger
from core.pipelines.types import ActionSpec, Mode, PipelineSpec, StageSpec, Status

if TYPE_CHECKING:
    from core.source import GitSource

__all__ = [
    "LOG_BATCH_LINES",
    "LOG_BATCH_SECONDS",
    "PromoteFn",
    "RunCommandFn",
    "Scheduler",
    "SchedulerError",
    "SyncAppFn",
]

log = logging.getLogger(__name__)

RunCommandFn = Callable[[ActionSpec, ActionContext, asyncio.Event], Awaitable[ActionResult]]
PromoteFn = Callable[[ActionSpec, ActionContext, "GitSource"], Awaitable[ActionResult]]
SyncAppFn = Callable[[str, float], Awaitable[tuple[bool, str]]]

LOG_BATCH_SECONDS = 0.05
LOG_BATCH_LINES = 500
LOG_BATCH_CHARS = 256 * 1024
ABANDON_GRACE = runner.KILL_GRACE + 5.0  # seconds an abandoned command gets to exit before its task is cancelled
TIMEOUT_BACKSTOP = 30.0  # run actions time themselves out; the scheduler steps in this much later
RETRYABLE = (Status.FAILED, Status.STOPPED, Status.ABANDONED, Status.INTERRUPTED, Status.CANCELLED)
_IN_STAGE = (Status.IN_PROGRESS, Status.STOPPING)


class SchedulerError(ValueError):
    """A command that cannot be carried out (unknown run, nothing to approve, ...)."""


class _Ended(Exception):
    """Ends a run waiting at a gate (superseded or stopped)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Decision:
    approved: bool | None  # None: abandoned by a stop
    who: str = ""
    comment: str = ""


@dataclass(eq=False)
class _Waiter:
    run: _Run
    stage: str
    future: asyncio.Future[None]
    priority: bool  # a retry or rollback: ahead of the queue, not held by the transition


@dataclass(eq=False)
class _Gate:
    occupants: set[str] = field(default_factory=set)
    queue: list[_Waiter] = field(default_factory=list)


@dataclass(eq=False)
class _Run:
    id: str
    seq: int
    spec: PipelineSpec
    revision: Revision
    variables: dict[str, str]
    trigger: str
    who: str
    stages: list[str]  # the stages this run goes through, in order
    outputs: dict[str, str] = field(default_factory=dict)
    attempts: dict[tuple[str, str], tuple[int, Status]] = field(default_factory=dict)
    stage_status: dict[str, tuple[Status, str]] = field(default_factory=dict)
    status: Status = Status.PENDING
    message: str = ""
    entered: bool = False
    stop: str | None = None  # "wait" | "abandon"
    stopped_by: str = ""
    waiter: _Waiter | None = None
    inflight: set[asyncio.Event] = field(default_factory=set)  # abandon events of running actions
    approvals: dict[tuple[str, str], asyncio.Future[_Decision]] = field(default_factory=dict)
    source: Any = None
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _LogBuffer:
    """The ``log(stream, line)`` callback of one action attempt: batches lines to store and bus."""

    __slots__ = ("_chars", "_flushed", "_handle", "_key", "_lines", "_loop", "_sched", "_streams", "run")

    def __init__(self, sched: Scheduler, run: _Run, stage: str, action: str, attempt: int) -> None:
        self._sched = sched
        self.run = run
        self._key = (stage, action, attempt)
        self._lines: list[str] = []
        self._streams: dict[str, list[str]] = {}
        self._chars = 0
        self._flushed = 0  # lines handed to the store so far (the next batch's offset)
        self._handle: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def __call__(self, stream: str, line: str) -> None:
        if line[-1:] == "\n":
            line = line[:-1]
        self._lines.append(line)
        lines = self._streams.get(stream)
        if lines is None:
            lines = self._streams[stream] = []
        lines.append(line)
        self._chars += len(line)
        if len(self._lines) >= LOG_BATCH_LINES or self._chars >= LOG_BATCH_CHARS:
            self.flush()
        elif self._handle is None:
            self._handle = self._loop.call_later(LOG_BATCH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._lines:
            return
        lines, streams = self._lines, self._streams
        self._lines, self._streams, self._chars = [], {}, 0
        stage, action, attempt = self._key
        self._sched.store.append_log(self.run.id, stage, action, attempt, lines)
        offset, self._flushed = self._flushed, self._flushed + len(lines)
        for stream, batch in streams.items():
            self._sched.bus.publish(
                LogLines(self.run.spec.name, self.run.id, stage, action, tuple(batch), stream, attempt, offset)
            )

    def close(self) -> None:
        self.flush()
        stage, action, attempt = self._key
        self._sched.store.close_log(self.run.id, stage, action, attempt)


def _new_run_id(pipeline: str) -> str:
    return f"{pipeline}-{time.strftime('%Y%m%d-%H%M')}-{secrets.token_hex(2)}"


class Scheduler:
    """Starts, gates, runs, stops and retries pipeline runs (see the module docstring)."""

    def __init__(
        self,
        specs: Mapping[str, PipelineSpec],
        store: RunStore,
        bus: EventBus,
        *,
        source_for: Callable[[str], GitSource],
        run_command: RunCommandFn = runner.run_command,
        promote: PromoteFn = runner.promote,
        sync_app: SyncAppFn | None = None,
        work_root: Path,
    ) -> None:
        self.specs: dict[str, PipelineSpec] = dict(specs)
        self.store = store
        self.bus = bus
        self.work_root = Path(work_root)
        self._source_for = source_for
        self._run_command = run_command
        self._promote = promote
        self._sync_app = sync_app
        self._runs: dict[str, _Run] = {}  # active runs
        self._gates: dict[tuple[str, str], _Gate] = {}
        self._disabled: dict[tuple[str, str], tuple[str, str]] = {
            (t["pipeline"], t["stage"]): (t["who"], t["reason"]) for t in store.disabled_transitions()
        }
        self._seq = 0

    # ----- lifecycle --------------------------------------------------------------------------

    def recover(self) -> int:
        """Mark what a previous process left unfinished as Interrupted; returns how many runs."""
        return self.store.mark_interrupted()

    def update_specs(self, specs: Mapping[str, PipelineSpec]) -> None:
        """Use new pipeline declarations for new runs (active runs keep theirs)."""
        self.specs = dict(specs)

    async def aclose(self) -> None:
        """Cancel active runs (they become Interrupted, hence retryable) and wait for them."""
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def active(self) -> list[str]:
        """Ids of runs not finished yet."""
        return list(self._runs)

    async def wait(self, run_id: str) -> Status:
        """Wait until the run ends; its final status."""
        run = self._runs.get(run_id)
        if run is not None:
            await run.done.wait()
            return run.status
        row = self.store.run(run_id)
        if row is None:
            raise SchedulerError(f"no run {run_id!r}")
        return Status(row["status"])

    # ----- starting ---------------------------------------------------------------------------

    def _spec(self, pipeline: str) -> PipelineSpec:
        spec = self.specs.get(pipeline)
        if spec is None:
            raise SchedulerError(f"no pipeline {pipeline!r}")
        return spec

    def _new_run(
        self,
        spec: PipelineSpec,
        revision: Revision,
        *,
        variables: Mapping[str, str],
        stages: list[str],
        trigger: str,
        who: str,
        outputs: Mapping[str, str] | None = None,
        rollback_of: str | None = None,
    ) -> _Run:
        run_id = _new_run_id(spec.name)
        while run_id in self._runs or self.store.run_exists(run_id):
            run_id = _new_run_id(spec.name)
        self._seq += 1
        run = _Run(run_id, self._seq, spec, revision, dict(variables), trigger, who, stages, dict(outputs or {}))
        self.store.create_run(
            run_id, spec.name, revision, trigger=trigger, who=who, variables=run.variables,
            stages=tuple(stages), rollback_of=rollback_of,
        )
        for s in stages:
            run.stage_status[s] = (Status.PENDING, "")
        self._runs[run_id] = run
        self.bus.publish(RunStarted(spec.name, run_id, revision.sha, trigger, who, dict(run.variables)))
        return run

    def _launch(self, run: _Run, stages: list[StageSpec], **kw: Any) -> None:
        run.task = asyncio.get_running_loop().create_task(self._drive(run, stages, **kw), name=f"run {run.id}")

    async def start_run(
        self,
        pipeline: str,
        revision: Revision,
        *,
        variables: Mapping[str, str] | None = None,
        stage: str | None = None,
        trigger: str = "manual",
        who: str = "",
    ) -> str:
        """Start a run (from ``stage`` when given: earlier stages' outputs come from their
        last successful runs); returns its id. ``variables`` override the pipeline's defaults."""
        spec = self._spec(pipeline)
        first = 0
        outputs: dict[str, str] = {}
        if stage is not None:
            names = [s.name for s in spec.stages]
            if stage not in names:
                raise SchedulerError(f"pipeline {pipeline!r} has no stage {stage!r}")
            first = names.index(stage)
            for earlier in spec.stages[:first]:
                outputs.update(self._stage_outputs(pipeline, earlier.name))
        merged = {**dict(spec.variables), **dict(variables or {})}
        stages = list(spec.stages[first:])
        run = self._new_run(
            spec, revision, variables=merged, stages=[s.name for s in stages], trigger=trigger, who=who,
            outputs=outputs,
        )
        self._launch(run, stages)
        return run.id

    def _stage_outputs(self, pipeline: str, stage: str) -> dict[str, str]:
        """Outputs of ``stage``'s actions in its last successful run."""
        last = self.store.last_successful(pipeline, stage)
        out: dict[str, str] = {}
        for s in last["stages"] if last else ():
            if s["stage"] == stage:
                for a in s["actions"]:
                    if a["status"] is Status.SUCCEEDED:
                        out.update({f"{stage}.{a['action']}.{k}": v for k, v in a["outputs"].items()})
        return out

    async def on_revision(
        self,
        source: str | GitSource,
        revision: Revision,
        changed: Sequence[str] | None = None,
        *,
        tags: Sequence[str] = (),
    ) -> list[str]:
        """Start runs of the pipelines built from ``source`` whose trigger filter passes."""
        name = source if isinstance(source, str) else source.name
        started: list[str] = []
        for spec in list(self.specs.values()):
            if spec.source != name:
                continue
            branch = revision.branch or (None if tags else self._branch_of(source))
            ok, reason = should_trigger(spec.trigger, branch=branch, tags=tags, changed=changed)
            if not ok:
                log.info("pipeline %s not triggered by %s: %s", spec.name, revision.short, reason)
                continue
            started.append(await self.start_run(spec.name, revision, trigger="commit", who=revision.author))
        return started

    def _branch_of(self, source: str | GitSource) -> str | None:
        """The configured branch of ``source`` (None when it cannot be found)."""
        try:
            src = self._source_for(source) if isinstance(source, str) else source
            return str(src.spec.branch)
        except Exception:
            return None

    # ----- gates ------------------------------------------------------------------------------

    def _gate(self, pipeline: str, stage: str) -> _Gate:
        gate = self._gates.get((pipeline, stage))
        if gate is None:
            gate = self._gates[(pipeline, stage)] = _Gate()
        return gate

    def _enqueue(self, run: _Run, stage: str, *, priority: bool = False) -> _Waiter:
        """Put ``run`` in the queue of ``stage``'s gate (superseding older waiters if so configured)."""
        pipeline = run.spec.name
        gate = self._gate(pipeline, stage)
        if run.spec.mode is Mode.SUPERSEDED and not priority:
            for w in [w for w in gate.queue if not w.priority and w.run.seq < run.seq]:
                self._drop(w, _Ended(Status.SUPERSEDED, f"superseded by {run.id}"))
        waiter = _Waiter(run, stage, asyncio.get_running_loop().create_future(), priority)
        if priority:
            gate.queue.insert(sum(1 for w in gate.queue if w.priority), waiter)
        else:
            gate.queue.append(waiter)
        run.waiter = waiter
        self._pump(pipeline, stage)
        return waiter

    async def _enter(self, waiter: _Waiter) -> None:
        await waiter.future  # raises _Ended when superseded or stopped; run.waiter then stays set
        waiter.run.waiter = None

    def _drop(self, waiter: _Waiter, why: _Ended) -> None:
        """Take a waiter out of its queue; its run ends with ``why``."""
        gate = self._gate(waiter.run.spec.name, waiter.stage)
        if waiter in gate.queue:
            gate.queue.remove(waiter)
        if not waiter.future.done():
            waiter.future.set_exception(why)

    def _leave(self, run: _Run, stage: str) -> None:
        self._gate(run.spec.name, stage).occupants.discard(run.id)
        self._pump(run.spec.name, stage)

    def _pump(self, pipeline: str, stage: str) -> None:
        """Let in whoever may enter ``stage`` now; mark the others as waiting."""
        gate = self._gate(pipeline, stage)
        disabled = (pipeline, stage) in self._disabled
        while gate.queue:
            w = gate.queue[0]
            if (disabled and not w.priority) or (w.run.spec.mode is not Mode.PARALLEL and gate.occupants):
                break
            gate.queue.pop(0)
            gate.occupants.add(w.run.id)
            if not w.future.done():
                w.future.set_result(None)
        for w in gate.queue:
            if disabled and not w.priority:
                self._set_run(w.run, Status.WAITING, f"transition to {stage} disabled")
                self._set_stage(w.run, stage, Status.WAITING, "transition disabled")
            else:
                holder = next(iter(gate.occupants), "")
                self._set_run(w.run, Status.IN_PROGRESS if w.run.entered else Status.PENDING,
                              f"waiting for stage {stage}")
                self._set_stage(w.run, stage, Status.PENDING, f"waiting for {holder}" if holder else "")

    def set_transition(self, pipeline: str, stage: str, enabled: bool, who: str = "", reason: str = "") -> None:
        """Enable or disable the transition into ``stage``; enabling releases the held runs."""
        spec = self._spec(pipeline)
        if spec.stage(stage) is None:
            raise SchedulerError(f"pipeline {pipeline!r} has no stage {stage!r}")
        self.store.set_transition(pipeline, stage, enabled, who, reason)
        if enabled:
            self._disabled.pop((pipeline, stage), None)
        else:
            self._disabled[(pipeline, stage)] = (who, reason)
        self.bus.publish(TransitionChanged(pipeline, stage, enabled, who, reason))
        self._pump(pipeline, stage)

    def sync_transitions(self) -> int:
        """Adopt the store's disabled transitions (changed by another process, or by the CLI
        writing the store directly when no process picked its command up); holds or releases
        runs accordingly. Returns how many transitions changed."""
        stored = {(t["pipeline"], t["stage"]): (t["who"], t["reason"]) for t in self.store.disabled_transitions()}
        changed = 0
        for key in set(self._disabled) | set(stored):
            if self._disabled.get(key) == stored.get(key):
                continue
            changed += 1
            if key in stored:
                self._disabled[key] = stored[key]
                who, reason = stored[key]
                self.bus.publish(TransitionChanged(key[0], key[1], False, who, reason))
            else:
                self._disabled.pop(key, None)
                self.bus.publish(TransitionChanged(key[0], key[1], True))
            self._pump(*key)
        return changed

    def transitions(self, pipeline: str | None = None) -> dict[tuple[str, str], tuple[str, str]]:
        """Disabled transitions: (pipeline, stage) → (who, reason)."""
        return {k: v for k, v in self._disabled.items() if pipeline is None or k[0] == pipeline}

    # ----- status bookkeeping -----------------------------------------------------------------

    def _set_run(self, run: _Run, status: Status, message: str) -> None:
        if (run.status, run.message) == (status, message):
            return
        run.status, run.message = status, message
        self.store.set_run(run.id, status, message)

    def _set_stage(
        self, run: _Run, stage: str, status: Status, message: str = "", inputs: Mapping[str, str] | None = None
    ) -> None:
        if run.stage_status.get(stage) == (status, message) and inputs is None:
            return
        run.stage_status[stage] = (status, message)
        self.store.set_stage(run.id, stage, status, message, inputs=inputs)
        self.bus.publish(StageChanged(run.spec.name, run.id, stage, status.value, message))

    def _finish(self, run: _Run, status: Status, message: str) -> None:
        """Close the run: unfinished stages get their final status, RunFinished goes out."""
        gate_stage = run.waiter.stage if run.waiter else None
        if run.waiter is not None:
            self._drop(run.waiter, _Ended(status, message))
        for stage in run.stages:
            st, _ = run.stage_status.get(stage, (Status.PENDING, ""))
            if st.done:
                continue
            if stage == gate_stage and status in (Status.SUPERSEDED, Status.STOPPED):
                self._set_stage(run, stage, status, message)
            elif st in _IN_STAGE:
                self._set_stage(run, stage, Status.INTERRUPTED if status is Status.INTERRUPTED else status, message)
            else:
                self._set_stage(run, stage, Status.CANCELLED)
        for (pipeline, stage), gate in self._gates.items():
            if run.id in gate.occupants:  # cancelled right after entering: free the stage
                gate.occupants.discard(run.id)
                self._pump(pipeline, stage)
        run.status, run.message = status, message
        self.store.set_run(run.id, status, message)
        self._runs.pop(run.id, None)
        run.done.set()
        self.bus.publish(RunFinished(run.spec.name, run.id, status.value, message))

    # ----- running ----------------------------------------------------------------------------

    async def _drive(
        self,
        run: _Run,
        stages: list[StageSpec],
        *,
        retry: bool | None = None,
        first_waiter: _Waiter | None = None,
    ) -> None:
        """Take ``run`` through ``stages``; ``retry`` (failed-only or not) applies to the first."""
        status, message = Status.SUCCEEDED, ""
        try:
            for i, stage in enumerate(stages):
                if run.stop:
                    raise _Ended(Status.STOPPED, self._stop_message(run))
                waiter = first_waiter if i == 0 and first_waiter else self._enqueue(run, stage.name)
                await self._enter(waiter)
                try:
                    run.entered = True
                    self._set_run(run, Status.STOPPING if run.stop else Status.IN_PROGRESS, f"stage {stage.name}")
                    st, msg = await self._run_stage(run, stage, retry if i == 0 else None)
                    if st is Status.FAILED and stage.on_failure == "rollback" and run.trigger != "rollback":
                        msg += self._rollback(run, stage)
                finally:
                    self._leave(run, stage.name)
                if st is not Status.SUCCEEDED:
                    status, message = st, msg
                    break
        except _Ended as e:
            status, message = e.status, e.message
        except asyncio.CancelledError:
            self._finish(run, Status.INTERRUPTED, "interrupted: driftdeck stopped during the run")
            raise
        except Exception as e:
            log.exception("run %s failed", run.id)
            status, message = Status.FAILED, f"internal error: {type(e).__name__}: {e}"
        self._finish(run, status, message)

    def _stop_message(self, run: _Run) -> str:
        return f"stopped by {run.stopped_by}" if run.stopped_by else "stopped"

    async def _run_stage(self, run: _Run, stage: StageSpec, retry: bool | None) -> tuple[Status, str]:
        prefix = stage.name + "."
        inputs = {k: v for k, v in run.outputs.items() if not k.startswith(prefix)}
        self._set_stage(run, stage.name, Status.STOPPING if run.stop else Status.IN_PROGRESS, inputs=inputs)
        failures: list[str] = []
        for group in stage.groups():
            if run.stop:
                break
            todo = [
                a for a in group
                if retry is not True or run.attempts.get((stage.name, a.name), (0, Status.PENDING))[1]
                is not Status.SUCCEEDED
            ]
            if not todo:
                continue
            snapshot = dict(run.outputs)
            results = await asyncio.gather(*(self._run_action(run, stage.name, a, snapshot) for a in todo))
            failures += [f"{a.name}: {msg}" if msg else a.name for a, (st, msg) in zip(todo, results, strict=True)
                         if st is not Status.SUCCEEDED]
            if failures:
                break
        if run.stop:
            status, message = Status.STOPPED, self._stop_message(run)
        elif failures:
            status, message = Status.FAILED, "failed: " + "; ".join(failures)
        else:
            status, message = Status.SUCCEEDED, ""
        self._set_stage(run, stage.name, status, message)
        return status, f"stage {stage.name} {message}" if message else ""

    async def _run_action(
        self, run: _Run, stage: str, spec: ActionSpec, outputs: dict[str, str]
    ) -> tuple[Status, str]:
        key = (stage, spec.name)
        attempt = run.attempts.get(key, (0, Status.PENDING))[0] + 1
        first = Status.WAITING if spec.kind == "approval" else Status.IN_PROGRESS
        self.store.start_action(run.id, stage, spec.name, attempt, first)
        waiting = spec.approval.message if spec.kind == "approval" and spec.approval else ""
        if waiting:  # so a reader of the store (a console opened later) sees what is asked
            self.store.set_action(run.id, stage, spec.name, attempt, first, waiting)
        run.attempts[key] = (attempt, first)
        pipeline = run.spec.name
        self.bus.publish(ActionChanged(pipeline, run.id, stage, spec.name, first.value, waiting, attempt))
        logbuf = _LogBuffer(self, run, stage, spec.name, attempt)
        result: dict[str, Any] = {}
        try:
            status, message, result = await self._execute(run, stage, spec, outputs, logbuf)
        except asyncio.CancelledError:
            logbuf.close()
            status, message = Status.INTERRUPTED, "interrupted: driftdeck stopped during the run"
            self.store.set_action(run.id, stage, spec.name, attempt, status, message)
            run.attempts[key] = (attempt, status)
            self.bus.publish(ActionChanged(pipeline, run.id, stage, spec.name, status.value, message, attempt))
            raise
        except Exception as e:
            log.debug("action %s/%s of %s raised", stage, spec.name, run.id, exc_info=True)
            status, message = Status.FAILED, f"{type(e).__name__}: {e}"
        logbuf.close()
        outs: dict[str, str] = {str(k): str(v) for k, v in (result.get("outputs") or {}).items()}
        if status is Status.SUCCEEDED:
            run.outputs.update({f"{stage}.{spec.name}.{k}": v for k, v in outs.items()})
            if spec.kind == "promote" and outs.get("PROMOTED_SHA"):
                self.store.set_run(run.id, run.status, promoted_sha=outs["PROMOTED_SHA"])
        self.store.set_action(
            run.id, stage, spec.name, attempt, status, message, exit_code=result.get("exit_code"), outputs=outs,
            who=result.get("who"), comment=result.get("comment"),
        )
        run.attempts[key] = (attempt, status)
        self.bus.publish(ActionChanged(pipeline, run.id, stage, spec.name, status.value, message, attempt))
        return status, message

    def _context(
        self, run: _Run, stage: str, spec: ActionSpec, outputs: dict[str, str], logbuf: _LogBuffer
    ) -> ActionContext:
        if run.source is None:
            run.source = self._source_for(run.spec.source)
        return ActionContext(
            run_id=run.id, pipeline=run.spec.name, stage=stage, action=spec.name, revision=run.revision,
            source=run.source, variables=dict(run.variables), outputs=dict(outputs), log=logbuf,
            work_root=self.work_root,
        )

    async def _execute(
        self, run: _Run, stage: str, spec: ActionSpec, outputs: dict[str, str], logbuf: _LogBuffer
    ) -> tuple[Status, str, dict[str, Any]]:
        """Run one action; (status, message, extras: outputs / exit_code / who / comment)."""
        if spec.kind == "approval":
            return await self._approval(run, stage, spec)
        if spec.kind == "sync":
            if spec.sync is None:
                return Status.FAILED, "sync action without settings", {}
            if self._sync_app is None:
                return Status.FAILED, "no app sync available to this scheduler", {}
            app, timeout = spec.sync.app, (spec.sync.timeout if spec.sync.wait != "none" else 0.0)
            sync_app = self._sync_app

            async def call_sync() -> tuple[Status, str, dict[str, Any]]:
                ok, msg = await sync_app(app, timeout)
                return (Status.SUCCEEDED if ok else Status.FAILED), msg, {}

            return await self._guarded(run, spec, call_sync(), asyncio.Event(), kills=False)
        ctx = self._context(run, stage, spec, outputs, logbuf)
        abandon = asyncio.Event()
        if spec.kind == "run":
            work = self._result(self._run_command(spec, ctx, abandon))
            return await self._guarded(run, spec, work, abandon, kills=True)
        if spec.kind == "promote":
            if spec.promote is None:
                return Status.FAILED, "promote action without settings", {}
            target = self._source_for(spec.promote.source)
            work = self._result(self._promote(spec, ctx, target))
            return await self._guarded(run, spec, work, abandon, kills=False)
        return Status.FAILED, f"unknown action kind {spec.kind!r}", {}

    @staticmethod
    async def _result(aw: Awaitable[ActionResult]) -> tuple[Status, str, dict[str, Any]]:
        r = await aw
        return Status(r.status), r.message, {"outputs": r.outputs, "exit_code": r.exit_code}

    async def _guarded(
        self,
        run: _Run,
        spec: ActionSpec,
        work: Awaitable[tuple[Status, str, dict[str, Any]]],
        abandon: asyncio.Event,
        *,
        kills: bool,
    ) -> tuple[Status, str, dict[str, Any]]:
        """Await ``work`` under the action's timeout and the run's stop-and-abandon.

        ``kills``: the executor watches ``abandon``, ends itself (it gets :data:`ABANDON_GRACE`)
        and enforces the timeout itself (the scheduler's is a backstop, :data:`TIMEOUT_BACKSTOP`
        later); otherwise its task is cancelled at once.
        """
        timeout = spec.timeout + TIMEOUT_BACKSTOP if kills else spec.timeout
        task = asyncio.ensure_future(work)
        run.inflight.add(abandon)
        if run.stop == "abandon":
            abandon.set()
        watch = asyncio.ensure_future(abandon.wait())
        try:
            done, _ = await asyncio.wait({task, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if task not in done:
                timed_out = not abandon.is_set()
                abandon.set()
                if kills:
                    done, _ = await asyncio.wait({task}, timeout=ABANDON_GRACE)
                if task not in done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                    if timed_out:
                        return Status.FAILED, f"timed out after {spec.timeout:g}s", {}
                    return Status.ABANDONED, f"abandoned ({self._stop_message(run)})", {}
                if timed_out:
                    return Status.FAILED, f"timed out after {spec.timeout:g}s", task.result()[2]
            try:
                status, message, extra = task.result()
            except Exception as e:
                if run.stop != "abandon":
                    raise
                status, message, extra = Status.ABANDONED, f"{type(e).__name__}: {e}", {}
            if run.stop == "abandon" and status is not Status.SUCCEEDED:
                return Status.ABANDONED, message or f"abandoned ({self._stop_message(run)})", extra
            return status, message, extra
        finally:
            run.inflight.discard(abandon)
            watch.cancel()
            if not task.done():
                task.cancel()

    async def _approval(self, run: _Run, stage: str, spec: ActionSpec) -> tuple[Status, str, dict[str, Any]]:
        settings = spec.approval
        timeout = settings.timeout if settings else spec.timeout
        future: asyncio.Future[_Decision] = asyncio.get_running_loop().create_future()
        run.approvals[(stage, spec.name)] = future
        self.bus.publish(ApprovalRequested(
            run.spec.name, run.id, stage, spec.name, settings.message if settings else "", timeout
        ))
        if run.stop:
            future.set_result(_Decision(None))
        try:
            decision = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return Status.FAILED, "approval timed out", {}
        finally:
            run.approvals.pop((stage, spec.name), None)
        extra: dict[str, Any] = {"who": decision.who, "comment": decision.comment}
        if decision.approved is None:
            return Status.ABANDONED, f"abandoned ({self._stop_message(run)})", {}
        if decision.approved:
            note = f": {decision.comment}" if decision.comment else ""
            return Status.SUCCEEDED, f"approved by {decision.who}{note}", {**extra, "outputs": {"APPROVED_BY": decision.who}}
        return Status.FAILED, f"rejected by {decision.who}: {decision.comment}" if decision.comment else (
            f"rejected by {decision.who}"), extra

    # ----- commands ---------------------------------------------------------------------------

    def _active(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise SchedulerError(f"run {run_id!r} is not in progress")
        return run

    def pending_approvals(self, run_id: str | None = None) -> list[tuple[str, str, str]]:
        """(run id, stage, action) of every approval waiting for a decision."""
        runs = [self._active(run_id)] if run_id else list(self._runs.values())
        return [(r.id, s, a) for r in runs for (s, a) in r.approvals]

    def _decide(self, run_id: str, action: str, approved: bool, who: str, comment: str) -> None:
        run = self._active(run_id)
        stage_name, _, name = action.rpartition(".") if "." in action else ("", "", action)
        matches = [(s, a) for (s, a), f in run.approvals.items()
                   if a == name and (not stage_name or s == stage_name) and not f.done()]
        if not matches:
            raise SchedulerError(f"run {run_id}: no approval {action!r} is waiting")
        if len(matches) > 1:
            raise SchedulerError(f"run {run_id}: approval {action!r} is ambiguous; use STAGE.ACTION")
        stage, act = matches[0]
        run.approvals[(stage, act)].set_result(_Decision(approved, who, comment))
        self.bus.publish(ApprovalDecided(run.spec.name, run_id, stage, act, approved, who, comment))

    def approve(self, run_id: str, action: str, who: str = "", comment: str = "") -> None:
        """Approve a waiting approval (``action`` or ``stage.action``)."""
        self._decide(run_id, action, True, who, comment)

    def reject(self, run_id: str, action: str, who: str = "", comment: str = "") -> None:
        """Reject a waiting approval: its stage and the run fail, the comment is kept."""
        self._decide(run_id, action, False, who, comment)

    def stop(self, run_id: str, abandon: bool = False, who: str = "") -> None:
        """Stop a run: let in-flight actions finish, or (``abandon``) kill them. Returns at once."""
        run = self._active(run_id)
        run.stop = "abandon" if abandon or run.stop == "abandon" else "wait"
        run.stopped_by = run.stopped_by or who
        if run.waiter is not None:
            self._drop(run.waiter, _Ended(Status.STOPPED, self._stop_message(run)))
            return
        for future in run.approvals.values():
            if not future.done():
                future.set_result(_Decision(None))
        if abandon:
            for event in run.inflight:
                event.set()
        if run.entered:
            self._set_run(run, Status.STOPPING, self._stop_message(run))
            for stage, (st, msg) in list(run.stage_status.items()):
                if st is Status.IN_PROGRESS:
                    self._set_stage(run, stage, Status.STOPPING, msg)

    async def retry(self, run_id: str, stage: str, failed_only: bool = True, who: str = "") -> None:
        """Re-run a finished run's ``stage`` (only what did not succeed, or all of it), then
        the stages after it."""
        if run_id in self._runs:
            raise SchedulerError(f"run {run_id} is still in progress")
        row = self.store.run(run_id)
        if row is None:
            raise SchedulerError(f"no run {run_id!r}")
        spec = self._spec(row["pipeline"])
        names = [s.name for s in spec.stages]
        if stage not in names:
            raise SchedulerError(f"pipeline {spec.name!r} has no stage {stage!r}")
        stage_rows = {s["stage"]: s for s in row["stages"]}
        if stage not in stage_rows or stage_rows[stage]["status"] not in RETRYABLE:
            st = stage_rows[stage]["status"].value if stage in stage_rows else "not part of the run"
            raise SchedulerError(f"run {run_id}: stage {stage} cannot be retried ({st})")
        # A rollback run redoes its one stage; other runs go on with the later stages.
        stages = [spec.stages[names.index(stage)]] if row["trigger"] == "rollback" else list(
            spec.stages[names.index(stage):]
        )
        run = _Run(run_id, 0, spec, Revision(**row["revision_info"]), dict(row["variables"]), row["trigger"],
                   row["who"], [s["stage"] for s in row["stages"]])
        self._seq += 1
        run.seq = self._seq
        for s in row["stages"]:
            run.stage_status[s["stage"]] = (s["status"], s["message"])
            for a in s["actions"]:  # oldest attempt first: the latest one wins
                run.attempts[(s["stage"], a["action"])] = (a["attempt"], a["status"])
                prefix = f"{s['stage']}.{a['action']}."
                for k in [k for k in run.outputs if k.startswith(prefix)]:
                    del run.outputs[k]
                if a["status"] is Status.SUCCEEDED:
                    run.outputs.update({prefix + k: v for k, v in a["outputs"].items()})
        for s in stages:
            if s.name not in run.stages:
                run.stages.append(s.name)
            self._set_stage(run, s.name, Status.PENDING)
        run.entered = True
        self._runs[run_id] = run
        self._set_run(run, Status.IN_PROGRESS, f"retrying stage {stage}")
        self.bus.publish(RunStarted(spec.name, run_id, run.revision.sha, "retry", who, dict(run.variables)))
        waiter = self._enqueue(run, stage, priority=True)
        self._launch(run, stages, retry=failed_only, first_waiter=waiter)

    def _rollback(self, run: _Run, stage: StageSpec) -> str:
        """Start the rollback run of a failed ``stage``; a note for the failed run's message."""
        target = self.store.last_successful(run.spec.name, stage.name, exclude=run.id)
        if target is None:
            return f"; no earlier successful run of stage {stage.name} to roll back to"
        inputs: dict[str, str] = next((s["inputs"] for s in target["stages"] if s["stage"] == stage.name), {})
        rb = self._new_run(
            run.spec, Revision(**target["revision_info"]), variables=target["variables"], stages=[stage.name],
            trigger="rollback", who=run.who, outputs=inputs, rollback_of=run.id,
        )
        self._set_run(rb, Status.PENDING, f"rollback of {run.id} to the inputs of {target['id']}")
        waiter = self._enqueue(rb, stage.name, priority=True)
        self._launch(rb, [stage], first_waiter=waiter)
        return f"; rolling back with run {rb.id} (inputs of {target['id']})"
