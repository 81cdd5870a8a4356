"""The Pipeline screen: one pipeline's runs, the stages/actions of a run and an action's log.

Like a CodePipeline console run page, keyboard only. Data comes from ``app.client``
(``runs``, ``run``, ``run_log``, ``trace``); live changes arrive in batches through
:meth:`PipelineScreen.apply_events` (called by the app's flush timer, at most ~10x/s):
runs are re-read once per batch and patched cell by cell, the selected run's details
likewise, and the selected action's new log lines are written with one ``write_lines``.
Operator commands go through ``app.request_*`` (read-only guard, confirmation, errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Log, Static

from core.events import (
    ActionChanged,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    Lagged,
    LogLines,
    RunFinished,
    RunStarted,
    StageChanged,
)
from tui.format import short_run
from tui.run_format import (
    ACTION_COLUMNS,
    ACTIVE,
    APPROVE_HINT,
    RUN_COLUMNS,
    action_message,
    action_rows,
    default_action,
    elapsed,
    header_text,
    latest_actions,
    retry_stage,
    run_cells,
    run_status,
    short_sha,
    split_key,
    status_text,
    trace_lines,
    waiting_actions,
)

if TYPE_CHECKING:
    from tui.app import ConsoleClient, DriftdeckApp

RUN_EVENTS = (RunStarted, RunFinished, StageChanged, ActionChanged, ApprovalRequested, ApprovalDecided)
RUNS_LIMIT = 50
LOG_MAX_LINES = 5000
TICK_SECONDS = 5.0  # running durations; nothing is repainted when no text changed
NO_RUNS_KEY = "__no_runs__"
NARROW_WIDTH = 100
TRACE_SCAN = 25  # apps tried when looking for the one this pipeline syncs


def _same(a: Text, b: Text) -> bool:
    return a.plain == b.plain and str(a.style) == str(b.style) and a.spans == b.spans


class TraceScreen(ModalScreen[None]):
    """Source commit → run → config commit → sync → live, for the app a pipeline delivers."""

    SCOPED_CSS = False
    DEFAULT_CSS = """
    TraceScreen {
        align: center middle;
    }
    TraceScreen #trace-box {
        width: 96;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: round $primary;
        background: $surface;
        padding: 1 2;
    }
    TraceScreen #trace-note {
        margin-top: 1;
        color: $text-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,t", "close", "Close", id="pipeline.trace_close"),
    ]

    def __init__(self, title: str, lines: list[Text], note: str) -> None:
        super().__init__()
        self._title = title
        self._lines = lines
        self._note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="trace-box"):
            yield Static(Text(self._title, style="bold"), id="trace-title")
            yield Static(Text("\n").join(self._lines), id="trace-body")
            yield Static(Text(self._note + ("\n" if self._note else "") + "escape, q or t closes"),
                         id="trace-note")

    def action_close(self) -> None:
        self.dismiss(None)


