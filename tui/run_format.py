"""Pure formatting of pipeline runs for the Pipeline screen (no Textual, only ``rich.text``).

Runs and their stages come from ``client.runs()`` / ``client.run()``: statuses are
CodePipeline's words (Pending, InProgress, Waiting, Succeeded, Failed, …); an action may
have several attempts (oldest first), the screen shows the latest one.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tui.format import STATUS_CHIPS, clock, duration, short_run

RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run", "RUN"),
    ("status", "STATUS"),
    ("revision", "REVISION"),
    ("trigger", "TRIGGER"),
    ("started", "STARTED"),
    ("duration", "DURATION"),
)
ACTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("stage", "STAGE"),
    ("action", "ACTION"),
    ("status", "STATUS"),
    ("attempt", "ATTEMPT"),
    ("duration", "DURATION"),
    ("message", "MESSAGE"),
)
ACTIVE = frozenset({"Pending", "InProgress", "Waiting"})  # a run that can still be stopped
RETRYABLE = frozenset({"Failed", "Stopped", "Interrupted", "Abandoned"})
APPROVE_HINT = "press a to approve, n to reject"


def status_text(status: str, suffix: str = "") -> Text:
    """``✔ Succeeded`` in the status colour (a rich style: table cells drop ``$var`` markup)."""
    symbol, style = STATUS_CHIPS.get(status, ("?", ""))
    return Text(f"{symbol} {status or 'Unknown'}{suffix}", style=style, no_wrap=True, overflow="ellipsis")


def elapsed(item: dict[str, Any], now: float) -> str:
    """How long a run/stage/action took (or has taken so far); empty if it never started."""
    start = item.get("started")
    if not start:
        return ""
    end = item.get("finished") or now
    return duration(float(end) - float(start))


def subject(run: dict[str, Any]) -> str:
    """First line of the source commit message."""
    info = run.get("revision_info")
    message = str(info.get("message", "")) if isinstance(info, dict) else ""
    return message.split("\n", 1)[0].strip()


def short_sha(run: dict[str, Any]) -> str:
    return str(run.get("revision") or "")[:7] or "-"


def has_waiting(run: dict[str, Any]) -> bool:
    return any(str(a.get("status")) == "Waiting" for _s, a in latest_actions(run))


def run_status(run: dict[str, Any], waiting: bool = False) -> str:
    """The run's status word, ``Waiting`` while an approval of an unfinished run waits."""
    status = str(run.get("status") or "")
    if status in ("InProgress", "Pending") and (waiting or has_waiting(run)):
        return "Waiting"
    return status


def run_cells(run: dict[str, Any], now: float, utc: bool, waiting: bool = False) -> list[Text]:
    """RUN, STATUS, REVISION, TRIGGER, STARTED, DURATION for one row of the runs table."""
    started = run.get("started")
    dim = "dim"
    return [
        Text(short_run(str(run.get("id", ""))), no_wrap=True),
        status_text(run_status(run, waiting)),
        Text(short_sha(run), no_wrap=True),
        Text(str(run.get("trigger") or "-"), style=dim, no_wrap=True),
        Text(clock(float(started), utc) if started else "-", no_wrap=True),
        Text(elapsed(run, now) or "-", style="" if run.get("finished") else "yellow", no_wrap=True),
    ]


