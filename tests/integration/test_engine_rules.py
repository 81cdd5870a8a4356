"""Engine rules end to end: ``ignore`` (by JSON pointer and by field manager, with the sandbox's
HPA controller owning ``.spec.replicas``), ``dependsOn`` between apps, and prune safety (the
``driftdeck.io/prune: disabled`` annotation; objects without our label are never pruned)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from core.engine import APP_LABEL, PRUNE_ANNOTATION, Engine
from core.events import DriftDetected, Event
from core.history import History
from core.inventory import Inventory
from core.model import Action, Health, ObjRef, SyncStatus
from sandbox.server import SandboxServer
from tests.integration.clients import wait_for_blocking as wait_for
from tests.integration.gitrepo import commit, deployment, init_repo, namespace, write_docs


def hpa(name: str, ns: str, low: int, high: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low, "maxReplicas": high,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                          "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    }


def configmap(name: str, ns: str, value: str = "1", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


def make_engine(tmp: Path, kubeconfig: str, apps: dict[str, dict[str, Any]]) -> Engine:
    config = {
        "clusters": {"local": {"kubeconfig": kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"}},
        "apps": apps,
    }
    path = tmp / "driftdeck.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    loaded, problems = load_config(str(path))
    assert problems == [], problems
    db = tmp / "history.db"
    return Engine(loaded, history=History(db), inventory=Inventory(db), cache_dir=tmp / "cache", who="tester")


def app(name: str, **extra: Any) -> dict[str, Any]:
    return {"source": "config", "path": f"apps/{name}", "namespace": name, "sync": "auto", "timeout": 30, **extra}


@pytest.fixture
async def stopper() -> AsyncIterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for eng in engines:
        await eng.stop()


def collect(engine: Engine) -> list[Event]:
    seen: list[Event] = []
    engine.bus.on(seen.append)
    return seen


def get(kubectl: Any, ns: str, kind: str, name: str) -> dict[str, Any] | None:
    proc = kubectl("-n", ns, "get", kind, name, "-o", "json", check=False)
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return None
    obj: dict[str, Any] = json.loads(proc.stdout)
    return obj


def foreign_configmap(kubectl: Any, name: str) -> None:
    """``kubectl create`` of a ConfigMap in ``pr`` without our label (``-f -``: the sandbox speaks no protobuf)."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "pr"},
            "data": {"owner": "someone-else"}}
    kubectl("create", "-f", "-", input=json.dumps(body))
    assert APP_LABEL not in ((get(kubectl, "pr", "configmap", name) or {})["metadata"].get("labels") or {})


async def caught_up(engine: Engine, sandbox: SandboxServer) -> None:
    """Every watch loop has seen what the store had when called; the engine handled it."""
    target = sandbox.store.rv
    loops = engine.cluster("local").watches.loops()
    await wait_for(lambda: all(int(lp.resource_version or 0) >= target for lp in loops),
                   what=f"every watch loop at resourceVersion {target}")
    await asyncio.sleep(0.3)


# ----- ignore rules ------------------------------------------------------------------------------------------


