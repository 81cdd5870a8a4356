"""End to end: a commit to an app repository triggers its pipeline (real processes, real git),
an approval gates the promotion to the config repository, the app syncs to the sandbox,
and ``trace`` links what is live back to the run and the commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from core.engine import Engine
from core.history import History
from core.inventory import Inventory
from core.model import Health
from core.pipelines.service import PipelineService, trace_app
from core.pipelines.store import RunStore
from core.pipelines.types import Status
from sandbox.server import SandboxServer
from tests.integration.clients import wait_for
from tests.integration.gitrepo import commit, deployment, git, init_repo, namespace, write_docs

PIPELINE: dict[str, Any] = {
    "source": "app",
    "trigger": {"branches": ["main"]},
    "stages": [
        {"name": "build", "actions": [
            {"name": "compile", "run": 'cat src/version.txt && echo "IMAGE_TAG=web-$(cat src/version.txt)" >> "$DRIFTDECK_OUTPUT"'},
            {"name": "test", "run": ["/bin/sh", "-c", "test -s src/version.txt && echo tests passed"]},
        ]},
        {"name": "deploy", "actions": [
            {"name": "gate", "approval": {"message": "ship it?"}},
            {"name": "promote", "runOrder": 2, "promote": {
                "source": "config", "file": "apps/web/web.yaml",
                "set": {'spec.template.spec.containers[name=web].image': "registry.example.org/web:${REVISION_SHORT}"},
            }},
            {"name": "rollout", "runOrder": 3, "sync": {"app": "web", "timeout": "60s"}},
        ]},
    ],
}


def make_workspace(tmp: Path, kubeconfig: str) -> Path:
    cfg = init_repo(tmp / "config-repo")
    write_docs(cfg / "apps" / "web" / "web.yaml", [namespace("web"), deployment("web", "web", "nginx:1.27")])
    commit(cfg, "initial web")
    app = init_repo(tmp / "app-repo")
    (app / "src").mkdir()
    (app / "src" / "version.txt").write_text("1\n")
    commit(app, "app v1")
    config = {
        "clusters": {"local": {"kubeconfig": kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"},
                    "app": {"path": "./app-repo", "branch": "main"}},
        "apps": {"web": {"source": "config", "path": "apps/web", "cluster": "local", "namespace": "web",
                         "sync": "manual", "prune": True, "timeout": 60}},
        "pipelines": {"web": PIPELINE},
    }
    (tmp / "driftdeck.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp / "driftdeck.yaml"


@pytest.fixture
async def service(sandbox: SandboxServer, sandbox_kubeconfig: str, tmp_path: Path) -> AsyncIterator[PipelineService]:
    config, problems = load_config(str(make_workspace(tmp_path, sandbox_kubeconfig)))
    assert problems == []
    db = tmp_path / "history.db"
    eng = Engine(config, history=History(db), inventory=Inventory(db), cache_dir=tmp_path / "cache", who="tester")
    svc = PipelineService(eng, config, store=RunStore(tmp_path / "runs.db"), work_root=tmp_path / "work")
    assert svc.problems == []
    await eng.start()
    await svc.start()
    yield svc
    await svc.stop()
    await eng.stop()
    svc.store.close()


def _action(svc: PipelineService, run_id: str, stage: str, action: str) -> dict[str, Any] | None:
    run = svc.store.run(run_id)
    for s in run["stages"] if run else ():
        if s["stage"] == stage:
            for a in s["actions"]:
                if a["action"] == action:
                    return a
    return None


async def _triggered_run(svc: PipelineService, repo: Path) -> tuple[str, str]:
    (repo / "src" / "version.txt").write_text("2\n")
    sha = commit(repo, "app v2")
    run = await wait_for(lambda: next(iter(svc.scheduler.active), None), what="a run to start")

    def waiting() -> bool:
        if run not in svc.scheduler.active:  # ended before its approval: say how, not "not in progress"
            raise AssertionError(f"run {run} ended before the approval: {svc.store.run(run)}")
        return bool(svc.scheduler.pending_approvals(run))

    await wait_for(waiting, what="the approval to wait")
    return run, sha


async def test_commit_builds_approves_promotes_syncs_and_traces(service: PipelineService, tmp_path: Path) -> None:
    svc = service
    run_id, sha = await _triggered_run(svc, tmp_path / "app-repo")
    build = svc.store.run(run_id)
    assert build is not None and build["revision"] == sha and build["trigger"] == "commit"
    compile_ = _action(svc, run_id, "build", "compile")
    assert compile_ is not None and compile_["status"] is Status.SUCCEEDED
    assert compile_["outputs"] == {"IMAGE_TAG": "web-2"}
    assert list(svc.store.read_log(run_id, "build", "test")) [-1:] == ["tests passed"] or any(
        "tests passed" in line for line in svc.store.read_log(run_id, "build", "test"))
    svc.scheduler.approve(run_id, "gate", who="alice", comment="lgtm")
    assert await asyncio.wait_for(svc.scheduler.wait(run_id), 90) is Status.SUCCEEDED, svc.store.run(run_id)
    rt = svc.engine.apps["web"]
    assert rt.health == Health.HEALTHY
    cfg_head = git(tmp_path / "config-repo", "rev-parse", "HEAD")
    body = git(tmp_path / "config-repo", "log", "-1", "--format=%B")
    assert f"Driftdeck-Run: {run_id}" in body and f"Driftdeck-Source-Revision: {sha}" in body
    doc = next(d for d in yaml.safe_load_all((tmp_path / "config-repo" / "apps/web/web.yaml").read_text())
               if d["kind"] == "Deployment")
    assert doc["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.example.org/web:{sha[:7]}"
    trace = trace_app(svc.engine, svc.store, "web")
    assert trace["sync"]["revision"] == cfg_head and trace["sync"]["who"] == f"pipeline {run_id}"
    assert trace["commit"]["trailers"]["Driftdeck-Run"] == run_id
    assert trace["run"]["id"] == run_id and trace["run"]["status"] == "Succeeded"
    assert trace["source_revision"]["sha"] == sha and trace["source_revision"]["subject"] == "app v2"
    json.dumps(trace, default=str)


async def test_rejection_fails_the_run_and_keeps_the_comment(service: PipelineService, tmp_path: Path) -> None:
    svc = service
    run_id, _ = await _triggered_run(svc, tmp_path / "app-repo")
    before = git(tmp_path / "config-repo", "rev-parse", "HEAD")
    svc.scheduler.reject(run_id, "gate", who="bob", comment="not on a Friday")
    assert await asyncio.wait_for(svc.scheduler.wait(run_id), 30) is Status.FAILED
    gate = _action(svc, run_id, "deploy", "gate")
    assert gate is not None and gate["status"] is Status.FAILED
    assert gate["comment"] == "not on a Friday" and gate["who"] == "bob"
    assert git(tmp_path / "config-repo", "rev-parse", "HEAD") == before, "nothing promoted"


async def test_commit_on_another_branch_does_not_trigger(service: PipelineService, tmp_path: Path) -> None:
    svc = service
    repo = tmp_path / "app-repo"
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "src" / "version.txt").write_text("feature\n")
    commit(repo, "feature work")
    await asyncio.sleep(2.0)
    assert svc.scheduler.active == [] and svc.store.runs("web") == []


async def test_approval_from_the_commands_table(service: PipelineService, tmp_path: Path) -> None:
    """What ``driftdeck approve`` does from another process: a row the owning process executes."""
    from core.pipelines.service import CommandQueue

    svc = service
    run_id, _ = await _triggered_run(svc, tmp_path / "app-repo")
    other = CommandQueue(svc.store.path)
    try:
        cid = other.submit("approve", run_id, "gate", {"comment": "from afar"}, who="carol")
        result = await wait_for(lambda: other.result(cid), timeout=10, what="the command to be executed")
        assert result["ok"], result
        assert await asyncio.wait_for(svc.scheduler.wait(run_id), 90) is Status.SUCCEEDED
        gate = _action(svc, run_id, "deploy", "gate")
        assert gate is not None and gate["who"] == "carol" and gate["comment"] == "from afar"
        bad = other.submit("approve", run_id, "gate", who="carol")
        await asyncio.sleep(1.5)
        assert other.result(bad) is None, "nobody runs it any more: the CLI reports that"
    finally:
        other.close()


async def _cli(*args: str) -> tuple[int, str, str]:
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "driftdeck", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[2]),
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_approve_runs_and_logs(service: PipelineService, tmp_path: Path) -> None:
    svc = service
    store = str(tmp_path / "runs.db")
    run_id, _ = await _triggered_run(svc, tmp_path / "app-repo")
    code, out, err = await _cli("approve", run_id, "gate", "-m", "via cli", "--store", store)
    assert code == 0, (out, err)
    assert f"queued for the process running {run_id}" in out and "approved gate" in out
    assert await asyncio.wait_for(svc.scheduler.wait(run_id), 90) is Status.SUCCEEDED
    code, out, err = await _cli("runs", "web", "-o", "json", "--store", store)
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == [run_id]
    svc.store.flush_logs(5.0)
    code, out, err = await _cli("logs", run_id, "test", "--store", store)
    assert code == 0 and "tests passed" in out, (out, err)
    code, out, err = await _cli("approve", run_id, "gate", "--store", store, "--wait", "1")
    assert code == 2 and "no process picked the command up" in err, (out, err)


async def test_repo_declared_pipeline_and_path_filter(service: PipelineService, tmp_path: Path) -> None:
    """`.driftdeck/pipeline.yaml` is read at the triggering revision; its path filter decides."""
    svc = service
    repo = tmp_path / "app-repo"
    (repo / ".driftdeck").mkdir()
    (repo / ".driftdeck" / "pipeline.yaml").write_text(yaml.safe_dump({
        "name": "docs-check",
        "trigger": {"branches": ["main"], "paths": ["docs/**"]},
        "stages": [{"name": "check", "actions": [{"name": "lint", "run": ["/bin/sh", "-c", "ls docs && echo docs ok"]}]}],
    }))
    (repo / "docs").mkdir()
    (repo / "docs" / "guide.md").write_text("# guide\n")
    docs_sha = commit(repo, "docs: add a guide, declare docs-check")
    run = await wait_for(lambda: next(iter(svc.store.runs("docs-check")), None), what="docs-check to run")
    assert run["revision"] == docs_sha
    assert await asyncio.wait_for(svc.scheduler.wait(run["id"]), 60) is Status.SUCCEEDED
    assert any("docs ok" in line for line in svc.store.read_log(run["id"], "check", "lint"))
    # A commit that touches only src/: the config pipeline runs, docs-check does not.
    (repo / "src" / "version.txt").write_text("3\n")
    src_sha = commit(repo, "app v3")
    await wait_for(lambda: any(r["revision"] == src_sha for r in svc.store.runs("web")), what="web to run")
    await asyncio.sleep(1.0)
    assert [r["revision"] for r in svc.store.runs("docs-check")] == [docs_sha]
