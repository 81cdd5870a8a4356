"""The state model: events in, per-app state and a JSON-safe snapshot out."""

from __future__ import annotations

import json

from core.events import (
    AppError,
    AppSuspended,
    DriftDetected,
    DriftResolved,
    EventBus,
    HealthChanged,
    Lagged,
    ObjectHealthChanged,
    PlanReady,
    RevertCommitted,
    RevisionDetected,
    SyncFinished,
    SyncStarted,
    SyncStatusChanged,
)
from core.model import AppSpec, Config, Health, ObjRef, Revision, SyncStatus
from core.state import AppState, LastSync, ObjectHealth, StateModel

DEP = ObjRef("apps", "Deployment", "web", "api")
SVC = ObjRef("", "Service", "web", "api")
REV1 = Revision("1" * 40, "Ada", "first", "2024-05-01T10:00:00Z", "main")
REV2 = Revision("2" * 40, "Ada", "second", "2024-05-01T11:00:00Z", "main")


def model_with_bus() -> tuple[StateModel, EventBus]:
    config = Config(
        "driftdeck.yaml",
        apps={
            "web": AppSpec("web", "config"),
            "db": AppSpec("db", "config", suspend=True),
            "other": AppSpec("other", "elsewhere"),
        },
    )
    model = StateModel.from_config(config)
    bus = EventBus()
    model.attach(bus)
    return model, bus


def test_configured_apps_show_before_any_event() -> None:
    model, _ = model_with_bus()
    assert model.names() == ["db", "other", "web"]
    db = model.app("db")
    assert db is not None and db.suspended and db.source == "config"
    assert db.sync_status is SyncStatus.UNKNOWN and db.health is Health.UNKNOWN
    assert model.snapshot()["apps"]["web"]["revision"] is None


def test_snapshot_after_a_sequence_of_events() -> None:
    model, bus = model_with_bus()
    bus.publish(RevisionDetected("config", REV1, ts=1))
    bus.publish(PlanReady("web", REV1.sha, create=2, unchanged=1, ts=2))
    bus.publish(SyncStarted("web", REV1.sha, who="alice@pts/1", ts=3))
    bus.publish(ObjectHealthChanged("web", DEP, Health.PROGRESSING, "0/3 ready", ts=4))
    bus.publish(SyncFinished("web", REV1.sha, ok=True, message="2 applied", duration=1.0, applied=2, who="alice@pts/1", ts=4))
    bus.publish(SyncStatusChanged("web", SyncStatus.SYNCED, SyncStatus.UNKNOWN, ts=4.1))
    bus.publish(ObjectHealthChanged("web", DEP, Health.HEALTHY, ts=5))
    bus.publish(ObjectHealthChanged("web", SVC, Health.HEALTHY, ts=5))
    bus.publish(HealthChanged("web", Health.HEALTHY, Health.PROGRESSING, ts=5.1))
    bus.publish(DriftDetected("web", DEP, (".spec.replicas",), ("kubectl-edit",), ts=6))
    bus.publish(DriftDetected("web", SVC, (), (), missing=True, ts=6.5))
    bus.publish(SyncStatusChanged("web", SyncStatus.OUT_OF_SYNC, SyncStatus.SYNCED, drifted=2, ts=6.6))
    bus.publish(DriftResolved("web", SVC, "self-heal", ts=7))
    bus.publish(RevisionDetected("config", REV2, ts=8))
    bus.publish(AppError("web", "render: bad yaml at apps/web/d.yaml:3", ts=9))
    bus.publish(RevertCommitted("web", "config", (REV2.sha,), "3" * 40, who="bob", ts=10))

    snap = model.snapshot()
    json.dumps(snap)  # JSON-safe
    assert snap["seq"] == 16 and snap["ts"] == 10
    assert snap["sources"] == {"config": {"sha": REV2.sha, "author": "Ada", "message": "second", "time": "2024-05-01T11:00:00Z", "branch": "main"}}
    web = snap["apps"]["web"]
    assert web["revision"]["sha"] == REV2.sha
    assert (web["sync_status"], web["health"], web["drift_count"]) == ("OutOfSync", "Healthy", 1)
    assert web["last_sync"] == {
        "revision_sha": REV1.sha, "ok": True, "message": "2 applied", "finished": 4, "duration": 1.0,
        "who": "alice@pts/1", "applied": 2, "pruned": 0,
    }
    assert web["syncing"] is None
    assert web["plan"]["create"] == 2 and web["plan"]["revision_sha"] == REV1.sha
    assert web["last_error"].startswith("render:") and web["last_error_ts"] == 9
    assert web["last_revert"]["new_sha"] == "3" * 40 and web["last_revert"]["reverted"] == [REV2.sha]
    assert web["drifted"] == {
        DEP.inventory_id: {
            "ref": {"group": "apps", "kind": "Deployment", "namespace": "web", "name": "api"},
            "object": "Deployment.apps/web/api",
            "fields": [".spec.replicas"],
            "managers": ["kubectl-edit"],
            "missing": False,
            "ts": 6,
        }
    }
    assert web["objects"] == {
        DEP.inventory_id: {"health": "Healthy", "reason": "", "ts": 5},
        SVC.inventory_id: {"health": "Healthy", "reason": "", "ts": 5},
    }
    # Same source, so "db" follows the revision too; "other" does not.
    assert snap["apps"]["db"]["revision"]["sha"] == REV2.sha
    assert snap["apps"]["other"]["revision"] is None

    st = model.app("web")
    assert st is not None
    assert st.last_sync == LastSync(REV1.sha, True, "2 applied", 4, 1.0, "alice@pts/1", 2, 0)
    assert list(st.drifted) == [DEP] and st.drift_count == 1
    assert st.objects[DEP] == ObjectHealth(Health.HEALTHY, "", 5)