async def test_ignore_rules_hide_hpa_owned_replicas(
    sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path, stopper: list[Engine]
) -> None:
    """Deployment ``replicas: 2`` with an HPA (min 3, max 5): the HPA controller scales it to 3 through
    ``/scale`` as ``kube-controller-manager``. With an ignore rule (by pointer or by manager) that is no
    drift; without one it is drift on ``.spec.replicas``, attributed to the controller."""
    repo = init_repo(tmp_path / "config-repo")
    for name in ("ptr", "mgr", "plain"):
        write_docs(repo / "apps" / name / f"{name}.yaml",
                   [namespace(name), deployment(name, name, "nginx:1.27", 2), hpa(name, name, 3, 5)])
    commit(repo, "three scaled apps")
    engine = make_engine(tmp_path, sandbox_kubeconfig, {
        "ptr": app("ptr", ignore=[{"kind": "Deployment", "pointer": "/spec/replicas"}]),
        "mgr": app("mgr", ignore=[{"manager": "kube-controller-manager"}]),
        "plain": app("plain"),
    })
    stopper.append(engine)
    events = collect(engine)
    await engine.start()

    def replicas(name: str) -> int:
        live = get(kubectl, name, "deployment", name) or {}
        return int((live.get("spec") or {}).get("replicas") or 0)

    for name in ("ptr", "mgr", "plain"):
        await wait_for(lambda name=name: replicas(name) == 3, what=f"the HPA scaling {name} to 3")  # type: ignore[misc]
        live = json.loads(kubectl("-n", name, "get", "deployment", name, "-o", "json", "--show-managed-fields").stdout)
        owners = [(e["manager"], e.get("subresource", "")) for e in live["metadata"]["managedFields"]
                  if "f:replicas" in ((e.get("fieldsV1") or {}).get("f:spec") or {})]
        assert owners == [("kube-controller-manager", "scale")], owners  # the scale took it from driftdeck
    plain_ref = ObjRef("apps", "Deployment", "plain", "plain")
    plain = engine.apps["plain"]
    await wait_for(lambda: plain_ref in plain.drifted, what="plain's replicas drift")
    for name in ("ptr", "mgr"):
        rt = engine.apps[name]
        await wait_for(lambda rt=rt: rt.health == Health.HEALTHY, what=f"{name} Healthy")  # type: ignore[misc]
    await caught_up(engine, sandbox)
    await asyncio.sleep(1.0)
    await caught_up(engine, sandbox)

    drifts = [e for e in events if isinstance(e, DriftDetected)]
    assert [(e.app, e.ref, e.fields, e.managers) for e in drifts] == [
        ("plain", plain_ref, (".spec.replicas",), ("kube-controller-manager",))
    ]
    assert plain.sync_status == SyncStatus.OUT_OF_SYNC
    for name in ("ptr", "mgr"):
        rt = engine.apps[name]
        assert not rt.drifted and rt.sync_status == SyncStatus.SYNCED, (name, rt.drifted, rt.sync_status)
        # A re-plan agrees: nothing to change (the engine would not fight the HPA).
        plan = await engine.plan(name)
        assert {i.action for i in plan.items} == {Action.UNCHANGED}, [(str(i.ref), i.action) for i in plan.items]
        assert rt.sync_status == SyncStatus.SYNCED
        assert replicas(name) == 3
    plan = await engine.plan("plain")
    assert [(i.ref, i.action) for i in plan.items if i.action != Action.UNCHANGED] == [(plain_ref, Action.CONFIGURE)]


# ----- dependsOn -------------------------------------------------------------------------------------------------


async def test_depends_on_blocks_a_sync_until_the_dependency_is_synced_and_healthy(
    sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path, stopper: list[Engine]
) -> None:
    repo = init_repo(tmp_path / "config-repo")
    write_docs(repo / "apps" / "infra" / "infra.yaml", [namespace("infra"), deployment("db", "infra", "postgres:17", 1)])
    write_docs(repo / "apps" / "web" / "web.yaml", [namespace("web"), deployment("web", "web", "nginx:1.27", 1)])
    commit(repo, "infra and web")
    engine = make_engine(tmp_path, sandbox_kubeconfig, {
        "infra": app("infra", sync="manual"),
        "web": app("web", sync="manual", dependsOn=["infra"]),
    })
    stopper.append(engine)
    await engine.start()
    infra, web = engine.apps["infra"], engine.apps["web"]
    assert infra.sync_status == SyncStatus.OUT_OF_SYNC

    blocked = await engine.sync("web", who="tester")
    assert not blocked.ok
    assert "'infra'" in blocked.message and "not ready" in blocked.message, blocked.message
    assert get(kubectl, "", "namespace", "web") is None, "nothing of web is applied"
    assert web.sync_status == SyncStatus.OUT_OF_SYNC

    done = await engine.sync("infra", who="tester")
    assert done.ok, done.message
    assert infra.sync_status == SyncStatus.SYNCED and infra.health == Health.HEALTHY
    outcome = await engine.sync("web", who="tester")
    assert outcome.ok, outcome.message
    assert web.sync_status == SyncStatus.SYNCED and web.health == Health.HEALTHY
    assert get(kubectl, "web", "deployment", "web") is not None
    assert [r["app"] for r in engine.history.syncs("web")] == ["web"]  # the blocked attempt applied nothing


