"""A client over a real ``EventBus`` + ``StateModel`` with fixed demo data.

Used by the TUI tests, the snapshot tests and ``screenshots/make_screenshots.py``: the
console is driven by real event objects through the real state model, no mocks.
"""

from __future__ import annotations

import copy
from typing import Any

from core.events import (
    DriftDetected,
    EventBus,
    HealthChanged,
    RevisionDetected,
    Subscription,
    SyncFinished,
    SyncStatusChanged,
)
from core.model import Health, ObjRef, Revision, SyncStatus
from core.state import StateModel

PREV_SHA = "77aa01c3e9d2b4f5a6c7d8e9f0a1b2c3d4e5f607"
T0 = 1_790_000_000.0  # a fixed "now" so relative times and clocks are stable
SHA = {"config": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", "infra": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"}


class SampleClient:
    """The read side of ``LocalClient`` on fixed data; ``publish()`` feeds events.

    Commands are recorded in ``calls`` (the pilot tests of operator actions run against a
    real engine and sandbox instead: see tests/tui/test_console_e2e.py)."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.model = StateModel()
        self.model.attach(self.bus)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._runs: dict[str, dict[str, Any]] = {}
        self._logs: dict[tuple[str, str, str], list[str]] = {}
        self._objects: dict[str, list[dict[str, Any]]] = {}
        self._diffs: dict[tuple[str, str], dict[str, Any]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._pipelines: list[dict[str, Any]] = []

    def snapshot(self) -> dict[str, Any]:
        return self.model.snapshot()

    def subscribe(self) -> Subscription:
        return self.bus.subscribe()

    def publish(self, *events: Any) -> None:
        for ev in events:
            self.bus.publish(ev)

    # ----- reads ----------------------------------------------------------------------------------

    def objects(self, app: str) -> list[dict[str, Any]]:
        return list(self._objects.get(app, []))

    def object_diff(self, app: str, ref_id: str) -> dict[str, Any]:
        found = self._diffs.get((app, ref_id))
        if found is None:
            ref = ObjRef.from_inventory_id(ref_id)
            return {"id": ref_id, "object": str(ref), "desired": None, "live": None, "changes": [], "drift": None}
        return found

    def history(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        return self._history.get(app, [])[:limit]

    def commits(self, app: str, limit: int = 30) -> list[dict[str, Any]]:
        return [
            {"sha": SHA["config"], "short": SHA["config"][:7], "subject": "fix login", "author": "alice",
             "time": "2026-09-21T12:00:00Z"},
            {"sha": PREV_SHA, "short": PREV_SHA[:7], "subject": "payments 1.8.2", "author": "bob",
             "time": "2026-09-20T09:30:00Z"},
        ][:limit]

    def pipelines(self) -> list[dict[str, Any]]:
        return list(self._pipelines)

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        rows = [r for r in self._runs.values() if pipeline is None or r["pipeline"] == pipeline]
        rows.sort(key=lambda r: r["started"], reverse=True)
        return [{k: v for k, v in r.items() if k != "stages"} for r in rows[:limit]]

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self._runs.get(run_id)

    def run_log(self, run_id: str, stage: str, action: str, limit: int = 5000) -> list[str]:
        return self._logs.get((run_id, stage, action), [])[-limit:]

    def trace(self, app: str) -> dict[str, Any]:
        return {"app": app, "sync": None, "commit": None, "run": None, "source_revision": None,
                "message": "no successful sync recorded"}

    # ----- commands (recorded only) ------------------------------------------------------------

    async def sync(self, app: str, *, dry_run: bool = False, wait: bool = True) -> Any:
        self.calls.append(("sync", (app,)))

    async def revert(self, app: str, *, to: str | None = None) -> Any:
        self.calls.append(("revert", (app, to)))

    async def suspend(self, app: str) -> None:
        self.calls.append(("suspend", (app,)))

    async def resume(self, app: str) -> None:
        self.calls.append(("resume", (app,)))

    async def start_run(self, pipeline: str, stage: str | None = None) -> str:
        self.calls.append(("start_run", (pipeline,)))
        return f"{pipeline}-new"

    async def approve(self, run_id: str, action: str, comment: str = "") -> None:
        self.calls.append(("approve", (run_id, action)))

    async def reject(self, run_id: str, action: str, comment: str = "") -> None:
        self.calls.append(("reject", (run_id, action)))

    async def retry(self, run_id: str, stage: str) -> None:
        self.calls.append(("retry", (run_id, stage)))

    async def stop(self, run_id: str, abandon: bool = False) -> None:
        self.calls.append(("stop", (run_id,)))


def payments_drift(ts: float = T0 - 20) -> DriftDetected:
    return DriftDetected(
        app="payments",
        ref=ObjRef("apps", "Deployment", "payments", "payments-api"),
        fields=(".spec.template.spec.containers[name=api].image",),
        managers=("kubectl-edit",),
        ts=ts,
    )


def sample_client() -> SampleClient:
    """Five apps in the states the main screen must show apart."""
    c = SampleClient()
    m = c.model
    for name, source in (("web", "config"), ("api", "config"), ("payments", "config"), ("infra", "infra")):
        m.add_app(name, source=source)
    m.add_app("billing", source="config", suspended=True)
    c.publish(
        RevisionDetected(source="config", revision=Revision(SHA["config"], message="fix login"), ts=T0 - 900),
        RevisionDetected(source="infra", revision=Revision(SHA["infra"], message="bump"), ts=T0 - 900),
    )
    for name, src in (("web", "config"), ("payments", "config"), ("infra", "infra"), ("billing", "config")):
        c.publish(
            SyncFinished(app=name, revision_sha=SHA[src], ok=True, duration=2.0, ts=T0 - 120),
            SyncStatusChanged(app=name, status=SyncStatus.SYNCED, ts=T0 - 120),
            HealthChanged(app=name, health=Health.HEALTHY, ts=T0 - 110),
        )
    c.publish(
        SyncStatusChanged(app="api", status=SyncStatus.OUT_OF_SYNC, ts=T0 - 60),
        HealthChanged(app="api", health=Health.PROGRESSING, reason="rolling out", ts=T0 - 50),
    )
    c.publish(payments_drift(T0 - 30))
    _sample_details(c)
    return c


def _action(name: str, status: str, start: float, secs: float | None, **extra: Any) -> dict[str, Any]:
    return {"action": name, "attempt": 1, "status": status, "message": extra.pop("message", ""),
            "exit_code": 0 if status == "Succeeded" else None, "outputs": extra.pop("outputs", {}),
            "started": start, "finished": None if secs is None else start + secs, "who": "", "comment": "",
            "log_lines": 0, "log_bytes": 0, **extra}


def _stage(name: str, status: str, start: float | None, secs: float | None,
           actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"stage": name, "status": status, "message": "", "inputs": {}, "started": start,
            "finished": None if start is None or secs is None else start + secs, "actions": actions}


def _run(run_id: str, pipeline: str, sha: str, subject: str, status: str, started: float,
         finished: float | None, stages: list[dict[str, Any]], trigger: str = "commit") -> dict[str, Any]:
    return {"id": run_id, "pipeline": pipeline, "revision": sha,
            "revision_info": {"sha": sha, "message": subject, "author": "alice", "time": ""},
            "trigger": trigger, "who": "", "variables": {}, "status": status, "message": "",
            "started": started, "finished": finished, "promoted_sha": None, "rollback_of": None,
            "stages": stages}


def _sample_details(c: SampleClient) -> None:
    """Pipelines, runs, logs, objects, a drift diff and history for the detail screens."""
    t = T0 - 400
    web = _run("web-42", "web", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "fix login", "InProgress", t, None, [
        _stage("build", "Succeeded", t, 41, [_action("image", "Succeeded", t, 41,
                                                     outputs={"IMAGE_TAG": "web-a1b2c3d"})]),
        _stage("test", "Succeeded", t + 41, 62, [_action("unit", "Succeeded", t + 41, 62)]),
        _stage("release", "InProgress", t + 103, None,
               [_action("approve", "Waiting", t + 103, None, message="promote web to the cluster?")]),
        _stage("deploy", "Pending", None, None, []),
    ])
    api = _run("api-17", "api", "77aa01c3e9d2b4f5a6c7d8e9f0a1b2c3d4e5f607", "bump deps", "Succeeded",
               T0 - 1300, T0 - 720, [
        _stage("build", "Succeeded", T0 - 1300, 52, [_action("image", "Succeeded", T0 - 1300, 52)]),
        _stage("test", "Succeeded", T0 - 1248, 95, [_action("unit", "Succeeded", T0 - 1248, 95)]),
        _stage("deploy", "Succeeded", T0 - 1153, 433, [_action("promote", "Succeeded", T0 - 1153, 3),
                                                       _action("rollout", "Succeeded", T0 - 1150, 430)]),
    ])
    worker = _run("worker-8", "worker", "03fe9aa1b2c3d4e5f60718293a4b5c6d7e8f9012", "wip", "Failed",
                  T0 - 3900, T0 - 3840, [
        _stage("build", "Succeeded", T0 - 3900, 29, [_action("image", "Succeeded", T0 - 3900, 29)]),
        _stage("test", "Failed", T0 - 3871, 31, [_action("unit", "Failed", T0 - 3871, 31,
                                                         message="exit status 1")]),
        _stage("deploy", "Cancelled", None, None, []),
    ])
    for r in (web, api, worker):
        c._runs[r["id"]] = r
    c._pipelines = [
        {"name": name, "source": "app", "stages": [s["stage"] for s in r["stages"]]}
        for name, r in (("api", api), ("web", web), ("worker", worker))
    ]
    c._logs[("web-42", "build", "image")] = ["building web 42", "step 1/3: fetch base image",
                                            "step 2/3: compile", "step 3/3: push registry.example.org/web",
                                            "IMAGE_TAG=web-a1b2c3d"]
    c._logs[("web-42", "test", "unit")] = [f"test_{n} ... ok" for n in ("login", "logout", "session", "api")] + [
        "4 passed in 1.02s"]
    c._logs[("worker-8", "test", "unit")] = ["test_queue ... ok", "test_retry ... FAILED",
                                            "AssertionError: expected 3 retries, got 2", "1 failed, 1 passed"]
    dep = ObjRef("apps", "Deployment", "payments", "payments-api")
    cm = ObjRef("", "ConfigMap", "payments", "payments-cfg")
    secret = ObjRef("", "Secret", "payments", "payments-db")
    svc = ObjRef("", "Service", "payments", "payments-api")
    ns = ObjRef("", "Namespace", "", "payments")

    def obj_row(ref: ObjRef, sync: str, health: str, reason: str = "", fields: tuple[str, ...] = (),
                managers: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"id": ref.inventory_id, "group": ref.group, "kind": ref.kind, "namespace": ref.namespace,
                "name": ref.name, "sync": sync, "health": health, "reason": reason, "fields": list(fields),
                "managers": list(managers)}

    drift = payments_drift()
    c._objects["payments"] = [
        obj_row(ns, "Synced", "Healthy"),
        obj_row(cm, "Synced", "Healthy"),
        obj_row(dep, "OutOfSync", "Healthy", "", drift.fields, drift.managers),
        obj_row(secret, "Synced", "Healthy"),
        obj_row(svc, "Synced", "Healthy"),
    ]
    container = {"name": "api", "image": "registry.example.org/payments-api:1.8.2",
                 "ports": [{"containerPort": 8080}]}
    desired: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "payments-api", "namespace": "payments"},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "payments-api"}},
                        "template": {"metadata": {"labels": {"app": "payments-api"}},
                                     "spec": {"containers": [container]}}}}
    live = copy.deepcopy(desired)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.org/payments-api:1.8.3-hotfix"
    c._diffs[("payments", dep.inventory_id)] = {
        "id": dep.inventory_id, "object": str(dep), "desired": desired, "live": live,
        "changes": ["~ .spec.template.spec.containers[name=api].image: registry.example.org/payments-api:1.8.3-hotfix"
                    " -> registry.example.org/payments-api:1.8.2"],
        "drift": {"missing": False, "fields": list(drift.fields), "managers": list(drift.managers), "ts": drift.ts},
    }
    secret_obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payments-db", "namespace": "payments"},
                  "type": "Opaque", "data": {"password": "***", "user": "***"}}
    c._diffs[("payments", secret.inventory_id)] = {
        "id": secret.inventory_id, "object": str(secret), "desired": secret_obj, "live": secret_obj,
        "changes": [], "drift": None,
    }
    c._history["payments"] = [
        {"kind": "drift", "ts": drift.ts, "object": str(dep), "fields": list(drift.fields),
         "managers": list(drift.managers), "resolved": None, "how": "", "missing": False},
        {"kind": "sync", "ts": T0 - 122, "revision": SHA["config"], "ok": True, "message": "applied 5 objects",
         "who": "alice", "duration": 2.0, "dry_run": False},
        {"kind": "sync", "ts": T0 - 86400, "revision": PREV_SHA, "ok": True, "message": "applied 5 objects",
         "who": "pipeline api-16", "duration": 2.4, "dry_run": False},
    ]
