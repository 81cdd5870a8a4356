"""``driftdeck transition``/``transitions`` through the CLI, as subprocesses: disabling the
transition into a stage holds a running ``driftdeck run`` before it (through the command
queue), a transition written to the store while nobody runs the pipeline holds a later run,
enabling releases it; and every operator command leaves an audit row (variable names only)."""

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
SECRET = "hunter2-not-for-the-audit-log"

GATED: dict[str, Any] = {
    "source": "app", "trigger": {"branches": ["nothing"]}, "stages": [
        # Waits for the file in the variable GATE_FILE, so the test decides when the run reaches the transition.
        # A timeout, so a failed test never leaves the loop running.
        {"name": "build", "actions": [{"name": "compile", "timeout": "90s",
                                       "run": 'while [ ! -f "$GATE_FILE" ]; do sleep 0.1; done; echo built'}]},
        {"name": "deploy", "actions": [{"name": "ship", "run": "echo deployed"}]},
    ],
}


@pytest.fixture
def ws(sandbox_kubeconfig: str, tmp_path: Path) -> dict[str, Any]:
    cfg_path = make_workspace(tmp_path, sandbox_kubeconfig)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["pipelines"]["gated"] = GATED
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    gate = tmp_path / "gate"
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return {"tmp": tmp_path, "config": str(cfg_path), "store": str(tmp_path / "runs.db"), "env": env, "gate": gate,
            "history": tmp_path / "state" / "driftdeck" / "history.db"}


def cli(ws: dict[str, Any], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "driftdeck", *args, "--store", ws["store"]],
                          capture_output=True, text=True, env=ws["env"], cwd=str(ROOT), timeout=timeout)


def popen_run(ws: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "driftdeck", "run", "gated", "--var", f"GATE_FILE={ws['gate']}",
                             *args, "-c", ws["config"],
                             "--store", ws["store"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ws["env"], cwd=str(ROOT))


def wait_until(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {value!r}")


def the_run(ws: dict[str, Any]) -> dict[str, Any] | None:
    from core.pipelines.store import RunStore

    if not Path(ws["store"]).exists():
        return None
    with RunStore(ws["store"]) as store:
        rows = store.runs("gated", limit=5)
        return store.run(rows[0]["id"]) if rows else None


def stage_status(row: dict[str, Any], stage: str) -> str:
    return next((str(s["status"]) for s in row["stages"] if s["stage"] == stage), "")


def held(ws: dict[str, Any]) -> dict[str, Any] | None:
    row = the_run(ws)
    if row and str(row["status"]) == "Waiting" and "transition" in row["message"] and "disabled" in row["message"]:
        return row
    return None


def listed(ws: dict[str, Any]) -> list[dict[str, Any]]:
    p = cli(ws, "transitions", "-o", "json")
    assert p.returncode == 0, p.stderr
    rows: list[dict[str, Any]] = json.loads(p.stdout)
    return rows


def audit_rows(ws: dict[str, Any]) -> list[dict[str, Any]]:
    from core.history import History

    with History(ws["history"]) as hist:
        return list(reversed(hist.audit(limit=100)))


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"run did not finish:\n{out}\n{err}") from None
    return proc.returncode, out, err


def test_disable_while_running_holds_the_run_and_enable_releases_it(ws: dict[str, Any]) -> None:
    from driftdeck.commands.reconcile import who

    proc = popen_run(ws, "--var", f"SECRET={SECRET}")
    try:
        wait_until(lambda: (r := the_run(ws)) and stage_status(r, "build") == "InProgress", 30, "build running")
        p = cli(ws, "transition", "gated", "deploy", "--disable", "--reason", "change freeze")
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert "in the store" not in p.stdout, p.stdout  # the running process took it
        assert "disabled the transition to deploy of gated" in p.stdout
        [t] = listed(ws)
        assert (t["pipeline"], t["stage"], t["who"], t["reason"]) == ("gated", "deploy", who(), "change freeze")
        assert t["ts"] > 0
        ws["gate"].write_text("go")
        row = wait_until(lambda: held(ws), 30, "the run held before deploy")
        assert stage_status(row, "build") == "Succeeded"
        assert stage_status(row, "deploy") == "Waiting", row["stages"]
        assert "deploy" in row["message"], row["message"]
        time.sleep(1.0)
        assert held(ws), "the run left the disabled transition"
        text = cli(ws, "transitions")
        assert text.returncode == 0 and "change freeze" in text.stdout and "gated" in text.stdout
        p = cli(ws, "transition", "gated", "deploy", "--enable")
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert "enabled the transition to deploy of gated" in p.stdout and "in the store" not in p.stdout
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, (out, err)
    assert "[deploy/ship] deployed" in out
    assert listed(ws) == []
    row = the_run(ws)
    assert row is not None and str(row["status"]) == "Succeeded"

    rows = audit_rows(ws)
    assert [(r["action"], r["target"]) for r in rows] == [("run", "gated"), ("transition", "gated"),
                                                          ("transition", "gated")], rows
    assert all(r["who"] == who() for r in rows)
    run, off, on = rows
    assert run["args"]["variables"] == ["GATE_FILE", "SECRET"] and row["id"] in run["result"]
    assert off["args"] == {"stage": "deploy", "enabled": False, "reason": "change freeze"}
    assert on["args"]["enabled"] is True and on["args"]["stage"] == "deploy"
    assert SECRET not in json.dumps(rows)


def test_transition_disabled_with_nobody_running_holds_a_later_run(ws: dict[str, Any]) -> None:
    from driftdeck.commands.reconcile import who

    p = cli(ws, "transition", "gated", "deploy", "--disable", "--reason", "not today")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "in the store" in p.stdout, p.stdout
    assert [(t["pipeline"], t["stage"], t["reason"]) for t in listed(ws)] == [("gated", "deploy", "not today")]
    ws["gate"].write_text("go")
    proc = popen_run(ws, "--var", f"SECRET={SECRET}")
    try:
        row = wait_until(lambda: held(ws), 30, "the later run held before deploy")
        assert stage_status(row, "deploy") == "Waiting"
        p = cli(ws, "transition", "gated", "deploy", "--enable")
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert "in the store" not in p.stdout, p.stdout  # the run's process released it at once
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, (out, err)
    assert listed(ws) == []
    run_id = row["id"]

    # Other operator commands are audited too, with the run id as target (errors included).
    stop = cli(ws, "stop", run_id, "--wait", "1")
    assert stop.returncode == 2
    bad = cli(ws, "approve", "no-such-run", "ship", "-m", "lgtm")
    assert bad.returncode == 2

    rows = audit_rows(ws)
    assert [(r["action"], r["target"]) for r in rows] == [
        ("transition", "gated"), ("run", "gated"), ("transition", "gated"), ("stop", run_id),
        ("approve", "no-such-run")], rows
    assert all(r["who"] == who() for r in rows)
    assert rows[0]["result"].startswith("disabled") and "store" in rows[0]["result"]
    assert rows[1]["args"]["variables"] == ["GATE_FILE", "SECRET"]
    assert rows[3]["result"].startswith("error")
    assert rows[4]["args"] == {"action": "ship", "message": "lgtm"} and rows[4]["result"].startswith("error")
    assert SECRET not in json.dumps(rows)
