"""The driftdeck main screen: pipelines, apps and activity, read-only.

Events come from ``client.subscribe()`` in an async worker and are only *buffered*
there; a 100 ms timer applies them in one batch: activity lines are written with one
``write_lines`` call and each touched app's row is re-read from ``client.snapshot()``
and patched cell by cell (``update_cell``) where it changed. Nothing is rebuilt per event.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Log, Static

from core.events import (
    Event,
    Lagged,
    RunFinished,
    RunStarted,
    StageChanged,
    Subscription,
)
from themes import MAIN_TCSS
from tui.format import APP_COLUMNS, Row, activity_line, app_row, cells, run_style

FLUSH_INTERVAL = 0.1  # seconds: at most ten UI updates a second, however fast events come
ACTIVITY_LINES = 500
NO_RUNS_KEY = "__no_runs__"


class ClientLike(Protocol):
    def snapshot(self) -> dict[str, Any]: ...

    def subscribe(self) -> Subscription: ...


class HelpScreen(ModalScreen[None]):
    """Key bindings and what this view can (not) do."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self._help_bindings = bindings

    def compose(self) -> ComposeResult:
        lines = ["[b]driftdeck — main screen[/b]", ""]
        for b in self._help_bindings:
            if b.description:
                keys = ", ".join(k.strip().replace("question_mark", "?").replace("slash", "/") for k in b.key.split(","))
                lines.append(f"  [b]{keys:<12}[/b] {b.description:<22} [dim]({b.id})[/dim]")
        lines += [
            "",
            "[b]Read-only view.[/b] No operator actions yet: sync, revert,",
            "suspend and pipeline runs are not available from this screen.",
            "",
            "[dim]escape, q or ? closes this help[/dim]",
        ]
        yield Static("\n".join(lines), id="help-body")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class DriftdeckApp(App[None]):
    CSS_PATH = str(MAIN_TCSS)
    TITLE = "driftdeck"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark,f1", "help", "Help", id="help", key_display="?"),
        Binding("slash", "filter", "Filter apps", id="filter", key_display="/"),
        Binding("escape", "clear_filter", "Clear filter", id="clear_filter", show=False),
    ]

    def __init__(
        self,
        client: ClientLike,
        *,
        cluster: str = "local",
        mode: str = "in-process",
        read_only: bool = True,
        clock: Callable[[], float] = time.time,
        utc: bool = False,
    ) -> None:
        super().__init__()
        self.client = client
        self.cluster = cluster
        self.mode = mode
        self.read_only = read_only
        self.clock = clock
        self.utc = utc
        self.filter_text = ""
        self._rows: dict[str, Row] = {}  # every app, shown or filtered out
        self._shown: set[str] = set()
        self._pending: deque[Event] = deque()
        self._dirty_all = False
        self._runs: dict[str, dict[str, str]] = {}
        self._runs_dirty: set[str] = set()
        self.flushes = 0  # batches applied (tests and diagnostics)
        self.sub: Subscription | None = None

    # ----- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="top"):
            with Vertical(id="pipelines", classes="panel"):
                yield DataTable(id="pipelines-table", cursor_type="row", zebra_stripes=False)
            with Vertical(id="apps", classes="panel"):
                yield Input(placeholder="filter apps (escape clears)", id="filter")
                yield DataTable(id="apps-table", cursor_type="row")
        yield Log(id="activity", classes="panel", max_lines=ACTIVITY_LINES, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#pipelines", Vertical).border_title = "Pipelines"
        self.query_one("#apps", Vertical).border_title = "Apps"
        self.query_one("#activity", Log).border_title = "Activity"
        pipes = self.query_one("#pipelines-table", DataTable)
        pipes.add_column("PIPELINE", key="pipeline")
        pipes.add_column("RUN", key="run")
        pipes.add_column("STATUS", key="status")
        pipes.add_row(Text("no runs yet", style="dim"), "", "", key=NO_RUNS_KEY)
        table = self.apps_table
        for key, label in APP_COLUMNS:
            table.add_column(label, key=key)
        # Subscribe before reading the snapshot so no event falls between the two.
        self.sub = self.client.subscribe()
        self._load(self.client.snapshot())
        self._consume(self.sub)
        self.set_interval(FLUSH_INTERVAL, self._apply_pending, name="flush")
        self.set_interval(30, self._tick, name="relative-times")
        table.focus()

    @property
    def apps_table(self) -> DataTable[Any]:
        return self.query_one("#apps-table", DataTable)

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

    def _apply_pending(self) -> None:
        if not self._pending and not self._dirty_all:
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
            if isinstance(ev, RunStarted | RunFinished | StageChanged):
                self._note_run(ev)
            line = activity_line(ev, self.utc)
            if line:
                lines.append(line)
        snap = self.client.snapshot()
        apps = snap.get("apps", {})
        if everything or any(ev.type == "RevisionDetected" for ev in events):
            dirty |= set(apps) | set(self._rows)
        now = self.clock()
        with self.batch_update():
            self._apply_apps(apps, dirty, now)
            self._apply_runs()
            if lines:
                self.query_one("#activity", Log).write_lines(lines)
            self._update_header()
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
                style_changed = old is None or old[5] != new[5]
                for i, (key, _label) in enumerate(APP_COLUMNS):
                    if style_changed or old is None or old[i] != new[i]:
                        table.update_cell(name, key, new_cells[i], update_width=True)
        if added:
            table.sort("app", key=lambda t: t.plain if isinstance(t, Text) else str(t))

    def _note_run(self, ev: RunStarted | RunFinished | StageChanged) -> None:
        run = self._runs.setdefault(ev.pipeline, {"run": ev.run_id, "status": "running"})
        if isinstance(ev, RunStarted):
            run.update(run=ev.run_id, status="running")
        elif isinstance(ev, RunFinished):
            run.update(run=ev.run_id, status=ev.status)
        elif run.get("run") == ev.run_id:
            run["status"] = f"{ev.stage} {ev.status}"
        self._runs_dirty.add(ev.pipeline)

    def _apply_runs(self) -> None:
        if not self._runs_dirty:
            return
        table = self.query_one("#pipelines-table", DataTable)
        if NO_RUNS_KEY in table.rows:
            table.remove_row(NO_RUNS_KEY)
        for name in sorted(self._runs_dirty):
            run = self._runs[name]
            status = run["status"]
            row = [Text(name), Text(f"#{run['run']}"), Text(status, style=run_style(status.split()[-1]))]
            if name in table.rows:
                for key, value in zip(("pipeline", "run", "status"), row, strict=True):
                    table.update_cell(name, key, value, update_width=True)
            else:
                table.add_row(*row, key=name)
        self._runs_dirty.clear()

    def _update_header(self) -> None:
        n = len(self._rows)
        drifted = sum(1 for r in self._rows.values() if "drifted" in r[1])
        out = sum(1 for r in self._rows.values() if r[1].startswith("OutOfSync"))
        flag = "[reverse]READ-ONLY[/reverse]" if self.read_only else "[b]read-write[/b]"
        shown = f" · /{self.filter_text} ({len(self._shown)})" if self.filter_text else ""
        self.query_one("#header", Static).update(
            f"[b]driftdeck[/b]  {self.cluster} ({self.mode})  {flag}  "
            f"{n} apps · {out} OutOfSync · {drifted} drifted{shown}"
        )

    # ----- actions --------------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding)]
        self.push_screen(HelpScreen(bindings))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-active")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-active")
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

    def on_unmount(self) -> None:
        if self.sub is not None:
            self.sub.close()
