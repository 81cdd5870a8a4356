"""The pipeline verbs through the CLI, as subprocesses: ``run`` (variables, ``--stage``,
failures), ``runs``, ``logs``, ``retry`` of a finished run nobody executes, ``stop --abandon``
of a running ``driftdeck run``, and ``trace`` after a promote and sync (the e2e workspace)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_pipeline_e2e import make_workspace

ROOT = Path(__file__).resolve().parents[2]

EXTRA: dict[str, Any] = {
    "vars": {"source": "app", "trigger": {"branches": ["nothing"]}, "stages": [
        {"name": "first", "actions": [{"name": "hello", "run": 'echo "K is $K"; echo "var is $VAR_K"'}]},
        {"name": "second", "actions": [{"name": "later", "run": "echo second ran"}]},
    ]},
    "flaky": {"source": "app", "trigger": {"branches": ["nothing"]}, "stages": [
        {"name": "check", "actions": [{"name": "read", "run": 'cat "$MARKER"'}]},
        {"name": "after", "actions": [{"name": "done", "run": "echo after ran"}]},
    ]},
    "slow": {"source": "app", "trigger": {"branches": ["nothing"]}, "stages": [
        {"name": "wait", "actions": [{"name": "nap", "run": "echo napping; sleep 60"}]},
    ]},
}


@pytest.fixture
def ws(sandbox_kubeconfig: str, tmp_path: Path) -> dict[str, Any]:
    cfg_path = make_workspace(tmp_path, sandbox_kubeconfig)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["pipelines"].update(EXTRA)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return {"tmp": tmp_path, "config": str(cfg_path), "store": str(tmp_path / "runs.db"), "env": env}


def cli(ws: dict[str, Any], *args: str, config: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    extra = ["-c", ws["config"]] if config else []
    return subprocess.run([sys.executable, "-m", "driftdeck", *args, *extra, "--store", ws["store"]],
                          capture_output=True, text=True, env=ws["env"], cwd=str(ROOT), timeout=timeout)


def popen(ws: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "driftdeck", *args, "-c", ws["config"], "--store", ws["store"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ws["env"], cwd=str(ROOT))


def run_id_of(out: str) -> str:
    first = next(line for line in out.splitlines() if line.startswith("run "))
    return first.split()[1]


def runs(ws: dict[str, Any], pipeline: str) -> list[dict[str, Any]]:
    p = cli(ws, "runs", pipeline, "-o", "json")
    assert p.returncode == 0, p.stderr
    rows: list[dict[str, Any]] = json.loads(p.stdout)
    return rows


def actions(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``stage/action`` -> the latest attempt."""
    out: dict[str, dict[str, Any]] = {}
    for s in row["stages"]:
        for a in s["actions"]:
            out[f"{s['stage']}/{a['action']}"] = a
    return out


def run_row(ws: dict[str, Any], run_id: str) -> dict[str, Any]:
    from core.pipelines.store import RunStore

    with RunStore(ws["store"]) as store:
        row = store.run(run_id)
    assert row is not None
    return row


