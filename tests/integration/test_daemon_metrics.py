"""``driftdeck daemon --metrics``: a real daemon subprocess, scraped over HTTP and parsed as
Prometheus text, reflects what happened: an app's sync status, a drift, a sync, an attached
client and a finished pipeline run."""

from __future__ import annotations

import shutil
import socket
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from core.daemon.remote import Address, RemoteClient
from core.events import ApprovalRequested, Event
from sandbox.server import SandboxServer
from tests.integration.clients import api_client, wait_for, wait_for_blocking
from tests.integration.daemon_helpers import Daemon, workspace

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="dd-sock-"))  # short: unix socket paths are limited to 108 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape_until(port: int, pred: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until ``pred`` holds (the daemon's state and its clients' mirrors move in step, not at once)."""
    last: list[Samples] = []

    def attempt() -> Samples | None:
        m = scrape(port)
        last[:] = [m]
        return m if pred(m) else None

    try:
        found: Samples = await wait_for_blocking(attempt, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last scrape: {last}") from None
    return found


def labelled(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def test_metrics_follow_syncs_drift_clients_and_runs(sandbox: SandboxServer, sandbox_kubeconfig: str,
                                                          tmp_path: Path, sock_dir: Path) -> None:
    config = workspace(tmp_path, sandbox_kubeconfig)
    port = free_port()
    d = Daemon(config, str(sock_dir / "d.sock"), tmp_path, ["--metrics", f"127.0.0.1:{port}"]).start()
    c: RemoteClient | None = None
    try:
        c = await RemoteClient(Address(d.socket)).connect()
        events: list[Event] = []
        c.bus.on(events.append)
        client = c

        # Before the first sync: one app, OutOfSync, nothing counted yet.
        await wait_for(lambda: client.snapshot()["apps"]["web"]["sync_status"] == "OutOfSync", what="web OutOfSync")
        first = await scrape_until(port, lambda m: value(m, "driftdeck_apps_by_sync", sync="OutOfSync") == 1,
                                   "apps_by_sync OutOfSync")
        assert sum(labelled(first, "driftdeck_apps_by_sync").values()) == 1
        assert labelled(first, "driftdeck_sync_duration_seconds_count") == {}
        assert (value(first, "driftdeck_clients") or 0) >= 1

        outcome = await c.sync("web")
        assert outcome.ok, outcome.message
        synced = await scrape_until(port, lambda m: value(m, "driftdeck_apps_by_sync", sync="Synced") == 1,
                                    "apps_by_sync Synced")
        assert (value(synced, "driftdeck_sync_duration_seconds_count", app="web", result="ok") or 0) >= 1
        assert value(synced, "driftdeck_app_drifted_objects", app="web") == 0

        # A foreign write: the daemon sees drift, and the metrics count it.
        k8s.AppsV1Api(api_client(sandbox_kubeconfig)).patch_namespaced_deployment(
            "web", "dd-web", {"spec": {"replicas": 3}})
        await wait_for(lambda: client.snapshot()["apps"]["web"]["drift_count"] == 1, what="the drift")
        drifted = await scrape_until(port, lambda m: (value(m, "driftdeck_drift_events_total", app="web") or 0) >= 1,
                                     "drift_events_total")
        assert value(drifted, "driftdeck_app_drifted_objects", app="web") == 1
        assert value(drifted, "driftdeck_apps_by_sync", sync="OutOfSync") == 1
        assert value(drifted, "driftdeck_apps_by_sync", sync="Synced") in (None, 0)
        assert (value(drifted, "driftdeck_sync_duration_seconds_count", app="web", result="ok") or 0) >= 1
        assert value(drifted, "driftdeck_sync_duration_seconds_count", app="web", result="failed") in (None, 0)
        assert (value(drifted, "driftdeck_clients") or 0) >= 1
        assert (value(drifted, "driftdeck_events_published") or 0) >= len(events)
        assert sum(labelled(drifted, "driftdeck_apps_by_health").values()) == 1

        # A pipeline run that needs an approval: counted once it has finished, by its status.
        assert labelled(drifted, "driftdeck_pipeline_runs_total") == {}
        run_id = await c.start_run("ship")
        await wait_for(lambda: any(isinstance(e, ApprovalRequested) and e.run_id == run_id for e in events),
                       what="the approval request")
        await c.approve(run_id, "gate", "ok")
        await wait_for_blocking(lambda: str((client.run(run_id) or {}).get("status")) == "Succeeded",
                                what="the run to succeed")
        done = await scrape_until(port, lambda m: bool(labelled(m, "driftdeck_pipeline_runs_total")),
                                  "pipeline_runs_total")
        assert labelled(done, "driftdeck_pipeline_runs_total") == {
            frozenset({("pipeline", "ship"), ("status", "Succeeded")}): 1.0}
    finally:
        if c is not None:
            await c.close()
        code = d.stop()
    assert code == 0, d.logs()
    # The metrics listener went away with the daemon.
    with pytest.raises(OSError):
        scrape(port)
