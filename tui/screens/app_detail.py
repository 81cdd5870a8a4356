"""The App screen: one app's objects, the diff of the selected object, history and commits.

Like Argo CD's app view, keyboard only. The resources table is keyed by inventory id and
patched cell by cell from ``client.objects(app)`` when a batch of events touches the app
(drifted objects first); the diff of the selected object is re-read only when its row or
object was touched. Operator commands go through ``app.request_*`` (read-only guard,
confirmation, errors as notifications).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static

from core.events import Event, Lagged
from tui.detail_format import (
    COMMIT_COLUMNS,
    HISTORY_COLUMNS,
    OBJECT_COLUMNS,
    ObjectRow,
    change_lines,
    commit_cells,
    diff_title,
    history_cells,
    object_cells,
    object_label,
    object_row,
    side_by_side_text,
    side_by_side_title,
    sort_objects,
    unified_text,
)
from tui.format import STYLE_BAD, STYLE_BUSY, STYLE_DIM, STYLE_GOOD, app_row

if TYPE_CHECKING:
    from tui.app import DriftdeckApp

LOWER_PANES = ("diff", "history", "commits")
OPERATOR_ACTIONS = frozenset({"sync", "revert", "suspend"})
CONTEXT_LINES = 3  # lines kept above the first change when scrolling to it


class AppDetailScreen(Screen[None]):
    """``AppDetailScreen("payments", show_diff=True)``: resources over diff/history/commits."""

    HELP_TITLE = "app"
    AUTO_FOCUS = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="app.back", key_display="esc"),
        Binding("s", "sync", "Sync", id="app.sync"),
        Binding("r", "revert", "Revert", id="app.revert"),
        Binding("u", "diff_mode", "Unified", id="app.diff_mode"),
        Binding("h", "history", "History", id="app.history"),
        Binding("c", "commits", "Commits", id="app.commits"),
        Binding("z", "suspend", "Suspend/resume", id="app.suspend", show=False),
        Binding("slash", "filter", "Filter", id="app.filter", key_display="/", show=False),
        Binding("tab", "switch_pane", "Switch pane", id="app.switch_pane", show=False),
    ]

    DEFAULT_CSS = """
    AppDetailScreen {
        layout: vertical;
    }
    #ad-header {
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    #ad-filter {
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
    }
    #ad-filter.-active {
        display: block;
    }
    .ad-panel {
        border: round $primary 50%;
        border-title-color: $foreground;
        border-title-style: bold;
        border-subtitle-color: $foreground 60%;
    }
    .ad-panel:focus-within {
        border: round $primary;
    }
    #ad-resources {
        height: 8;
        min-height: 4;
        max-height: 45%;
    }
    #ad-objects {
        overflow-x: hidden;
    }
    #ad-lower {
        height: 1fr;
    }
    #ad-diff {
        height: 1fr;
    }
    #ad-diff-head {
        height: auto;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    #ad-diff-scroll {
        height: 1fr;
        padding: 0 0 0 1;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
    }
    #ad-diff-body {
        width: auto;
        min-width: 100%;
        text-wrap: nowrap;
    }
    """

    def __init__(self, app_name: str, show_diff: bool = False) -> None:
        super().__init__()
        self.app_name = app_name
        self.show_diff = show_diff
        self.unified = False
        self.lower = "diff"
        self.filter_text = ""
        self._objects: dict[str, dict[str, Any]] = {}
        self._rows: dict[str, ObjectRow] = {}
        self._order: list[str] = []  # every object id, drifted first
        self._shown: set[str] = set()
        self._diff: dict[str, Any] | None = None
        self._diff_id: str | None = None
        self._diff_error = ""
        self._diff_width = 0
        self._diff_dirty = False  # changed while hidden: render when the diff pane shows again
        self._diff_scroll = False
        self._history: list[dict[str, Any]] = []
        self._history_cells: list[tuple[str, ...]] = []
        self._commits: list[dict[str, Any]] = []
        self._source = ""
        self._suspended = False
        self._stale = False
        self._ready = False

    @property
    def deck(self) -> DriftdeckApp:
        return cast("DriftdeckApp", self.app)

    # ----- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="ad-header")
        yield Input(placeholder="filter objects by name (escape clears)", id="ad-filter")
        with Vertical(id="ad-resources", classes="ad-panel"):
            yield DataTable(id="ad-objects", cursor_type="row")
        with ContentSwitcher(id="ad-lower", classes="ad-panel", initial="ad-diff"):
            with Vertical(id="ad-diff"):
                yield Static(id="ad-diff-head")
                with VerticalScroll(id="ad-diff-scroll"):
                    yield Static(id="ad-diff-body")
            yield DataTable(id="ad-history", cursor_type="row")
            yield DataTable(id="ad-commits", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        for table, columns in ((self.objects_table, OBJECT_COLUMNS), (self.history_table, HISTORY_COLUMNS),
                               (self.commits_table, COMMIT_COLUMNS)):
            for key, label in columns:
                table.add_column(label, key=key)
        self._update_header()
        self._patch_objects(self._read_objects())
        self._set_titles()
        if self._order:
            self.objects_table.move_cursor(row=0)
        self._load_diff(self.selected_id(), scroll=True)
        (self.query_one("#ad-diff-scroll") if self.show_diff else self.objects_table).focus()
        self._ready = True

    @property
    def objects_table(self) -> DataTable[Any]:
        return self.query_one("#ad-objects", DataTable)

    @property
    def history_table(self) -> DataTable[Any]:
        return self.query_one("#ad-history", DataTable)

    @property
    def commits_table(self) -> DataTable[Any]:
        return self.query_one("#ad-commits", DataTable)

    def _set_titles(self) -> None:
        n = len(self._order)
        drifted = sum(1 for k in self._order if self._rows[k][5] == STYLE_BAD)
        shown = f" · /{self.filter_text} {len(self._shown)} of {n}" if self.filter_text else ""
        res = self.query_one("#ad-resources")
        res.border_title = f"Resources ({n}{f', {drifted} need attention' if drifted else ''}){shown}"
        res.border_subtitle = "enter/tab diff · / filter"
        # Header row + rows + borders, capped by max-height in the CSS.
        res.styles.height = max(len(self._shown), 1) + 3
        lower = self.query_one("#ad-lower")
        if self.lower == "diff":
            lower.border_title = f"Diff · {'unified' if self.unified else 'side by side'}"
            lower.border_subtitle = "u " + ("side by side" if self.unified else "unified") + " · h history · c commits"
        elif self.lower == "history":
            lower.border_title = f"History ({len(self._history)})"
            lower.border_subtitle = "r on a sync row: revert to its revision · h back to diff"
        else:
            lower.border_title = f"Commits ({len(self._commits)})"
            lower.border_subtitle = "r: revert to the selected commit · c back to diff"

    # ----- data ---------------------------------------------------------------------------

    def _read_objects(self) -> list[dict[str, Any]] | None:
        try:
            return self.deck.client.objects(self.app_name)
        except Exception as exc:  # the app may be gone: keep the last view
            self.notify(f"cannot read the objects of {self.app_name}: {exc}", severity="error")
            return None

    def _matches(self, key: str) -> bool:
        if not self.filter_text:
            return True
        obj = self._objects.get(key, {})
        return self.filter_text.lower() in f"{obj.get('kind', '')}/{obj.get('name', '')}".lower()

    def _patch_objects(self, objects: list[dict[str, Any]] | None) -> set[str]:
        """Apply a fresh ``objects()`` list keyed: add, remove, update only changed cells.
        Returns the ids whose row changed."""
        if objects is None:
            return set()
        table = self.objects_table
        selected = self.selected_id()
        old_rows = self._rows
        self._objects = {str(o["id"]): o for o in objects}
        self._rows = {k: object_row(o) for k, o in self._objects.items()}
        self._order = [str(o["id"]) for o in sort_objects(objects)]
        changed: set[str] = set()
        with self.app.batch_update():
            for key in sorted(self._shown):
                if key not in self._rows or not self._matches(key):
                    table.remove_row(key)
                    self._shown.discard(key)
                    changed.add(key)
            for key in self._order:
                if not self._matches(key):
                    continue
                row, old = self._rows[key], old_rows.get(key)
                if key not in self._shown:
                    table.add_row(*object_cells(row), key=key)
                    self._shown.add(key)
                    changed.add(key)
                elif old != row:
                    changed.add(key)
                    cells = object_cells(row)
                    restyle = old is None or old[5] != row[5]
                    for i, (column, _label) in enumerate(OBJECT_COLUMNS):
                        if restyle or old is None or old[i] != row[i]:
                            table.update_cell(key, column, cells[i], update_width=True)
            self._reorder(selected)
            self._set_titles()
        return changed

    def _reorder(self, selected: str | None) -> None:
        """Sort only when the drifted-first order changed; keep the cursor on its object."""
        table = self.objects_table
        want = [k for k in self._order if k in self._shown]
        if [r.key.value for r in table.ordered_rows] == want:
            return
        rank = {(self._rows[k][0], self._rows[k][1]): i for i, k in enumerate(want)}
        table.sort("kind", "name", key=lambda v: rank.get((v[0].plain, v[1].plain), len(rank)))
        if selected in self._shown:
            table.move_cursor(row=table.get_row_index(selected))

    def _rebuild(self) -> None:
        """Full repopulate: only when the operator changes the filter."""
        table = self.objects_table
        selected = self.selected_id()
        with self.app.batch_update():
            table.clear()
            self._shown = set()
            for key in self._order:
                if self._matches(key):
                    table.add_row(*object_cells(self._rows[key]), key=key)
                    self._shown.add(key)
            if selected in self._shown:
                table.move_cursor(row=table.get_row_index(selected))
            self._set_titles()

    def selected_id(self) -> str | None:
        """The inventory id of the object under the resources cursor."""
        table = self.objects_table
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return None if key is None else str(key)

    def _update_header(self) -> None:
        app = self.deck.client.snapshot().get("apps", {}).get(self.app_name)
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("driftdeck \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} ", style=STYLE_DIM)
        out.append(self.app_name, style="bold")
        if app is None:
            out.append("  not found (removed from the configuration?)", style=STYLE_BAD)
        else:
            self._source = str(app.get("source") or "")
            self._suspended = bool(app.get("suspended"))
            status = app_row(app, self.deck.clock())[1]  # "Drifted" when live left Git, as on the main screen
            health = str(app.get("health") or "Unknown")
            drift = int(app.get("drift_count") or 0)
            rev = app.get("revision") or {}
            sha = str(rev.get("sha", ""))[:7] if isinstance(rev, dict) else ""
            good = {"Synced": STYLE_GOOD, "Healthy": STYLE_GOOD, "Progressing": STYLE_BUSY, "Suspended": STYLE_DIM}
            out.append("   ")
            out.append(status, style=good.get(status, STYLE_BAD if status in ("OutOfSync", "Drifted") else ""))
            out.append(" · ", style=STYLE_DIM)
            out.append(health, style=good.get(health, STYLE_BAD if health in ("Degraded", "Missing") else ""))
            out.append(" · ", style=STYLE_DIM)
            out.append(sha or "no revision")
            out.append(" · ", style=STYLE_DIM)
            out.append(f"{drift} drifted", style=STYLE_BAD if drift else "")
            if self._suspended and status != "Suspended":
                out.append(" · suspended", style=STYLE_DIM)
            if app.get("syncing"):
                out.append(" · syncing…", style=STYLE_BUSY)
        if self.deck.read_only:
            out.append("   ")
            out.append(" READ-ONLY ", style="reverse")
        self.query_one("#ad-header", Static).update(out)

    # ----- the diff pane ------------------------------------------------------------------

    def _load_diff(self, key: str | None, scroll: bool) -> None:
        """Re-read the diff of ``key`` (one in-memory call) and render it."""
        self._diff_id = key
        self._diff = None
        self._diff_error = ""
        if key is not None:
            try:
                self._diff = self.deck.client.object_diff(self.app_name, key)
            except Exception as exc:
                self._diff_error = str(exc) or type(exc).__name__
        self._render_diff(scroll)

    def _render_diff(self, scroll: bool = False, retry: bool = True) -> None:
        body_scroll = self.query_one("#ad-diff-scroll", VerticalScroll)
        width = body_scroll.scrollable_content_region.width
        if self.lower != "diff" or width <= 0:  # hidden or not laid out yet: render when shown
            self._diff_dirty = True
            self._diff_scroll = self._diff_scroll or scroll
            if retry and self.lower == "diff":
                self.call_after_refresh(self._render_diff, scroll, False)
            return
        scroll = scroll or self._diff_scroll
        self._diff_dirty = self._diff_scroll = False
        self._diff_width = width
        head = self.query_one("#ad-diff-head", Static)
        body = self.query_one("#ad-diff-body", Static)
        diff = self._diff
        if diff is None:
            error = self._diff_error and f"cannot read the diff: {self._diff_error}"
            head.update(Text(error or "no object selected", style=STYLE_BAD if error else STYLE_DIM))
            body.update("")
            return
        obj = self._objects.get(str(self._diff_id), {})
        label = object_label(obj) if obj else str(diff.get("object", ""))
        lines = [diff_title(diff, label, self.deck.utc), *change_lines(diff)]
        desired, live = diff.get("desired"), diff.get("live")
        if self.unified:
            text, first = unified_text(desired, live)
        else:
            lines.append(side_by_side_title(width))
            text, first = side_by_side_text(desired, live, width)
        head.update(Text("\n", no_wrap=True, overflow="ellipsis").join(lines))
        body.update(text)
        if scroll:
            target = max(0, first - CONTEXT_LINES)
            self.call_after_refresh(body_scroll.scroll_to, 0, target, animate=False)

    @on(DataTable.RowHighlighted, "#ad-objects")
    def _object_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key != self._diff_id:
            self._load_diff(None if key is None else str(key), scroll=True)

    @on(DataTable.RowSelected, "#ad-objects")
    def _object_selected(self, event: DataTable.RowSelected) -> None:
        self._show_lower("diff")
        self.query_one("#ad-diff-scroll").focus()

    def on_resize(self, event: Resize) -> None:
        self.query_one(Footer).compact = event.size.width < 100
        self.call_after_refresh(self._rerender_if_resized)

    def _rerender_if_resized(self) -> None:
        if self.lower != "diff":
            return
        width = self.query_one("#ad-diff-scroll", VerticalScroll).scrollable_content_region.width
        if self._diff_dirty or (width != self._diff_width and not self.unified):
            self._render_diff()

    # ----- history and commits ------------------------------------------------------------

    def _load_history(self) -> None:
        try:
            history = self.deck.client.history(self.app_name)
        except Exception as exc:
            self.notify(f"cannot read the history of {self.app_name}: {exc}", severity="error")
            return
        now = self.deck.clock()
        rows = [history_cells(e, now, self.deck.utc) for e in history]
        plain = [tuple(c.plain for c in r) for r in rows]
        if plain == self._history_cells:
            return
        table = self.history_table
        cursor = table.cursor_row
        self._history, self._history_cells = history, plain
        table.clear()
        for i, cells in enumerate(rows):
            table.add_row(*cells, key=f"h{i}")
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _load_commits(self) -> None:
        try:
            commits = self.deck.client.commits(self.app_name)
        except Exception as exc:
            self.notify(f"cannot read the commits of {self.app_name}: {exc}", severity="error")
            return
        table = self.commits_table
        self._commits = commits
        table.clear()
        for c in commits:
            table.add_row(*commit_cells(c), key=str(c.get("sha", "")))

    def _show_lower(self, pane: str) -> None:
        self.lower = pane
        self.query_one("#ad-lower", ContentSwitcher).current = f"ad-{pane}"
        self._set_titles()
        if pane == "diff":
            self.call_after_refresh(self._rerender_if_resized)

    # ----- live updates -------------------------------------------------------------------

    def apply_events(self, events: list[Event]) -> None:
        """One batch from the app's flush: patch what the app's events touched, O(changed rows)."""
        if not self._ready:  # pushed, not mounted yet: on_mount reads everything anyway
            return
        lagged = any(isinstance(ev, Lagged) for ev in events)
        mine = [ev for ev in events if getattr(ev, "app", None) == self.app_name
                or (self._source and ev.type == "RevisionDetected" and getattr(ev, "source", None) == self._source)]
        if not mine and not lagged:
            return
        self._refresh(mine, everything=lagged)

    def _refresh(self, events: list[Event], everything: bool) -> None:
        selected = self.selected_id()
        changed = self._patch_objects(self._read_objects())
        self._update_header()
        refs = {ref.inventory_id for ev in events if (ref := getattr(ev, "ref", None)) is not None}
        synced = any(ev.type in ("SyncFinished", "RevertCommitted") for ev in events)
        now_selected = self.selected_id()
        if now_selected != self._diff_id:
            self._load_diff(now_selected, scroll=True)
        elif everything or synced or selected in refs or selected in changed:
            self._load_diff(selected, scroll=False)
        if self.lower == "history":
            self._load_history()
        elif self.lower == "commits" and (everything or any(ev.type == "RevisionDetected" for ev in events)):
            self._load_commits()
        self._set_titles()

    def on_screen_suspend(self) -> None:
        self._stale = True  # a modal or another screen is on top: no batches reach us

    def on_screen_resume(self) -> None:
        if self._stale and self._ready:
            self._stale = False
            self._refresh([], everything=True)

    # ----- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Operator actions show as disabled in the footer when read-only."""
        if action in OPERATOR_ACTIONS and self.deck.read_only:
            return None
        return True

    def action_back(self) -> None:
        box = self.query_one("#ad-filter", Input)
        if box.has_class("-active") or self.filter_text:
            self._clear_filter()
            return
        if self.lower != "diff":
            self._show_lower("diff")
            self.objects_table.focus()
            return
        self.dismiss(None)

    def action_sync(self) -> None:
        self.deck.request_sync(self.app_name)

    def action_revert(self) -> None:
        """Context-dependent: a history sync row or a commit reverts *to* it; else the last commit."""
        focused = self.focused
        if self.lower == "history" and focused is self.history_table:
            row = self.history_table.cursor_row
            entry = self._history[row] if 0 <= row < len(self._history) else {}
            sha = str(entry.get("revision") or "")
            if entry.get("kind") != "sync" or not sha:
                self.notify("r on a sync row reverts to its revision; on the resources it reverts the last commit",
                            severity="warning")
                return
            self.deck.request_revert(self.app_name, to=sha)
        elif self.lower == "commits" and focused is self.commits_table:
            row = self.commits_table.cursor_row
            if not 0 <= row < len(self._commits):
                return
            if row == 0:
                self.notify(f"{self._commits[0].get('short', '')} is the head: nothing after it to revert",
                            severity="warning")
                return
            self.deck.request_revert(self.app_name, to=str(self._commits[row]["sha"]))
        else:
            self.deck.request_revert(self.app_name)

    def action_suspend(self) -> None:
        self.deck.request_suspend(self.app_name, not self._suspended)

    def action_diff_mode(self) -> None:
        self.unified = not self.unified
        if self.lower != "diff":
            self._show_lower("diff")
        self._set_titles()
        self._render_diff(scroll=True)

    def action_history(self) -> None:
        if self.lower == "history":
            self._show_lower("diff")
            self.objects_table.focus()
            return
        self._load_history()
        self._show_lower("history")
        self.history_table.focus()

    def action_commits(self) -> None:
        if self.lower == "commits":
            self._show_lower("diff")
            self.objects_table.focus()
            return
        self._load_commits()
        self._show_lower("commits")
        self.commits_table.focus()

    def action_switch_pane(self) -> None:
        lower = {"diff": self.query_one("#ad-diff-scroll"), "history": self.history_table,
                 "commits": self.commits_table}[self.lower]
        (lower if self.focused is self.objects_table else self.objects_table).focus()

    # ----- filter -------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#ad-filter", Input)
        box.add_class("-active")
        box.focus()

    def _clear_filter(self) -> None:
        box = self.query_one("#ad-filter", Input)
        box.value = ""
        box.remove_class("-active")
        if self.filter_text:
            self.filter_text = ""
            self._rebuild()
        self.objects_table.focus()

    @on(Input.Changed, "#ad-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        text = event.value.strip()
        if text != self.filter_text:
            self.filter_text = text
            self._rebuild()

    @on(Input.Submitted, "#ad-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("-active")
        self.objects_table.focus()
