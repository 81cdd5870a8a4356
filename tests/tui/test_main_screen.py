"""The main screen, driven through Textual's pilot with a real EventBus + StateModel."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input, Log

from core.events import DriftDetected, DriftResolved, RunStarted, StageChanged
from core.model import ObjRef
from tui.app import FLUSH_INTERVAL, DriftdeckApp, HelpScreen
from tui.sample import T0, SampleClient, payments_drift, sample_client


def make_app(client: SampleClient | None = None) -> DriftdeckApp:
    return DriftdeckApp(client or sample_client(), cluster="sandbox", clock=lambda: T0, utc=True)


def row(app: DriftdeckApp, name: str) -> list[str]:
    return [str(c) for c in app.apps_table.get_row(name)]


def shown(app: DriftdeckApp) -> list[str]:
    return [str(k.value) for k in app.apps_table.rows]


def activity(app: DriftdeckApp) -> list[str]:
    return list(app.query_one("#activity", Log).lines)


async def settle(pilot: Any) -> None:
    await pilot.pause(FLUSH_INTERVAL * 2.5)


async def test_initial_rows_come_from_the_snapshot() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert shown(app) == ["api", "billing", "infra", "payments", "web"]
        assert row(app, "web") == ["web", "Synced", "Healthy", "9f8e7d6", "0", "2m ago ok"]
        assert row(app, "payments")[1] == "Drifted" and row(app, "payments")[4] == "1"
        assert row(app, "billing")[1] == "Suspended"
        assert row(app, "api")[1:3] == ["OutOfSync", "Progressing"]
        pipes = app.pipelines_table
        assert [str(k.value) for k in pipes.rows] == ["api", "web", "worker"]
        web = [str(c) for c in pipes.get_row("web")]
        assert web[:3] == ["web", "#42", "‖ Waiting 6m"]
        assert web[3] == "✔ build  ✔ test  ‖ release  · deploy"
        assert str(pipes.get_row("worker")[2]).startswith("✘ Failed")
        header = str(app.query_one("#header").render())
        assert "sandbox (in-process)" in header and "1 waiting" in header
        assert "READ-ONLY" not in header


async def test_read_only_is_in_the_header() -> None:
    app = DriftdeckApp(sample_client(), cluster="sandbox", clock=lambda: T0, utc=True, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "READ-ONLY" in str(app.query_one("#header").render())


async def test_drift_detected_then_resolved_updates_the_row_in_place() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.apps_table
        web_drift = DriftDetected(
            app="web",
            ref=ObjRef("apps", "Deployment", "web", "web"),
            fields=(".spec.replicas",),
            managers=("kubectl-scale",),
            ts=T0,
        )
        flushes = app.flushes
        client.publish(web_drift)
        # Buffered, not applied per event: the row is unchanged until the next batch.
        assert row(app, "web")[1] == "Synced"
        await settle(pilot)
        assert row(app, "web")[1] == "Drifted"
        assert app.flushes > flushes
        assert table.row_count == 5  # patched, not rebuilt
        assert app.query_one("#header").render().plain.count("2 drifted") == 1
        assert any("DRIFT" in line and "web" in line and "kubectl-scale" in line for line in activity(app))

        client.publish(DriftResolved(app="web", ref=web_drift.ref, how="self-heal", ts=T0 + 1))
        await settle(pilot)
        assert row(app, "web")[1] == "Synced"
        assert activity(app)[-1].split()[1:3] == ["RESOLVED", "web"]


async def test_a_burst_of_events_is_coalesced_into_few_batches() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        before = app.flushes
        ref = payments_drift().ref
        for i in range(200):
            client.publish(DriftResolved(app="payments", ref=ref, how="sync", ts=T0 + i))
            client.publish(payments_drift(T0 + i))
        await settle(pilot)
        assert app.flushes - before <= 3
        assert row(app, "payments")[1] == "Drifted"
        assert len(activity(app)) <= 500  # bounded feed, newest last
        assert "DRIFT" in activity(app)[-1]


async def test_a_pipeline_row_is_reread_when_its_run_changes() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        run = client._runs["web-42"]
        run["stages"][2]["status"] = "Succeeded"
        run["stages"][2]["actions"][0].update(status="Succeeded", finished=T0 - 10)
        run["stages"][3].update(status="InProgress", started=T0 - 10)
        # The row is re-read only when an event about the pipeline arrives.
        assert "‖ release" in str(app.pipelines_table.get_row("web")[3])
        client.publish(StageChanged(pipeline="web", run_id="web-42", stage="deploy", status="InProgress", ts=T0))
        await settle(pilot)
        cells_ = [str(c) for c in app.pipelines_table.get_row("web")]
        assert cells_[3] == "✔ build  ✔ test  ✔ release  ● deploy"
        assert cells_[2].startswith("● InProgress")
        assert any("STAGE" in line and "#42 deploy InProgress" in line for line in activity(app))


async def test_no_pipelines_says_so() -> None:
    client = SampleClient()
    client.model.add_app("web", source="config")
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert str(app.pipelines_table.get_row_at(0)[0]) == "no pipelines"
        client._pipelines = [{"name": "web", "source": "app", "stages": ["build"]}]
        client._runs["web-1"] = {**sample_client()._runs["web-42"], "id": "web-1"}
        client.publish(RunStarted(pipeline="web", run_id="web-1", revision_sha="a1b2c3d", ts=T0))
        await settle(pilot)
        assert [str(k.value) for k in app.pipelines_table.rows] == ["web"]


async def test_slash_filters_the_apps_table() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("p", "a", "y")
        await pilot.pause()
        assert shown(app) == ["payments"]
        # Events for filtered-out apps still update the model, not the view.
        client.publish(DriftDetected(app="web", ref=ObjRef("apps", "Deployment", "web", "web"), ts=T0))
        await settle(pilot)
        assert shown(app) == ["payments"]
        await pilot.press("escape")
        await pilot.pause()
        assert shown(app) == ["api", "billing", "infra", "payments", "web"]
        assert row(app, "web")[1] == "Drifted"


async def test_question_mark_opens_help_listing_bindings() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-body").render())
        assert "Destructive actions" in text
        for binding_id in ("quit", "help", "filter", "sync", "revert", "run", "approve", "stop", "open"):
            assert f"({binding_id})" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_q_quits() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


# ----- snapshots ------------------------------------------------------------------------------


async def _with_activity(pilot: Any) -> None:
    app = pilot.app
    assert isinstance(app, DriftdeckApp)
    client = app.client
    assert isinstance(client, SampleClient)
    client.publish(payments_drift(T0 - 5))
    client.publish(StageChanged(pipeline="web", run_id="web-42", stage="release", status="InProgress", ts=T0 - 3))
    await pilot.pause(FLUSH_INTERVAL * 3)
    app.workers.cancel_group(app, "events")
    app.apps_table.focus()  # fixed cursor
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_main_screen_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_with_activity)
