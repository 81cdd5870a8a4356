"""The client API: what the TUI, the CLI verbs and (later) the daemon protocol use.

``Client`` is the interface: a state snapshot, an event subscription and the
operator commands. ``LocalClient`` runs them on an in-process ``Engine``; a
remote implementation over the daemon's socket will offer the same methods, so
a caller cannot tell which it has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from core.diff import mask_pair
from core.engine import Engine, EngineError, SyncOutcome
from core.events import Subscription, decode, encode
from core.model import Action, ObjRef, Plan, PlanItem, Problem, Revision

if TYPE_CHECKING:
    from core.pipelines.service import PipelineService

T = TypeVar("T")


class Client(Protocol):
    def snapshot(self) -> dict[str, Any]: ...

    def subscribe(self) -> Subscription: ...

    async def plan(self, app: str) -> Plan: ...

    async def sync(self, app: str, *, dry_run: bool = False, wait: bool = True) -> SyncOutcome: ...

    async def suspend(self, app: str) -> None: ...

    async def resume(self, app: str) -> None: ...

    async def revert(self, app: str, *, to: str | None = None) -> SyncOutcome: ...

    def history(self, app: str, limit: int = 50) -> list[dict[str, Any]]: ...

    def objects(self, app: str) -> list[dict[str, Any]]: ...

    def object_diff(self, app: str, ref_id: str) -> dict[str, Any]: ...

    def commits(self, app: str, limit: int = 30) -> list[dict[str, Any]]: ...

    def pipelines(self) -> list[dict[str, Any]]: ...

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]: ...

    def run(self, run_id: str) -> dict[str, Any] | None: ...

    def run_log(self, run_id: str, stage: str, action: str, limit: int = 5000) -> list[str]: ...

    async def start_run(self, pipeline: str, stage: str | None = None) -> str: ...

    async def approve(self, run_id: str, action: str, comment: str = "") -> None: ...

    async def reject(self, run_id: str, action: str, comment: str = "") -> None: ...

    async def retry(self, run_id: str, stage: str, failed_only: bool = True) -> None: ...

    async def stop(self, run_id: str, abandon: bool = False) -> None: ...

    def trace(self, app: str) -> dict[str, Any]: ...


def _jsonable(value: Any) -> Any:
    """Run rows carry ``Status`` enums (str subclasses): plain strings for the wire."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def plan_to_json(plan: Plan) -> dict[str, Any]:
    items = []
    for item in plan.items:
        desired, live = mask_pair(item.desired, item.live)
        items.append({"ref": item.ref.inventory_id, "action": item.action.value, "desired": desired, "live": live,
                      "message": item.message})
    return {"app": plan.app, "revision": encode(plan.revision), "items": items,
            "problems": [str(p) for p in plan.problems]}


def plan_from_json(data: dict[str, Any]) -> Plan:
    rev = data.get("revision")
    return Plan(
        str(data.get("app", "")),
        decode(Revision, rev) if rev else None,
        items=[PlanItem(ObjRef.from_inventory_id(i["ref"]), Action(i["action"]), i.get("desired"), i.get("live"),
                        str(i.get("message") or "")) for i in data.get("items") or []],
        problems=[Problem(str(p)) for p in data.get("problems") or []],
    )


def outcome_text(result: Any) -> str:
    """The audit ``result`` of a command's return value."""
    if isinstance(result, SyncOutcome):
        return f"{'ok' if result.ok else 'failed'}: {result.message}"
    if isinstance(result, str) and result:
        return f"ok: {result}"
    return "ok"


