"""A workspace of 5,000 objects and 50 pipelines renders and stays responsive.

Behaviour only, no wall-clock budgets: every row is there, a burst of 1,000 drift events
is applied in a handful of batches, and keys move the cursor and filter the table while
drift churn keeps arriving. The figures (update-to-paint, key latency, bytes/s over a
pty) come from ``bench/tui_bench.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from textual.widgets import Input, Static

from core.events import Event
from tui.app import DriftdeckApp
from tui.format import app_row
from tui.sample import T0
from tui.scale import ScaleClient, app_name, churn_events, pipeline_name, scale_client

APPS, OBJECTS_PER_APP, PIPELINES = 100, 50, 50


def shown(app: DriftdeckApp) -> list[str]:
    return [str(k.value) for k in app.apps_table.rows]


def sync_cell(app: DriftdeckApp, name: str) -> str:
    return str(app.apps_table.get_row(name)[1])


def drifted_in_model(client: ScaleClient) -> set[str]:
    return {name for name, a in client.snapshot()["apps"].items() if a["drift_count"]}


def assert_rows_match_model(app: DriftdeckApp, client: ScaleClient) -> None:
    """Every shown row says what the state model says (Drifted exactly for drifted apps)."""
    apps = client.snapshot()["apps"]
    drifted = drifted_in_model(client)
    for name in shown(app):
        want = app_row(apps[name], T0)
        assert [str(c) for c in app.apps_table.get_row(name)] == list(want[:6]), name
        assert (sync_cell(app, name) == "Drifted") == (name in drifted), name


async def until_flushed(pilot: Any, app: DriftdeckApp, before: int) -> None:
    """Pause until a batch after ``before`` was applied and nothing is left queued, then one more tick."""
    assert app.sub is not None
    for _ in range(100):
        await pilot.pause(app.flush_interval)
        if app.flushes > before and app.sub.pending == 0:
            break
    await pilot.pause(app.flush_interval * 2)


async def churn(client: ScaleClient, start: int, stop: asyncio.Event, published: list[Event]) -> None:
    """About 200 events/s until ``stop``: ten churn steps (twenty events) every 100 ms.

    Bursts leave the loop idle in between, so the pilot's wait-for-idle after each key
    returns promptly (events every few ms would keep it waiting its full second)."""
    step = start
    while not stop.is_set():
        for _ in range(10):
            events = churn_events(client, step)
            client.publish(*events)
            published.extend(events)
            step += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def test_a_5000_object_workspace_renders_and_stays_responsive() -> None:
    client = scale_client(APPS, OBJECTS_PER_APP, PIPELINES)
    app = DriftdeckApp(client, cluster="scale", clock=lambda: T0, utc=True, refresh_hz=10.0)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        snap = client.snapshot()
        assert sum(len(a["objects"]) for a in snap["apps"].values()) == APPS * OBJECTS_PER_APP
        assert shown(app) == [app_name(i) for i in range(APPS)]
        assert [str(k.value) for k in app.pipelines_table.rows] == [pipeline_name(i) for i in range(PIPELINES)]
        assert not drifted_in_model(client)
        assert "Drifted" not in {sync_cell(app, name) for name in shown(app)}

        # A burst of 1,000 drift events is applied in a handful of batches, not one per event.
        events: list[Event] = []
        step = 0
        while len(events) < 1000:
            events += churn_events(client, step)
            step += 1
        assert len(events) == 1000
        before = app.flushes
        client.publish(*events)
        await until_flushed(pilot, app, before)
        assert 1 <= app.flushes - before <= 5
        drifted = drifted_in_model(client)
        assert len(drifted) == client.churn_window  # one drifted object per app in the window
        assert_rows_match_model(app, client)
        assert all(sync_cell(app, name) == "Drifted" for name in drifted)
        assert f"{len(drifted)} drifted" in str(app.query_one("#header", Static).render())

        # Keys act while churn keeps arriving (about 200 events/s).
        stop = asyncio.Event()
        published: list[Event] = []
        task = asyncio.create_task(churn(client, step, stop, published))
        try:
            table = app.apps_table
            assert app.focused is table and table.cursor_row == 0
            await pilot.press("down", "down", "down")
            assert table.cursor_row == 3
            assert app.selected_app() == app_name(3)

            await pilot.press("slash")
            assert isinstance(app.focused, Input)
            await pilot.press(*"app-04")
            await pilot.pause()
            wanted = [app_name(i) for i in range(40, 50)]
            assert shown(app) == wanted

            # Batches keep being applied under the filter, and only to the rows it shows.
            flushes = app.flushes
            for _ in range(100):
                await pilot.pause(app.flush_interval)
                if app.flushes >= flushes + 3:
                    break
            assert app.flushes >= flushes + 3
            assert shown(app) == wanted

            await pilot.press("escape")
            await pilot.pause()
            assert len(shown(app)) == APPS
            await pilot.press("down", "down")
            assert table.cursor_row == 2
        finally:
            stop.set()
            await task
        assert len(published) > 20  # churn really ran while the keys were handled
        await until_flushed(pilot, app, app.flushes)
        assert_rows_match_model(app, client)
        assert len(drifted_in_model(client)) == client.churn_window
