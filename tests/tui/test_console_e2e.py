"""The console on a real engine, pipeline service, sandbox (over HTTP) and git repositories.

Driven through Textual's pilot, as an operator would: drift made with the official
kubernetes client appears on screen from the watch event and clears after a sync started
with ``s`` and confirmed with ``y``; revert makes a real git revert commit; pipeline runs
start, wait for approval, get approved, stopped and retried from keys and from the command
palette; ``--read-only`` blocks every one of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from textual.command import CommandPalette
from textual.pilot import Pilot

from core.client import LocalClient
from core.config import load_config
from core.engine import Engine
from core.history import History
from core.inventory import Inventory
from core.pipelines.service import PipelineService
from core.pipelines.store import RunStore
from sandbox.server import SandboxServer
from tests.integration.clients import api_client
from tests.integration.daemon_helpers import workspace
from tests.integration.gitrepo import commit, deployment, git, namespace, write_docs
from tui.app import DriftdeckApp
from tui.operator import ConfirmScreen, StopScreen


@dataclass
class Console:
    app: DriftdeckApp
    engine: Engine
    service: PipelineService
    tmp: Path
    marker: Path


@pytest.fixture
async def parts(sandbox: SandboxServer, sandbox_kubeconfig: str, tmp_path: Path) -> AsyncIterator[
        tuple[Engine, PipelineService, Path, Path]]:
    marker = tmp_path / "marker"  # slow waits for it; flaky fails until it exists
    flaky = {"source": "app", "trigger": {"manual": True}, "stages": [
        {"name": "test", "actions": [{"name": "unit", "run": ["/bin/sh", "-c", f'test -f "{marker}" && echo ok']}]},
    ]}
    path = workspace(tmp_path, sandbox_kubeconfig, {"flaky": flaky}, ns="tui-web")
    config, problems = load_config(str(path))
    assert problems == []
    db = tmp_path / "history.db"
    engine = Engine(config, history=History(db), inventory=Inventory(db), cache_dir=tmp_path / "cache", who="tester")
    service = PipelineService(engine, config, store=RunStore(tmp_path / "runs.db"), work_root=tmp_path / "work")
    await engine.start()
    await service.start()
    yield engine, service, tmp_path, marker
    await service.stop()
    await engine.stop()


def console(parts: tuple[Engine, PipelineService, Path, Path], read_only: bool = False) -> Console:
    engine, service, tmp, marker = parts
    app = DriftdeckApp(LocalClient(engine, "alice@tty1", service), cluster="sandbox", read_only=read_only,
                       refresh_hz=20)
    return Console(app, engine, service, tmp, marker)


async def until(pilot: Pilot[Any], cond: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Let the app run until ``cond()`` is truthy (real time: the engine and sandbox are real)."""
    waited = 0.0
    while waited < timeout:
        value = cond()
        if value:
            return value
        await pilot.pause(0.1)
        waited += 0.1
    raise AssertionError(f"timed out waiting for {what}")


def cell(app: DriftdeckApp, table: str, key: str, column: int) -> str:
    t = app.apps_table if table == "apps" else app.pipelines_table
    return str(t.get_row(key)[column]) if key in t.rows else ""


async def confirm(pilot: Pilot[Any], answer: str = "y") -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen | StopScreen), "the confirmation modal")
    await pilot.press(answer)
    await pilot.pause()


