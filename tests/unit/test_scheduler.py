"""Pipeline scheduler with fake executors: order, outputs, failure, retry, stop, approvals,
execution modes, transitions, rollback, recovery and log batching.

The fakes block on asyncio events the test releases, so every interleaving is chosen by
the test, not by timing.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.events import (
    ActionChanged,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    EventBus,
    LogLines,
    RunFinished,
    RunStarted,
    StageChanged,
    TransitionChanged,
)
from core.model import Revision
from core.pipelines import scheduler as scheduler_mod
from core.pipelines.runner import ActionContext, ActionResult
from core.pipelines.scheduler import Scheduler, SchedulerError
from core.pipelines.store import RunStore
from core.pipelines.types import (
    ActionSpec,
    ApprovalAction,
    Mode,
    PipelineSpec,
    PromoteAction,
    RunAction,
    StageSpec,
    Status,
    SyncAction,
    Trigger,
)

TIMEOUT = 5.0


# ----- helpers ---------------------------------------------------------------------------------


def act(name: str, order: int = 1, timeout: float = 3600.0) -> ActionSpec:
    return ActionSpec(name, "run", order, timeout, run=RunAction(("true",)))


def approval(name: str, timeout: float = 3600.0, message: str = "ship it?") -> ActionSpec:
    return ActionSpec(name, "approval", approval=ApprovalAction(timeout, message))


def stage(name: str, *actions: ActionSpec, on_failure: str = "fail") -> StageSpec:
    return StageSpec(name, actions, on_failure)


def pipeline(*stages: StageSpec, mode: Mode = Mode.SUPERSEDED, name: str = "web", **kw: Any) -> PipelineSpec:
    return PipelineSpec(name, "app-src", stages, mode=mode, **kw)


def rev(sha: str = "a" * 40, branch: str = "main") -> Revision:
    return Revision(sha, author="alice", message=f"commit {sha[:4]}", branch=branch)


class Fakes:
    """Scripted executors. ``hold(key)`` blocks an action until ``release(key)``.

    Keys are ``stage.action`` or ``<sha4>:stage.action`` (only that revision's run).
    """

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.killed: list[str] = []
        self.contexts: dict[str, list[ActionContext]] = {}
        self.holds: dict[str, asyncio.Event] = {}
        self.results: dict[str, list[ActionResult]] = {}  # consumed one per attempt; default success
        self.syncs: list[tuple[str, float]] = []
        self.promotes: list[tuple[str, Any]] = []
        self._started_events: dict[str, asyncio.Event] = {}

    def hold(self, key: str) -> None:
        self.holds[key] = asyncio.Event()

    def release(self, key: str) -> None:
        self.holds[key].set()

    def script(self, key: str, *results: ActionResult) -> None:
        self.results[key] = list(results)

    def started_event(self, key: str) -> asyncio.Event:
        return self._started_events.setdefault(key, asyncio.Event())

    async def wait_started(self, key: str) -> None:
        await asyncio.wait_for(self.started_event(key).wait(), TIMEOUT)

    def _begin(self, ctx: ActionContext) -> tuple[str, str]:
        key = f"{ctx.stage}.{ctx.action}"
        long_key = f"{ctx.revision.sha[:4]}:{key}"
        self.started.append(long_key)
        self.contexts.setdefault(key, []).append(ctx)
        self.started_event(key).set()
        self.started_event(long_key).set()
        return key, long_key

    async def _block(self, key: str, long_key: str, abandon: asyncio.Event | None) -> bool:
        """Wait for the hold on this action, if any; False when abandoned first."""
        hold = self.holds.get(long_key) or self.holds.get(key)
        if hold is None:
            return True
        waits = [asyncio.ensure_future(hold.wait())]
        if abandon is not None:
            waits.append(asyncio.ensure_future(abandon.wait()))
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        return hold.is_set()

    def _result(self, key: str, long_key: str) -> ActionResult:
        self.finished.append(long_key)
        for k in (long_key, key):
            if self.results.get(k):
                return self.results[k].pop(0)
        return ActionResult(Status.SUCCEEDED, "ok")

    async def run_command(self, spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event) -> ActionResult:
        key, long_key = self._begin(ctx)
        ctx.log("stdout", f"running {key}")
        if not await self._block(key, long_key, abandon):
            self.killed.append(long_key)
            return ActionResult(Status.ABANDONED, "killed", exit_code=-9)
        return self._result(key, long_key)

    async def promote(self, spec: ActionSpec, ctx: ActionContext, target: Any) -> ActionResult:
        key, long_key = self._begin(ctx)
        self.promotes.append((key, target))
        await self._block(key, long_key, None)
        self._result(key, long_key)
        return ActionResult(Status.SUCCEEDED, "promoted", {"PROMOTED_SHA": "c0ffee" * 6 + "abcd", "PROMOTED_FILE": "x"})

    async def sync_app(self, app: str, timeout: float) -> tuple[bool, str]:
        self.syncs.append((app, timeout))
        hold = self.holds.get(f"sync:{app}")
        if hold is not None:
            await hold.wait()
        return True, f"{app} healthy"


@dataclass
class Env:
    sched: Scheduler
    store: RunStore
    bus: EventBus
    fakes: Fakes
    events: list[Event]

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def actions(self, run_id: str, stage_name: str) -> dict[str, list[dict[str, Any]]]:
        row = self.store.run(run_id)
        assert row is not None
        out: dict[str, list[dict[str, Any]]] = {}
        for s in row["stages"]:
            if s["stage"] == stage_name:
                for a in s["actions"]:
                    out.setdefault(a["action"], []).append(a)
        return out

    def stages(self, run_id: str) -> dict[str, Status]:
        row = self.store.run(run_id)
        assert row is not None
        return {s["stage"]: s["status"] for s in row["stages"]}

    async def wait(self, run_id: str) -> Status:
        return await asyncio.wait_for(self.sched.wait(run_id), TIMEOUT)


async def until(pred: Callable[[], bool], what: str = "condition") -> None:
    """Let the loop run until ``pred()`` holds (fails after TIMEOUT)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


@pytest.fixture
def tmp_store(tmp_path: Path) -> Iterator[RunStore]:
    store = RunStore(tmp_path / "state" / "history.db")
    yield store
    store.close()


@pytest.fixture
def make(tmp_store: RunStore, tmp_path: Path) -> Callable[..., Env]:
    def build(*specs: PipelineSpec, fakes: Fakes | None = None, store: RunStore | None = None) -> Env:
        bus = EventBus()
        events: list[Event] = []
        bus.on(events.append)
        fakes = fakes or Fakes()
        sched = Scheduler(
            {s.name: s for s in specs},
            store or tmp_store,
            bus,
            source_for=lambda name: types.SimpleNamespace(name=name, spec=types.SimpleNamespace(branch="main")),  # type: ignore[arg-type,return-value]
            run_command=fakes.run_command,
            promote=fakes.promote,
            sync_app=fakes.sync_app,
            work_root=tmp_path / "work",
        )
        return Env(sched, store or tmp_store, bus, fakes, events)

    return build


BUILD_DEPLOY = pipeline(
    stage("build", act("a"), act("b"), act("c", order=2)),
    stage("deploy", act("d")),
)


# ----- order, parallelism, outputs ---------------------------------------------------------------


async def test_stages_and_groups_run_in_order_and_a_group_in_parallel(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    f = env.fakes
    f.hold("build.a")
    f.hold("build.b")
    run_id = await env.sched.start_run("web", rev(), who="alice")
    assert run_id.startswith("web-") and len(run_id.split("-")) == 4
    await f.wait_started("build.a")
    await f.wait_started("build.b")
    assert f.finished == []  # both started before either finished
    assert env.stages(run_id)["build"] is Status.IN_PROGRESS
    f.release("build.b")
    await until(lambda: len(f.finished) == 1)
    assert "build.c" not in [k.split(":")[1] for k in f.started]  # group 2 waits for all of group 1
    f.release("build.a")
    assert await env.wait(run_id) is Status.SUCCEEDED
    order = [k.split(":")[1] for k in f.started]
    assert order[2:] == ["build.c", "deploy.d"]
    assert set(order[:2]) == {"build.a", "build.b"}
    row = env.store.run(run_id)
    assert row is not None and row["status"] is Status.SUCCEEDED and row["who"] == "alice"
    assert [s["stage"] for s in row["stages"]] == ["build", "deploy"]
    assert env.stages(run_id) == {"build": Status.SUCCEEDED, "deploy": Status.SUCCEEDED}
    stage_events = [(e.stage, e.status) for e in env.of(StageChanged)]
    assert stage_events == [
        ("build", "InProgress"), ("build", "Succeeded"), ("deploy", "InProgress"), ("deploy", "Succeeded"),
    ]
    assert [type(e) for e in env.events if isinstance(e, RunStarted | RunFinished)] == [RunStarted, RunFinished]
    assert env.of(RunFinished)[0].status == "Succeeded"
    assert list(env.store.read_log(run_id, "build", "c")) == ["running build.c"]


async def test_outputs_and_variables_propagate(make: Callable[..., Env]) -> None:
    spec = pipeline(
        stage("build", act("image"), act("sbom"), act("sign", order=2)),
        stage("deploy", act("d")),
        variables=(("ENV", "staging"), ("REGION", "eu")),
    )
    env = make(spec)
    f = env.fakes
    f.script("build.image", ActionResult(Status.SUCCEEDED, "built", {"IMAGE": "web:1"}))
    f.script("build.sbom", ActionResult(Status.SUCCEEDED, "sbom", {"SBOM": "s.json"}))
    run_id = await env.sched.start_run("web", rev(), variables={"ENV": "prod"})
    assert await env.wait(run_id) is Status.SUCCEEDED
    image_ctx = f.contexts["build.image"][0]
    assert image_ctx.variables == {"ENV": "prod", "REGION": "eu"}
    assert image_ctx.outputs == {}  # same group: no outputs of each other
    assert f.contexts["build.sbom"][0].outputs == {}
    assert f.contexts["build.sign"][0].outputs == {"build.image.IMAGE": "web:1", "build.sbom.SBOM": "s.json"}
    deploy_ctx = f.contexts["deploy.d"][0]
    assert deploy_ctx.outputs == {"build.image.IMAGE": "web:1", "build.sbom.SBOM": "s.json"}
    assert (deploy_ctx.run_id, deploy_ctx.pipeline, deploy_ctx.stage, deploy_ctx.revision) == (
        run_id, "web", "deploy", rev(),
    )
    assert env.actions(run_id, "build")["image"][0]["outputs"] == {"IMAGE": "web:1"}
    row = env.store.run(run_id)
    assert row is not None and row["variables"] == {"ENV": "prod", "REGION": "eu"}
    assert next(s for s in row["stages"] if s["stage"] == "deploy")["inputs"] == deploy_ctx.outputs
    assert env.of(RunStarted)[0].variables == {"ENV": "prod", "REGION": "eu"}


async def test_a_failed_action_fails_its_stage_and_the_run(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    f = env.fakes
    f.hold("build.a")
    f.script("build.b", ActionResult(Status.FAILED, "exit 2", exit_code=2))
    run_id = await env.sched.start_run("web", rev())
    await until(lambda: any(k.endswith("build.b") for k in f.finished))
    assert env.sched.active == [run_id]  # a is still running: the group finishes first
    f.release("build.a")
    assert await env.wait(run_id) is Status.FAILED
    assert [k.split(":")[1] for k in f.finished] == ["build.b", "build.a"]
    assert not any("build.c" in k or "deploy.d" in k for k in f.started)
    assert env.stages(run_id) == {"build": Status.FAILED, "deploy": Status.CANCELLED}
    acts = env.actions(run_id, "build")
    assert acts["a"][0]["status"] is Status.SUCCEEDED
    assert (acts["b"][0]["status"], acts["b"][0]["exit_code"], acts["b"][0]["message"]) == (Status.FAILED, 2, "exit 2")
    row = env.store.run(run_id)
    assert row is not None and "b: exit 2" in row["message"] and row["finished"] is not None


async def test_an_executor_exception_fails_the_action(make: Callable[..., Env]) -> None:
    env = make(pipeline(stage("build", act("a"))))

    async def boom(spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event) -> ActionResult:
        raise RuntimeError("no such file")

    env.sched._run_command = boom
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.FAILED
    assert env.actions(run_id, "build")["a"][0]["message"] == "RuntimeError: no such file"


# ----- retry -------------------------------------------------------------------------------------


async def _failed_build(env: Env) -> str:
    env.fakes.script("build.b", ActionResult(Status.FAILED, "flaky"))
    env.fakes.script("build.a", ActionResult(Status.SUCCEEDED, "ok", {"IMAGE": "web:1"}))
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.FAILED
    env.fakes.started.clear()
    return run_id


async def test_retry_failed_actions_reruns_only_those_then_later_stages(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    run_id = await _failed_build(env)
    await env.sched.retry(run_id, "build", who="bob")
    assert await env.wait(run_id) is Status.SUCCEEDED
    assert [k.split(":")[1] for k in env.fakes.started] == ["build.b", "build.c", "deploy.d"]
    acts = env.actions(run_id, "build")
    assert [a["attempt"] for a in acts["b"]] == [1, 2]
    assert [a["status"] for a in acts["b"]] == [Status.FAILED, Status.SUCCEEDED]
    assert [a["attempt"] for a in acts["a"]] == [1]
    assert env.fakes.contexts["deploy.d"][0].outputs == {"build.a.IMAGE": "web:1"}  # kept from attempt 1
    assert env.stages(run_id) == {"build": Status.SUCCEEDED, "deploy": Status.SUCCEEDED}
    retried = [e for e in env.of(RunStarted) if e.trigger == "retry"]
    assert [(e.run_id, e.who) for e in retried] == [(run_id, "bob")]
    assert [a["attempt"] for a in env.actions(run_id, "build")["b"]] == [1, 2]
    assert list(env.store.read_log(run_id, "build", "b", attempt=1)) == ["running build.b"]
    assert list(env.store.read_log(run_id, "build", "b")) == ["running build.b"]  # latest attempt


async def test_retry_stage_reruns_every_action(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    run_id = await _failed_build(env)
    await env.sched.retry(run_id, "build", failed_only=False)
    assert await env.wait(run_id) is Status.SUCCEEDED
    order = [k.split(":")[1] for k in env.fakes.started]
    assert sorted(order[:2]) == ["build.a", "build.b"] and order[2:] == ["build.c", "deploy.d"]
    assert [a["attempt"] for a in env.actions(run_id, "build")["a"]] == [1, 2]


async def test_retry_is_refused_when_not_retryable(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.SUCCEEDED
    with pytest.raises(SchedulerError, match="cannot be retried"):
        await env.sched.retry(run_id, "build")
    with pytest.raises(SchedulerError, match="no run"):
        await env.sched.retry("web-nope", "build")
    env.fakes.hold("build.a")
    live = await env.sched.start_run("web", rev())
    with pytest.raises(SchedulerError, match="still in progress"):
        await env.sched.retry(live, "build")
    env.fakes.release("build.a")
    await env.wait(live)


# ----- stop --------------------------------------------------------------------------------------


async def test_stop_and_wait_lets_in_flight_actions_finish(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    f = env.fakes
    f.hold("build.a")
    run_id = await env.sched.start_run("web", rev())
    await f.wait_started("build.a")
    env.sched.stop(run_id, who="carol")
    await until(lambda: env.stages(run_id)["build"] is Status.STOPPING, "Stopping")
    assert env.store.run(run_id)["status"] is Status.STOPPING  # type: ignore[index]
    await asyncio.sleep(0.02)
    assert env.sched.active == [run_id] and f.killed == []
    f.release("build.a")
    assert await env.wait(run_id) is Status.STOPPED
    acts = env.actions(run_id, "build")
    assert acts["a"][0]["status"] is Status.SUCCEEDED and acts["b"][0]["status"] is Status.SUCCEEDED
    assert "c" not in acts and not any("deploy" in k for k in f.started)
    assert env.stages(run_id) == {"build": Status.STOPPED, "deploy": Status.CANCELLED}
    assert env.store.run(run_id)["message"] == "stage build stopped by carol"  # type: ignore[index]
    # A stopped run can be retried: the rest of the stage, then the next.
    f.started.clear()
    await env.sched.retry(run_id, "build")
    assert await env.wait(run_id) is Status.SUCCEEDED
    assert [k.split(":")[1] for k in f.started] == ["build.c", "deploy.d"]


async def test_stop_and_abandon_kills_in_flight_actions(make: Callable[..., Env]) -> None:
    spec = pipeline(stage("build", act("a"), ActionSpec("s", "sync", sync=SyncAction("web"))), stage("deploy", act("d")))
    env = make(spec)
    f = env.fakes
    f.hold("build.a")
    f.hold("sync:web")
    run_id = await env.sched.start_run("web", rev())
    await f.wait_started("build.a")
    await until(lambda: f.syncs != [])
    env.sched.stop(run_id)  # stop-and-wait first, then upgraded
    env.sched.stop(run_id, abandon=True)
    assert await env.wait(run_id) is Status.STOPPED
    assert [k.split(":")[1] for k in f.killed] == ["build.a"]
    acts = env.actions(run_id, "build")
    assert acts["a"][0]["status"] is Status.ABANDONED and acts["a"][0]["exit_code"] == -9
    assert acts["s"][0]["status"] is Status.ABANDONED  # no kill hook: its task was cancelled
    assert env.stages(run_id)["build"] is Status.STOPPED


async def test_action_timeout_fails_it(make: Callable[..., Env], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_mod, "ABANDON_GRACE", 0.05)
    monkeypatch.setattr(scheduler_mod, "TIMEOUT_BACKSTOP", 0.0)  # the fake does not time itself out
    env = make(pipeline(stage("build", act("slow", timeout=0.05))))
    env.fakes.hold("build.slow")
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.FAILED
    assert env.fakes.killed != []  # told to die through the abandon event
    a = env.actions(run_id, "build")["slow"][0]
    assert a["status"] is Status.FAILED and a["message"] == "timed out after 0.05s"


async def test_stop_a_run_waiting_at_a_gate(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    env.sched.set_transition("web", "deploy", False, "dave", "freeze")
    run_id = await env.sched.start_run("web", rev())
    await until(lambda: env.stages(run_id)["deploy"] is Status.WAITING)
    env.sched.stop(run_id)
    assert await env.wait(run_id) is Status.STOPPED
    assert env.stages(run_id) == {"build": Status.SUCCEEDED, "deploy": Status.STOPPED}
    with pytest.raises(SchedulerError, match="not in progress"):
        env.sched.stop(run_id)


# ----- approvals ---------------------------------------------------------------------------------

APPROVAL = pipeline(stage("build", act("a")), stage("release", approval("ok")), stage("deploy", act("d")))


async def test_approval_waits_then_approve(make: Callable[..., Env]) -> None:
    env = make(APPROVAL)
    run_id = await env.sched.start_run("web", rev())
    await until(lambda: env.of(ApprovalRequested) != [])
    req = env.of(ApprovalRequested)[0]
    assert (req.run_id, req.stage, req.action, req.message, req.timeout) == (run_id, "release", "ok", "ship it?", 3600.0)
    assert env.actions(run_id, "release")["ok"][0]["status"] is Status.WAITING
    assert env.sched.pending_approvals() == [(run_id, "release", "ok")]
    with pytest.raises(SchedulerError, match="no approval"):
        env.sched.approve(run_id, "nope", "erin")
    env.sched.approve(run_id, "release.ok", "erin", "lgtm")
    assert await env.wait(run_id) is Status.SUCCEEDED
    a = env.actions(run_id, "release")["ok"][0]
    assert (a["status"], a["who"], a["comment"]) == (Status.SUCCEEDED, "erin", "lgtm")
    assert env.of(ApprovalDecided)[0] == ApprovalDecided(
        "web", run_id, "release", "ok", True, "erin", "lgtm", ts=env.of(ApprovalDecided)[0].ts
    )
    assert env.fakes.contexts["deploy.d"][0].outputs == {"release.ok.APPROVED_BY": "erin"}


async def test_reject_fails_the_run_keeping_the_comment(make: Callable[..., Env]) -> None:
    env = make(APPROVAL)
    run_id = await env.sched.start_run("web", rev())
    await until(lambda: env.of(ApprovalRequested) != [])
    env.sched.reject(run_id, "ok", "frank", "breaks the login page")
    assert await env.wait(run_id) is Status.FAILED
    a = env.actions(run_id, "release")["ok"][0]
    assert (a["status"], a["who"], a["comment"]) == (Status.FAILED, "frank", "breaks the login page")
    assert a["message"] == "rejected by frank: breaks the login page"
    row = env.store.run(run_id)
    assert row is not None and "breaks the login page" in row["message"]
    assert env.stages(run_id) == {"build": Status.SUCCEEDED, "release": Status.FAILED, "deploy": Status.CANCELLED}


async def test_approval_times_out(make: Callable[..., Env]) -> None:
    env = make(pipeline(stage("release", approval("ok", timeout=0.05))))
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.FAILED
    assert env.actions(run_id, "release")["ok"][0]["message"] == "approval timed out"


async def test_stop_abandons_a_pending_approval(make: Callable[..., Env]) -> None:
    env = make(APPROVAL)
    run_id = await env.sched.start_run("web", rev())
    await until(lambda: env.of(ApprovalRequested) != [])
    env.sched.stop(run_id)
    assert await env.wait(run_id) is Status.STOPPED
    assert env.actions(run_id, "release")["ok"][0]["status"] is Status.ABANDONED


# ----- execution modes ---------------------------------------------------------------------------


def modes_spec(mode: Mode) -> PipelineSpec:
    return pipeline(stage("build", act("b")), stage("deploy", act("d")), mode=mode)


async def _three_runs(env: Env) -> tuple[str, str, str]:
    """Run A holds deploy; B then C finish build and arrive at deploy's gate."""
    f = env.fakes
    f.hold("aaaa:deploy.d")
    a = await env.sched.start_run("web", rev("a" * 40))
    await f.wait_started("aaaa:deploy.d")
    b = await env.sched.start_run("web", rev("b" * 40))
    await until(lambda: env.stages(b)["deploy"] is Status.PENDING and env.stages(b)["build"] is Status.SUCCEEDED)
    c = await env.sched.start_run("web", rev("c" * 40))
    await until(lambda: env.stages(c)["build"] is Status.SUCCEEDED)
    return a, b, c


async def test_superseded_mode_replaces_the_older_waiting_run(make: Callable[..., Env]) -> None:
    env = make(modes_spec(Mode.SUPERSEDED))
    a, b, c = await _three_runs(env)
    assert await env.wait(b) is Status.SUPERSEDED  # C replaced it at deploy's gate
    assert env.stages(b) == {"build": Status.SUCCEEDED, "deploy": Status.SUPERSEDED}
    assert env.store.run(b)["message"] == f"superseded by {c}"  # type: ignore[index]
    assert env.sched.active == [a, c]  # A's in-progress stage is not interrupted
    env.fakes.release("aaaa:deploy.d")
    assert await env.wait(a) is Status.SUCCEEDED
    assert await env.wait(c) is Status.SUCCEEDED
    deploys = [k for k in env.fakes.started if k.endswith("deploy.d")]
    assert deploys == ["aaaa:deploy.d", "cccc:deploy.d"]


async def test_queued_mode_runs_wait_their_turn_in_order(make: Callable[..., Env]) -> None:
    env = make(modes_spec(Mode.QUEUED))
    a, b, c = await _three_runs(env)
    assert env.stages(c)["deploy"] is Status.PENDING
    env.fakes.release("aaaa:deploy.d")
    for run_id in (a, b, c):
        assert await env.wait(run_id) is Status.SUCCEEDED
    deploys = [k for k in env.fakes.started if k.endswith("deploy.d")]
    assert deploys == ["aaaa:deploy.d", "bbbb:deploy.d", "cccc:deploy.d"]


async def test_queued_mode_also_queues_the_first_stage(make: Callable[..., Env]) -> None:
    env = make(modes_spec(Mode.QUEUED))
    env.fakes.hold("aaaa:build.b")
    a = await env.sched.start_run("web", rev("a" * 40))
    await env.fakes.wait_started("aaaa:build.b")
    b = await env.sched.start_run("web", rev("b" * 40))
    await until(lambda: env.store.run(b)["message"] == "waiting for stage build")  # type: ignore[index]
    assert env.store.run(b)["status"] is Status.PENDING  # type: ignore[index]
    env.fakes.release("aaaa:build.b")
    assert await env.wait(a) is Status.SUCCEEDED and await env.wait(b) is Status.SUCCEEDED


async def test_parallel_mode_runs_do_not_wait(make: Callable[..., Env]) -> None:
    env = make(modes_spec(Mode.PARALLEL))
    f = env.fakes
    f.hold("aaaa:deploy.d")
    a = await env.sched.start_run("web", rev("a" * 40))
    await f.wait_started("aaaa:deploy.d")
    b = await env.sched.start_run("web", rev("b" * 40))
    c = await env.sched.start_run("web", rev("c" * 40))
    assert await env.wait(b) is Status.SUCCEEDED and await env.wait(c) is Status.SUCCEEDED
    assert env.sched.active == [a]
    f.release("aaaa:deploy.d")
    assert await env.wait(a) is Status.SUCCEEDED


# ----- transitions -------------------------------------------------------------------------------


async def test_disabled_transition_holds_runs_until_enabled(make: Callable[..., Env], tmp_store: RunStore) -> None:
    env = make(modes_spec(Mode.QUEUED))
    env.sched.set_transition("web", "deploy", False, who="gina", reason="change freeze")
    assert env.store.disabled_transitions("web")[0]["reason"] == "change freeze"
    a = await env.sched.start_run("web", rev("a" * 40))
    b = await env.sched.start_run("web", rev("b" * 40))
    for run_id in (a, b):
        await until(lambda r=run_id: env.stages(r)["deploy"] is Status.WAITING, "held")  # type: ignore[misc]
        row = env.store.run(run_id)
        assert row is not None and row["status"] is Status.WAITING and "transition" in row["message"]
    assert not any("deploy" in k for k in env.fakes.started)
    # A restart keeps the transition disabled.
    again = make(modes_spec(Mode.QUEUED))
    assert again.sched.transitions() == {("web", "deploy"): ("gina", "change freeze")}
    env.sched.set_transition("web", "deploy", True, who="gina")
    assert await env.wait(a) is Status.SUCCEEDED and await env.wait(b) is Status.SUCCEEDED
    assert [k for k in env.fakes.started if "deploy" in k] == ["aaaa:deploy.d", "bbbb:deploy.d"]
    assert [(e.enabled, e.who) for e in env.of(TransitionChanged)] == [(False, "gina"), (True, "gina")]
    assert env.store.disabled_transitions() == []
    with pytest.raises(SchedulerError, match="no stage"):
        env.sched.set_transition("web", "nope", False)


async def test_disabled_transition_in_superseded_mode_keeps_the_newest(make: Callable[..., Env]) -> None:
    env = make(modes_spec(Mode.SUPERSEDED))
    env.sched.set_transition("web", "deploy", False)
    a = await env.sched.start_run("web", rev("a" * 40))
    await until(lambda: env.stages(a)["deploy"] is Status.WAITING)
    b = await env.sched.start_run("web", rev("b" * 40))
    assert await env.wait(a) is Status.SUPERSEDED
    await until(lambda: env.stages(b)["deploy"] is Status.WAITING)
    env.sched.set_transition("web", "deploy", True)
    assert await env.wait(b) is Status.SUCCEEDED


# ----- rollback ----------------------------------------------------------------------------------


async def test_rollback_reruns_the_stage_with_the_last_successful_inputs(make: Callable[..., Env]) -> None:
    spec = pipeline(
        stage("build", act("image")),
        stage("deploy", act("d"), on_failure="rollback"),
        variables=(("TAG", "none"),),
    )
    env = make(spec)
    f = env.fakes
    f.script("aaaa:build.image", ActionResult(Status.SUCCEEDED, "ok", {"IMAGE": "web:good"}))
    f.script("bbbb:build.image", ActionResult(Status.SUCCEEDED, "ok", {"IMAGE": "web:bad"}))
    f.script("bbbb:deploy.d", ActionResult(Status.FAILED, "unhealthy"))
    good = await env.sched.start_run("web", rev("a" * 40), variables={"TAG": "v1"})
    assert await env.wait(good) is Status.SUCCEEDED
    bad = await env.sched.start_run("web", rev("b" * 40), variables={"TAG": "v2"})
    assert await env.wait(bad) is Status.FAILED
    rb_start = next(e for e in env.of(RunStarted) if e.trigger == "rollback")
    assert await env.wait(rb_start.run_id) is Status.SUCCEEDED
    rb = env.store.run(rb_start.run_id)
    assert rb is not None
    assert (rb["revision"], rb["variables"], rb["rollback_of"]) == ("a" * 40, {"TAG": "v1"}, bad)
    assert [s["stage"] for s in rb["stages"]] == ["deploy"]
    ctx = f.contexts["deploy.d"][-1]
    assert (ctx.run_id, ctx.outputs, ctx.variables["TAG"], ctx.revision.sha) == (
        rb_start.run_id, {"build.image.IMAGE": "web:good"}, "v1", "a" * 40,
    )
    assert f"rolling back with run {rb_start.run_id}" in env.store.run(bad)["message"]  # type: ignore[index]


async def test_rollback_without_a_successful_run_just_fails(make: Callable[..., Env]) -> None:
    env = make(pipeline(stage("deploy", act("d"), on_failure="rollback")))
    env.fakes.script("deploy.d", ActionResult(Status.FAILED, "boom"))
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.FAILED
    assert "no earlier successful run" in env.store.run(run_id)["message"]  # type: ignore[index]
    assert [e.trigger for e in env.of(RunStarted)] == ["manual"]


# ----- recovery ----------------------------------------------------------------------------------


async def test_recover_marks_interrupted_and_such_runs_can_be_retried(make: Callable[..., Env], tmp_path: Path) -> None:
    path = tmp_path / "crash" / "history.db"
    first = RunStore(path)
    env1 = make(BUILD_DEPLOY, store=first)
    env1.fakes.script("build.a", ActionResult(Status.SUCCEEDED, "ok", {"IMAGE": "web:1"}))
    env1.fakes.hold("build.b")
    run_id = await env1.sched.start_run("web", rev(), variables={"X": "1"})
    await env1.fakes.wait_started("build.b")
    await until(lambda: env1.actions(run_id, "build")["a"][0]["status"] is Status.SUCCEEDED)
    # kill -9: the process is gone without closing anything.
    env1.sched._runs.clear()
    assert env1.sched.active == []

    store = RunStore(path)
    env = make(BUILD_DEPLOY, store=store)
    assert env.sched.recover() == 1
    row = store.run(run_id)
    assert row is not None and row["status"] is Status.INTERRUPTED and row["finished"] is not None
    assert env.stages(run_id) == {"build": Status.INTERRUPTED, "deploy": Status.CANCELLED}
    assert env.actions(run_id, "build")["b"][0]["status"] is Status.INTERRUPTED
    assert env.sched.recover() == 0
    await env.sched.retry(run_id, "build")
    assert await env.wait(run_id) is Status.SUCCEEDED
    assert [k.split(":")[1] for k in env.fakes.started] == ["build.b", "build.c", "deploy.d"]
    assert env.fakes.contexts["deploy.d"][0].outputs == {"build.a.IMAGE": "web:1"}
    assert env.fakes.contexts["deploy.d"][0].variables == {"X": "1"}
    store.close()


async def test_aclose_interrupts_active_runs(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    env.fakes.hold("build.a")
    run_id = await env.sched.start_run("web", rev())
    await env.fakes.wait_started("build.a")
    await env.sched.aclose()
    row = env.store.run(run_id)
    assert row is not None and row["status"] is Status.INTERRUPTED
    assert env.actions(run_id, "build")["a"][0]["status"] is Status.INTERRUPTED


# ----- kinds, triggers, partial runs -------------------------------------------------------------


async def test_promote_and_sync_actions(make: Callable[..., Env]) -> None:
    promote = ActionSpec(
        "promote", "promote", promote=PromoteAction("config", "apps/web/deploy.yaml", (("a.b", "${X}"),))
    )
    sync = ActionSpec("wait", "sync", 2, sync=SyncAction("web", timeout=42.0))
    env = make(pipeline(stage("deploy", promote, sync)))
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.SUCCEEDED
    assert env.fakes.promotes[0][1].name == "config"  # the target source
    assert env.fakes.syncs == [("web", 42.0)]
    sha = "c0ffee" * 6 + "abcd"
    assert [r["id"] for r in env.store.runs_by_promoted_sha(sha)] == [run_id]
    assert [r["id"] for r in env.store.runs_by_promoted_sha(sha[:7])] == [run_id]
    assert env.store.runs_by_promoted_sha("ab") == []
    assert env.actions(run_id, "deploy")["wait"][0]["message"] == "web healthy"


async def test_sync_without_a_sync_function_fails(make: Callable[..., Env]) -> None:
    env = make(pipeline(stage("deploy", ActionSpec("wait", "sync", sync=SyncAction("web")))))
    env.sched._sync_app = None
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.FAILED


async def test_start_at_a_stage_uses_earlier_stages_last_outputs(make: Callable[..., Env]) -> None:
    env = make(BUILD_DEPLOY)
    env.fakes.script("build.a", ActionResult(Status.SUCCEEDED, "ok", {"IMAGE": "web:7"}))
    first = await env.sched.start_run("web", rev())
    assert await env.wait(first) is Status.SUCCEEDED
    env.fakes.started.clear()
    second = await env.sched.start_run("web", rev("d" * 40), stage="deploy", who="hank")
    assert await env.wait(second) is Status.SUCCEEDED
    assert [k.split(":")[1] for k in env.fakes.started] == ["deploy.d"]
    assert env.fakes.contexts["deploy.d"][-1].outputs == {"build.a.IMAGE": "web:7"}
    assert env.stages(second) == {"deploy": Status.SUCCEEDED}
    with pytest.raises(SchedulerError, match="no stage"):
        await env.sched.start_run("web", rev(), stage="nope")
    with pytest.raises(SchedulerError, match="no pipeline"):
        await env.sched.start_run("nope", rev())
    assert [r["id"] for r in env.store.runs("web")] == [second, first]
    assert env.store.last_successful("web", "build")["id"] == first  # type: ignore[index]


async def test_on_revision_applies_the_trigger_filter(make: Callable[..., Env]) -> None:
    main_only = pipeline(stage("build", act("b")), name="web", trigger=Trigger(branches=("main",), paths=("src/**",)))
    manual = pipeline(stage("build", act("b")), name="manual", trigger=Trigger(manual_only=True))
    other = PipelineSpec("other", "other-src", (stage("build", act("b")),))
    env = make(main_only, manual, other)
    assert await env.sched.on_revision("app-src", rev(branch="dev"), ["src/x.py"]) == []
    assert await env.sched.on_revision("app-src", rev(), ["docs/readme.md"]) == []
    started = await env.sched.on_revision("app-src", rev(), ["src/x.py"])
    assert len(started) == 1 and started[0].startswith("web-")
    assert await env.wait(started[0]) is Status.SUCCEEDED
    assert env.store.run(started[0])["trigger"] == "commit"  # type: ignore[index]
    # The branch comes from the source when the revision does not carry it.
    started = await env.sched.on_revision("app-src", rev(branch=""), None)
    assert len(started) == 1
    await env.wait(started[0])


# ----- logs --------------------------------------------------------------------------------------


async def test_log_lines_are_batched_and_all_kept(make: Callable[..., Env]) -> None:
    total = 1_000_000
    env = make(pipeline(stage("build", act("noisy"))))

    async def noisy(spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event) -> ActionResult:
        emit = ctx.log
        for i in range(total):
            emit("stderr" if i % 100_000 == 99_999 else "stdout", f"line {i}")
            if i % 20_000 == 0:
                await asyncio.sleep(0)
        return ActionResult(Status.SUCCEEDED, "done")

    env.sched._run_command = noisy
    sub = env.bus.subscribe(maxsize=100_000, types=[LogLines])
    run_id = await env.sched.start_run("web", rev())
    assert await env.wait(run_id) is Status.SUCCEEDED
    batches: list[LogLines] = []
    while (ev := sub.get_nowait()) is not None:
        assert isinstance(ev, LogLines)
        batches.append(ev)
    assert sum(len(b.lines) for b in batches) == total
    assert len(batches) <= total // scheduler_mod.LOG_BATCH_LINES + 20  # far fewer than one per line
    assert {b.stream for b in batches} == {"stdout", "stderr"}
    assert all(b.run_id == run_id and b.action == "noisy" and b.attempt == 1 for b in batches)
    # The last batch went out before the action's final ActionChanged.
    last_log = max(i for i, e in enumerate(env.events) if isinstance(e, LogLines))
    done = next(i for i, e in enumerate(env.events) if isinstance(e, ActionChanged) and e.status == "Succeeded")
    assert last_log < done
    noisy_row = env.actions(run_id, "build")["noisy"][0]
    assert noisy_row["log_lines"] == total and noisy_row["log_bytes"] > total * 6
    count = 0
    for i, line in enumerate(env.store.read_log(run_id, "build", "noisy")):
        assert line == f"line {i}"
        count += 1
    assert count == total


async def test_slow_output_is_flushed_by_the_timer(make: Callable[..., Env]) -> None:
    env = make(pipeline(stage("build", act("slow"))))
    gate = asyncio.Event()

    async def slow(spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event) -> ActionResult:
        ctx.log("stdout", "first\n")
        ctx.log("stdout", "second")
        await gate.wait()
        return ActionResult(Status.SUCCEEDED, "done")

    env.sched._run_command = slow
    run_id = await env.sched.start_run("web", rev())
    await until(lambda: env.of(LogLines) != [], "timer flush")
    assert env.of(LogLines)[0].lines == ("first", "second")
    gate.set()
    assert await env.wait(run_id) is Status.SUCCEEDED
    assert len(env.of(LogLines)) == 1
    assert list(env.store.read_log(run_id, "build", "slow")) == ["first", "second"]
    assert list(env.store.read_log(run_id, "build", "missing")) == []


async def test_retrying_a_rollback_run_redoes_only_its_stage(make: Callable[..., Env]) -> None:
    env = make(pipeline(stage("build", act("b")), stage("deploy", act("d"), on_failure="rollback"), stage("after", act("z"))))
    f = env.fakes
    good = await env.sched.start_run("web", rev("a" * 40))
    assert await env.wait(good) is Status.SUCCEEDED
    f.script("bbbb:deploy.d", ActionResult(Status.FAILED, "bad"))
    f.script("aaaa:deploy.d", ActionResult(Status.FAILED, "rollback failed"))
    bad = await env.sched.start_run("web", rev("b" * 40))
    assert await env.wait(bad) is Status.FAILED
    rb = next(e.run_id for e in env.of(RunStarted) if e.trigger == "rollback")
    assert await env.wait(rb) is Status.FAILED  # and no rollback of the rollback
    assert [e.trigger for e in env.of(RunStarted)] == ["manual", "manual", "rollback"]
    f.started.clear()
    await env.sched.retry(rb, "deploy")
    assert await env.wait(rb) is Status.SUCCEEDED
    assert f.started == ["aaaa:deploy.d"]
    assert env.stages(rb) == {"deploy": Status.SUCCEEDED}