class PipelineScreen(Screen[None]):
    """Runs of one pipeline (newest first), the selected run's actions and an action's log."""

    HELP_TITLE = "pipeline"
    SCOPED_CSS = False
    DEFAULT_CSS = """
    PipelineScreen {
        layout: vertical;
    }
    PipelineScreen #pl-header {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    PipelineScreen #pl-title {
        width: 1fr;
    }
    PipelineScreen #pl-flag {
        width: auto;
    }
    PipelineScreen #pl-top {
        layout: horizontal;
        height: 10;
    }
    PipelineScreen .pl-box {
        border: round $primary 60%;
        border-title-color: $foreground;
        border-title-style: bold;
        height: 1fr;
    }
    PipelineScreen .pl-box:focus-within {
        border: round $primary;
    }
    PipelineScreen #pl-runs-box {
        width: 58;  /* fitted to the runs table in _fit() */
    }
    PipelineScreen #pl-actions-box {
        width: 1fr;
    }
    PipelineScreen #pl-runs, PipelineScreen #pl-actions {
        overflow-x: hidden;
    }
    PipelineScreen #pl-approval {
        display: none;
        height: auto;
        padding: 0 1;
        background: $warning 15%;
    }
    PipelineScreen #pl-approval.-shown {
        display: block;
    }
    PipelineScreen #pl-log {
        height: 1fr;
        border: round $primary 60%;
        border-title-color: $foreground;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        overflow-x: auto;
        overflow-y: auto;
    }
    PipelineScreen #pl-log:focus {
        border: round $primary;
    }
    PipelineScreen.-narrow #pl-top {
        layout: vertical;
    }
    PipelineScreen.-narrow #pl-runs-box, PipelineScreen.-narrow #pl-actions-box {
        width: 1fr;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "back", "Back", id="pipeline.back"),
        Binding("p", "run_pipeline", "Run", id="pipeline.run"),
        Binding("a", "approve", "Approve", id="pipeline.approve"),
        Binding("n", "reject", "Reject", id="pipeline.reject"),
        Binding("R", "retry", "Retry", id="pipeline.retry", key_display="R"),
        Binding("x", "stop", "Stop", id="pipeline.stop"),
        Binding("t", "trace", "Trace", id="pipeline.trace"),
        Binding("f", "toggle_follow", "Follow", id="pipeline.follow"),
        Binding("tab", "app.focus_next", "Next pane", id="pipeline.focus_next", show=False),
        Binding("shift+tab", "app.focus_previous", "Previous pane", id="pipeline.focus_previous", show=False),
    ]
    OPERATOR_ACTIONS: ClassVar[frozenset[str]] = frozenset({"run_pipeline", "approve", "reject", "retry", "stop"})

    def __init__(self, pipeline: str, run_id: str | None = None) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.run_id: str | None = run_id  # the selected run
        self.detail: dict[str, Any] | None = None  # the selected run with its stages
        self.action_key: str | None = None  # "stage/action" whose log is shown
        self.follow = True  # auto-scroll of the log
        self._follow_latest = run_id is None  # a new run is shown when it starts
        self._follow_action = True  # the cursor goes to the action that matters until the user moves it
        self._runs: dict[str, dict[str, Any]] = {}  # run id -> row of client.runs()
        self._order: list[str] = []  # run ids as shown, newest first
        self._run_cells: dict[str, list[Text]] = {}
        self._action_cells: dict[str, list[Text]] = {}
        self._waiting: set[str] = set()  # runs with an approval waiting
        self._log_for: tuple[str, str, str, int] | None = None  # (run, stage, action, attempt) in the log
        self._log_loaded = 0  # lines of that attempt read from its log file
        self._trace_error = ""
        self._approval_messages: dict[tuple[str, str, str], str] = {}  # from ApprovalRequested events

    # ----- plumbing -------------------------------------------------------------------------

    @property
    def console(self) -> DriftdeckApp:
        return cast("DriftdeckApp", self.app)

    @property
    def client(self) -> ConsoleClient:
        return self.console.client

    @property
    def runs_table(self) -> DataTable[Any]:
        return self.query_one("#pl-runs", DataTable)

    @property
    def actions_table(self) -> DataTable[Any]:
        return self.query_one("#pl-actions", DataTable)

    @property
    def log_view(self) -> Log:
        return self.query_one("#pl-log", Log)

    def _now(self) -> float:
        return self.console.clock()

    # ----- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="pl-header"):
            yield Static(id="pl-title")
            yield Static(id="pl-flag")
        with Horizontal(id="pl-top"):
            with Vertical(id="pl-runs-box", classes="pl-box"):
                yield DataTable(id="pl-runs", cursor_type="row")
            with Vertical(id="pl-actions-box", classes="pl-box"):
                yield DataTable(id="pl-actions", cursor_type="row")
        yield Static(id="pl-approval")
        yield Log(id="pl-log", max_lines=LOG_MAX_LINES, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#pl-runs-box").border_title = f"Runs · {self.pipeline}"
        self.query_one("#pl-actions-box").border_title = "Stages"
        self.log_view.border_title = "Log"
        self._reset(self.runs_table, RUN_COLUMNS)
        self._reset(self.actions_table, ACTION_COLUMNS)
        if self.console.read_only:
            self.query_one("#pl-flag", Static).update(Text(" READ-ONLY ", style="reverse bold"))
        self._refresh_runs(initial=True)
        self.set_interval(TICK_SECONDS, self._tick, name="pipeline-durations")
        self.actions_table.focus()
        self._fit()

    def on_resize(self, event: Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        """Size the runs and actions panes to their rows, leaving the rest to the log."""
        width, height = self.size
        if not width:
            return
        runs = max(1, self.runs_table.row_count)
        acts = max(1, self.actions_table.row_count)
        top = self.query_one("#pl-top")
        runs_box = self.query_one("#pl-runs-box")
        acts_box = self.query_one("#pl-actions-box")
        chrome = 3  # border + column header
        self.query_one(Footer).compact = width < NARROW_WIDTH
        if width < NARROW_WIDTH:
            budget = max(8, height - 11)  # header, banner, footer and at least 6 log lines
            runs_h = min(runs, 4 if height < 30 else 8) + chrome
            acts_h = min(acts, max(1, budget - runs_h - chrome)) + chrome
            runs_box.styles.height = runs_h
            acts_box.styles.height = acts_h
            top.styles.height = runs_h + acts_h
            runs_box.styles.width = "1fr"
        else:
            rows = min(max(min(runs, 10), acts), max(3, height // 2 - chrome - 2))
            runs_box.styles.height = "1fr"
            acts_box.styles.height = "1fr"
            top.styles.height = rows + chrome
            table = self.runs_table
            need = sum(c.get_render_width(table) for c in table.columns.values()) + 3  # border, scrollbar
            runs_box.styles.width = max(40, min(need, width // 2))

    # ----- runs -----------------------------------------------------------------------------

    def _refresh_runs(self, initial: bool = False) -> None:
        """Re-read the runs (one query) and patch the table; rebuild only when the set changed."""
        rows = self.client.runs(self.pipeline, RUNS_LIMIT)
        ids = [str(r["id"]) for r in rows]
        if self.run_id and self.run_id not in ids:  # an older run asked for by id
            extra = self.client.run(self.run_id)
            if extra is not None and extra.get("pipeline") == self.pipeline:
                rows.append({k: v for k, v in extra.items() if k != "stages"})
                ids.append(self.run_id)
        if initial:
            for r in rows[:10]:
                if str(r.get("status")) in ACTIVE:
                    detail = self.client.run(str(r["id"]))
                    if detail and waiting_actions(detail):
                        self._waiting.add(str(r["id"]))
        self._runs = {str(r["id"]): r for r in rows}
        table = self.runs_table
        now, utc = self._now(), self.console.utc
        rebuilt = initial or ids != self._order
        if rebuilt:
            self._order = ids
            self._run_cells = {i: run_cells(self._runs[i], now, utc, i in self._waiting) for i in ids}
            self._reset(table, RUN_COLUMNS)
            for i in ids:
                table.add_row(*self._run_cells[i], key=i)
            if not ids:
                table.add_row(Text("no runs yet", style="dim"), Text("press p to start one", style="dim"),
                              "", "", "", "", key=NO_RUNS_KEY)
            self._fit()
        else:
            self._patch_runs(now)
            self._fit()  # a cell may have widened its column
        newest = ids[0] if ids else None
        target = self.run_id
        if target not in self._runs or (self._follow_latest and newest != target):
            target = newest
        if target is None:
            self.run_id = None
            self._show_detail(None)
        elif target != self.run_id or self.detail is None:
            self.select_run(target)
        elif rebuilt:  # (a patch leaves the cursor alone: it may hold a move not handled yet)
            self._move_cursor(table, target)

    def _patch_runs(self, now: float) -> None:
        table = self.runs_table
        utc = self.console.utc
        for i in self._order:
            new = run_cells(self._runs[i], now, utc, i in self._waiting)
            old = self._run_cells.get(i, [])
            for col, cell in enumerate(new):
                if col >= len(old) or not _same(old[col], cell):
                    table.update_cell(i, RUN_COLUMNS[col][0], cell, update_width=True)
            self._run_cells[i] = new

    def select_run(self, run_id: str) -> None:
        """Show one run: its actions (cursor on the one that matters) and that action's log."""
        self.run_id = run_id
        self._follow_latest = bool(self._order) and run_id == self._order[0]
        self._move_cursor(self.runs_table, run_id)
        self._show_detail(self._read_run(run_id))

    def _read_run(self, run_id: str) -> dict[str, Any] | None:
        """``client.run()``, with the message of a waiting approval filled in from its event
        when the store does not keep it (the returned dict is a copy then, never mutated)."""
        detail = self.client.run(run_id)
        if detail is None or not any(k[0] == run_id for k in self._approval_messages):
            return detail
        stages = []
        for stage in detail.get("stages") or []:
            actions = []
            for a in stage.get("actions") or []:
                note = self._approval_messages.get((run_id, str(stage.get("stage")), str(a.get("action"))))
                if note and not a.get("message") and str(a.get("status")) == "Waiting":
                    a = {**a, "message": note}
                actions.append(a)
            stages.append({**stage, "actions": actions})
        return {**detail, "stages": stages}

    def _show_detail(self, detail: dict[str, Any] | None) -> None:
        self.detail = detail
        box = self.query_one("#pl-actions-box")
        box.border_title = f"Stages · {detail.get('id', '')}" if detail else "Stages"
        self._render_actions(rebuild=True)
        self._update_header()

    @staticmethod
    def _reset(table: DataTable[Any], columns: tuple[tuple[str, str], ...]) -> None:
        """Empty a table, columns too, so their widths fit the new rows (a placeholder row
        must not leave a column wide)."""
        table.clear(columns=True)
        for key, label in columns:
            table.add_column(label, key=key)

    @staticmethod
    def _cursor_key(table: DataTable[Any]) -> str | None:
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return None if key in (None, NO_RUNS_KEY) else str(key)

    @staticmethod
    def _move_cursor(table: DataTable[Any], key: str) -> None:
        try:
            row = table.get_row_index(key)
        except Exception:
            return
        if table.cursor_row != row:
            table.move_cursor(row=row, animate=False)

    @on(DataTable.RowHighlighted, "#pl-runs")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Read the cursor now, not the event's row: a rebuild may have moved it since.
        key = self._cursor_key(self.runs_table)
        if key is not None and key != self.run_id:
            self.select_run(key)

    @on(DataTable.RowSelected, "#pl-runs")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        self.actions_table.focus()

    # ----- actions --------------------------------------------------------------------------

    def _render_actions(self, rebuild: bool = False) -> None:
        """Rows of the selected run's actions: patched in place unless the rows changed."""
        table = self.actions_table
        detail = self.detail
        rows = action_rows(detail, self._now(), hint=not self.console.read_only) if detail else []
        keys = [k for k, _ in rows]
        if rebuild:
            self._follow_action = True
        elif self.action_key is not None and self._cursor_key(table) not in (None, self.action_key):
            self._follow_action = False  # the operator moved the cursor; the highlight is on its way
        if rebuild or keys != list(self._action_cells):
            keep = None if rebuild or self._follow_action else self.action_key
            self._action_cells = dict(rows)
            self._reset(table, ACTION_COLUMNS)
            for key, cells in rows:
                table.add_row(*cells, key=key)
            if detail is None:
                table.add_row(Text("no run selected", style="dim"), "", "", "", "", "", key=NO_RUNS_KEY)
            target = keep if keep in self._action_cells else (default_action(detail) if detail else None)
            if target is None and keys:
                target = keys[0]
            if target is not None:
                self._move_cursor(table, target)
            self._show_action(target, force=rebuild)
            self._fit()
        else:
            for key, cells in rows:
                old = self._action_cells.get(key, [])
                for col, cell in enumerate(cells):
                    if col >= len(old) or not _same(old[col], cell):
                        table.update_cell(key, ACTION_COLUMNS[col][0], cell, update_width=True)
                self._action_cells[key] = cells
            target = default_action(detail) if detail and self._follow_action else None
            if target is not None and target != self.action_key:
                self._move_cursor(table, target)
            self._show_action(target or self.action_key)
        self._update_banner()

    def select_action(self, stage: str, action: str) -> None:
        """Put the cursor on ``stage.action`` of the selected run and show its log."""
        key = f"{stage}/{action}"
        if key in self._action_cells:
            self._follow_action = False
            self._move_cursor(self.actions_table, key)
            self._show_action(key)

    @on(DataTable.RowHighlighted, "#pl-actions")
    def _action_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = self._cursor_key(self.actions_table)
        if key is not None and key != self.action_key:
            self._follow_action = False  # the operator chose: stay there
            self._show_action(key)

    @on(DataTable.RowSelected, "#pl-actions")
    def _action_selected(self, event: DataTable.RowSelected) -> None:
        self.log_view.focus()

    def _attempt(self, stage: str, action: str) -> dict[str, Any] | None:
        for s, a in latest_actions(self.detail or {}):
            if s == stage and str(a.get("action")) == action:
                return a
        return None

    def _show_action(self, key: str | None, force: bool = False) -> None:
        """Load the action's log (one ``write_lines``) unless that very attempt is shown already."""
        self.action_key = key
        log = self.log_view
        if key is None or self.run_id is None:
            self._log_for = None
            log.clear()
            log.border_title = "Log"
            log.border_subtitle = ""
            return
        stage, action = split_key(key)
        attempt = self._attempt(stage, action) if action else None
        number = int(attempt.get("attempt") or 1) if attempt else 0
        wanted = (self.run_id, stage, action, number)
        if force or wanted != self._log_for:
            self._log_for = wanted
            log.clear()
            lines = self.client.run_log(self.run_id, stage, action, LOG_MAX_LINES) if attempt else []
            # Batches already in the file we just read are skipped when they arrive (by offset).
            self._log_loaded = int(attempt.get("log_lines") or 0) if attempt else 0
            self._log_loaded = max(self._log_loaded, len(lines))
            if lines:
                log.write_lines(lines)
        self._log_titles(stage, action, attempt)

    def _log_titles(self, stage: str, action: str, attempt: dict[str, Any] | None) -> None:
        log = self.log_view
        name = f"{stage}.{action}" if action else stage
        if attempt is None:
            log.border_title = f"Log · {name}"
            note = "not started"
        else:
            status = str(attempt.get("status", ""))
            took = elapsed(attempt, self._now())
            log.border_title = (f"Log · {name} · attempt {attempt.get('attempt') or 1} · "
                                f"{status_text(status).plain}{' ' + took if took else ''}")
            note = "" if log.line_count else "no output"
            message = action_message(attempt, hint=False).plain
            note = " · ".join(p for p in (message, note) if p)
        follow = "following (f)" if self.follow else "paused (f)"
        log.border_subtitle = f"{note} · {follow}" if note else follow

    # ----- header and banner ----------------------------------------------------------------

    def _update_header(self) -> None:
        self.query_one("#pl-title", Static).update(
            header_text(self.pipeline, self.detail, self._now(), self.console.utc))

    def _update_banner(self) -> None:
        banner = self.query_one("#pl-approval", Static)
        waiting = waiting_actions(self.detail) if self.detail else []
        banner.set_class(bool(waiting), "-shown")
        if not waiting:
            return
        stage, action, message = waiting[0]
        text = Text(f"‖ {stage}.{action} is waiting", style="bold yellow")
        if message:
            text.append(f": {message}", style="bold")
        if self.console.read_only:
            text.append(" (read-only)", style="dim")
        else:
            text.append(f" — {APPROVE_HINT}")
        banner.update(text)

    # ----- live updates ---------------------------------------------------------------------

    def apply_events(self, events: list[Event]) -> None:
        """One batch of events: at most one runs query, one run query and one ``write_lines``."""
        everything = any(isinstance(ev, Lagged) for ev in events)
        runs_dirty = everything
        detail_dirty = everything
        lines: list[str] = []
        for ev in events:
            if getattr(ev, "pipeline", None) != self.pipeline:
                continue
            run_id = str(getattr(ev, "run_id", ""))
            if isinstance(ev, LogLines):
                if self._log_for is not None and self._log_for[:3] == (run_id, ev.stage, ev.action) \
                        and ev.attempt == self._log_for[3]:
                    if 0 <= ev.offset < self._log_loaded:
                        continue  # already read from the log file when the action was selected
                    lines.extend(ev.lines)
                elif run_id == self.run_id and self._log_for is not None and self._log_for[:3] == (
                        run_id, ev.stage, ev.action):
                    detail_dirty = True  # a new attempt: reloaded below
                continue
            if not isinstance(ev, RUN_EVENTS):
                continue
            runs_dirty = True
            if isinstance(ev, ApprovalRequested):
                self._waiting.add(run_id)
                if ev.message:
                    self._approval_messages[(run_id, ev.stage, ev.action)] = ev.message
            elif isinstance(ev, (ApprovalDecided, RunFinished)):
                self._waiting.discard(run_id)
            if run_id == self.run_id:
                detail_dirty = True
        if not (runs_dirty or detail_dirty or lines):
            return
        shown = self.run_id
        if runs_dirty:
            self._refresh_runs()
        if self.run_id != shown:
            return  # switched to a new run: its log was just loaded whole
        before = self._log_for
        if detail_dirty and self.run_id is not None:
            self.detail = self._read_run(self.run_id)
            if self.detail is not None and waiting_actions(self.detail):
                self._waiting.add(self.run_id)
            else:
                self._waiting.discard(self.run_id)
            self._render_actions()
            self._update_header()
            if self.run_id in self._runs:
                self._patch_runs(self._now())
            if everything:  # lines may have been dropped: read the log again
                self._show_action(self.action_key, force=True)
                return
        if lines and self._log_for == before:
            self.log_view.write_lines(lines)
            if self.action_key:
                stage, action = split_key(self.action_key)
                self._log_titles(stage, action, self._attempt(stage, action))

    def _tick(self) -> None:
        """Running durations; cells are only repainted when their text changed."""
        active = [i for i in self._order if not self._runs[i].get("finished")]
        if not active and (self.detail is None or self.detail.get("finished")):
            return
        self._patch_runs(self._now())
        if self.detail is not None:
            self._render_actions()
            self._update_header()

    # ----- operator actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Operator actions show as disabled in the footer when the console is read-only."""
        if action in self.OPERATOR_ACTIONS and self.console.read_only:
            return None
        return True

    def _run_label(self) -> str:
        return short_run(self.run_id) if self.run_id else "this pipeline"

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_run_pipeline(self) -> None:
        self.console.request_run(self.pipeline)

    def _decide(self, approve: bool) -> None:
        waiting = waiting_actions(self.detail) if self.detail else []
        if not waiting or self.run_id is None:
            verb = "approve" if approve else "reject"
            self.notify(f"nothing to {verb}: run {self._run_label()} has no approval waiting", severity="warning")
            return
        chosen = next((w for w in waiting if f"{w[0]}/{w[1]}" == self.action_key), waiting[0])
        if approve:
            self.console.request_approve(self.run_id, chosen[1])
        else:
            self.console.request_reject(self.run_id, chosen[1])

    def action_approve(self) -> None:
        self._decide(True)

    def action_reject(self) -> None:
        self._decide(False)

    def action_retry(self) -> None:
        stage = retry_stage(self.detail) if self.detail else None
        if stage is None or self.run_id is None:
            self.notify(f"nothing to retry: run {self._run_label()} has no failed, stopped or interrupted stage",
                        severity="warning")
            return
        self.console.request_retry(self.run_id, stage)

    def action_stop(self) -> None:
        run = self.detail or self._runs.get(self.run_id or "")
        status = run_status(run) if run else ""
        if run is None or self.run_id is None or str(run.get("status")) not in ACTIVE:
            what = f" ({status})" if status else ""
            self.notify(f"nothing to stop: run {self._run_label()} is not in progress{what}", severity="warning")
            return
        self.console.request_stop(self.run_id)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        log = self.log_view
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        if self.action_key:
            stage, action = split_key(self.action_key)
            self._log_titles(stage, action, self._attempt(stage, action))
        self.notify("log: following new lines" if self.follow else "log: paused (f follows again)", timeout=2)

    # ----- trace ----------------------------------------------------------------------------

    def _find_trace(self) -> tuple[str, dict[str, Any] | None]:
        """The app this pipeline delivers: the pipeline's namesake, else the first app whose
        live commit was made by a run of this pipeline."""
        apps = sorted(self.client.snapshot().get("apps", {}))
        candidates = [self.pipeline] + [a for a in apps if a != self.pipeline]
        fallback: dict[str, Any] | None = None
        self._trace_error = ""
        for name in candidates[:TRACE_SCAN]:
            try:
                found = self.client.trace(name)
            except Exception as exc:  # not an app, or nothing to read: try the next one
                if name == self.pipeline:
                    self._trace_error = str(exc) or type(exc).__name__
                continue
            run = found.get("run")
            if isinstance(run, dict) and run.get("pipeline") == self.pipeline:
                return name, found
            if name == self.pipeline:
                fallback = found
        return self.pipeline, fallback

    def action_trace(self) -> None:
        app_name, found = self._find_trace()
        if found is None:
            why = self._trace_error or f"no app named {self.pipeline!r} and no app's live commit came from it"
            self.notify(f"trace: nothing to trace for pipeline {self.pipeline}: {why}", severity="warning")
            return
        live = self.client.snapshot().get("apps", {}).get(app_name)
        notes = [str(found.get("message") or "")]
        traced = found.get("run")
        if self.detail is not None:
            traced_id = traced.get("id") if isinstance(traced, dict) else None
            mine = f"run {self.detail.get('id')} ({short_sha(self.detail)})"
            notes.append(f"the selected {mine} is what is live" if traced_id == self.detail.get("id")
                         else f"the selected {mine} is not what is live")
        note = "\n".join(n for n in notes if n)
        self.app.push_screen(TraceScreen(f"Trace · {app_name} (delivered by pipeline {self.pipeline})",
                                         trace_lines(found, live, self.console.utc), note))
