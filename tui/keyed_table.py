"""A DataTable whose keyed cell updates repaint only the rows they touch.

``DataTable.update_cell`` bumps a table-wide counter that is part of every render cache
key and refreshes the whole widget: each update re-renders and re-sends every visible row
(measured: ~25 ms and ~12 KB a frame for a 30-row table). :meth:`KeyedTable.patch_row`
writes the cells, marks the row, and refreshes just that row's region; before the next
frame renders, the marked rows' entries are evicted from the render caches (other rows
keep theirs), so a batch that changes three rows re-renders and repaints three lines. Row order and heights are unchanged by a patch, so the offset
caches stay valid. When the private attributes this relies on are missing (another
Textual version), it falls back to ``update_cell``. Lines are also simplified (same-style
neighbours joined), which cuts the bytes a repaint sends.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

_ELSEWHERE = Coordinate(-2, 0)  # a cursor position no row (nor the header, -1) has


@lru_cache(maxsize=4096)
def _looks(style: Style | None) -> Style | None:
    """How a segment looks (its style without the row/column meta DataTable adds)."""
    return style.clear_meta_and_links() if style is not None else None


class KeyedTable(DataTable[Any]):
    _FAST = ("_data", "_row_render_cache", "_cell_render_cache", "_row_renderable_cache", "_line_cache")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._patched: set[RowKey] = set()

    def patch_row(self, row_key: str, values: dict[str, Text]) -> None:
        """Set ``{column key: value}`` in one row; widen columns only when needed."""
        key = RowKey(row_key)
        wider = False
        for column, value in values.items():
            col = self.columns.get(ColumnKey(column))
            if col is None or value.cell_len > col.content_width:
                wider = True
        if wider or not all(hasattr(self, a) for a in self._FAST):
            for column, value in values.items():
                self.update_cell(row_key, column, value, update_width=wider)
            return
        data = self._data[key]
        for column, value in values.items():
            data[ColumnKey(column)] = value
        self._patched.add(key)
        self.refresh_row(self.get_row_index(key))

    def _render_line_in_row(
        self, row_key: RowKey, line_no: int, base_style: Style, cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> Any:
        # DataTable keys every row's render cache on the cursor and hover positions, so a
        # cursor move (and every scroll) re-renders all visible rows. With a row cursor a row
        # only depends on whether the cursor (or hover) is on it: tell the others "elsewhere".
        if self.cursor_type == "row":
            row = self._row_locations.get(row_key)
            if row is None or row != cursor_location.row:
                cursor_location = _ELSEWHERE
            if row is None or row != hover_location.row:
                hover_location = _ELSEWHERE
        return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)

    def _evict_patched(self) -> None:
        """Drop what the render caches hold for the patched rows (one pass a frame); every
        other row keeps its cached rendering, so scrolling stays cheap."""
        rows, self._patched = self._patched, set()
        caches: tuple[Any, ...] = (self._row_render_cache, self._cell_render_cache)  # keys start with the row key
        for cache in caches:
            for k in [k for k in list(cache.keys()) if k[0] in rows]:
                cache.discard(k)
        count = self._update_count
        for key in rows:
            if key in self._row_locations:
                self._row_renderable_cache.discard((count, self.get_row_index(key)))
        self._line_cache.clear()

    def render_line(self, y: int) -> Strip:
        if self._patched:
            self._evict_patched()
        # Join neighbouring segments that look the same (cell padding next to plain cells):
        # each segment costs an escape sequence per repaint, which is what a slow link pays
        # for. DataTable tags every cell with row/column meta, so plain ``simplify()`` joins
        # nothing; with a row cursor the column meta is not needed, the row meta is kept.
        strip = super().render_line(y)
        out: list[Segment] = []
        looks: Style | None = None
        for seg in strip:
            plain = _looks(seg.style)
            if out and seg.control is None and out[-1].control is None and plain == looks:
                prev = out[-1]
                out[-1] = Segment(prev.text + seg.text, prev.style)
            else:
                out.append(seg)
                looks = plain
        return Strip(out, strip.cell_length)
