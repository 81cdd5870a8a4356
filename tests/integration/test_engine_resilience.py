"""Watch resilience of the engine with the sandbox's fault injection: dropped watches, 410 after
compaction, failing requests. No drift is missed, none is reported twice or spuriously, nothing
crashes; identical re-applies and controller status churn are never drift.

One auto app (no selfHeal, so a drift stays until we sync) against the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.cluster import WatchLoop
from core.config import load_config
from core.engine import Engine
from core.events import DriftDetected, DriftResolved, Event, SyncStatusChanged
from core.history import History
from core.inventory import Inventory
from core.model import Health, ObjRef, SyncStatus
from sandbox.api import Request
from sandbox.server import SandboxServer
from tests.integration.clients import wait_for_blocking as wait_for
from tests.integration.gitrepo import commit, deployment, init_repo, namespace, service, write_docs

DEPLOY = ObjRef("apps", "Deployment", "web", "web")
IMAGE_FIELD = '.spec.template.spec.containers[name="web"].image'
KINDS = ("Namespace", "Deployment", "Service", "ConfigMap")


def admin(sandbox: SandboxServer, action: str, method: str = "POST") -> dict[str, Any]:
    """A fault-injection admin call (``compact``, ``drop-watches``, ``fail?count=5&code=500``, ``reset``)."""
    req = urllib.request.Request(sandbox.url + "/_sandbox/" + action, method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read() or b"{}")
    return body


def image_patch(image: str) -> str:
    return json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}])


class Rig:
    """The engine, its events, and the sandbox it reconciles into."""

    def __init__(self, engine: Engine, sandbox: SandboxServer, kubectl: Any) -> None:
        self.engine = engine
        self.sandbox = sandbox
        self.kubectl = kubectl
        self.events: list[Event] = []
        engine.bus.on(self.events.append)

    @property
    def web(self) -> Any:
        return self.engine.apps["web"]

    def loops(self) -> dict[str, WatchLoop]:
        watches = self.engine.cluster("local").watches
        return {loop.kind: loop for loop in watches.loops()}

    def drifts(self, since: int = 0) -> list[DriftDetected]:
        return [e for e in self.events[since:] if isinstance(e, DriftDetected)]

    def foreign_image(self, image: str) -> None:
        """A foreign change by kubectl (field manager ``kubectl-patch``)."""
        self.kubectl("-n", "web", "patch", "deployment", "web", "--type", "json", "-p", image_patch(image))

    def in_process_image(self, image: str) -> None:
        """The same foreign change, written in the sandbox's process (while every API request fails)."""
        rt = self.sandbox.registry.lookup("apps", "v1", "deployments")
        assert rt is not None
        req = Request(field_manager="kubectl-patch")
        self.sandbox.call(lambda: self.sandbox.api.patch(rt, "web", "web", image_patch(image).encode(),
                                                         "application/json-patch+json", req))

    async def streams_open(self) -> None:
        """Every kind's loop has listed and has a watch stream open on the server."""
        await wait_for(lambda: set(self.loops()) == set(KINDS) and all(lp.synced.is_set() for lp in self.loops().values()),
                       what="every kind listed")
        await wait_for(lambda: self.sandbox.store.watcher_count() >= len(KINDS), what="every watch stream open")

    async def caught_up(self) -> None:
        """Every loop has seen everything the store had when called, and the engine handled it."""
        target = self.sandbox.store.rv
        await wait_for(lambda: all(int(lp.resource_version or 0) >= target for lp in self.loops().values()),
                       what=f"every watch loop at resourceVersion {target}")
        await asyncio.sleep(0.3)  # the engine's loop runs the handed-over callbacks

    async def healthy(self) -> None:
        await wait_for(lambda: self.web.sync_status == SyncStatus.SYNCED and self.web.health == Health.HEALTHY
                       and not self.web.drifted, what="web Synced, Healthy, not drifted")

    async def resync(self) -> None:
        """Put the drifted Deployment back with a sync; settle."""
        outcome = await self.engine.sync("web", who="tester")
        assert outcome.ok, outcome.message
        await self.healthy()
        await self.caught_up()

    def alive(self) -> None:
        """Nothing crashed: the engine's loops run, every watch thread is alive."""
        for task in self.engine._tasks:
            assert not task.done(), task
        for loop in self.loops().values():
            assert loop.thread is not None and loop.thread.is_alive(), loop.kind