async def palette(pilot: Pilot[Any], text: str) -> None:
    """Open the command palette, type ``text`` and run the best match."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "the palette")
    await pilot.press(*text)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(pilot.app.screen, CommandPalette), "the palette to close")


async def select_pipeline(pilot: Pilot[Any], app: DriftdeckApp, name: str) -> None:
    table = app.pipelines_table
    table.focus()
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def test_drift_appears_from_the_watch_event_and_sync_clears_it(
        parts: tuple[Engine, PipelineService, Path, Path], sandbox_kubeconfig: str) -> None:
    c = console(parts)
    async with c.app.run_test(size=(120, 36)) as pilot:
        app = c.app
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "OutOfSync", "web OutOfSync (manual app)")
        await pilot.press("s")
        await confirm(pilot)
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "Synced", "web Synced after s, y")
        assert app.command_results[-1][:2] == ("sync web", True), app.command_results

        # A foreign write through the apiserver: the row turns Drifted from the watch event alone.
        apps_api = k8s.AppsV1Api(api_client(sandbox_kubeconfig))
        apps_api.patch_namespaced_deployment("web", "tui-web", {"spec": {"replicas": 4}})
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "Drifted", "the drift on screen")
        assert cell(app, "apps", "web", 4) == "1"
        assert "1 drifted" in app.query_one("#header").render().plain
        await until(pilot, lambda: any("DRIFT" in line and "Deployment/web" in line
                                       for line in app.query_one("#activity").lines), "the DRIFT line")

        # The app screen shows the drifted object and the field diff.
        await pilot.press("d")
        await until(pilot, lambda: type(app.screen).__name__ == "AppDetailScreen", "the app screen")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.screen_stack[0], "back on the main screen")

        # Sync from the command palette this time.
        app.apps_table.focus()
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"Sync web")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await confirm(pilot)
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "Synced", "drift cleared after the palette sync")
        assert cell(app, "apps", "web", 4) == "0"
        live = apps_api.read_namespaced_deployment("web", "tui-web")
        assert live.spec.replicas == 1
        audit = c.engine.history.audit(10, target="web")
        assert [a["action"] for a in audit][:2] == ["sync", "sync"] and audit[0]["who"] == "alice@tty1"


async def test_revert_with_confirm_makes_a_git_revert_and_syncs(
        parts: tuple[Engine, PipelineService, Path, Path], sandbox_kubeconfig: str) -> None:
    c = console(parts)
    repo = c.tmp / "config-repo"
    async with c.app.run_test(size=(120, 36)) as pilot:
        app = c.app
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "OutOfSync", "web OutOfSync")
        write_docs(repo / "apps" / "web" / "web.yaml",
                   [namespace("tui-web"), deployment("web", "tui-web", "nginx:1.27", replicas=3)])
        bad = commit(repo, "scale web to 3")
        await until(pilot, lambda: cell(app, "apps", "web", 3) == bad[:7], "the new revision on screen")
        await pilot.press("r")
        await confirm(pilot, "n")  # cancel first: nothing happens
        assert git(repo, "rev-parse", "HEAD") == bad
        await palette(pilot, "Revert web (last commit)")  # the palette's entry does the same
        await confirm(pilot)
        await until(pilot, lambda: git(repo, "rev-parse", "HEAD") != bad, "the revert commit")
        assert git(repo, "log", "-1", "--format=%s").startswith('Revert "scale web to 3"')
        assert git(repo, "rev-parse", "HEAD~1") == bad
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "Synced", "web synced at the revert")
        apps_api = k8s.AppsV1Api(api_client(sandbox_kubeconfig))
        assert apps_api.read_namespaced_deployment("web", "tui-web").spec.replicas == 1


def latest(c: Console, pipeline: str) -> dict[str, Any] | None:
    runs = c.service.store.runs(pipeline, 1)
    return c.service.store.run(runs[0]["id"]) if runs else None


async def test_run_approve_stop_and_retry_pipelines_from_keys(
        parts: tuple[Engine, PipelineService, Path, Path]) -> None:
    c = console(parts)
    async with c.app.run_test(size=(120, 36)) as pilot:
        app = c.app
        await until(pilot, lambda: set(app.pipelines_table.rows) >= {"ship", "slow", "flaky"}, "pipeline rows")

        # p runs the selected pipeline; the run waits for approval; a approves (with confirm).
        await select_pipeline(pilot, app, "ship")
        await pilot.press("p")
        await until(pilot, lambda: "Waiting" in cell(app, "pipelines", "ship", 2), "ship waiting for approval")
        assert "✔ build" in cell(app, "pipelines", "ship", 3)
        await pilot.press("a")
        await confirm(pilot)
        await until(pilot, lambda: "Succeeded" in cell(app, "pipelines", "ship", 2), "ship succeeded")
        run = latest(c, "ship")
        assert run is not None and run["trigger"] == "manual" and run["who"] == "alice@tty1"
        gate = run["stages"][1]["actions"][0]
        assert gate["who"] == "alice@tty1" and str(gate["status"]) == "Succeeded"

        # x stops a running run.
        await select_pipeline(pilot, app, "slow")
        await pilot.press("p")
        await until(pilot, lambda: "InProgress" in cell(app, "pipelines", "slow", 2), "slow running")
        await pilot.press("x")
        await confirm(pilot, "a")  # abandon: the sleep is terminated
        await until(pilot, lambda: "Stopped" in cell(app, "pipelines", "slow", 2), "slow stopped")
        slow = latest(c, "slow")
        assert slow is not None and str(slow["stages"][0]["actions"][0]["status"]) in ("Stopped", "Abandoned",
                                                                                        "Failed"), slow

        # A failed stage is retried with R once the cause is fixed.
        await select_pipeline(pilot, app, "flaky")
        await pilot.press("p")
        await until(pilot, lambda: "Failed" in cell(app, "pipelines", "flaky", 2), "flaky failed")
        c.marker.write_text("ok\n")
        await pilot.press("R")
        await until(pilot, lambda: "Succeeded" in cell(app, "pipelines", "flaky", 2), "flaky succeeded on retry")
        run = latest(c, "flaky")
        assert run is not None and [a["attempt"] for a in run["stages"][0]["actions"]] == [1, 2]


async def test_pipeline_commands_from_the_palette(parts: tuple[Engine, PipelineService, Path, Path]) -> None:
    c = console(parts)
    async with c.app.run_test(size=(120, 36)) as pilot:
        app = c.app
        await until(pilot, lambda: "ship" in app.pipelines_table.rows, "pipeline rows")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"Run pipeline ship")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: "Waiting" in cell(app, "pipelines", "ship", 2), "ship waiting")
        run = latest(c, "ship")
        assert run is not None
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*f"Approve {run['id']}")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await confirm(pilot)
        await until(pilot, lambda: "Succeeded" in cell(app, "pipelines", "ship", 2), "ship approved from the palette")

        # Stop (abandon) and retry from the palette too.
        await palette(pilot, "Run pipeline slow")
        await until(pilot, lambda: "InProgress" in cell(app, "pipelines", "slow", 2), "slow running")
        slow = latest(c, "slow")
        assert slow is not None
        await palette(pilot, f"Stop {slow['id']}")
        await confirm(pilot, "a")
        await until(pilot, lambda: "Stopped" in cell(app, "pipelines", "slow", 2), "slow stopped from the palette")
        await palette(pilot, "Run pipeline flaky")
        await until(pilot, lambda: "Failed" in cell(app, "pipelines", "flaky", 2), "flaky failed")
        c.marker.write_text("ok\n")
        flaky = latest(c, "flaky")
        assert flaky is not None
        await palette(pilot, f"Retry {flaky['id']} test")
        await until(pilot, lambda: "Succeeded" in cell(app, "pipelines", "flaky", 2), "flaky retried from the palette")


async def test_the_command_line_runs_the_same_actions(parts: tuple[Engine, PipelineService, Path, Path]) -> None:
    c = console(parts)
    async with c.app.run_test(size=(120, 36)) as pilot:
        app = c.app
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "OutOfSync", "web OutOfSync")
        await pilot.press("colon", *"sync web", "enter")
        await confirm(pilot)
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "Synced", "web synced from :sync web")
        await pilot.press("colon", *"sync nope", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)  # unknown app: an error, no modal


async def test_read_only_blocks_every_operator_action(parts: tuple[Engine, PipelineService, Path, Path]) -> None:
    c = console(parts, read_only=True)
    async with c.app.run_test(size=(120, 36)) as pilot:
        app = c.app
        await until(pilot, lambda: cell(app, "apps", "web", 1) == "OutOfSync", "web OutOfSync")
        assert "READ-ONLY" in app.query_one("#header").render().plain
        app.apps_table.focus()
        for key in ("s", "r", "z"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen), key
        await select_pipeline(pilot, app, "ship")
        for key in ("p", "a", "x", "R"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen), key
        await pilot.press("colon", *"sync web", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("colon", *"run ship", "enter")
        await pilot.pause(0.5)
        assert c.service.store.runs("ship", 1) == []
        assert cell(app, "apps", "web", 1) == "OutOfSync"
        assert app.command_results == []
        assert c.engine.history.audit(10) == []
        # The palette offers no operator entries.
        from tui.commands import entries

        titles = [e.title for e in entries(app)]
        assert "Open web" in titles and not any(t.startswith(("Sync", "Revert", "Run pipeline")) for t in titles)
