"""`driftdeck watch -o json`: the loops headless, one JSON line per event."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.server import SandboxServer
from tests.integration.test_reconcile_e2e import ROOT, make_workspace


def test_watch_prints_events_as_json_lines(sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path) -> None:
    cfg = make_workspace(tmp_path, sandbox_kubeconfig)
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "driftdeck", "watch", "-c", str(cfg), "-o", "json"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[dict[str, Any]] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(json.loads(line))

    threading.Thread(target=reader, daemon=True).start()

    def wait(pred: Any, timeout: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if pred(ev):
                return ev
        raise AssertionError("event not seen")

    try:
        done = wait(lambda e: e["type"] == "SyncFinished" and e["app"] == "web")
        assert done["ok"] is True
        wait(lambda e: e["type"] == "HealthChanged" and e["app"] == "web" and e["health"] == "Healthy")
        kubectl("-n", "web", "label", "service", "web", "extra=1")  # not in our field set: no drift
        kubectl("-n", "web", "patch", "service", "web", "-p", '{"spec":{"selector":{"app":"other"}}}')
        drift = wait(lambda e: e["type"] == "DriftDetected")
        assert drift["app"] == "web" and drift["fields"] == [".spec.selector"] and drift["managers"] == ["kubectl-patch"]
        healed = wait(lambda e: e["type"] == "DriftResolved")
        assert healed["how"] == "self-heal"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
