"""The App screen (resources, diff, history, commits), driven through Textual's pilot with
the sample client's real EventBus + StateModel."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Input, Static

from core.events import DriftDetected, DriftResolved
from core.model import ObjRef
from tui.app import FLUSH_INTERVAL, DriftdeckApp, HelpScreen
from tui.detail_format import (
    history_cells,
    is_drifted,
    object_row,
    short_object,
    side_by_side_text,
    sort_objects,
)
from tui.operator import ConfirmScreen
from tui.sample import PREV_SHA, SHA, T0, SampleClient, payments_drift, sample_client
from tui.screens.app_detail import AppDetailScreen

DEP = payments_drift().ref.inventory_id
SECRET = ObjRef("", "Secret", "payments", "payments-db").inventory_id
FIELD = ".spec.template.spec.containers[name=api].image"


def make_app(client: SampleClient | None = None, read_only: bool = False) -> DriftdeckApp:
    return DriftdeckApp(client or sample_client(), cluster="sandbox", clock=lambda: T0, utc=True,
                        read_only=read_only)


def screen_of(app: DriftdeckApp) -> AppDetailScreen:
    assert isinstance(app.screen, AppDetailScreen)
    return app.screen


def objects(app: DriftdeckApp) -> DataTable[Any]:
    return screen_of(app).query_one("#ad-objects", DataTable)


def cells(table: DataTable[Any], key: str) -> list[str]:
    return [str(c) for c in table.get_row(key)]


def diff_text(app: DriftdeckApp) -> str:
    screen = screen_of(app)
    head = str(screen.query_one("#ad-diff-head", Static).render())
    body = str(screen.query_one("#ad-diff-body", Static).render())
    return head + "\n" + body


def header(app: DriftdeckApp) -> str:
    return str(screen_of(app).query_one("#ad-header", Static).render())


async def open_payments(app: DriftdeckApp, pilot: Any, diff: bool = True) -> AppDetailScreen:
    await pilot.pause()
    app.open_app("payments", diff=diff)
    await pilot.pause()
    await pilot.pause()
    return screen_of(app)


async def settle(pilot: Any) -> None:
    for _ in range(4):
        await pilot.pause()
    commands = [w for w in pilot.app.workers if w.group == "commands"]
    if commands:  # an empty list would wait for every worker, the endless event stream too
        await pilot.app.workers.wait_for_complete(commands)
    await pilot.pause()


async def test_enter_on_the_apps_table_opens_the_app_screen() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.apps_table.move_cursor(row=app.apps_table.get_row_index("payments"))
        await pilot.press("enter")
        await pilot.pause()
        screen = screen_of(app)
        assert screen.app_name == "payments"
        assert app.focused is objects(app)  # not opened for the diff: the resources have the focus
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AppDetailScreen)


async def test_drifted_object_first_with_its_diff() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_payments(app, pilot)
        table = objects(app)
        assert table.row_count == 5
        first = [str(c) for c in table.get_row_at(0)]
        assert first[:4] == ["Deployment", "payments/payments-api", "OutOfSync", "Healthy"]
        assert FIELD in first[4] and "by kubectl-edit" in first[4]
        assert screen.selected_id() == DEP
        assert app.focused is screen.query_one("#ad-diff-scroll")
        text = diff_text(app)
        assert "Deployment/payments/payments-api" in text
        assert "drifted 14:13:00 by kubectl-edit" in text  # T0 - 20, UTC
        assert FIELD in text
        assert "1.8.2" in text and "1.8.3-hotfix" in text
        assert "DESIRED (Git)" in text and "LIVE (cluster)" in text
        h = header(app)
        for part in ("payments", "Drifted", "Healthy", "9f8e7d6", "1 drifted"):
            assert part in h
        assert "READ-ONLY" not in h


async def test_u_toggles_a_unified_diff() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await open_payments(app, pilot)
        await pilot.press("u")
        await pilot.pause()
        lines = diff_text(app).splitlines()
        assert any(line.startswith("-") and "1.8.3-hotfix" in line for line in lines)
        assert any(line.startswith("+") and "payments-api:1.8.2" in line for line in lines)
        assert "DESIRED (Git)" not in diff_text(app)
        await pilot.press("u")
        await pilot.pause()
        assert "DESIRED (Git)" in diff_text(app)


async def test_secret_values_stay_masked() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await open_payments(app, pilot, diff=False)
        table = objects(app)
        table.focus()
        table.move_cursor(row=table.get_row_index(SECRET))
        await pilot.pause()
        await pilot.pause()
        text = diff_text(app)
        assert "Secret/payments/payments-db" in text
        assert "password: '***'" in text and "user: '***'" in text
        assert "no differences" in text
        await pilot.press("u")  # equal objects: unified shows the (masked) YAML
        await pilot.pause()
        assert "'***'" in diff_text(app)


async def test_h_shows_history_and_c_commits() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_payments(app, pilot)
        await pilot.press("h")
        await pilot.pause()
        history = screen.query_one("#ad-history", DataTable)
        assert history.display and app.focused is history
        rows = [[str(c) for c in history.get_row_at(i)] for i in range(history.row_count)]
        assert [r[1] for r in rows] == ["drift", "sync", "sync"]
        assert rows[0][2] == "Deployment/payments-api" and rows[0][3] == "kubectl-edit"
        assert rows[1][2] == SHA["config"][:7] and rows[1][3] == "alice" and rows[1][4].startswith("ok")
        assert rows[2][0].startswith("09-")  # a day old: with its date
        await pilot.press("c")
        await pilot.pause()
        commits = screen.query_one("#ad-commits", DataTable)
        assert app.focused is commits
        assert [str(c) for c in commits.get_row_at(1)][:2] == [PREV_SHA[:7], "payments 1.8.2"]
        await pilot.press("c")
        await pilot.pause()
        assert app.focused is objects(app)
        assert screen.query_one("#ad-diff").display


async def test_events_patch_the_row_and_the_diff() -> None:
    client = sample_client()
    app = make_app(client)
    reads: list[str] = []
    real_objects = client.objects

    def counting(name: str) -> list[dict[str, Any]]:
        reads.append(name)
        return real_objects(name)

    client.objects = counting  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await open_payments(app, pilot)
        table = objects(app)
        # Another app's events do not re-read this app's objects.
        reads.clear()
        client.publish(DriftDetected(app="web", ref=ObjRef("apps", "Deployment", "web", "web"), ts=T0))
        await pilot.pause(FLUSH_INTERVAL * 3)
        assert reads == []

        for row in client._objects["payments"]:
            if row["id"] == DEP:
                row.update(sync="Synced", fields=[], managers=[])
        client._diffs.pop(("payments", DEP))
        client.publish(DriftResolved(app="payments", ref=payments_drift().ref, how="sync", ts=T0 + 1))
        await pilot.pause(0.3)
        assert reads == ["payments"]  # one read per batch
        assert table.row_count == 5
        assert cells(table, DEP)[2:] == ["Synced", "Healthy", ""]
        # No drift left: back in the client's order, the cursor stays on the object.
        assert [str(r.key.value) for r in table.ordered_rows].index(DEP) == 2
        assert screen_of(app).selected_id() == DEP
        assert "drifted" not in diff_text(app)
        assert "0 drifted" in header(app)


def test_a_batch_before_mount_is_ignored() -> None:
    # The app's flush can run between push_screen and on_mount: the table has no columns yet.
    AppDetailScreen("payments").apply_events([payments_drift()])


async def test_sync_asks_then_runs_through_the_client() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_payments(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert client.calls == [("sync", ("payments",))]
        assert isinstance(app.screen, AppDetailScreen)


async def test_revert_last_commit_or_to_a_sync_or_a_commit() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_payments(app, pilot, diff=False)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert client.calls[-1] == ("revert", ("payments", None))

        await pilot.press("h")
        await pilot.pause()
        history = screen.query_one("#ad-history", DataTable)
        history.move_cursor(row=0)  # a drift row: nothing to revert to
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, AppDetailScreen)
        history.move_cursor(row=2)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert client.calls[-1] == ("revert", ("payments", PREV_SHA))

        await pilot.press("c")
        await pilot.pause()
        screen.query_one("#ad-commits", DataTable).move_cursor(row=1)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert client.calls[-1] == ("revert", ("payments", PREV_SHA))
        assert len(client.calls) == 3


async def test_z_suspends_without_asking() -> None:
    client = sample_client()
    app = make_app(client)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_payments(app, pilot)
        await pilot.press("z")
        await settle(pilot)
        assert client.calls == [("suspend", ("payments",))]


async def test_read_only_disables_operator_keys() -> None:
    client = sample_client()
    app = make_app(client, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_payments(app, pilot)
        assert "READ-ONLY" in header(app)
        for key in ("s", "r", "z"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen
        await settle(pilot)
        assert client.calls == []
        assert screen.check_action("sync", ()) is None
        assert screen.check_action("diff_mode", ()) is True


async def test_slash_filters_objects_and_escape_goes_back() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await open_payments(app, pilot, diff=False)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("d", "b")
        await pilot.pause()
        table = objects(app)
        assert [str(k.value) for k in table.rows] == [SECRET]
        await pilot.pause()
        assert "Secret/payments/payments-db" in diff_text(app)
        await pilot.press("escape")  # clears the filter
        await pilot.pause()
        assert table.row_count == 5
        assert isinstance(app.screen, AppDetailScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-body").render())
        for binding_id in ("app.back", "app.sync", "app.revert", "app.diff_mode", "app.history", "app.commits",
                           "app.suspend", "app.filter"):
            assert f"({binding_id})" in text
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


async def test_tab_switches_panes() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_payments(app, pilot, diff=False)
        assert app.focused is objects(app)
        await pilot.press("tab")
        assert app.focused is screen.query_one("#ad-diff-scroll")
        await pilot.press("tab")
        assert app.focused is objects(app)


# ----- pure formatting ------------------------------------------------------------------------


def test_side_by_side_puts_desired_left_and_live_right() -> None:
    desired = {"kind": "ConfigMap", "data": {"a": "1", "b": "git"}}
    live = {"kind": "ConfigMap", "data": {"a": "1", "b": "cluster", "c": "extra"}}
    text, first = side_by_side_text(desired, live, 60)
    lines = text.plain.splitlines()
    changed = next(line for line in lines if line.startswith("~"))
    left, right = changed[2:].split(" │ ")
    assert "b: git" in left and "b: cluster" in right
    assert any(line.startswith("-") and "c: extra" in line.split(" │ ")[1] for line in lines)
    assert lines[first].startswith("~")
    assert all(len(line) <= 60 for line in lines)


def test_object_rows_and_history_cells() -> None:
    missing = {"id": "x", "kind": "Service", "namespace": "", "name": "gone", "sync": "Missing",
               "health": "Missing", "fields": [], "managers": ["kubectl-delete"]}
    row = object_row(missing)
    assert row[:5] == ("Service", "gone", "Missing", "Missing", "deleted live by kubectl-delete")
    assert is_drifted(missing)
    pending = {**missing, "sync": "OutOfSync", "health": "Healthy", "managers": []}
    assert not is_drifted(pending)  # a new commit not synced yet is not drift
    assert [o["id"] for o in sort_objects([pending | {"id": "p"}, missing])] == ["x", "p"]
    revert = {"kind": "revert", "ts": T0 - 5, "reverted": [SHA["config"]], "new_sha": PREV_SHA, "who": "bob"}
    assert [c.plain for c in history_cells(revert, T0, True)][1:4] == [
        "revert", f"{SHA['config'][:7]} → {PREV_SHA[:7]}", "bob"]
    audit = {"kind": "audit", "ts": T0, "who": "alice", "action": "revert", "args": {"to": "abc"}, "result": "ok"}
    assert [c.plain for c in history_cells(audit, T0, True)][2:] == ["revert to=abc", "alice", "ok"]
    assert short_object("Deployment.apps/payments/payments-api") == "Deployment/payments-api"
    assert short_object("Namespace/payments") == "Namespace/payments"


# ----- snapshots ------------------------------------------------------------------------------


async def _open_diff(pilot: Any) -> None:
    app = pilot.app
    assert isinstance(app, DriftdeckApp)
    await pilot.pause()
    app.open_app("payments", diff=True)
    await pilot.pause(FLUSH_INTERVAL * 3)
    app.workers.cancel_group(app, "events")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_app_diff_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_open_diff)