def test_sync_lifecycle_dry_run_and_error_clearing() -> None:
    model, bus = model_with_bus()
    bus.publish(AppError("web", "apply: forbidden"))
    bus.publish(SyncStarted("web", "abc", who="carol"))
    syncing = model.snapshot("web")["apps"]["web"]["syncing"]
    assert syncing["revision_sha"] == "abc" and syncing["who"] == "carol" and not syncing["dry_run"]
    bus.publish(SyncFinished("web", "abc", ok=False, message="apply: forbidden"))
    st = model.app("web")
    assert st is not None and st.last_sync is not None and not st.last_sync.ok and st.last_error

    bus.publish(SyncStarted("web", "def", dry_run=True))
    bus.publish(SyncFinished("web", "def", ok=True))
    st = model.app("web")
    assert st is not None and st.last_sync is not None and st.last_sync.revision_sha == "abc"  # dry run leaves it
    assert st.syncing is None

    bus.publish(SyncStarted("web", "def"))
    bus.publish(SyncFinished("web", "def", ok=True))
    st = model.app("web")
    assert st is not None and st.last_sync is not None and st.last_sync.ok and st.last_error == ""


def test_unknown_apps_appear_on_first_event_and_other_events_are_ignored() -> None:
    model = StateModel()
    model.apply(Lagged(5))
    assert model.seq == 0 and model.names() == []
    model.apply(AppSuspended("new", True, who="dave"))
    assert model.names() == ["new"]
    st = model.app("new")
    assert st is not None and st.suspended
    model.apply(AppSuspended("new", False))
    assert model.snapshot()["apps"]["new"]["suspended"] is False
    assert model.app("missing") is None
    model.remove_app("new")
    assert model.snapshot()["apps"] == {}


def test_apps_are_copies() -> None:
    model, bus = model_with_bus()
    bus.publish(DriftDetected("web", DEP, (".spec",)))
    (web,) = [a for a in model.apps() if a.name == "web"]
    assert isinstance(web, AppState)
    web.drifted.clear()
    web.health = Health.DEGRADED
    st = model.app("web")
    assert st is not None and st.drift_count == 1 and st.health is Health.UNKNOWN


def test_snapshots_are_stable_and_untouched_apps_are_not_rebuilt() -> None:
    model, bus = model_with_bus()
    bus.publish(RevisionDetected("config", REV1))
    bus.publish(DriftDetected("web", DEP, (".spec.replicas",)))
    bus.publish(HealthChanged("db", Health.HEALTHY))
    first = model.snapshot()
    bus.publish(DriftResolved("web", DEP, "sync"))
    bus.publish(ObjectHealthChanged("web", SVC, Health.MISSING))
    second = model.snapshot()
    # An earlier snapshot does not change under its holder.
    assert DEP.inventory_id in first["apps"]["web"]["drifted"]
    assert first["apps"]["web"]["drift_count"] == 1 and first["apps"]["web"]["objects"] == {}
    assert second["apps"]["web"]["drifted"] == {} and second["apps"]["web"]["drift_count"] == 0
    # "db" did not change: its cached JSON is reused; "web" changed and was rebuilt.
    assert first["apps"]["db"]["revision"] is second["apps"]["db"]["revision"]
    assert first["apps"]["web"]["revision"] is not second["apps"]["web"]["revision"]
    assert first["apps"]["web"]["revision"] == second["apps"]["web"]["revision"]
    assert first["apps"]["db"]["health"] == "Healthy"


def test_drift_updates_do_not_rebuild_per_object_entries() -> None:
    model = StateModel()
    refs = [ObjRef("", "ConfigMap", "web", f"cm-{i}") for i in range(2000)]
    for ref in refs:
        model.apply(DriftDetected("web", ref, (".data.key",)))
    before = model.snapshot()["apps"]["web"]["drifted"]
    model.apply(DriftResolved("web", refs[0], "self-heal"))
    after = model.snapshot()["apps"]["web"]["drifted"]
    assert len(before) == 2000 and len(after) == 1999
    assert after[refs[1].inventory_id] is before[refs[1].inventory_id]  # shared, not re-serialised


def test_add_app_moves_between_sources() -> None:
    model = StateModel()
    model.apply(RevisionDetected("a", REV1))
    model.apply(RevisionDetected("b", REV2))
    model.add_app("web", source="a")
    st = model.app("web")
    assert st is not None and st.revision == REV1
    model.add_app("web", source="b")
    model.apply(RevisionDetected("a", Revision("9" * 40)))
    st = model.app("web")
    assert st is not None and st.revision == REV2 and model.source_revision("a") == Revision("9" * 40)
