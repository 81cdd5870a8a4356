"""Pure formatting of snapshot entries and events into table cells and activity lines.

No Textual here (only ``rich.text``), so these are cheap to unit-test.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

from core.events import (
    AppError,
    ApprovalRequested,
    AppSuspended,
    DriftDetected,
    DriftResolved,
    Event,
    HealthChanged,
    Lagged,
    RevertCommitted,
    RevisionDetected,
    RunFinished,
    RunStarted,
    StageChanged,
    SyncFinished,
    SyncStarted,
    SyncStatusChanged,
)

APP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("app", "APP"),
    ("sync", "SYNC"),
    ("health", "HEALTH"),
    ("revision", "REVISION"),
    ("drift", "DRIFT"),
    ("last_sync", "LAST SYNC"),
)

# Stage/action status -> (symbol, style). Words stay next to the symbols on the run screen.
STATUS_CHIPS: dict[str, tuple[str, str]] = {
    "Succeeded": ("✔", "green"),
    "Failed": ("✘", "bold red"),
    "InProgress": ("●", "yellow"),
    "Waiting": ("‖", "bold yellow"),  # not U+23F8: terminals disagree on its width
    "Stopping": ("■", "yellow"),
    "Stopped": ("■", "red"),
    "Abandoned": ("■", "red"),
    "Interrupted": ("!", "bold red"),
    "Superseded": ("↷", "dim"),
    "Cancelled": ("-", "dim"),
    "Pending": ("·", "dim"),
}

# Rich styles (not theme variables: DataTable cells drop `$var` markup).
STYLE_BAD = "bold red"
STYLE_GOOD = "green"
STYLE_BUSY = "yellow"
STYLE_DIM = "dim"

Row = tuple[str, str, str, str, str, str, str]  # six cell texts (APP_COLUMNS) + the row style
ROW_STYLE = 6


def ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def app_row(app: dict[str, Any], now: float) -> Row:
    """The APP/SYNC/HEALTH/REVISION/DRIFT/LAST SYNC texts and the row style for one snapshot app."""
    drift = int(app.get("drift_count") or 0)
    health = str(app.get("health") or "Unknown")
    status = str(app.get("sync_status") or "Unknown")
    suspended = bool(app.get("suspended"))
    if drift:
        # Live differs from Git whatever the last sync said.
        sync = "Drifted"
    elif suspended:
        sync = "Suspended"
    else:
        sync = status
    rev = app.get("revision") or {}
    plan = app.get("plan") or {}
    last = app.get("last_sync")
    # The source head once a RevisionDetected arrived, else what the last plan or sync used.
    revision = (
        (str(rev.get("sha", "")) if isinstance(rev, dict) else "")
        or (str(plan.get("revision_sha", "")) if isinstance(plan, dict) else "")
        or (str(last.get("revision_sha", "")) if isinstance(last, dict) else "")
    )[:7]
    if app.get("syncing"):
        last_text = "syncing…"
    elif isinstance(last, dict):
        last_text = f"{ago(now - float(last.get('finished') or 0))} {'ok' if last.get('ok') else 'FAILED'}"
    else:
        last_text = "never"
    if drift or status == "OutOfSync" or health in ("Degraded", "Missing") or (isinstance(last, dict) and not last.get("ok")):
        style = STYLE_BAD
    elif suspended:
        style = STYLE_DIM
    elif health == "Progressing" or app.get("syncing"):
        style = STYLE_BUSY
    elif status == "Synced" and health == "Healthy":
        style = STYLE_GOOD
    else:
        style = ""
    return (str(app.get("name", "")), sync, health, revision or "-", str(drift), last_text, style)


HEALTH_STYLES = {"Healthy": STYLE_GOOD, "Progressing": STYLE_BUSY, "Degraded": STYLE_BAD, "Missing": STYLE_BAD,
                 "Suspended": STYLE_DIM, "Unknown": STYLE_DIM}


def cells(row: Row) -> list[Text]:
    """Colour goes on the cells that carry state (name, sync, health, drift), not on every cell:
    over SSH every styled cell costs escape codes on each repaint of its row."""
    style = row[ROW_STYLE]
    name, sync, health, revision, drift, last = row[:ROW_STYLE]
    bad = style == STYLE_BAD

    def cell(text: str, cell_style: str = "") -> Text:
        return Text(text, style=cell_style, no_wrap=True, overflow="ellipsis")

    return [
        cell(name, style if bad or style == STYLE_DIM else ""),
        cell(sync, style),
        cell(health, HEALTH_STYLES.get(health, "")),
        cell(revision, STYLE_DIM if style == STYLE_DIM else ""),
        cell(drift, STYLE_BAD if drift not in ("0", "") else STYLE_DIM),
        cell(last, STYLE_BAD if last.endswith("FAILED") else ""),
    ]


def clock(ts: float, utc: bool = False) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts) if utc else time.localtime(ts))


def activity_line(ev: Event, utc: bool = False) -> str:
    """One line for the activity feed: ``HH:MM:SS  KIND      subject  details``."""

    def line(kind: str, subject: str, detail: str = "") -> str:
        return f"{clock(ev.ts, utc)}  {kind:<9} {subject:<10} {detail}".rstrip()

    if isinstance(ev, DriftDetected):
        fields = ", ".join(ev.fields[:2]) + (" …" if len(ev.fields) > 2 else "")
        who = f" by {', '.join(ev.managers)}" if ev.managers else ""
        what = "missing" if ev.missing else fields
        return line("DRIFT", ev.app, f"{ev.ref.kind}/{ev.ref.name} {what}{who}")
    if isinstance(ev, DriftResolved):
        return line("RESOLVED", ev.app, f"{ev.ref.kind}/{ev.ref.name} ({ev.how})")
    if isinstance(ev, SyncStarted):
        dry = " (dry run)" if ev.dry_run else ""
        return line("SYNCING", ev.app, f"{ev.revision_sha[:7]}{dry}" + (f" by {ev.who}" if ev.who else ""))
    if isinstance(ev, SyncFinished):
        kind = "SYNCED" if ev.ok else "SYNC FAIL"
        return line(kind, ev.app, f"{ev.revision_sha[:7]} {ev.message}".strip())
    if isinstance(ev, SyncStatusChanged):
        return line("STATUS", ev.app, f"{ev.previous.value} → {ev.status.value}")
    if isinstance(ev, HealthChanged):
        reason = f" ({ev.reason})" if ev.reason else ""
        return line("HEALTH", ev.app, f"{ev.previous.value} → {ev.health.value}{reason}")
    if isinstance(ev, AppError):
        return line("ERROR", ev.app, ev.message)
    if isinstance(ev, AppSuspended):
        return line("SUSPENDED" if ev.suspended else "RESUMED", ev.app, f"by {ev.who}" if ev.who else "")
    if isinstance(ev, RevertCommitted):
        return line("REVERT", ev.app, f"{', '.join(s[:7] for s in ev.reverted)} → {ev.new_sha[:7]}")
    if isinstance(ev, RevisionDetected):
        return line("REVISION", ev.source, f"{ev.revision.short} {ev.revision.subject}".strip())
    if isinstance(ev, RunStarted):
        return line("RUN", ev.pipeline, f"{short_run(ev.run_id)} started ({ev.trigger}) at {ev.revision_sha[:7]}")
    if isinstance(ev, RunFinished):
        return line("RUN", ev.pipeline, f"{short_run(ev.run_id)} {ev.status} {ev.message}".rstrip())
    if isinstance(ev, StageChanged):
        return line("STAGE", ev.pipeline, f"{short_run(ev.run_id)} {ev.stage} {ev.status}")
    if isinstance(ev, ApprovalRequested):
        return line("APPROVAL", ev.pipeline, f"{short_run(ev.run_id)} {ev.stage}.{ev.action} waiting for an operator"
                    " (a approves)")
    if isinstance(ev, Lagged):
        return line("LAGGED", "-", f"{ev.dropped} events dropped; view refreshed from a snapshot")
    return ""  # too chatty for the feed (per-object health, log lines, plans…)


def run_style(status: str) -> str:
    s = status.lower()
    if s in ("succeeded", "success", "ok"):
        return STYLE_GOOD
    if s in ("failed", "error", "cancelled", "timedout"):
        return STYLE_BAD
    if s in ("running", "waiting", "pending", "queued"):
        return STYLE_BUSY
    return ""


def duration(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}"
    return f"{s // 3600}h{(s % 3600) // 60:02d}"


def short_run(run_id: str) -> str:
    """``web-20261128-1604-ab12`` -> ``#ab12``: the part that tells runs of one pipeline apart."""
    return "#" + run_id.rsplit("-", 1)[-1]


