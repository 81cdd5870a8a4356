"""The console and the CLI verbs attached to a real daemon subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.daemon.remote import Address, RemoteClient
from core.history import History
from sandbox.server import SandboxServer
from tests.integration.daemon_helpers import ROOT, Daemon, running_daemon, workspace
from tests.tui.test_console_e2e import cell, confirm, until
from tui.app import DriftdeckApp


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="dd-sock-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def config(sandbox: SandboxServer, sandbox_kubeconfig: str, tmp_path: Path) -> Path:
    return workspace(tmp_path, sandbox_kubeconfig)


def cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(d.env(), SSH_CONNECTION="192.0.2.7 40000 192.0.2.1 22")
    return subprocess.run([sys.executable, "-m", "driftdeck", *args, "--connect", d.socket], capture_output=True,
                          text=True, cwd=str(ROOT), env=env, timeout=120)


def test_cli_verbs_use_the_daemon(config: Path, sock_dir: Path, tmp_path: Path) -> None:
    with running_daemon(config, sock_dir, tmp_path) as d:
        proc = cli(d, "diff", "web", "-o", "json")
        assert proc.returncode == 1, proc.stderr  # manual app not synced yet: a sync would create it
        items = json.loads(proc.stdout)["items"]
        assert {(i["kind"], i["action"]) for i in items} >= {("Deployment", "create"), ("Namespace", "create")}
        proc = cli(d, "sync", "web", "-o", "json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["ok"] is True
        proc = cli(d, "diff", "web")
        assert proc.returncode == 0 and "plan for web" in proc.stdout, (proc.stdout, proc.stderr)
        proc = cli(d, "status", "-o", "json")
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert [(r["app"], r["sync"]) for r in rows] == [("web", "Synced")]
        proc = cli(d, "suspend", "web")
        assert proc.returncode == 0 and "suspended (daemon)" in proc.stdout
        proc = cli(d, "history", "web", "-o", "json")
        assert proc.returncode == 0 and any(r["kind"] == "sync" for r in json.loads(proc.stdout))
        proc = cli(d, "sync", "nope")
        assert proc.returncode == 2 and "nope" in proc.stderr
    audit = History(tmp_path / "history.db").audit(10, target="web")
    sync = next(a for a in audit if a["action"] == "sync")
    assert sync["who"] == "root" and "ssh=192.0.2.7 40000 192.0.2.1 22" in sync["terminal"]


def test_cli_says_when_the_daemon_is_not_there(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "driftdeck", "status", "--connect", str(tmp_path / "none.sock")],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=60,
                          env=dict(os.environ, XDG_STATE_HOME=str(tmp_path)))
    assert proc.returncode == 2 and "cannot attach to the daemon" in proc.stderr


async def test_console_attached_to_the_daemon_acts_and_survives_a_restart(config: Path, sock_dir: Path,
                                                                         tmp_path: Path) -> None:
    d = Daemon(config, str(sock_dir / "d.sock"), tmp_path).start()
    client = await RemoteClient(Address(d.socket)).connect()
    app = DriftdeckApp(client, cluster="daemon", mode=f"attached {d.socket}", refresh_hz=20)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: cell(app, "apps", "web", 1) == "OutOfSync", "web from the daemon")
            assert "attached" in app.query_one("#header").render().plain
            await until(pilot, lambda: "slow" in app.pipelines_table.rows, "pipelines from the daemon")
            await pilot.press("s")
            await confirm(pilot)
            await until(pilot, lambda: cell(app, "apps", "web", 1) == "Synced", "synced through the daemon")
            d.stop()
            await until(pilot, lambda: "RECONNECTING" in app.query_one("#header").render().plain,
                        "the lost link on screen")
            d.start()
            await until(pilot, lambda: "RECONNECTING" not in app.query_one("#header").render().plain,
                        "reattached", timeout=30)
            await until(pilot, lambda: cell(app, "apps", "web", 1) == "Synced", "state after the restart")
    finally:
        await client.close()
        d.stop()
    audit = History(tmp_path / "history.db").audit(10, target="web")
    assert audit[-1]["action"] == "sync" and audit[-1]["who"] == "root"


def test_pipeline_verbs_use_the_daemon(config: Path, sock_dir: Path, tmp_path: Path) -> None:
    with running_daemon(config, sock_dir, tmp_path) as d:
        env = dict(d.env(), SSH_CONNECTION="192.0.2.9 40001 192.0.2.1 22")
        run = subprocess.Popen([sys.executable, "-m", "driftdeck", "run", "ship", "--connect", d.socket],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=env)
        assert run.stdout is not None
        first = run.stdout.readline()
        assert first.startswith("run ship-") and first.rstrip().endswith("(daemon)"), first
        run_id = first.split()[1]
        seen: list[str] = []
        while not any("waiting for approval" in line for line in seen) and len(seen) < 10:
            seen.append(run.stdout.readline())
        assert "waiting for approval" in seen[-1], seen
        proc = cli(d, "approve", run_id, "gate", "-m", "lgtm")
        assert proc.returncode == 0 and "approve: done (daemon)" in proc.stdout, proc.stderr
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, (out, err)
        assert f"run {run_id} Succeeded" in out
        proc = cli(d, "stop", run_id)
        assert proc.returncode == 2 and run_id in proc.stderr  # finished: nothing to stop, said so
    audit = History(tmp_path / "history.db").audit(20)
    approve = next(a for a in audit if a["action"] == "approve")
    assert approve["who"] == "root" and approve["target"] == run_id and approve["result"] == "ok"
    assert "ssh=192.0.2.7 40000 192.0.2.1 22" in approve["terminal"]  # the approving terminal
    started = next(a for a in audit if a["action"] == "run")
    assert started["target"] == "ship" and started["result"] == f"ok: {run_id}"
    assert "ssh=192.0.2.9 40001 192.0.2.1 22" in started["terminal"]  # the terminal that ran it
