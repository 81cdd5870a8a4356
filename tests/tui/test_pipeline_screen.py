"""The Pipeline screen, driven through Textual's pilot with the sample client (real EventBus)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Log, Static

from core.events import ActionChanged, ApprovalDecided, LogLines, RunStarted, StageChanged
from tui.app import FLUSH_INTERVAL, DriftdeckApp, HelpScreen
from tui.operator import ConfirmScreen
from tui.run_format import action_rows, default_action, retry_stage, run_cells, run_status, waiting_actions
from tui.sample import T0, SampleClient, sample_client
from tui.screens.pipeline import PipelineScreen, TraceScreen


def make_app(client: SampleClient | None = None, read_only: bool = False) -> DriftdeckApp:
    return DriftdeckApp(client or sample_client(), cluster="sandbox", clock=lambda: T0, utc=True,
                        read_only=read_only)


async def settle(pilot: Any) -> None:
    await pilot.pause(FLUSH_INTERVAL * 3)


async def open_pipeline(pilot: Any, name: str = "web") -> PipelineScreen:
    app = pilot.app
    await pilot.pause()
    app.open_pipeline(name)
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PipelineScreen)
    return screen


def cells(table: DataTable[Any], key: str) -> list[str]:
    return [str(c) for c in table.get_row(key)]


def log_lines(screen: PipelineScreen) -> list[str]:
    return list(screen.query_one("#pl-log", Log).lines)


async def wait_calls(pilot: Any, client: SampleClient, n: int = 1) -> None:
    for _ in range(40):
        if len(client.calls) >= n:
            return
        await pilot.pause(0.05)


# ----- what the screen shows ------------------------------------------------------------------


async def test_shows_the_run_its_actions_and_the_waiting_approval() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot)
        runs = screen.runs_table
        assert [str(k.value) for k in runs.rows] == ["web-42"]
        assert cells(runs, "web-42") == ["#42", "‖ Waiting", "a1b2c3d", "commit", "14:06:40", "6m40"]
        acts = screen.actions_table
        assert [str(k.value) for k in acts.rows] == ["build/image", "test/unit", "release/approve", "deploy/"]
        assert cells(acts, "build/image")[:5] == ["build", "image", "✔ Succeeded", "1", "41s"]
        assert cells(acts, "test/unit")[2] == "✔ Succeeded"
        approve = cells(acts, "release/approve")
        assert approve[2] == "‖ Waiting"
        assert approve[5] == "promote web to the cluster? — press a to approve, n to reject"
        assert cells(acts, "deploy/")[1:3] == ["—", "· Pending"]
        header = str(screen.query_one("#pl-title", Static).render())
        for part in ("web", "web-42", "‖ Waiting", "a1b2c3d fix login", "commit"):
            assert part in header
        banner = screen.query_one("#pl-approval", Static)
        assert banner.display and "release.approve is waiting: promote web to the cluster?" in str(banner.render())
        # The run page opens on what needs the operator: the waiting approval.
        assert screen.action_key == "release/approve"
        assert "READ-ONLY" not in str(screen.query_one("#pl-flag", Static).render())


async def test_enter_on_the_main_pipelines_table_opens_the_screen() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.pipelines_table.focus()
        app.pipelines_table.move_cursor(row=app.pipelines_table.get_row_index("worker"))
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PipelineScreen) and screen.pipeline == "worker"
        assert screen.run_id == "worker-8"
        # A failed run opens on the failed action, with its output.
        assert screen.action_key == "test/unit"
        assert cells(screen.actions_table, "test/unit")[2] == "✘ Failed"
        assert cells(screen.actions_table, "test/unit")[5] == "exit status 1"
        assert "AssertionError: expected 3 retries, got 2" in log_lines(screen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PipelineScreen)


async def test_selecting_an_action_shows_its_log() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot)
        assert app.focused is screen.actions_table
        await pilot.press("up", "up")  # release.approve -> test.unit -> build.image
        await pilot.pause()
        assert screen.action_key == "build/image"
        assert log_lines(screen) == ["building web 42", "step 1/3: fetch base image", "step 2/3: compile",
                                     "step 3/3: push registry.example.org/web", "IMAGE_TAG=web-a1b2c3d"]
        assert "build.image" in str(screen.query_one("#pl-log", Log).border_title)
        await pilot.press("down")
        await pilot.pause()
        assert log_lines(screen)[-1] == "4 passed in 1.02s"


async def test_live_log_lines_are_appended_in_one_write_for_the_selected_action_only() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot)
        screen.select_action("build", "image")
        await pilot.pause()
        log = screen.query_one("#pl-log", Log)
        writes: list[int] = []
        original = log.write_lines

        def counting(lines: Any, scroll_end: bool | None = None) -> Log:
            lines = list(lines)
            writes.append(len(lines))
            return original(lines, scroll_end)

        log.write_lines = counting  # type: ignore[method-assign]
        client.publish(LogLines(pipeline="web", run_id="web-42", stage="build", action="image", lines=("extra line",)))
        client.publish(LogLines(pipeline="web", run_id="web-42", stage="build", action="image",
                                lines=("more", "and more")))
        client.publish(LogLines(pipeline="web", run_id="web-42", stage="test", action="unit", lines=("other",)))
        await pilot.pause(0.3)
        assert log_lines(screen)[-3:] == ["extra line", "more", "and more"]
        assert "other" not in log_lines(screen)
        assert writes == [3]  # one batch, one write

        # A batch already in the file read at selection (offset below what was read) is not shown twice.
        shown = len(log_lines(screen))
        client.publish(LogLines(pipeline="web", run_id="web-42", stage="build", action="image",
                                lines=("step 3/3: push registry.example.org/web",), offset=3))
        client.publish(LogLines(pipeline="web", run_id="web-42", stage="build", action="image",
                                lines=("after the read",), offset=5))
        await pilot.pause(0.3)
        assert log_lines(screen)[shown:] == ["after the read"]

        screen.select_action("release", "approve")
        await pilot.pause()
        client.publish(LogLines(pipeline="web", run_id="web-42", stage="build", action="image", lines=("late",)))
        await pilot.pause(0.3)
        assert "late" not in log_lines(screen)


async def test_status_changes_patch_the_tables_in_place() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot)
        run = client._runs["web-42"]
        release = run["stages"][2]
        release["actions"][0].update(status="Succeeded", message="approved by alice", finished=T0 - 10)
        release.update(status="Succeeded", finished=T0 - 10)
        deploy = run["stages"][3]
        deploy.update(status="InProgress", started=T0 - 10)
        deploy["actions"] = [{"action": "promote", "attempt": 1, "status": "InProgress", "message": "",
                              "exit_code": None, "outputs": {}, "started": T0 - 10, "finished": None, "who": "",
                              "comment": "", "log_lines": 0, "log_bytes": 0}]
        client.publish(
            ApprovalDecided(pipeline="web", run_id="web-42", stage="release", action="approve", approved=True,
                            who="alice", ts=T0 - 10),
            StageChanged(pipeline="web", run_id="web-42", stage="deploy", status="InProgress", ts=T0 - 10),
            ActionChanged(pipeline="web", run_id="web-42", stage="deploy", action="promote", status="InProgress",
                          ts=T0 - 10),
        )
        await settle(pilot)
        acts = screen.actions_table
        assert cells(acts, "release/approve")[2] == "✔ Succeeded"
        assert cells(acts, "release/approve")[5] == "approved by alice"
        assert cells(acts, "deploy/promote")[1:3] == ["promote", "● InProgress"]
        assert not screen.query_one("#pl-approval", Static).display
        assert cells(screen.runs_table, "web-42")[1] == "● InProgress"


async def test_a_new_run_is_followed_when_the_latest_run_is_shown() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot)
        new = copy.deepcopy(client._runs["web-42"])
        new.update(id="web-43", started=T0 - 5, revision="b2c3d4e5f6a7", trigger="manual")
        for stage in new["stages"]:
            stage.update(status="Pending", started=None, finished=None, actions=[])
        new["stages"][0].update(status="InProgress", started=T0 - 5)
        client._runs["web-43"] = new
        client.publish(RunStarted(pipeline="web", run_id="web-43", revision_sha="b2c3d4e", ts=T0 - 5))
        await settle(pilot)
        assert [str(k.value) for k in screen.runs_table.rows] == ["web-43", "web-42"]
        assert screen.run_id == "web-43"
        assert screen.runs_table.cursor_row == 0
        assert cells(screen.actions_table, "build/")[2] == "● InProgress"

        # Looking at an older run: a newer one is listed, not followed.
        screen.runs_table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert screen.run_id == "web-42"
        newer = copy.deepcopy(new)
        newer.update(id="web-44", started=T0 - 1)
        client._runs["web-44"] = newer
        client.publish(RunStarted(pipeline="web", run_id="web-44", revision_sha="b2c3d4e", ts=T0 - 1))
        await settle(pilot)
        assert [str(k.value) for k in screen.runs_table.rows] == ["web-44", "web-43", "web-42"]
        assert screen.run_id == "web-42"
        assert screen.runs_table.cursor_row == 2


# ----- operator actions -----------------------------------------------------------------------


async def test_a_then_y_approves_the_waiting_action() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_calls(pilot, client)
        assert client.calls == [("approve", ("web-42", "approve"))]
        assert isinstance(app.screen, PipelineScreen)


async def test_n_then_y_rejects_the_waiting_action() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_calls(pilot, client)
        assert client.calls == [("reject", ("web-42", "approve"))]


async def test_x_then_y_stops_the_run() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot)
        await pilot.press("x")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ModalScreen) and not isinstance(modal, PipelineScreen)
        # A yes/no confirmation, or CodePipeline's "stop and wait / stop and abandon" choice.
        await pilot.press("y" if isinstance(modal, ConfirmScreen) else "w")
        await wait_calls(pilot, client)
        assert client.calls == [("stop", ("web-42",))]


async def test_capital_r_retries_the_failed_stage() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot, "worker")
        await pilot.press("R")
        await wait_calls(pilot, client)
        assert client.calls == [("retry", ("worker-8", "test"))]


async def test_p_starts_a_run() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot)
        await pilot.press("p")
        await wait_calls(pilot, client)
        assert client.calls == [("start_run", ("web",))]


async def test_nothing_to_do_warns_instead_of_failing() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot, "api")  # api-17 succeeded
        messages: list[str] = []
        app.notify = lambda message, **kw: messages.append(message)  # type: ignore[method-assign]
        for key in ("a", "n", "R", "x"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, PipelineScreen)
        assert any("nothing to approve" in m for m in messages)
        assert any("nothing to reject" in m for m in messages)
        assert any("nothing to retry" in m for m in messages)
        assert any("nothing to stop" in m and "Succeeded" in m for m in messages)
        assert client.calls == []


async def test_read_only_blocks_every_operator_action() -> None:
    client = sample_client()
    app = make_app(client, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot)
        assert "READ-ONLY" in str(screen.query_one("#pl-flag", Static).render())
        for action in ("run_pipeline", "approve", "reject", "retry", "stop"):
            assert screen.check_action(action, ()) is None
        assert screen.check_action("trace", ()) is True
        for key in ("p", "a", "n", "R", "x"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, PipelineScreen), key
        await pilot.pause(0.2)
        assert client.calls == []
        assert "press a to approve" not in cells(screen.actions_table, "release/approve")[5]


async def test_a_pipeline_without_runs() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot, "nightly")
        assert screen.run_id is None and screen.detail is None
        assert str(screen.runs_table.get_row_at(0)[0]) == "no runs yet"
        assert "no runs yet" in str(screen.query_one("#pl-title", Static).render())
        await pilot.press("a", "x", "R")
        await pilot.pause()
        assert isinstance(app.screen, PipelineScreen) and client.calls == []


async def test_help_lists_the_screen_bindings_with_their_ids() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-body").render())
        assert "pipeline" in text
        for binding_id in ("back", "run", "approve", "reject", "retry", "stop", "trace", "follow"):
            assert f"(pipeline.{binding_id})" in text
        for binding in PipelineScreen.BINDINGS:
            assert isinstance(binding, Binding) and str(binding.id).startswith("pipeline.")


# ----- trace, follow, layout ----------------------------------------------------------------------


async def test_t_shows_the_trace() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await open_pipeline(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TraceScreen)
        body = str(app.screen.query_one("#trace-body", Static).render())
        for step in ("source commit", "pipeline run", "config commit", "sync", "live"):
            assert step in body
        assert "web 9f8e7d6  Synced / Healthy" in body
        note = str(app.screen.query_one("#trace-note", Static).render())
        assert "no successful sync recorded" in note
        assert "the selected run web-42 (a1b2c3d) is not what is live" in note
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, PipelineScreen)


async def test_f_toggles_follow_and_tab_cycles_focus() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_pipeline(pilot)
        log = screen.query_one("#pl-log", Log)
        assert log.auto_scroll
        await pilot.press("f")
        assert not log.auto_scroll and "paused" in str(log.border_subtitle)
        await pilot.press("f")
        assert log.auto_scroll
        assert app.focused is screen.actions_table
        await pilot.press("tab")
        assert app.focused is log
        await pilot.press("tab")
        assert app.focused is screen.runs_table


async def test_narrow_terminal_stacks_the_panes() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_pipeline(pilot)
        runs = screen.query_one("#pl-runs-box").region
        acts = screen.query_one("#pl-actions-box").region
        log = screen.query_one("#pl-log").region
        assert runs.width == acts.width == log.width == 80
        assert runs.bottom <= acts.y < acts.bottom < log.y
        assert log.height >= 6
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        runs = screen.query_one("#pl-runs-box").region
        acts = screen.query_one("#pl-actions-box").region
        assert runs.y == acts.y and runs.right <= acts.x


# ----- pure helpers ---------------------------------------------------------------------------


def test_run_format_helpers() -> None:
    client = sample_client()
    web, worker, api = client._runs["web-42"], client._runs["worker-8"], client._runs["api-17"]
    assert run_status(web) == "Waiting" and run_status(api) == "Succeeded"
    assert waiting_actions(web) == [("release", "approve", "promote web to the cluster?")]
    assert retry_stage(worker) == "test" and retry_stage(api) is None
    assert default_action(web) == "release/approve"
    assert default_action(worker) == "test/unit"
    assert default_action(api) == "deploy/rollout"
    assert [k for k, _ in action_rows(api, T0)] == ["build/image", "test/unit", "deploy/promote", "deploy/rollout"]
    assert [c.plain for c in run_cells(api, T0, utc=True)] == ["#17", "✔ Succeeded", "77aa01c", "commit",
                                                                 "13:51:40", "9m40"]
    # Retries: only the latest attempt of an action is a row.
    retried = copy.deepcopy(worker)
    second = dict(retried["stages"][1]["actions"][0], attempt=2, status="Succeeded", message="")
    retried["stages"][1]["actions"].append(second)
    rows = dict(action_rows(retried, T0))
    assert [c.plain for c in rows["test/unit"]][2:4] == ["✔ Succeeded", "2"]


# ----- snapshots ------------------------------------------------------------------------------


async def _run_view(pilot: Any) -> None:
    app = pilot.app
    assert isinstance(app, DriftdeckApp)
    screen = await open_pipeline(pilot)
    screen.select_action("build", "image")
    await pilot.pause(FLUSH_INTERVAL * 3)
    app.workers.cancel_group(app, "events")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_pipeline_screen_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_run_view)