class LocalClient:
    """The engine in this process. ``who`` (and ``terminal``) are recorded with every command:
    an audit row is written before the command runs and its result filled in afterwards, so a
    crash in the middle still leaves the row."""

    def __init__(self, engine: Engine, who: str, pipelines: PipelineService | None = None,
                 terminal: str = "") -> None:
        self.engine = engine
        self.who = who
        self.terminal = terminal
        self.pipeline_service = pipelines

    def snapshot(self) -> dict[str, Any]:
        return self.engine.state.snapshot()

    def subscribe(self) -> Subscription:
        return self.engine.bus.subscribe()

    async def plan(self, app: str) -> Plan:
        return await self.engine.plan(app)

    async def plan_json(self, app: str) -> dict[str, Any]:
        """:meth:`plan` for the wire: Secret values masked before anything leaves the process."""
        return plan_to_json(await self.engine.plan(app))

    async def _audited(self, action: str, target: str, args: dict[str, Any],
                       command: Callable[[], Awaitable[T]]) -> T:
        history = self.engine.history
        audit_id = history.add_audit(self.who, action, target=target, args=args, result="started",
                                     terminal=self.terminal)
        try:
            result = await command()
        except Exception as exc:
            history.set_audit_result(audit_id, f"error: {exc}")
            raise
        history.set_audit_result(audit_id, outcome_text(result))
        return result

    async def sync(self, app: str, *, dry_run: bool = False, wait: bool = True) -> SyncOutcome:
        self.engine.app(app)  # unknown app -> EngineError before anything is audited
        return await self._audited("sync", app, {"dryRun": dry_run}, lambda: self.engine.sync(
            app, who=self.who, dry_run=dry_run, wait=wait))

    async def suspend(self, app: str) -> None:
        self.engine.app(app)
        await self._audited("suspend", app, {}, lambda: self.engine.set_suspended(app, True, self.who))

    async def resume(self, app: str) -> None:
        self.engine.app(app)
        await self._audited("resume", app, {}, lambda: self.engine.set_suspended(app, False, self.who))

    async def revert(self, app: str, *, to: str | None = None) -> SyncOutcome:
        self.engine.app(app)
        return await self._audited("revert", app, {"to": to} if to else {"last": True}, lambda: self.engine.revert(
            app, to=to, last=to is None, who=self.who))

    def history(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        self.engine.app(app)  # unknown app -> EngineError
        return self.engine.history.app_history(app, limit=limit)

    def objects(self, app: str) -> list[dict[str, Any]]:
        return self.engine.objects(app)

    def object_diff(self, app: str, ref_id: str) -> dict[str, Any]:
        return self.engine.object_diff(app, ref_id)

    def commits(self, app: str, limit: int = 30) -> list[dict[str, Any]]:
        """The app's source history, newest first (what "revert to" chooses from)."""
        spec = self.engine.app(app).spec
        return [
            {"sha": r.sha, "short": r.short, "subject": r.subject, "author": r.author, "time": r.time}
            for r in self.engine.source(spec.source).log(limit)
        ]

    # ----- pipelines -----------------------------------------------------------------------------

    def _svc(self) -> PipelineService:
        if self.pipeline_service is None:
            raise EngineError("pipelines are not running in this process")
        return self.pipeline_service

    def pipelines(self) -> list[dict[str, Any]]:
        if self.pipeline_service is None:
            return []
        return [
            {"name": s.name, "source": s.source, "stages": [st.name for st in s.stages]}
            for _, s in sorted(self.pipeline_service.specs().items())
        ]

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if self.pipeline_service is None:
            return []
        rows: list[dict[str, Any]] = _jsonable(self.pipeline_service.store.runs(pipeline, limit))
        return rows

    def run(self, run_id: str) -> dict[str, Any] | None:
        if self.pipeline_service is None:
            return None
        row = self.pipeline_service.store.run(run_id)
        return None if row is None else dict(_jsonable(row))

    def run_log(self, run_id: str, stage: str, action: str, limit: int = 5000) -> list[str]:
        """The last ``limit`` lines of the latest attempt of one action."""
        if self.pipeline_service is None:
            return []
        from collections import deque

        return list(deque(self.pipeline_service.store.read_log(run_id, stage, action), maxlen=limit))

    async def start_run(self, pipeline: str, stage: str | None = None) -> str:
        svc = self._svc()
        spec = svc.specs().get(pipeline)
        if spec is None:
            raise EngineError(f"no pipeline {pipeline!r}")

        async def start() -> str:
            revision = await asyncio.to_thread(self.engine.source(spec.source).head)
            return await svc.scheduler.start_run(pipeline, revision, stage=stage, trigger="manual", who=self.who)

        return await self._audited("run", pipeline, {"stage": stage or ""}, start)

    async def _scheduler_call(self, action: str, run_id: str, args: dict[str, Any], fn: Callable[[], Any]) -> None:
        async def call() -> None:
            result = fn()
            if asyncio.iscoroutine(result):
                await result

        await self._audited(action, run_id, args, call)

    async def approve(self, run_id: str, action: str, comment: str = "") -> None:
        sched = self._svc().scheduler
        await self._scheduler_call("approve", run_id, {"action": action}, lambda: sched.approve(
            run_id, action, who=self.who, comment=comment))

    async def reject(self, run_id: str, action: str, comment: str = "") -> None:
        sched = self._svc().scheduler
        await self._scheduler_call("reject", run_id, {"action": action}, lambda: sched.reject(
            run_id, action, who=self.who, comment=comment))

    async def retry(self, run_id: str, stage: str, failed_only: bool = True) -> None:
        sched = self._svc().scheduler
        await self._scheduler_call("retry", run_id, {"stage": stage, "failedOnly": failed_only}, lambda: sched.retry(
            run_id, stage, failed_only=failed_only, who=self.who))

    async def stop(self, run_id: str, abandon: bool = False) -> None:
        sched = self._svc().scheduler
        await self._scheduler_call("stop", run_id, {"abandon": abandon}, lambda: sched.stop(
            run_id, abandon=abandon, who=self.who))

    def trace(self, app: str) -> dict[str, Any]:
        from core.pipelines.service import trace_app

        return trace_app(self.engine, self._svc().store, app)
