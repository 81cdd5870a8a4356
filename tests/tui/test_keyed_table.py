"""KeyedTable.patch_row: the new values are on screen, other rows untouched, wider text widens."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from tui.keyed_table import KeyedTable


class _TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(id="t")

    def on_mount(self) -> None:
        t = self.query_one(KeyedTable)
        t.add_column("NAME", key="name")
        t.add_column("STATE", key="state")
        for i in range(30):
            t.add_row(Text(f"app-{i:02d}"), Text("Synced"), key=f"app-{i:02d}")



async def test_patch_row_changes_what_is_shown() -> None:
    app = _TableApp()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(KeyedTable)
        table.patch_row("app-03", {"state": Text("Drifted", style="bold red")})
        await pilot.pause()
        assert str(table.get_row("app-03")[1]) == "Drifted"
        shot = app.export_screenshot()
        assert "Drifted" in shot and shot.count("Synced") == 18  # 19 visible rows, one changed
        table.patch_row("app-04", {"state": Text("OutOfSync (a much longer state)")})
        await pilot.pause()
        assert table.columns[next(iter(k for k in table.columns if k.value == "state"))].content_width >= 31
        shot = app.export_screenshot().replace("&#160;", " ")
        assert "OutOfSync (a much longer state)" in shot
