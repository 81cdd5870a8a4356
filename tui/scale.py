"""A synthetic large workspace for the scale test and ``bench/tui_bench.py``.

:func:`scale_client` builds a :class:`~tui.sample.SampleClient` holding ``apps`` apps of
``objects_per_app`` objects each (5,000 by default) and ``pipelines`` pipelines with a
latest run each. Everything the state model holds got there through real events on the
real bus (``RevisionDetected``, ``SyncFinished``, ``SyncStatusChanged``, ``HealthChanged``,
``ObjectHealthChanged`` per object; run events for the pipelines). Timestamps are fixed
offsets from :data:`~tui.sample.T0`: no clock is read.

:func:`churn_events` is drift churn: step ``i`` drifts one object and resolves the one
drifted ``window`` steps earlier, walking the objects with a stride that moves to the next
app at every step, so about ``window`` apps are Drifted at any time and every step
changes two app rows.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from core.events import (
    ActionChanged,
    DriftDetected,
    DriftResolved,
    Event,
    HealthChanged,
    ObjectHealthChanged,
    RevisionDetected,
    RunFinished,
    RunStarted,
    StageChanged,
    SyncFinished,
    SyncStatusChanged,
)
from core.model import Health, ObjRef, Revision, SyncStatus
from tui.sample import T0, SampleClient

SOURCES = 5
CHURN_WINDOW = 50  # objects drifted at once in steady churn
CHURN_STEP_SECONDS = 0.005  # event timestamps advance by this per churn step (200 steps/s of "time")

# Object 0 of an app is its Namespace; object j > 0 is a KINDS[(j - 1) % len(KINDS)] in it.
KINDS: tuple[tuple[str, str], ...] = (
    ("apps", "Deployment"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("networking.k8s.io", "Ingress"),
)

RUN_SHAPES: tuple[str, ...] = ("Succeeded", "Failed", "Waiting", "InProgress", "Succeeded")


class ScaleClient(SampleClient):
    """A :class:`SampleClient` that remembers its objects, in order, for :func:`churn_events`."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, ObjRef]] = []  # (app, object), app-major
        self.churn_stride = 1
        self.churn_window = CHURN_WINDOW


def app_name(i: int) -> str:
    return f"app-{i:03d}"


def pipeline_name(i: int) -> str:
    return f"pipe-{i:03d}"


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def object_ref(app: str, j: int) -> ObjRef:
    if j == 0:
        return ObjRef("", "Namespace", "", app)
    group, kind = KINDS[(j - 1) % len(KINDS)]
    return ObjRef(group, kind, app, f"{app}-{kind.lower()}-{j}")


def _object_row(ref: ObjRef, health: Health, reason: str = "") -> dict[str, Any]:
    return {"id": ref.inventory_id, "group": ref.group, "kind": ref.kind, "namespace": ref.namespace,
            "name": ref.name, "sync": "Synced", "health": health.value, "reason": reason,
            "fields": [], "managers": []}


def _app_health(i: int) -> tuple[Health, str]:
    if i % 23 == 5:
        return Health.DEGRADED, "ProgressDeadlineExceeded"
    if i % 17 == 3:
        return Health.PROGRESSING, "rolling out"
    return Health.HEALTHY, ""


