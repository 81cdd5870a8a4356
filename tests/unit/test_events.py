"""Typed events (wire form) and the event bus (listeners, bounded subscriptions, threads)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import FrozenInstanceError, dataclass

import pytest

from core.events import (
    ActionChanged,
    AppError,
    ApprovalDecided,
    ApprovalRequested,
    AppSuspended,
    ConfigReloaded,
    DriftDetected,
    DriftResolved,
    Event,
    EventBus,
    HealthChanged,
    Lagged,
    LogLines,
    ObjectHealthChanged,
    PlanReady,
    RevertCommitted,
    RevisionDetected,
    RunFinished,
    RunStarted,
    StageChanged,
    SubscriptionClosed,
    SyncFinished,
    SyncStarted,
    SyncStatusChanged,
    TransitionChanged,
    event_types,
)
from core.model import Action, Health, Location, ObjRef, Plan, PlanItem, Problem, Revision, SyncStatus

REF = ObjRef("apps", "Deployment", "web", "api")
CORE_EVENTS: list[Event] = [
    RunStarted("web", "web-20261128-1412-3f2a", "abc123", "manual", "alice", {"ENV": "prod"}),
    RunFinished("web", "web-20261128-1412-3f2a", "Failed", "stage build failed: test: exit code 1"),
    StageChanged("web", "web-20261128-1412-3f2a", "build", "InProgress"),
    ActionChanged("web", "web-20261128-1412-3f2a", "build", "test", "Failed", "exit code 1", attempt=2),
    LogLines("web", "web-20261128-1412-3f2a", "build", "test", ("line 1", "line 2"), "stderr"),
    ApprovalRequested("web", "web-20261128-1412-3f2a", "release", "ok", "ship it?", 86400.0),
    ApprovalDecided("web", "web-20261128-1412-3f2a", "release", "ok", False, "bob", "not today"),
    TransitionChanged("web", "deploy", False, "carol", "change freeze"),
    ConfigReloaded(("app api added",), ("driftdeck.yaml:3: unknown key",)),
    Lagged(3),
    RevisionDetected("config", Revision("a" * 40, "Ada <ada@example.org>", "fix: replicas\n\nbody", "2024-05-01T10:00:00Z", "main")),
    PlanReady("web", "abc123", 1, 2, 3, 4, 1, (Problem("bad field", Location("apps/web/d.yaml", 7), "Deployment/web/api", "spec.x"),)),
    SyncStarted("web", "abc123", who="alice@pts/3", dry_run=True),
    SyncFinished("web", "abc123", ok=False, message="apply failed", duration=1.5, applied=3, pruned=1, who="alice"),
    DriftDetected("web", REF, (".spec.replicas",), ("kubectl-edit",), missing=False),
    DriftResolved("web", REF, "self-heal"),
    HealthChanged("web", Health.DEGRADED, Health.HEALTHY, "Deployment api: 0/3 available"),
    SyncStatusChanged("web", SyncStatus.OUT_OF_SYNC, SyncStatus.SYNCED, drifted=2),
    AppError("web", "render: kustomize not found"),
    AppSuspended("web", True, who="bob"),
    RevertCommitted("web", "config", ("abc123", "def456"), "fff999", who="alice"),
    ObjectHealthChanged("web", REF, Health.PROGRESSING, "rollout 1/3"),
]


# ----- events ----------------------------------------------------------------------------------


def test_every_core_event_type_has_a_sample() -> None:
    core_types = {name for name, cls in event_types().items() if cls.__module__ == "core.events"}
    assert core_types == {e.type for e in CORE_EVENTS}


@pytest.mark.parametrize("event", CORE_EVENTS, ids=lambda e: e.type)
def test_round_trip_through_json(event: Event) -> None:
    wire = json.loads(json.dumps(event.to_dict()))
    assert wire["type"] == type(event).__name__ == event.type
    assert wire["ts"] == event.ts
    back = Event.from_dict(wire)
    assert back == event
    assert type(back) is type(event)


def test_to_dict_is_plain_json() -> None:
    d = DriftDetected("web", REF, (".spec.replicas", ".metadata.labels.tier"), ("kubectl",), True, ts=12.5).to_dict()
    assert d == {
        "type": "DriftDetected",
        "ts": 12.5,
        "app": "web",
        "ref": {"group": "apps", "kind": "Deployment", "namespace": "web", "name": "api"},
        "fields": [".spec.replicas", ".metadata.labels.tier"],
        "managers": ["kubectl"],
        "missing": True,
    }
    h = HealthChanged("web", Health.HEALTHY, ts=1).to_dict()
    assert h["health"] == "Healthy" and type(h["health"]) is str


def test_ts_is_set_at_creation_and_keyword_only() -> None:
    before = time.time()
    ev = AppError("web", "boom")
    assert before <= ev.ts <= time.time()
    assert AppError("web", "boom", ts=5.0).ts == 5.0


def test_events_are_frozen_and_normalised() -> None:
    ev = DriftDetected("web", REF, [".spec.replicas"], ["kubectl"])  # type: ignore[arg-type]
    assert ev.fields == (".spec.replicas",) and ev.managers == ("kubectl",)
    hash(ev)
    with pytest.raises(FrozenInstanceError):
        ev.app = "other"  # type: ignore[misc]
    assert HealthChanged("web", "Degraded", "Healthy").health is Health.DEGRADED  # type: ignore[arg-type]


def test_from_dict_errors_and_forward_compatibility() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        Event.from_dict({"type": "NoSuchEvent"})
    with pytest.raises(ValueError, match="is not a SyncStarted"):
        SyncStarted.from_dict(AppError("web", "x").to_dict())
    # A newer peer may add fields: they are ignored; missing defaults are filled.
    ev = SyncStarted.from_dict({"type": "SyncStarted", "ts": 1, "app": "web", "revision_sha": "abc", "shiny": 1})
    assert ev == SyncStarted("web", "abc", ts=1.0)
    assert isinstance(ev.ts, float)


def test_drift_resolved_how_is_checked() -> None:
    for how in ("self-heal", "sync", "reverted-externally"):
        DriftResolved("web", REF, how)
    with pytest.raises(ValueError, match="how"):
        DriftResolved("web", REF, "magic")


def test_plan_ready_from_plan() -> None:
    rev = Revision("abc")
    plan = Plan(
        "web",
        rev,
        items=[
            PlanItem(REF, Action.CREATE),
            PlanItem(ObjRef("", "Service", "web", "api"), Action.CONFIGURE),
            PlanItem(ObjRef("", "ConfigMap", "web", "c"), Action.UNCHANGED),
            PlanItem(ObjRef("", "ConfigMap", "web", "old"), Action.PRUNE),
            PlanItem(ObjRef("", "Secret", "web", "s"), Action.ERROR, message="invalid"),
        ],
        problems=[Problem("schema: bad")],
    )
    ev = PlanReady.of(plan)
    assert (ev.app, ev.revision_sha, ev.create, ev.configure, ev.unchanged, ev.prune, ev.errors) == (
        "web", "abc", 1, 1, 1, 1, 2,
    )
    assert ev.problems == (Problem("schema: bad"),)


@dataclass(frozen=True)
class ExampleRunStarted(Event):
    """Stands in for a future pipeline event: declaring the dataclass is all it takes."""

    pipeline: str
    run: int
    refs: tuple[ObjRef, ...] = ()
    health: Health | None = None


def test_new_event_types_need_only_a_dataclass() -> None:
    ev = ExampleRunStarted("web", 7, (REF,), Health.HEALTHY)
    assert event_types()["ExampleRunStarted"] is ExampleRunStarted
    assert Event.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev


def test_duplicate_event_names_are_rejected() -> None:
    with pytest.raises(TypeError, match="already defined"):
        type("AppError", (Event,), {"__module__": "elsewhere"})


# ----- bus: listeners --------------------------------------------------------------------------


def test_listeners_run_in_order_before_subscribers_and_survive_failures(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[str] = []
    sub = bus.subscribe()

    def first(ev: Event) -> None:
        seen.append(f"first:{ev.type}:pending={sub.pending}")

    def broken(ev: Event) -> None:
        raise RuntimeError("listener bug")

    bus.on(first)
    bus.on(broken)
    remove = bus.on(lambda ev: seen.append("last"))
    with caplog.at_level(logging.ERROR, logger="core.events"):
        bus.publish(AppError("web", "x"))
    assert seen == ["first:AppError:pending=0", "last"]
    assert sub.pending == 1
    assert "listener bug" in caplog.text
    remove()
    bus.off(broken)
    bus.publish(AppError("web", "y"))
    assert seen[-1].startswith("first:")


def test_events_published_by_a_listener_come_after_the_current_one() -> None:
    bus = EventBus()
    order: list[tuple[str, str]] = []

    def cascade(ev: Event) -> None:
        order.append(("a", ev.type))
        if isinstance(ev, DriftDetected):
            bus.publish(SyncStatusChanged(ev.app, SyncStatus.OUT_OF_SYNC, drifted=1))

    bus.on(cascade)
    bus.on(lambda ev: order.append(("b", ev.type)))
    sub = bus.subscribe()
    bus.publish(DriftDetected("web", REF))
    assert order == [
        ("a", "DriftDetected"),
        ("b", "DriftDetected"),
        ("a", "SyncStatusChanged"),
        ("b", "SyncStatusChanged"),
    ]
    got = [sub.get_nowait(), sub.get_nowait()]
    assert [e.type for e in got if e] == ["DriftDetected", "SyncStatusChanged"]


# ----- bus: subscriptions ----------------------------------------------------------------------


async def test_subscription_async_iteration_and_close() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    received: list[Event] = []

    async def reader() -> None:
        async for ev in sub:
            received.append(ev)

    task = asyncio.create_task(reader())
    events = [AppError("web", str(i)) for i in range(5)]
    for ev in events:
        bus.publish(ev)
        await asyncio.sleep(0)
    bus.close()
    await asyncio.wait_for(task, 2)
    assert received == events
    assert bus.subscribers == 0
    with pytest.raises(SubscriptionClosed):
        await sub.get()


async def test_lagging_subscriber_gets_lagged_and_blocks_nobody() -> None:
    bus = EventBus()
    fast = bus.subscribe()
    slow = bus.subscribe(maxsize=10)
    received: list[Event] = []
    done = asyncio.Event()
    total = 5000

    async def fast_reader() -> None:
        async for ev in fast:
            received.append(ev)
            if len(received) == total:
                done.set()

    task = asyncio.create_task(fast_reader())
    started = time.perf_counter()
    for i in range(total):
        bus.publish(SyncStarted("web", str(i)))
        if i % 100 == 0:
            await asyncio.sleep(0)  # let the fast reader run; the slow one never reads
    publish_time = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), 5)
    assert [e.revision_sha for e in received if isinstance(e, SyncStarted)] == [str(i) for i in range(total)]
    assert not any(isinstance(e, Lagged) for e in received)
    assert publish_time < 2.0

    # The slow subscriber: one Lagged marker, then the newest 10 events in order.
    assert slow.pending == 10 and slow.dropped == total - 10
    first = await slow.get()
    assert first == Lagged(total - 10, ts=first.ts)
    rest = [slow.get_nowait() for _ in range(10)]
    assert [e.revision_sha for e in rest if isinstance(e, SyncStarted)] == [str(i) for i in range(total - 10, total)]
    assert slow.get_nowait() is None

    # After catching up it is an ordinary subscriber again; a new gap gives a new marker.
    for i in range(12):
        bus.publish(AppError("web", str(i)))
    lag = slow.get_nowait()
    assert isinstance(lag, Lagged) and lag.dropped == 2
    assert slow.dropped == total - 10 + 2
    bus.close()
    await asyncio.wait_for(task, 2)


async def test_type_filter_and_unsubscribe() -> None:
    bus = EventBus()
    only_drift = bus.subscribe(types=[DriftDetected, DriftResolved])
    bus.publish(AppError("web", "x"))
    bus.publish(DriftDetected("web", REF))
    bus.publish(DriftResolved("web", REF, "sync"))
    got = [only_drift.get_nowait(), only_drift.get_nowait()]
    assert [e.type for e in got if e is not None] == ["DriftDetected", "DriftResolved"]
    bus.unsubscribe(only_drift)
    bus.publish(DriftDetected("web", REF))
    assert only_drift.get_nowait() is None and bus.subscribers == 0


async def test_a_waiting_reader_wakes_on_publish() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    ev = AppSuspended("web", True)
    bus.publish(ev)
    assert await asyncio.wait_for(waiter, 1) == ev


async def test_publish_threadsafe_from_worker_threads() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=100_000)
    listener_threads: set[int] = set()
    bus.on(lambda ev: listener_threads.add(threading.get_ident()))
    per_thread, threads = 500, 4

    def worker(n: int) -> None:
        for i in range(per_thread):
            assert bus.publish_threadsafe(SyncStarted(f"app{n}", str(i)))

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    got: dict[str, list[str]] = {}
    count = 0
    while count < per_thread * threads:
        ev = await asyncio.wait_for(sub.get(), 5)
        assert isinstance(ev, SyncStarted)
        got.setdefault(ev.app, []).append(ev.revision_sha)
        count += 1
    for t in workers:
        t.join()
    assert listener_threads == {threading.get_ident()}  # listeners ran on the loop thread
    assert all(shas == [str(i) for i in range(per_thread)] for shas in got.values())  # per-thread order kept
    assert len(got) == threads


def test_publish_threadsafe_needs_a_loop() -> None:
    bus = EventBus()
    with pytest.raises(RuntimeError, match="no loop"):
        bus.publish_threadsafe(AppError("web", "x"))
    loop = asyncio.new_event_loop()
    bus.bind(loop)
    loop.close()
    assert bus.publish_threadsafe(AppError("web", "x")) is False


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EventBus().subscribe(maxsize=0)