def _elapsed(item: dict[str, Any], now: float) -> str:
    start = item.get("started")
    if not start:
        return ""
    end = item.get("finished") or now
    return duration(float(end) - float(start))


def stage_chips(run: dict[str, Any], now: float, durations: bool = True) -> Text:
    """``✔ build 41s  ✔ test 1m02  ‖ release`` for one run (stages in order)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, stage in enumerate(run.get("stages") or []):
        status = str(stage.get("status", "Pending"))
        if any(str(a.get("status")) == "Waiting" for a in stage.get("actions") or []):
            status = "Waiting"
        symbol, style = STATUS_CHIPS.get(status, ("?", ""))
        if i:
            out.append("  ")
        out.append(f"{symbol} {stage.get('stage', '')}", style=style)
        took = _elapsed(stage, now) if status not in ("Pending", "Cancelled", "Waiting") else ""
        if took and durations:
            out.append(f" {took}", style="dim")
    return out


def run_status_text(run: dict[str, Any], now: float) -> Text:
    status = str(run.get("status", ""))
    if any(str(a.get("status")) == "Waiting" for s in run.get("stages") or [] for a in s.get("actions") or []):
        status = "Waiting"
    symbol, style = STATUS_CHIPS.get(status, ("?", ""))
    when = run.get("finished") or run.get("started")
    age = f" {ago(now - float(when)).removesuffix(' ago')}" if when else ""
    return Text(f"{symbol} {status}{age}", style=style, no_wrap=True)
