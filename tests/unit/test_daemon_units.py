"""Pure parts of the daemon: the event log's replay window, the state mirror from a snapshot."""

from __future__ import annotations

import json

from core.daemon.server import EventLog
from core.events import (
    AppError,
    DriftDetected,
    EventBus,
    PlanReady,
    RevertCommitted,
    SyncFinished,
    SyncStarted,
)
from core.model import ObjRef
from core.state import StateModel
from tui.sample import T0, sample_client


def test_replay_returns_what_followed_an_id_or_none_when_it_is_gone() -> None:
    bus = EventBus()
    log = EventLog(bus, size=5)
    for i in range(3):
        bus.publish(AppError("web", f"e{i}", ts=T0 + i))
    assert log.last_eid == 3
    assert [json.loads(line)["eid"] for line in log.replay(1) or []] == [2, 3]
    assert log.replay(3) == []
    for i in range(3, 10):
        bus.publish(AppError("web", f"e{i}", ts=T0 + i))
    assert log.replay(2) is None  # events 3 and 4 fell out of the ring: the caller needs a snapshot
    assert [json.loads(line)["eid"] for line in log.replay(5) or []] == [6, 7, 8, 9, 10]
    log.close()
    bus.publish(AppError("web", "after", ts=T0))
    assert log.last_eid == 10


def test_a_mirror_built_from_a_snapshot_equals_the_original_and_keeps_applying_events() -> None:
    client = sample_client()
    ref = ObjRef("apps", "Deployment", "web", "web")
    client.publish(
        SyncStarted("web", "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", who="alice", ts=T0),
        PlanReady("api", "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", configure=2, ts=T0),
        RevertCommitted("infra", "infra", ("1a2b3c4",), "abcdef0", who="bob", ts=T0),
        AppError("billing", "boom", ts=T0),
    )
    snap = json.loads(json.dumps(client.snapshot()))
    mirror = StateModel.from_snapshot(snap)
    assert mirror.snapshot() == snap
    event = DriftDetected("web", ref, fields=(".spec.replicas",), managers=("kubectl-scale",), ts=T0 + 1)
    done = SyncFinished("web", "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", ok=True, duration=1.0, ts=T0 + 2)
    for model in (client.model, mirror):
        model.apply(event)
        model.apply(done)
    assert mirror.snapshot()["apps"] == client.snapshot()["apps"]


def test_a_plan_for_the_wire_masks_secret_values_and_round_trips() -> None:
    from core.client import plan_from_json, plan_to_json
    from core.model import Action, Plan, PlanItem, Revision

    ref = ObjRef("", "Secret", "web", "db")
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "web"},
               "data": {"password": "aHVudGVyMg=="}}
    live = {**desired, "data": {"password": "b2xkcGFzcw=="}}
    plan = Plan("web", Revision("a" * 40), [PlanItem(ref, Action.CONFIGURE, desired, live)])
    wire = json.dumps(plan_to_json(plan))
    assert "aHVudGVyMg==" not in wire and "b2xkcGFzcw==" not in wire
    back = plan_from_json(json.loads(wire))
    assert back.app == "web" and back.revision is not None and back.revision.sha == "a" * 40
    assert back.items[0].ref == ref and back.items[0].action is Action.CONFIGURE and back.has_changes