def latest_actions(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(stage, latest attempt of each action) in stage then start order."""
    out: list[tuple[str, dict[str, Any]]] = []
    for stage in run.get("stages") or []:
        latest: dict[str, dict[str, Any]] = {}
        for a in stage.get("actions") or []:
            name = str(a.get("action", ""))
            prev = latest.get(name)
            if prev is None or int(a.get("attempt") or 1) >= int(prev.get("attempt") or 1):
                latest[name] = a
        out += [(str(stage.get("stage", "")), a) for a in latest.values()]
    return out


def action_key(stage: str, action: str) -> str:
    """Row key of the actions table (``stage/`` for a stage with no action yet)."""
    return f"{stage}/{action}"


def split_key(key: str) -> tuple[str, str]:
    stage, _, action = key.partition("/")
    return stage, action


def action_message(action: dict[str, Any], hint: bool = True) -> Text:
    """The MESSAGE cell: a waiting approval says what to press; a failure its exit status."""
    status = str(action.get("status", ""))
    message = str(action.get("message") or "")
    if status == "Waiting":
        parts = [p for p in (message, APPROVE_HINT if hint else "") if p]
        return Text(" — ".join(parts) or "waiting for an operator", style="bold yellow", no_wrap=True)
    code = action.get("exit_code")
    if not message and status == "Failed" and code is not None:
        message = f"exit status {code}"
    who = str(action.get("who") or "")
    if who and who not in message:
        message = f"{message} ({who})" if message else f"by {who}"
    return Text(message, style="red" if status in RETRYABLE else "dim", no_wrap=True, overflow="ellipsis")


ActionRow = tuple[str, list[Text]]  # (row key, cells)


def action_rows(run: dict[str, Any], now: float, hint: bool = True) -> list[ActionRow]:
    """One row per action (latest attempt); a stage without actions gets one row of its own."""
    rows: list[ActionRow] = []
    for stage in run.get("stages") or []:
        name = str(stage.get("stage", ""))
        actions = [a for s, a in latest_actions({"stages": [stage]}) if s == name]
        if not actions:
            status = str(stage.get("status") or "Pending")
            rows.append((action_key(name, ""), [
                Text(name, style="bold", no_wrap=True), Text("—", style="dim"), status_text(status),
                Text(""), Text(elapsed(stage, now), no_wrap=True),
                Text(str(stage.get("message") or ""), style="dim", no_wrap=True),
            ]))
            continue
        for i, a in enumerate(actions):
            status = str(a.get("status", ""))
            took = elapsed(a, now)
            rows.append((action_key(name, str(a.get("action", ""))), [
                Text(name if i == 0 else "", style="bold", no_wrap=True),
                Text(str(a.get("action", "")), no_wrap=True),
                status_text(status),
                Text(str(a.get("attempt") or 1), no_wrap=True),
                Text(took, no_wrap=True, style="" if a.get("finished") else "yellow"),
                action_message(a, hint),
            ]))
    return rows


def default_action(run: dict[str, Any]) -> str | None:
    """The action a run page opens on: the waiting approval, else what runs, else what failed,
    else the last action that ran."""
    actions = latest_actions(run)
    for wanted in (("Waiting",), ("InProgress", "Stopping"), tuple(RETRYABLE)):
        for stage, a in actions:
            if str(a.get("status")) in wanted:
                return action_key(stage, str(a.get("action", "")))
    ran = [(s, a) for s, a in actions if a.get("started")]
    if ran:
        stage, a = ran[-1]
        return action_key(stage, str(a.get("action", "")))
    return None


def waiting_actions(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(stage, action, message) of the approvals waiting in a run."""
    return [(s, str(a.get("action", "")), str(a.get("message") or ""))
            for s, a in latest_actions(run) if str(a.get("status")) == "Waiting"]


def retry_stage(run: dict[str, Any]) -> str | None:
    """The first failed, stopped or interrupted stage of a run (what ``retry`` restarts)."""
    for stage in run.get("stages") or []:
        if str(stage.get("status")) in RETRYABLE:
            return str(stage.get("stage"))
    return None


def header_text(pipeline: str, run: dict[str, Any] | None, now: float, utc: bool) -> Text:
    """``web  web-42  ‖ Waiting  a1b2c3d fix login  commit by alice  12:26:40 · 6m40``."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(pipeline, style="bold")
    if run is None:
        out.append("  no runs yet — press p to start one", style="dim")
        return out
    out.append(f"  {run.get('id', '')}  ", style="bold")
    out.append_text(status_text(run_status(run)))
    out.append(f"  {short_sha(run)}", style="bold")
    if subject(run):
        out.append(f" {subject(run)}")
    trigger = str(run.get("trigger") or "")
    who = str(run.get("who") or "")
    if trigger or who:
        out.append(f"  {trigger}{' by ' + who if who else ''}", style="dim")
    started = run.get("started")
    if started:
        out.append(f"  {clock(float(started), utc)} · {elapsed(run, now)}", style="dim")
    return out


def trace_lines(trace: dict[str, Any], live: dict[str, Any] | None, utc: bool) -> list[Text]:
    """The chain source revision → run → config commit → sync → live, one step per line."""

    def step(label: str, body: Text | str, ok: bool = True) -> Text:
        t = Text(f"{label:<16}", style="bold" if ok else "dim")
        t.append_text(body if isinstance(body, Text) else Text(body, style="" if ok else "dim"))
        return t

    arrow = Text("   ↓", style="dim")
    out: list[Text] = []
    rev = trace.get("source_revision")
    if isinstance(rev, dict):
        sha = str(rev.get("sha", ""))[:7]
        extra = " ".join(str(rev.get(k) or "") for k in ("subject", "author")).strip()
        out.append(step("source commit", f"{sha} {extra}".strip()))
    else:
        out.append(step("source commit", "not recorded", ok=False))
    out.append(arrow)
    run = trace.get("run")
    if isinstance(run, dict):
        body = Text(f"{run.get('id', '')} ")
        body.append_text(status_text(str(run.get("status", ""))))
        when = run.get("started")
        body.append(f"  {run.get('trigger', '')}" + (f" at {clock(float(when), utc)}" if when else ""), style="dim")
        out.append(step("pipeline run", body))
    else:
        out.append(step("pipeline run", "no recorded run made the live commit", ok=False))
    out.append(arrow)
    commit = trace.get("commit")
    if isinstance(commit, dict):
        out.append(step("config commit", f"{str(commit.get('sha', ''))[:7]} {commit.get('subject', '')}"
                        f"  ({commit.get('source', '')})"))
    else:
        out.append(step("config commit", "not recorded", ok=False))
    out.append(arrow)
    sync = trace.get("sync")
    if isinstance(sync, dict):
        when = sync.get("finished")
        at = f" at {clock(float(when), utc)}" if when else ""
        who = f" by {sync['who']}" if sync.get("who") else ""
        out.append(step("sync", f"{str(sync.get('revision', ''))[:7]}{at}{who}  {sync.get('message', '')}".rstrip()))
    else:
        out.append(step("sync", "no successful sync recorded", ok=False))
    out.append(arrow)
    if live:
        rev_live = live.get("revision")
        sha = str(rev_live.get("sha", ""))[:7] if isinstance(rev_live, dict) else ""
        body = Text(f"{live.get('name', trace.get('app', ''))} {sha}  ")
        sync_status = str(live.get("sync_status", ""))
        health = str(live.get("health", ""))
        body.append(sync_status, style="green" if sync_status == "Synced" else "bold red")
        body.append(" / ")
        body.append(health, style="green" if health == "Healthy" else "yellow")
        out.append(step("live", body))
    else:
        out.append(step("live", f"{trace.get('app', '')}: not in the cluster state", ok=False))
    return out