def wait_until(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_with_variable_streams_the_log_and_logs_reprints_it(ws: dict[str, Any]) -> None:
    p = cli(ws, "run", "vars", "--var", "K=hello-world", config=True)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "[first/hello] K is hello-world" in p.stdout, p.stdout
    assert "[first/hello] var is hello-world" in p.stdout
    assert "[second/later] second ran" in p.stdout
    run_id = run_id_of(p.stdout)
    assert f"run {run_id} Succeeded" in p.stdout
    [row] = runs(ws, "vars")
    assert row["id"] == run_id and row["status"] == "Succeeded" and row["variables"] == {"K": "hello-world"}
    logs = cli(ws, "logs", run_id, "hello")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == ["K is hello-world", "var is hello-world"]
    every = cli(ws, "logs", run_id)
    assert "[second/later#1] second ran" in every.stdout, every.stdout
    as_json = [json.loads(line) for line in cli(ws, "logs", run_id, "hello", "-o", "json").stdout.splitlines()]
    assert as_json[0] == {"stage": "first", "action": "hello", "attempt": 1, "line": "K is hello-world"}
    bad = cli(ws, "run", "vars", "--var", "novalue", config=True)
    assert bad.returncode == 2 and "expected K=V" in bad.stderr


def test_run_from_a_stage_runs_only_it_and_later(ws: dict[str, Any]) -> None:
    p = cli(ws, "run", "vars", "--stage", "second", config=True)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "second ran" in p.stdout and "first/hello" not in p.stdout
    row = run_row(ws, run_id_of(p.stdout))
    acts = actions(row)
    assert "first/hello" not in acts or acts["first/hello"]["status"] != "Succeeded", acts
    assert acts["second/later"]["status"] == "Succeeded"


def test_failure_then_retry_failed_only_in_process(ws: dict[str, Any]) -> None:
    marker = ws["tmp"] / "marker.txt"
    p = cli(ws, "run", "flaky", "--var", f"MARKER={marker}", config=True)
    assert p.returncode == 1, (p.stdout, p.stderr)
    run_id = run_id_of(p.stdout)
    [row] = runs(ws, "flaky")
    assert row["id"] == run_id and row["status"] == "Failed", row
    assert row["message"], row
    acts = actions(run_row(ws, run_id))
    assert acts["check/read"]["status"] == "Failed" and acts["check/read"]["message"], acts
    assert "after/done" not in acts or acts["after/done"]["status"] != "Succeeded"

    marker.write_text("fixed now\n")
    r = cli(ws, "retry", run_id, "check", "--failed-only", "--wait", "2", config=True)
    assert r.returncode == 0, (r.stdout, r.stderr)
    row = run_row(ws, run_id)
    assert str(row["status"]) == "Succeeded", row
    acts = actions(row)
    assert acts["check/read"]["attempt"] == 2 and acts["after/done"]["status"] == "Succeeded", acts
    logs = cli(ws, "logs", run_id, "read")
    assert "fixed now" in logs.stdout, logs.stdout
    again = cli(ws, "retry", run_id, "check", "--wait", "1", config=True)
    assert again.returncode == 2 and "cannot be retried" in (again.stdout + again.stderr), (again.stdout, again.stderr)


def test_stop_abandon_kills_the_running_action(ws: dict[str, Any]) -> None:
    proc = popen(ws, "run", "slow")
    try:
        def started() -> str | None:
            rows = runs(ws, "slow")
            if rows and any(a["status"] == "InProgress" for a in actions(run_row(ws, rows[0]["id"])).values()):
                return str(rows[0]["id"])
            return None

        run_id = wait_until(started, 30, "the sleep to start")
        t0 = time.monotonic()
        s = cli(ws, "stop", run_id, "--abandon")
        assert s.returncode == 0, (s.stdout, s.stderr)
        assert f"stopping {run_id}" in s.stdout
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 20
        assert proc.returncode == 1, (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    row = run_row(ws, run_id)
    assert str(row["status"]) == "Stopped", row
    assert str(actions(row)["wait/nap"]["status"]) == "Abandoned", row
    assert "[wait/nap] napping" in out


def test_trace_after_promote_and_sync(ws: dict[str, Any]) -> None:
    tmp = ws["tmp"]
    app = tmp / "app-repo"
    from tests.integration.gitrepo import commit, git

    (app / "src" / "version.txt").write_text("2\n")
    sha = commit(app, "app v2")
    proc = popen(ws, "run", "web")
    try:
        def waiting() -> str | None:
            rows = runs(ws, "web")
            if rows and actions(run_row(ws, rows[0]["id"])).get("deploy/gate", {}).get("status") == "Waiting":
                return str(rows[0]["id"])
            return None

        run_id = wait_until(waiting, 30, "the approval gate")
        a = cli(ws, "approve", run_id, "gate", "-m", "ok")
        assert a.returncode == 0, (a.stdout, a.stderr)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cfg_head = git(tmp / "config-repo", "rev-parse", "HEAD")
    t = cli(ws, "trace", "web", "-o", "json", config=True)
    assert t.returncode == 0, (t.stdout, t.stderr)
    trace = json.loads(t.stdout)
    assert trace["run"]["id"] == run_id and trace["run"]["status"] == "Succeeded", trace
    assert trace["commit"]["sha"] == cfg_head and trace["sync"]["revision"] == cfg_head, trace
    assert trace["commit"]["trailers"]["Driftdeck-Run"] == run_id
    assert trace["source_revision"]["sha"] == sha and trace["source_revision"]["subject"] == "app v2"
    text = cli(ws, "trace", "web", config=True)
    assert text.returncode == 0 and run_id in text.stdout and sha[:7] in text.stdout, text.stdout
