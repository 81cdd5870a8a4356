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


async def test_the_cursor_row_and_only_it_is_highlighted_after_moves() -> None:
    app = _TableApp()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        table = app.query_one(KeyedTable)

        def backgrounds() -> list[object]:
            # line 0 is the header; line 1 + i is row i
            out = []
            for i in range(4):
                texts = [seg for seg in table.render_line(1 + i) if seg.text.strip() and seg.style is not None]
                out.append(texts[0].style.bgcolor if texts and texts[0].style else None)
            return out

        first = backgrounds()
        assert first[0] != first[1] and first[1] == first[2] == first[3]
        for _ in range(2):
            await pilot.press("down")
        await pilot.pause()
        moved = backgrounds()
        assert moved[2] == first[0]  # the cursor's look moved to row 2
        assert moved[0] == moved[1] == moved[3] == first[1]  # and left row 0 as it was
