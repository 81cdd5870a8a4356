"""``driftdeck demo``: sandbox, demo workspace, engine and pipelines headless, events printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from driftdeck.demo import create_workspace, git

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, XDG_STATE_HOME=str(tmp / "state"), XDG_CACHE_HOME=str(tmp / "cache"),
                XDG_CONFIG_HOME=str(tmp / "config"), PYTHONUNBUFFERED="1")


def test_workspace_is_created_once_and_reused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cfg = create_workspace(ws, str(ws / "kubeconfig"))
    config = yaml.safe_load(cfg.read_text())
    assert set(config["apps"]) == {"web", "api", "worker"} and set(config["pipelines"]) == {"web"}
    head = git(ws / "config-repo", "rev-parse", "HEAD")
    assert git(ws / "config-repo", "log", "-1", "--format=%an <%ae>") == "driftdeck demo <demo@localhost>"
    assert create_workspace(ws, str(ws / "kubeconfig")) == cfg
    assert git(ws / "config-repo", "rev-parse", "HEAD") == head, "reused, not recreated"


def test_demo_prints_the_event_stream(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    proc = subprocess.run(
        [sys.executable, "-m", "driftdeck", "demo", "--headless", "--dir", str(ws), "--exit-after", "25"],
        capture_output=True, text=True, env=_env(tmp_path), cwd=str(ROOT), timeout=60,
    )
    out = proc.stdout
    assert proc.returncode == 0, (out, proc.stderr)
    assert f"export KUBECONFIG={ws / 'kubeconfig'}" in out
    assert f"driftdeck status -c {ws / 'driftdeck.yaml'}" in out

    def seen(pattern: str) -> bool:
        return re.search(pattern, out, re.MULTILINE) is not None

    assert seen(r"SyncStatusChanged\s+web\s+status=Synced"), out
    assert seen(r"HealthChanged\s+web\s+health=Healthy"), out
    assert seen(r"HealthChanged\s+worker\s+health=Degraded .*ProgressDeadlineExceeded"), out
    assert seen(r"SyncStatusChanged\s+api\s+status=OutOfSync"), out
    assert not seen(r"SyncStarted\s+api\b"), "api is manual"
    assert seen(r"ApprovalRequested\s+pipeline=web run_id=\S+ stage=release action=approve"), out
    assert seen(r"-> driftdeck approve web-\S+ release\.approve"), out
