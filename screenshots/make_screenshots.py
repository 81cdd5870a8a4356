"""Render the console to SVG at 80x24 and 120x36 from the sample data (no clocks):
the main screen, the drift diff of an app and a pipeline run.

    make screenshots        # or: .venv/bin/python screenshots/make_screenshots.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.events import StageChanged
from tui.app import DriftdeckApp
from tui.sample import T0, payments_drift, sample_client

OUT = Path(__file__).resolve().parent
SIZES = ((80, 24), (120, 36))


async def _main(app: DriftdeckApp) -> None:
    app.apps_table.focus()


async def _diff(app: DriftdeckApp) -> None:
    app.open_app("payments", diff=True)


async def _run(app: DriftdeckApp) -> None:
    app.open_pipeline("web")
    await asyncio.sleep(0.2)
    from tui.screens.pipeline import PipelineScreen

    if isinstance(app.screen, PipelineScreen):
        app.screen.select_action("build", "image")  # a log to show


SCREENS: dict[str, Callable[[DriftdeckApp], Awaitable[None]]] = {"main": _main, "diff": _diff, "run": _run}


async def shoot(screen: str, size: tuple[int, int]) -> Path:
    client = sample_client()
    app = DriftdeckApp(client, cluster="sandbox", clock=lambda: T0, utc=True)
    name = f"{screen}-{size[0]}x{size[1]}.svg"
    async with app.run_test(size=size) as pilot:
        client.publish(payments_drift(T0 - 5))
        client.publish(StageChanged(pipeline="web", run_id="web-42", stage="release", status="InProgress", ts=T0 - 3))
        await pilot.pause(app.flush_interval * 3)
        await SCREENS[screen](app)
        await pilot.pause(0.3)
        app.workers.cancel_group(app, "events")
        await pilot.pause()
        app.save_screenshot(name, str(OUT))
    return OUT / name


def main() -> None:
    for screen in SCREENS:
        for size in SIZES:
            print(asyncio.run(shoot(screen, size)))


if __name__ == "__main__":
    main()