def scale_client(apps: int = 100, objects_per_app: int = 50, pipelines: int = 50) -> ScaleClient:
    """A workspace of ``apps * objects_per_app`` objects and ``pipelines`` pipelines, fed through events."""
    if apps < 1 or objects_per_app < 1 or pipelines < 0:
        raise ValueError("need at least one app with one object, and no negative pipeline count")
    c = ScaleClient()
    model = c.model
    revisions = [Revision(_sha(f"source-{s}"), author="alice", message=f"release {s}") for s in range(SOURCES)]
    for i in range(apps):
        model.add_app(app_name(i), source=f"config-{i % SOURCES}", suspended=i % 31 == 30)
    for s, rev in enumerate(revisions):
        c.publish(RevisionDetected(source=f"config-{s}", revision=rev, ts=T0 - 3600))
    for i in range(apps):
        name = app_name(i)
        health, reason = _app_health(i)
        rows: list[dict[str, Any]] = []
        for j in range(objects_per_app):
            ref = object_ref(name, j)
            obj_health, obj_reason = (health, reason) if j == 1 else (Health.HEALTHY, "")
            c.publish(ObjectHealthChanged(app=name, ref=ref, health=obj_health, reason=obj_reason,
                                          ts=T0 - 300 + j * 0.01))
            c.refs.append((name, ref))
            rows.append(_object_row(ref, obj_health, obj_reason))
        c._objects[name] = rows
        out_of_sync = i % 11 == 7
        c.publish(
            SyncFinished(app=name, revision_sha=revisions[i % SOURCES].sha, ok=True, duration=1.5,
                         applied=objects_per_app, message=f"applied {objects_per_app} objects",
                         ts=T0 - 120 - i),
            SyncStatusChanged(app=name, status=SyncStatus.OUT_OF_SYNC if out_of_sync else SyncStatus.SYNCED,
                              previous=SyncStatus.UNKNOWN, ts=T0 - 119 - i),
            HealthChanged(app=name, health=health, previous=Health.UNKNOWN, reason=reason, ts=T0 - 118 - i),
        )
    for p in range(pipelines):
        _add_pipeline(c, p)
    total = len(c.refs)
    stride = objects_per_app + 1  # the next step lands in the next app
    while math.gcd(stride, total) != 1:  # ...and the walk visits every object before repeating
        stride += 1
    c.churn_stride = stride
    c.churn_window = max(1, min(CHURN_WINDOW, total // 2))
    return c


def _action(name: str, status: str, start: float | None, secs: float | None, message: str = "") -> dict[str, Any]:
    return {"action": name, "attempt": 1, "status": status, "message": message,
            "exit_code": 0 if status == "Succeeded" else (1 if status == "Failed" else None), "outputs": {},
            "started": start, "finished": None if start is None or secs is None else start + secs,
            "who": "", "comment": "", "log_lines": 0, "log_bytes": 0}


def _stage(name: str, status: str, start: float | None, secs: float | None,
           actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"stage": name, "status": status, "message": "", "inputs": {}, "started": start,
            "finished": None if start is None or secs is None else start + secs, "actions": actions}


def _add_pipeline(c: SampleClient, p: int) -> None:
    """Pipeline ``p`` with its latest run (build, test, deploy), announced by run events."""
    name = pipeline_name(p)
    shape = RUN_SHAPES[p % len(RUN_SHAPES)]
    run_id = f"{name}-{100 + p}"
    sha = _sha(f"{name}-head")
    t = T0 - 900 - 13 * p
    build = _stage("build", "Succeeded", t, 40, [_action("image", "Succeeded", t, 40)])
    if shape == "Failed":
        test = _stage("test", "Failed", t + 40, 30, [_action("unit", "Failed", t + 40, 30, "exit status 1")])
        deploy = _stage("deploy", "Cancelled", None, None, [])
        status, finished = "Failed", t + 70
    elif shape == "Succeeded":
        test = _stage("test", "Succeeded", t + 40, 60, [_action("unit", "Succeeded", t + 40, 60)])
        deploy = _stage("deploy", "Succeeded", t + 100, 200, [_action("promote", "Succeeded", t + 100, 3),
                                                               _action("rollout", "Succeeded", t + 103, 197)])
        status, finished = "Succeeded", t + 300
    else:
        test = _stage("test", "Succeeded", t + 40, 60, [_action("unit", "Succeeded", t + 40, 60)])
        waiting = shape == "Waiting"
        deploy = _stage("deploy", "InProgress", t + 100, None, [
            _action("approve", "Waiting", t + 100, None, "promote to the cluster?") if waiting
            else _action("rollout", "InProgress", t + 100, None),
        ])
        status, finished = "InProgress", None
    stages = [build, test, deploy]
    c._runs[run_id] = {
        "id": run_id, "pipeline": name, "revision": sha,
        "revision_info": {"sha": sha, "message": f"change {p}", "author": "alice", "time": ""},
        "trigger": "commit", "who": "", "variables": {}, "status": status, "message": "",
        "started": t, "finished": finished, "promoted_sha": None, "rollback_of": None, "stages": stages,
    }
    c._pipelines.append({"name": name, "source": "app", "stages": [s["stage"] for s in stages]})
    events: list[Event] = [RunStarted(pipeline=name, run_id=run_id, revision_sha=sha, trigger="commit", ts=t)]
    for stage in stages:
        for action in stage["actions"]:
            events.append(ActionChanged(pipeline=name, run_id=run_id, stage=stage["stage"], action=action["action"],
                                        status=action["status"], ts=action["started"] or t))
        events.append(StageChanged(pipeline=name, run_id=run_id, stage=stage["stage"], status=stage["status"],
                                   ts=stage["finished"] or stage["started"] or t))
    if finished is not None:
        events.append(RunFinished(pipeline=name, run_id=run_id, status=status, ts=finished))
    c.publish(*events)


def churn_ref(client: ScaleClient, i: int) -> tuple[str, ObjRef]:
    """The object that churn step ``i`` drifts (and step ``i + window`` resolves)."""
    return client.refs[(i * client.churn_stride) % len(client.refs)]


def churn_events(client: ScaleClient, i: int) -> list[Event]:
    """Churn step ``i`` (0, 1, 2…): drift one object; from step ``window`` on, also resolve
    the object drifted ``window`` steps before. Pure: the same ``i`` gives equal events."""
    ts = T0 + i * CHURN_STEP_SECONDS
    app, ref = churn_ref(client, i)
    out: list[Event] = [
        DriftDetected(app=app, ref=ref, fields=(".spec.replicas",), managers=("kubectl-scale",), ts=ts)
    ]
    if i >= client.churn_window:
        old_app, old_ref = churn_ref(client, i - client.churn_window)
        out.append(DriftResolved(app=old_app, ref=old_ref, how="self-heal", ts=ts))
    return out
