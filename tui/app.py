"""The driftdeck console: the main screen (pipelines, apps, activity) and the app shell.

Events come from ``client.subscribe()`` in an async worker and are only *buffered*
there; a timer (20 Hz, or ``refresh`` Hz: 2 over SSH) applies them in one batch:
activity lines are written with one ``write_lines`` call, each touched app's row is
re-read from ``client.snapshot()`` and patched cell by cell where it changed, each
touched pipeline's latest run is re-read once. The batch is then handed to the active
detail screen (``apply_events``). Nothing is rebuilt per event.

Operator commands go through :class:`~tui.operator.OperatorActions` (read-only guard,
confirmation, audit by the client, errors as notifications).
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Log, Static, Tab, Tabs

from core.events import (
    ActionChanged,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    Lagged,
    RunFinished,
    RunStarted,
    StageChanged,
    Subscription,
)
from themes import MAIN_TCSS, THEMES, theme_names
from tui.commands import ConsoleCommands, run_command_line
from tui.format import (
    APP_COLUMNS,
    ROW_STYLE,
    Row,
    activity_line,
    app_row,
    cells,
    run_status_text,
    short_run,
    stage_chips,
)
from tui.keyed_table import KeyedTable
from tui.operator import OperatorActions

DEFAULT_REFRESH_HZ = 20.0  # at most 20 UI updates a second, however fast events come
SSH_REFRESH_HZ = 2.0
FLUSH_INTERVAL = 1 / DEFAULT_REFRESH_HZ
ACTIVITY_LINES = 500
NO_RUNS_KEY = "__no_runs__"
MIN_SIZE = (80, 24)
PIPELINE_EVENTS = (RunStarted, RunFinished, StageChanged, ActionChanged, ApprovalRequested, ApprovalDecided)


class ConsoleClient(Protocol):
    """What the console needs: ``core.client.LocalClient`` (and the daemon's client) offer it."""

    def snapshot(self) -> dict[str, Any]: ...
    def subscribe(self) -> Subscription: ...
    def objects(self, app: str) -> list[dict[str, Any]]: ...
    def object_diff(self, app: str, ref_id: str) -> dict[str, Any]: ...
    def history(self, app: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def commits(self, app: str, limit: int = 30) -> list[dict[str, Any]]: ...
    def pipelines(self) -> list[dict[str, Any]]: ...
    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]: ...
    def run(self, run_id: str) -> dict[str, Any] | None: ...
    def run_log(self, run_id: str, stage: str, action: str, limit: int = 5000) -> list[str]: ...
    def trace(self, app: str) -> dict[str, Any]: ...
    async def sync(self, app: str, *, dry_run: bool = False, wait: bool = True) -> Any: ...
    async def revert(self, app: str, *, to: str | None = None) -> Any: ...
    async def suspend(self, app: str) -> None: ...
    async def resume(self, app: str) -> None: ...
    async def start_run(self, pipeline: str, stage: str | None = None) -> str: ...
    async def approve(self, run_id: str, action: str, comment: str = "") -> None: ...
    async def reject(self, run_id: str, action: str, comment: str = "") -> None: ...
    async def retry(self, run_id: str, stage: str) -> None: ...
    async def stop(self, run_id: str, abandon: bool = False) -> None: ...


def key_label(key: str) -> str:
    names = {"question_mark": "?", "slash": "/", "colon": ":", "escape": "esc", "enter": "enter"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    """The bindings of the screen underneath (with their ids, for the keymap file)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, title: str, bindings: Iterable[Binding], read_only: bool) -> None:
        super().__init__()
        self._title = title
        self._help_bindings = list(bindings)
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        lines = [f"[b]driftdeck — {self._title}[/b]", ""]
        for b in self._help_bindings:
            if b.description:
                lines.append(f"  [b]{key_label(b.key):<14}[/b] {b.description:<24} [dim]({b.id})[/dim]")
        lines += [
            "",
            "  [b]ctrl+p[/b]          command palette (contextual: Sync web, Run pipeline web…)",
            "  [b]:[/b]               command line: sync APP, revert APP [SHA], run PIPELINE, app APP,",
            "                  pipeline NAME, approve RUN ACTION, stop RUN, theme NAME, q",
            "",
            "[b]Read-only:[/b] operator actions are disabled." if self._read_only
            else "Destructive actions (sync, revert, approve, reject, stop) ask first.",
            "Rebind keys by id in $XDG_CONFIG_HOME/driftdeck/keymap.yaml (see docs/console.md).",
            "",
            "[dim]escape, q or ? closes this help[/dim]",
        ]
        yield Static("\n".join(lines), id="help-body")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class DriftdeckApp(OperatorActions, App[None]):
    CSS_PATH = str(MAIN_TCSS)
    TITLE = "driftdeck"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark,f1", "help", "Help", id="help", key_display="?"),
        Binding("enter", "open", "Open", id="open"),
        Binding("d", "diff", "Diff", id="diff"),
        Binding("s", "sync", "Sync", id="sync"),
        Binding("r", "revert", "Revert", id="revert"),
        Binding("p", "run", "Run", id="run"),
        Binding("a", "approve", "Approve", id="approve"),
        Binding("x", "stop", "Stop run", id="stop"),
        Binding("R", "retry", "Retry", id="retry", show=False),
        Binding("z", "suspend", "Suspend/resume", id="suspend", show=False),
        # priority: the screen's own tab (focus next) would win otherwise; falls through off the tables.
        Binding("tab", "switch_panel", "Switch panel", id="switch_panel", show=False, priority=True),
        Binding("slash", "filter", "Filter", id="filter", key_display="/"),
        Binding("colon", "command_line", "Command", id="command_line", key_display=":", show=False),
        Binding("escape", "clear_filter", "Clear filter", id="clear_filter", show=False),
    ]
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    OPERATOR_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"sync", "revert", "run", "approve", "stop", "retry", "suspend"}
    )

    def __init__(
        self,
        client: ConsoleClient,
        *,
        cluster: str = "local",
        mode: str = "in-process",
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        utc: bool = False,
        refresh_hz: float | None = None,
        theme: str | None = None,
        keymap: dict[str, str] | None = None,
        notices: list[str] | None = None,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__()
        self.client = client
        self.cluster = cluster
        self.mode = mode
        self.read_only = read_only
        self.clock = clock
        self.utc = utc
        if refresh_hz is None:
            refresh_hz = SSH_REFRESH_HZ if os.environ.get("SSH_CONNECTION") else DEFAULT_REFRESH_HZ
        self.refresh_hz = max(0.2, min(60.0, refresh_hz))
        self.flush_interval = 1 / self.refresh_hz
        self.theme_name = theme or "driftdeck-dark"
        self.user_keymap = dict(keymap or {})
        self.notices = list(notices or [])  # config problems etc., shown once mounted
        self.freeze_gc = freeze_gc  # the CLI sets it (one console per process); tests do not
        self.animation_level = "none"  # no animations, over SSH or not
        self.filter_text = ""
        self.command_results = []
        self._rows: dict[str, Row] = {}  # every app, shown or filtered out
        self._shown: set[str] = set()
        self._pending: deque[Event] = deque()
        self._dirty_all = False
        self._latest: dict[str, dict[str, Any]] = {}  # pipeline -> its latest run (with stages)
        self._pipelines_dirty: set[str] = set()
        self._activity_notes: list[str] = []
        self.flushes = 0  # batches applied (tests and diagnostics)
        self._header_text = ""
        self.sub: Subscription | None = None

    # ----- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="too-small")
        yield Tabs(Tab("Apps", id="tab-apps"), Tab("Pipelines", id="tab-pipelines"), id="narrow-tabs")
        with Horizontal(id="top", classes="-show-apps"):
            with Vertical(id="pipelines", classes="panel"):
                yield KeyedTable(id="pipelines-table", cursor_type="row", zebra_stripes=False)
            with Vertical(id="apps", classes="panel"):
                yield Input(placeholder="filter apps (escape clears)", id="filter")
                yield KeyedTable(id="apps-table", cursor_type="row")
        yield Log(id="activity", classes="panel", max_lines=ACTIVITY_LINES, auto_scroll=True)
        yield Input(placeholder=":sync web · :revert web · :run web · :app web · :q", id="cmdline")
        yield Footer()

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self.theme_name if self.theme_name in theme_names() else "driftdeck-dark"
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        self.query_one("#pipelines", Vertical).border_title = "Pipelines"
        self.query_one("#apps", Vertical).border_title = "Apps"
        self.query_one("#activity", Log).border_title = "Activity"
        pipes = self.pipelines_table
        pipes.add_column("PIPELINE", key="pipeline")
        pipes.add_column("RUN", key="run")
        pipes.add_column("STATUS", key="status")
        pipes.add_column("STAGES", key="stages")
        table = self.apps_table
        for key, label in APP_COLUMNS:
            table.add_column(label, key=key)
        # Subscribe before reading the snapshot so no event falls between the two.
        self.sub = self.client.subscribe()
        self._load(self.client.snapshot())
        self._load_pipelines()
        self._update_header()
        self._consume(self.sub)
        self.set_interval(self.flush_interval, self._apply_pending, name="flush")
        self.set_interval(30, self._tick, name="relative-times")
        if hasattr(self.client, "status"):  # attached to a daemon: show a lost link even with no events
            self.set_interval(1.0, self._watch_link, name="link")
        self._check_size()
        for notice in self.notices:
            self.notify(notice, severity="warning", timeout=10)
        table.focus()
        if self.freeze_gc:
            # What is loaded now lives as long as the console: keep it out of the collector's
            # full passes (a gen-2 collection over a big workspace is a visible pause).
            gc.collect()
            gc.freeze()

    @property
    def apps_table(self) -> KeyedTable:
        return self.query_one("#apps-table", KeyedTable)

    @property
    def pipelines_table(self) -> KeyedTable:
        return self.query_one("#pipelines-table", KeyedTable)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, w: int | None = None, h: int | None = None) -> None:
        if w is None or h is None:
            w, h = self.size
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        notice = self.query_one("#too-small", Static)
        notice.set_class(small, "-shown")
        if small:
            notice.update(f"terminal too small: {w}x{h} (driftdeck needs {MIN_SIZE[0]}x{MIN_SIZE[1]})")

    # ----- data -----------------------------------------------------------------------------

    def _load(self, snap: dict[str, Any]) -> None:
        now = self.clock()
        apps = snap.get("apps", {})
        self._rows = {name: app_row(app, now) for name, app in apps.items()}
        self._rebuild()
        self._update_header()
        self.query_one("#activity", Log).write_line(
            f"{self._clock(now)}  CONNECTED {self.cluster:<10} {len(apps)} apps ({self.mode})"
        )

    def _load_pipelines(self) -> None:
        for spec in self.client.pipelines():
            name = spec["name"]
            runs = self.client.runs(name, 1)
            run = self.client.run(runs[0]["id"]) if runs else None
            self._latest[name] = run or {"id": "", "pipeline": name, "status": "", "stages": []}
            self._pipelines_dirty.add(name)
        self._apply_runs()
        if not self.pipelines_table.rows:
            self.pipelines_table.add_row(Text("no pipelines", style="dim"), "", "", "", key=NO_RUNS_KEY)

    def _clock(self, ts: float) -> str:
        return time.strftime("%H:%M:%S", time.gmtime(ts) if self.utc else time.localtime(ts))

    def _matches(self, name: str) -> bool:
        return not self.filter_text or self.filter_text.lower() in name.lower()

    def _rebuild(self) -> None:
        """Full repopulate: only at start and when the operator changes the filter."""
        table = self.apps_table
        with self.batch_update():
            table.clear()
            self._shown = set()
            for name in sorted(self._rows):
                if self._matches(name):
                    table.add_row(*cells(self._rows[name]), key=name)
                    self._shown.add(name)

    @work(exclusive=True, group="events", exit_on_error=False, description="client event stream")
    async def _consume(self, sub: Subscription) -> None:
        """Only buffer: the flush timer applies the batch."""
        try:
            async for event in sub:
                self._pending.append(event)
        finally:
            sub.close()

    def _tick(self) -> None:
        self._dirty_all = True  # refresh the "2m ago" texts
        self._pipelines_dirty |= set(self._latest)

    def _watch_link(self) -> None:
        status = str(getattr(self.client, "status", "attached"))
        if status != getattr(self, "_link", "attached"):
            self._link = status
            self.note_activity(f"DAEMON    {status}")
            self._update_header()

    def note_activity(self, text: str) -> None:
        """A line of our own (command outcomes) for the activity feed, written with the next batch."""
        self._activity_notes.append(f"{self._clock(self.clock())}  {text}")

    def _apply_pending(self) -> None:
        with contextlib.suppress(NoMatches):  # shutting down: the widgets are gone, the timer not yet
            self._apply_batch()

    def _apply_batch(self) -> None:
        if not self._pending and not self._dirty_all and not self._activity_notes and not self._pipelines_dirty:
            return
        events = list(self._pending)
        self._pending.clear()
        dirty: set[str] = set()
        everything = self._dirty_all
        self._dirty_all = False
        lines: list[str] = []
        for ev in events:
            app = getattr(ev, "app", None)
            if isinstance(app, str):
                dirty.add(app)
            if isinstance(ev, Lagged):
                everything = True
            if isinstance(ev, PIPELINE_EVENTS):
                self._note_run(ev)
            line = activity_line(ev, self.utc)
            if line:
                lines.append(line)
        lines += self._activity_notes
        self._activity_notes = []
        snap = self.client.snapshot()
        apps = snap.get("apps", {})
        if everything or any(ev.type == "RevisionDetected" for ev in events):
            dirty |= set(apps) | set(self._rows)
        if everything:
            self._pipelines_dirty |= set(self._latest)
        now = self.clock()
        with self.batch_update():
            self._apply_apps(apps, dirty, now)
            self._apply_runs()
            if lines:
                self.query_one("#activity", Log).write_lines(lines)
            self._update_header()
            screen = self.screen
            apply = getattr(screen, "apply_events", None)
            if callable(apply) and (events or everything):
                apply(events)
        self.flushes += 1

    def _apply_apps(self, apps: dict[str, Any], dirty: set[str], now: float) -> None:
        table = self.apps_table
        added = False
        for name in sorted(dirty):
            app = apps.get(name)
            if app is None:  # removed from the state
                self._rows.pop(name, None)
                if name in self._shown:
                    table.remove_row(name)
                    self._shown.discard(name)
                continue
            new = app_row(app, now)
            old = self._rows.get(name)
            self._rows[name] = new
            if not self._matches(name):
                continue
            if name not in self._shown:
                table.add_row(*cells(new), key=name)
                self._shown.add(name)
                added = True
            elif old != new:
                new_cells = cells(new)
                style_changed = old is None or old[ROW_STYLE] != new[ROW_STYLE]
                table.patch_row(name, {
                    key: new_cells[i] for i, (key, _label) in enumerate(APP_COLUMNS)
                    if style_changed or old is None or old[i] != new[i]
                })
        if added:
            table.sort("app", key=lambda t: t.plain if isinstance(t, Text) else str(t))

    def _note_run(self, ev: Event) -> None:
        pipeline = str(getattr(ev, "pipeline", ""))
        if pipeline:
            self._pipelines_dirty.add(pipeline)

    def _apply_runs(self) -> None:
        """Re-read the latest run of each pipeline touched since the last batch (one query each)."""
        if not self._pipelines_dirty:
            return
        table = self.pipelines_table
        now = self.clock()
        added = False
        for name in sorted(self._pipelines_dirty):
            runs = self.client.runs(name, 1)
            run = self.client.run(runs[0]["id"]) if runs else self._latest.get(name)
            if run is None:
                continue
            self._latest[name] = run
            row = self._run_cells(name, run, now)
            if name in table.rows:
                table.patch_row(name, dict(zip(("pipeline", "run", "status", "stages"), row, strict=True)))
            else:
                table.add_row(*row, key=name)
                added = True
        self._pipelines_dirty.clear()
        if NO_RUNS_KEY in table.rows and len(table.rows) > 1:
            table.remove_row(NO_RUNS_KEY)
        if not table.rows:
            table.add_row(Text("no pipelines", style="dim"), "", "", "", key=NO_RUNS_KEY)
        if added:
            table.sort("pipeline", key=lambda t: t.plain if isinstance(t, Text) else str(t))

    def _run_cells(self, name: str, run: dict[str, Any], now: float) -> list[Text]:
        if not run.get("id"):
            return [Text(name), Text("-", style="dim"), Text("no runs yet", style="dim"), Text("")]
        wide = self.size.width >= 160
        return [Text(name), Text(short_run(run["id"])), run_status_text(run, now),
                stage_chips(run, now, durations=wide)]

    def waiting_approvals(self, pipeline: str | None = None) -> list[tuple[str, str, str]]:
        """(run id, stage, action) waiting for a decision in the latest runs."""
        out = []
        for name, run in sorted(self._latest.items()):
            if pipeline is not None and name != pipeline:
                continue
            for stage in run.get("stages") or []:
                for a in stage.get("actions") or []:
                    if str(a.get("status")) == "Waiting":
                        out.append((str(run["id"]), str(stage["stage"]), str(a["action"])))
        return out

    def _update_header(self) -> None:
        n = len(self._rows)
        drifted = sum(1 for r in self._rows.values() if r[4] not in ("0", ""))
        out = sum(1 for r in self._rows.values() if r[1] in ("OutOfSync", "Drifted"))
        waiting = len(self.waiting_approvals())
        flag = "[reverse] READ-ONLY [/reverse]  " if self.read_only else ""
        link = getattr(self.client, "status", "attached")
        if link != "attached":
            flag += f"[reverse] {str(link).upper()} [/reverse]  "
        shown = f" · /{self.filter_text} ({len(self._shown)})" if self.filter_text else ""
        wait = f" · {waiting} waiting" if waiting else ""
        text = (f"[b]driftdeck[/b]  {self.cluster} ({self.mode})  {flag}"
                f"{n} apps · {out} OutOfSync · {drifted} drifted{wait}{shown}")
        if text != self._header_text:  # one line, fixed height: no relayout
            self._header_text = text
            self.query_one("#header", Static).update(text, layout=False)

    # ----- selection ------------------------------------------------------------------------

    def _selected_key(self, table: DataTable[Any]) -> str | None:
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return None if key in (None, NO_RUNS_KEY) else str(key)

    def selected_app(self) -> str | None:
        return self._selected_key(self.apps_table)

    def selected_pipeline(self) -> str | None:
        return self._selected_key(self.pipelines_table)

    def _pipelines_focused(self) -> bool:
        return self.focused is self.pipelines_table

    # ----- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Operator actions show as disabled in the footer when read-only; main-screen
        actions do nothing on the detail screens (they have their own bindings)."""
        if action == "switch_panel":
            return self._on_main() and self.focused in (self.apps_table, self.pipelines_table)
        if not self._on_main() and action in self.OPERATOR_ACTIONS | {"open", "diff", "filter"}:
            return False  # detail screens have their own bindings
        if action in self.OPERATOR_ACTIONS and self.read_only:
            return None
        return True

    def _on_main(self) -> bool:
        return self.screen is self.screen_stack[0]

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        screen = self.screen
        bindings: list[Binding] = [b for b in getattr(screen, "BINDINGS", []) if isinstance(b, Binding)]
        if self._on_main():
            bindings = [b for b in self.BINDINGS if isinstance(b, Binding)]
        title = getattr(screen, "HELP_TITLE", "main screen")
        self.push_screen(HelpScreen(title, bindings, self.read_only))

    def action_open(self) -> None:
        if self._pipelines_focused():
            name = self.selected_pipeline()
            if name:
                self.open_pipeline(name)
        else:
            name = self.selected_app()
            if name:
                self.open_app(name)

    def action_diff(self) -> None:
        name = self.selected_app()
        if name:
            self.open_app(name, diff=True)

    def open_app(self, name: str, diff: bool = False) -> None:
        from tui.screens.app_detail import AppDetailScreen

        self.push_screen(AppDetailScreen(name, show_diff=diff))

    def open_pipeline(self, name: str, run_id: str | None = None) -> None:
        from tui.screens.pipeline import PipelineScreen

        self.push_screen(PipelineScreen(name, run_id=run_id))

    def action_sync(self) -> None:
        name = self.selected_app()
        if name:
            self.request_sync(name)

    def action_revert(self) -> None:
        name = self.selected_app()
        if name:
            self.request_revert(name)

    def action_suspend(self) -> None:
        name = self.selected_app()
        if name:
            self.request_suspend(name, self._rows.get(name, ("", ""))[1] != "Suspended")

    def action_run(self) -> None:
        name = self.selected_pipeline() if self._pipelines_focused() else None
        if name is None:
            name = self.selected_pipeline()
        if name:
            self.request_run(name)

    def action_approve(self) -> None:
        name = self.selected_pipeline()
        waiting = self.waiting_approvals(name) or self.waiting_approvals()
        if not waiting:
            self.notify("no approval is waiting", severity="warning")
            return
        run_id, _stage, action = waiting[0]
        self.request_approve(run_id, action)

    def action_stop(self) -> None:
        name = self.selected_pipeline()
        run = self._latest.get(name or "")
        if not run or not run.get("id") or str(run.get("status")) not in ("InProgress", "Waiting", "Pending"):
            self.notify(f"no run of {name or 'this pipeline'} is in progress", severity="warning")
            return
        self.request_stop(str(run["id"]))

    def action_retry(self) -> None:
        name = self.selected_pipeline()
        run = self._latest.get(name or "")
        failed = [s["stage"] for s in (run or {}).get("stages") or [] if str(s.get("status")) in
                  ("Failed", "Stopped", "Interrupted", "Abandoned")]
        if not run or not failed:
            self.notify(f"the latest run of {name or 'this pipeline'} has no failed stage", severity="warning")
            return
        self.request_retry(str(run["id"]), str(failed[0]))

    def action_switch_panel(self) -> None:
        target = self.apps_table if self._pipelines_focused() else self.pipelines_table
        target.focus()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if self._on_main() and event.data_table in (self.apps_table, self.pipelines_table):
            self.action_open()

    def on_descendant_focus(self) -> None:
        top = self.query_one("#top")
        show_pipelines = self.focused is self.pipelines_table
        if self.focused in (self.apps_table, self.pipelines_table):
            top.set_class(show_pipelines, "-show-pipelines")
            top.set_class(not show_pipelines, "-show-apps")
            tabs = self.query_one("#narrow-tabs", Tabs)
            want = "tab-pipelines" if show_pipelines else "tab-apps"
            if tabs.active != want:
                tabs.active = want

    @on(Tabs.TabActivated, "#narrow-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        want = self.pipelines_table if event.tab.id == "tab-pipelines" else self.apps_table
        if self.focused is not want and self.focused in (self.apps_table, self.pipelines_table):
            want.focus()

    # ----- filter and command line ----------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-active")
        self.apps_table.focus()
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-active")
        cmd = self.query_one("#cmdline", Input)
        cmd.remove_class("-active")
        self.apps_table.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._rebuild()
        self._update_header()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("-active")
        self.apps_table.focus()

    def action_command_line(self) -> None:
        box = self.query_one("#cmdline", Input)
        box.value = ""
        box.add_class("-active")
        box.focus()

    @on(Input.Submitted, "#cmdline")
    def _command_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("-active")
        self.apps_table.focus()
        self.execute_command_line(event.value)

    def execute_command_line(self, line: str) -> None:
        """k9s-style ``:verb args`` (also what the palette's free-text entries run)."""
        run_command_line(self, line)

    def on_unmount(self) -> None:
        if self.sub is not None:
            self.sub.close()
