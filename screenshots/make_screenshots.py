"""Render the main screen to SVG at 80x24 and 120x36 with the sample data.

    .venv/bin/python screenshots/make_screenshots.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.events import RunStarted, StageChanged
from tui.app import FLUSH_INTERVAL, DriftdeckApp
from tui.sample import T0, payments_drift, sample_client

OUT = Path(__file__).resolve().parent


async def shoot(size: tuple[int, int]) -> Path:
    client = sample_client()
    app = DriftdeckApp(client, cluster="sandbox", clock=lambda: T0, utc=True)
    name = f"main-{size[0]}x{size[1]}.svg"
    async with app.run_test(size=size) as pilot:
        client.publish(payments_drift(T0 - 5))
        client.publish(RunStarted(pipeline="web", run_id="42", revision_sha="a1b2c3d", ts=T0 - 4))
        client.publish(StageChanged(pipeline="web", run_id="42", stage="test", status="running", ts=T0 - 3))
        await pilot.pause(FLUSH_INTERVAL * 3)
        app.save_screenshot(name, str(OUT))
    return OUT / name


def main() -> None:
    for size in ((80, 24), (120, 36)):
        print(asyncio.run(shoot(size)))


if __name__ == "__main__":
    main()
