"""End to end: a config repository with two apps, the engine against the sandbox
over HTTP, real git, real SQLite history."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from core.engine import Engine
from core.events import DriftDetected, DriftResolved, Event, SyncFinished
from core.history import History
from core.inventory import Inventory
from core.model import Health, ObjRef, SyncStatus
from sandbox.server import SandboxServer
from tests.integration.clients import wait_for
from tests.integration.gitrepo import commit, deployment, git, init_repo, namespace, service, write_docs

ROOT = Path(__file__).resolve().parents[2]


def make_workspace(tmp: Path, kubeconfig: str) -> Path:
    repo = init_repo(tmp / "config-repo")
    write_docs(repo / "apps" / "web" / "web.yaml", [namespace("web"), deployment("web", "web", "nginx:1.27", 2), service("web", "web")])
    write_docs(repo / "apps" / "api" / "api.yaml", [namespace("api"), deployment("api", "api", "api:1.0")])
    commit(repo, "initial apps")
    config = {
        "clusters": {"local": {"kubeconfig": kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"}},
        "apps": {
            "web": {"source": "config", "path": "apps/web", "cluster": "local", "namespace": "web",
                    "sync": "auto", "selfHeal": True, "prune": True, "timeout": 30},
            "api": {"source": "config", "path": "apps/api", "cluster": "local", "namespace": "api",
                    "sync": "manual", "prune": True, "timeout": 30},
        },
    }
    (tmp / "driftdeck.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp / "driftdeck.yaml"


@pytest.fixture
async def engine(sandbox: SandboxServer, sandbox_kubeconfig: str, tmp_path: Path) -> AsyncIterator[Engine]:
    cfg_path = make_workspace(tmp_path, sandbox_kubeconfig)
    config, problems = load_config(str(cfg_path))
    assert problems == []
    db = tmp_path / "history.db"
    eng = Engine(config, history=History(db), inventory=Inventory(db), cache_dir=tmp_path / "cache", who="tester")
    yield eng
    await eng.stop()


def collect(engine: Engine) -> list[Event]:
    seen: list[Event] = []
    engine.bus.on(seen.append)
    return seen


async def test_auto_app_syncs_to_healthy_and_manual_app_waits(engine: Engine, kubectl: Any) -> None:
    events = collect(engine)
    await engine.start()
    web = engine.apps["web"]
    await wait_for(lambda: web.health == Health.HEALTHY and web.sync_status == SyncStatus.SYNCED, what="web healthy")
    api = engine.apps["api"]
    assert api.sync_status == SyncStatus.OUT_OF_SYNC and api.pending == 2
    assert kubectl("get", "ns", "api", check=False).returncode == 1, "a manual app is not applied"
    outcome = await engine.sync("api", who="tester")
    assert outcome.ok, outcome.message
    assert api.sync_status == SyncStatus.SYNCED and api.health == Health.HEALTHY
    finished = [e for e in events if isinstance(e, SyncFinished)]
    assert {e.app for e in finished} == {"web", "api"} and all(e.ok for e in finished)
    hist = engine.history.syncs("api")
    assert hist[0]["ok"] is True and hist[0]["who"] == "tester"


async def test_foreign_image_change_is_drift_attributed_and_self_healed(engine: Engine, kubectl: Any) -> None:
    events = collect(engine)
    await engine.start()
    web = engine.apps["web"]
    await wait_for(lambda: web.health == Health.HEALTHY, what="web healthy")
    kubectl("-n", "web", "patch", "deployment", "web", "--type", "json",
            "-p", '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"evil:latest"}]')
    drift = await wait_for(lambda: next((e for e in events if isinstance(e, DriftDetected)), None), what="drift")
    assert drift.ref == ObjRef("apps", "Deployment", "web", "web")
    assert drift.fields == ('.spec.template.spec.containers[name="web"].image',)
    assert drift.managers == ("kubectl-patch",)
    resolved = await wait_for(lambda: next((e for e in events if isinstance(e, DriftResolved)), None), what="heal")
    assert resolved.how == "self-heal"
    live = json.loads(kubectl("-n", "web", "get", "deploy", "web", "-o", "json").stdout)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    rows = engine.history.drifts("web")
    assert rows and rows[0]["resolved"] and rows[0]["how"] == "self-heal"


async def test_manual_app_drift_stays_out_of_sync_until_sync(engine: Engine, kubectl: Any) -> None:
    await engine.start()
    await engine.sync("api", who="tester")
    api = engine.apps["api"]
    kubectl("-n", "api", "scale", "deployment", "api", "--replicas", "3")
    await wait_for(lambda: api.sync_status == SyncStatus.OUT_OF_SYNC, what="api drifted")
    ref = ObjRef("apps", "Deployment", "api", "api")
    assert api.drifted[ref].fields == (".spec.replicas",)
    await asyncio.sleep(0.5)
    assert api.sync_status == SyncStatus.OUT_OF_SYNC, "no self-heal for this app"
    outcome = await engine.sync("api", who="tester")
    assert outcome.ok and api.sync_status == SyncStatus.SYNCED and not api.drifted


async def test_deleted_object_is_missing_and_new_commit_auto_syncs(engine: Engine, kubectl: Any, tmp_path: Path) -> None:
    events = collect(engine)
    await engine.start()
    web = engine.apps["web"]
    await wait_for(lambda: web.health == Health.HEALTHY, what="web healthy")
    kubectl("-n", "web", "delete", "service", "web")
    missing = await wait_for(lambda: next((e for e in events if isinstance(e, DriftDetected) and e.missing), None), what="missing")
    assert missing.ref == ObjRef("", "Service", "web", "web")
    await wait_for(lambda: kubectl("-n", "web", "get", "svc", "web", check=False).returncode == 0, what="recreated")
    # A new commit: the auto app applies it (local source watched).
    repo = tmp_path / "config-repo"
    write_docs(repo / "apps" / "web" / "web.yaml", [namespace("web"), deployment("web", "web", "nginx:1.28", 2)])
    sha = commit(repo, "web: nginx 1.28, drop the service")
    await wait_for(lambda: web.revision is not None and web.revision.sha == sha, timeout=30, what="new revision")
    await wait_for(lambda: kubectl("-n", "web", "get", "svc", "web", check=False).returncode == 1, what="pruned")
    live = json.loads(kubectl("-n", "web", "get", "deploy", "web", "-o", "json").stdout)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"


async def test_revert_last_commits_and_restores_cluster(engine: Engine, kubectl: Any, tmp_path: Path) -> None:
    await engine.start()
    await engine.sync("api", who="tester")
    repo = tmp_path / "config-repo"
    before = git(repo, "rev-parse", "HEAD")
    write_docs(repo / "apps" / "api" / "api.yaml", [namespace("api"), deployment("api", "api", "api:2.0")])
    bad = commit(repo, "api: 2.0")
    outcome = await engine.sync("api", who="tester")
    assert outcome.ok
    outcome = await engine.revert("api", last=True, who="tester")
    assert outcome.ok, outcome.message
    head = git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-parse", "HEAD^") == bad
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith('Revert "api: 2.0"') and f"This reverts commit {bad}" in message
    assert git(repo, "diff", before, head, "--", "apps") == ""
    live = json.loads(kubectl("-n", "api", "get", "deploy", "api", "-o", "json").stdout)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "api:1.0"
    assert engine.history.reverts("api")[0]["new_sha"] == head


def run_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "driftdeck", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})), timeout=120)


def test_cli_validate_status_diff_sync_history(sandbox: SandboxServer, sandbox_kubeconfig: str, tmp_path: Path) -> None:
    cfg = make_workspace(tmp_path, sandbox_kubeconfig)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert run_cli(tmp_path, "validate", "-c", str(cfg), env=env).returncode == 0
    diff = run_cli(tmp_path, "diff", "api", "-c", str(cfg), env=env)
    assert diff.returncode == 1, diff.stderr
    assert "+ Deployment.apps/api/api create" in diff.stdout
    sync = run_cli(tmp_path, "sync", "api", "-c", str(cfg), "-o", "json", env=env)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert json.loads(sync.stdout)["health"] == "Healthy"
    same = run_cli(tmp_path, "diff", "api", "-c", str(cfg), "-o", "json", env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert {i["action"] for i in json.loads(same.stdout)["items"]} == {"unchanged"}
    status = run_cli(tmp_path, "status", "-c", str(cfg), "-o", "json", env=env)
    rows = {r["app"]: r for r in json.loads(status.stdout)}
    assert rows["api"]["sync"] == "Synced" and rows["api"]["health"] == "Healthy"
    assert rows["web"]["sync"] == "OutOfSync"
    hist = run_cli(tmp_path, "history", "api", "-c", str(cfg), "-o", "json", env=env)
    assert json.loads(hist.stdout)[0]["kind"] == "sync"


async def test_client_api_snapshot_subscribe_commands_and_audit(engine: Engine) -> None:
    from core.client import LocalClient
    from core.events import AppSuspended

    client = LocalClient(engine, who="alice@bastion")
    sub = client.subscribe()
    outcome = await client.sync("api")
    assert outcome.ok
    snap = client.snapshot()
    assert snap["apps"]["api"]["sync_status"] == "Synced" and snap["apps"]["api"]["health"] == "Healthy"
    await client.suspend("api")
    seen = []
    while (ev := sub.get_nowait()) is not None:
        seen.append(ev)
    assert any(isinstance(e, AppSuspended) and e.who == "alice@bastion" for e in seen)
    assert engine.apps["api"].suspended and engine.inventory.suspended("api")
    audit = engine.history.audit(target="api")
    assert [a["action"] for a in audit][:2] == ["suspend", "sync"] and audit[0]["who"] == "alice@bastion"
    await client.resume("api")
    assert not engine.inventory.suspended("api")
    assert client.history("api")[0]["kind"] in ("audit", "sync")