@pytest.fixture
async def rig(sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path) -> AsyncIterator[Rig]:
    repo = init_repo(tmp_path / "config-repo")
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-cfg", "namespace": "web"},
           "data": {"greeting": "hello"}}
    write_docs(repo / "apps" / "web" / "web.yaml",
               [namespace("web"), deployment("web", "web", "nginx:1.27", 1), service("web", "web"), cfg])
    commit(repo, "web")
    config = {
        "clusters": {"local": {"kubeconfig": sandbox_kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"}},
        "apps": {"web": {"source": "config", "path": "apps/web", "namespace": "web", "sync": "auto",
                         "selfHeal": False, "prune": True, "timeout": 30}},
    }
    (tmp_path / "driftdeck.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    loaded, problems = load_config(str(tmp_path / "driftdeck.yaml"))
    assert problems == []
    db = tmp_path / "history.db"
    engine = Engine(loaded, history=History(db), inventory=Inventory(db), cache_dir=tmp_path / "cache", who="tester")
    r = Rig(engine, sandbox, kubectl)
    try:
        await engine.start()
        await r.healthy()
        await r.streams_open()
        await r.caught_up()
        yield r
    finally:
        admin(sandbox, "reset")
        await engine.stop()


async def test_dropped_watches_then_a_foreign_change_is_one_drift(rig: Rig) -> None:
    mark = len(rig.events)
    assert admin(rig.sandbox, "drop-watches")["dropped"] >= len(KINDS)
    rig.foreign_image("evil:1")
    first = await wait_for(lambda: rig.drifts(mark), what="the drift")
    assert first[0].ref == DEPLOY and first[0].fields == (IMAGE_FIELD,) and first[0].managers == ("kubectl-patch",)
    # The rollout the change started keeps modifying the Deployment: still the one drift, nothing else.
    await rig.streams_open()
    await wait_for(lambda: rig.kubectl("-n", "web", "rollout", "status", "deploy/web", "--timeout=1s",
                                       check=False).returncode == 0, what="the rollout of evil:1")
    await rig.caught_up()
    assert rig.drifts(mark) == first, rig.drifts(mark)
    assert set(rig.web.drifted) == {DEPLOY} and rig.web.sync_status == SyncStatus.OUT_OF_SYNC
    rig.alive()


async def test_compaction_gap_relists_and_reports_the_drift_once(rig: Rig) -> None:
    loops = rig.loops()
    deploy_loop = loops["Deployment"]
    relists = {kind: lp.stats.relists for kind, lp in loops.items()}
    errors = deploy_loop.stats.errors
    mark = len(rig.events)
    admin(rig.sandbox, "fail?count=100000&code=500")  # every API request fails...
    admin(rig.sandbox, "drop-watches")  # ...so no loop can re-watch
    await wait_for(lambda: deploy_loop.stats.errors > errors, what="the Deployment loop failing to re-watch")
    rig.in_process_image("evil:2")  # the foreign change nobody is watching
    admin(rig.sandbox, "compact")  # and its event is gone from the history: re-watching gives 410
    admin(rig.sandbox, "reset")
    await wait_for(lambda: deploy_loop.stats.relists > relists["Deployment"], what="the relist after 410")
    drift = await wait_for(lambda: rig.drifts(mark), what="the drift found by the relist")
    assert drift[0].ref == DEPLOY and drift[0].fields == (IMAGE_FIELD,) and drift[0].managers == ("kubectl-patch",)
    await rig.streams_open()
    await rig.caught_up()
    # Exactly one drift; the other objects (relisted too, unchanged) are not drift.
    assert rig.drifts(mark) == drift, rig.drifts(mark)
    assert set(rig.web.drifted) == {DEPLOY}
    assert sum(lp.stats.relists - relists[kind] for kind, lp in rig.loops().items()) >= 1
    rig.alive()

    # Synced back: resolved once, and a later change after the gap is a drift again, once.
    await rig.resync()
    resolved = [e for e in rig.events[mark:] if isinstance(e, DriftResolved)]
    assert [(e.ref, e.how) for e in resolved] == [(DEPLOY, "sync")]
    mark = len(rig.events)
    rig.foreign_image("evil:3")
    await wait_for(lambda: rig.drifts(mark), what="the drift after the relist")
    await rig.caught_up()
    assert len(rig.drifts(mark)) == 1, rig.drifts(mark)


async def test_failing_requests_while_watches_reconnect(rig: Rig) -> None:
    mark = len(rig.events)
    errors = sum(lp.stats.errors for lp in rig.loops().values())
    admin(rig.sandbox, "fail?count=5&code=500")
    admin(rig.sandbox, "drop-watches")
    state = await wait_for(lambda: (s := admin(rig.sandbox, "state", "GET"))["faults"]["failCount"] == 0 and s,
                           what="the five failures used up")
    assert state["faults"]["failCount"] == 0
    assert sum(lp.stats.errors for lp in rig.loops().values()) > errors, "the loops saw the failures"
    rig.foreign_image("evil:4")  # a later change, while the loops may still be backing off
    drift = await wait_for(lambda: rig.drifts(mark), what="the drift after the failures")
    assert drift[0].ref == DEPLOY and drift[0].fields == (IMAGE_FIELD,)
    await rig.streams_open()
    await rig.caught_up()
    assert rig.drifts(mark) == drift, rig.drifts(mark)
    rig.alive()
    # And the engine still syncs.
    await rig.resync()
    assert rig.kubectl("-n", "web", "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
                       ).stdout == "nginx:1.27"


async def test_identical_reapply_and_status_churn_are_not_drift(rig: Rig) -> None:
    mark = len(rig.events)
    # An identical sync: nothing to apply.
    outcome = await rig.engine.sync("web", who="tester")
    assert outcome.ok and outcome.applied == 0, outcome.message
    # An identical re-apply of every manifest (our manager, the same bodies), behind the engine's back.
    cluster = rig.engine.cluster("local")
    for m in list(rig.web.manifests.values()):
        await asyncio.to_thread(cluster.apply, m.obj, manager="driftdeck", force=True)
    # Controller status churn: the ReplicaSet replaces the Pod; the Deployment's status goes down and up.
    before = rig.kubectl("-n", "web", "get", "deploy", "web", "-o", "jsonpath={.metadata.resourceVersion}").stdout
    rig.kubectl("-n", "web", "delete", "pod", "-l", "app=web", "--wait=false")
    await wait_for(lambda: rig.kubectl("-n", "web", "get", "deploy", "web", "-o",
                                       "jsonpath={.metadata.resourceVersion}").stdout != before,
                   what="the Deployment's status to change")
    await wait_for(lambda: rig.kubectl("-n", "web", "rollout", "status", "deploy/web", "--timeout=1s",
                                       check=False).returncode == 0, what="the Deployment available again")
    await rig.caught_up()
    await asyncio.sleep(2.0)  # a few quiet seconds: anything late would show now
    await rig.caught_up()
    assert rig.drifts(mark) == [], rig.drifts(mark)
    assert not [e for e in rig.events[mark:] if isinstance(e, (DriftResolved, SyncStatusChanged))]
    assert rig.web.sync_status == SyncStatus.SYNCED and not rig.web.drifted
    rig.alive()