def ingress(name: str, ns: str) -> dict[str, Any]:
    """An Ingress: Progressing until an ingress controller writes its address (the sandbox runs none)."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
        "spec": {"rules": [{"host": "db.example.org", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]},
    }


async def test_an_auto_app_syncs_once_its_dependency_becomes_ready(
    sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path, stopper: list[Engine]
) -> None:
    """Both apps auto (interval 5 min): infra is applied at start but stays Progressing (its Ingress
    has no address), so web's auto-sync is blocked. Once infra is Synced and Healthy (the "ingress
    controller" writes the address: status, never drift), web syncs then, not an interval later."""
    repo = init_repo(tmp_path / "config-repo")
    write_docs(repo / "apps" / "infra" / "infra.yaml", [namespace("infra"), ingress("gw", "infra")])
    write_docs(repo / "apps" / "web" / "web.yaml", [namespace("web"), deployment("web", "web", "nginx:1.27", 1)])
    commit(repo, "infra and web")
    engine = make_engine(tmp_path, sandbox_kubeconfig, {
        "infra": app("infra", interval="5m"),
        "web": app("web", interval="5m", dependsOn=["infra"]),
    })
    stopper.append(engine)
    await engine.start()
    infra, web = engine.apps["infra"], engine.apps["web"]
    assert infra.sync_status == SyncStatus.SYNCED and infra.health == Health.PROGRESSING, infra.health_reason
    assert web.sync_status == SyncStatus.OUT_OF_SYNC
    assert get(kubectl, "", "namespace", "web") is None, "web was applied before infra was ready"

    kubectl("-n", "infra", "patch", "ingress", "gw", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.10"}]}}}))
    await wait_for(lambda: infra.health == Health.HEALTHY, what="infra Healthy")
    assert infra.sync_status == SyncStatus.SYNCED and not infra.drifted
    await wait_for(lambda: web.sync_status == SyncStatus.SYNCED and web.health == Health.HEALTHY,
                   what="web synced once infra was ready")
    assert get(kubectl, "web", "deployment", "web") is not None


# ----- prune -------------------------------------------------------------------------------------------------


async def test_prune_respects_the_opt_out_annotation_and_foreign_objects(
    sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path, stopper: list[Engine]
) -> None:
    repo = init_repo(tmp_path / "config-repo")
    write_docs(repo / "apps" / "pr" / "pr.yaml", [
        namespace("pr"),
        configmap("stays", "pr"),
        configmap("keep-me", "pr", annotations={PRUNE_ANNOTATION: "disabled"}),
        configmap("gone", "pr"),
        configmap("reborn", "pr"),
        configmap("swapped", "pr"),
    ])
    commit(repo, "pr")
    engine = make_engine(tmp_path, sandbox_kubeconfig, {"pr": app("pr", prune=True)})
    stopper.append(engine)
    await engine.start()
    pr = engine.apps["pr"]
    await wait_for(lambda: pr.sync_status == SyncStatus.SYNCED and pr.health == Health.HEALTHY, what="pr synced")
    for name in ("stays", "keep-me", "gone", "reborn", "swapped"):
        assert (get(kubectl, "pr", "configmap", name) or {})["metadata"]["labels"][APP_LABEL] == "pr"

    # "swapped" is replaced behind our back by a foreign object of the same name (no label of ours)
    # while the inventory still lists it; then git drops it, with "keep-me", "gone" and "reborn".
    swapped_ref = ObjRef("", "ConfigMap", "pr", "swapped")
    assert swapped_ref in engine.inventory.get("pr")
    kubectl("-n", "pr", "delete", "configmap", "swapped")
    foreign_configmap(kubectl, "swapped")
    write_docs(repo / "apps" / "pr" / "pr.yaml", [namespace("pr"), configmap("stays", "pr")])
    sha = commit(repo, "pr: drop keep-me, gone, reborn and swapped")
    await wait_for(lambda: pr.revision is not None and pr.revision.sha == sha, what="pr at the new commit")
    await wait_for(lambda: get(kubectl, "pr", "configmap", "gone") is None, what="gone pruned")
    await wait_for(lambda: get(kubectl, "pr", "configmap", "reborn") is None, what="reborn pruned")
    await wait_for(lambda: pr.sync_status == SyncStatus.SYNCED, what="pr synced again")
    keep = get(kubectl, "pr", "configmap", "keep-me")
    assert keep is not None, "an object annotated driftdeck.io/prune: disabled was pruned"
    swapped = get(kubectl, "pr", "configmap", "swapped")
    assert swapped is not None and swapped["data"] == {"owner": "someone-else"}, "a foreign object was pruned"

    # Created by kubectl with a pruned object's name: not ours, never pruned by later syncs.
    foreign_configmap(kubectl, "reborn")
    write_docs(repo / "apps" / "pr" / "pr.yaml", [namespace("pr"), configmap("stays", "pr", "2")])
    sha = commit(repo, "pr: stays v2")
    await wait_for(lambda: pr.revision is not None and pr.revision.sha == sha, what="pr at the next commit")
    await wait_for(lambda: (get(kubectl, "pr", "configmap", "stays") or {}).get("data") == {"v": "2"},
                   what="stays v2 applied")
    outcome = await engine.sync("pr", who="tester")
    assert outcome.ok and outcome.pruned == 0, outcome.message
    for name in ("keep-me", "reborn", "swapped"):
        assert get(kubectl, "pr", "configmap", name) is not None, f"{name} was pruned"
    assert (get(kubectl, "pr", "configmap", "reborn") or {}).get("data") == {"owner": "someone-else"}
    assert pr.sync_status == SyncStatus.SYNCED and pr.pending == 0
