"""Pure formatting for the App screen: object rows, diff text, history and commit rows.

No Textual here (only ``rich.text``), so these are cheap to unit-test. Secret values
arrive masked from the client (``***``) and are shown as they are.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

from core.diff import side_by_side, unified
from tui.format import STYLE_BAD, STYLE_BUSY, STYLE_DIM, STYLE_GOOD, clock

OBJECT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "KIND"),
    ("name", "NAMESPACE/NAME"),
    ("sync", "SYNC"),
    ("health", "HEALTH"),
    ("drift", "DRIFT"),
)
HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "TIME"),
    ("kind", "KIND"),
    ("what", "REVISION / OBJECT"),
    ("who", "WHO"),
    ("result", "RESULT"),
)
COMMIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sha", "SHA"),
    ("subject", "SUBJECT"),
    ("author", "AUTHOR"),
    ("time", "TIME"),
)

# Diff line styles by side_by_side marker: changed, only desired (Git), only live.
MARK_STYLE: dict[str, str] = {"~": "bold yellow", "+": "bold green", "-": "bold red"}
GUTTER = " │ "

ObjectRow = tuple[str, str, str, str, str, str]  # five cell texts (OBJECT_COLUMNS) + the row style
CellTexts = tuple[str, ...]


def is_drifted(obj: dict[str, Any]) -> bool:
    """Live differs from what we applied (or the object is gone)."""
    sync = str(obj.get("sync"))
    return sync == "Missing" or (sync == "OutOfSync" and bool(obj.get("fields") or obj.get("managers")))


def object_label(obj: dict[str, Any]) -> str:
    """``Kind/namespace/name`` (``Kind/name`` for cluster-scoped objects)."""
    ns = str(obj.get("namespace") or "")
    name = str(obj.get("name") or "")
    return f"{obj.get('kind', '')}/{ns}/{name}" if ns else f"{obj.get('kind', '')}/{name}"


def drift_summary(obj: dict[str, Any]) -> str:
    """``.spec.replicas, .spec.x +2 by kubectl-edit``; empty when not drifted."""
    fields = [str(f) for f in obj.get("fields") or []]
    managers = [str(m) for m in obj.get("managers") or []]
    if str(obj.get("sync")) == "Missing":
        what = "deleted live"
    elif fields:
        what = ", ".join(fields[:2]) + (f" +{len(fields) - 2}" if len(fields) > 2 else "")
    else:
        what = ""
    who = f"by {', '.join(managers)}" if managers else ""
    return " ".join(p for p in (what, who) if p)


def object_row(obj: dict[str, Any]) -> ObjectRow:
    """KIND/NAME/SYNC/HEALTH/DRIFT texts and the row style of one ``client.objects()`` entry."""
    ns = str(obj.get("namespace") or "")
    name = f"{ns}/{obj.get('name', '')}" if ns else str(obj.get("name", ""))
    sync = str(obj.get("sync") or "Unknown")
    health = str(obj.get("health") or "Unknown")
    if is_drifted(obj) or health in ("Degraded", "Missing"):
        style = STYLE_BAD
    elif sync == "OutOfSync" or health == "Progressing":
        style = STYLE_BUSY
    elif health == "Suspended":
        style = STYLE_DIM
    else:
        style = ""
    return (str(obj.get("kind", "")), name, sync, health, drift_summary(obj), style)


def object_cells(row: ObjectRow) -> list[Text]:
    """Rich cells: a drifted/degraded row is styled whole; otherwise green SYNC/HEALTH when good."""
    style = row[5]
    out = []
    for i, value in enumerate(row[:5]):
        cell_style = style
        if not style and ((i == 2 and value == "Synced") or (i == 3 and value == "Healthy")):
            cell_style = STYLE_GOOD
        out.append(Text(value, style=cell_style, no_wrap=True, overflow="ellipsis"))
    return out


def sort_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drifted objects first, otherwise the client's order (kind order, namespace, name)."""
    return [o for o in objects if is_drifted(o)] + [o for o in objects if not is_drifted(o)]


# ----- diff -----------------------------------------------------------------------------------


def diff_title(diff: dict[str, Any], label: str, utc: bool) -> Text:
    """``Kind/ns/name  drifted HH:MM:SS by kubectl-edit`` (the drift part only when drifted)."""
    out = Text(label, style="bold", no_wrap=True, overflow="ellipsis")
    drift = diff.get("drift")
    if isinstance(drift, dict):
        managers = [str(m) for m in drift.get("managers") or []]
        ts = float(drift.get("ts") or 0)
        what = "deleted live" if drift.get("missing") else "drifted"
        when = f" {clock(ts, utc)}" if ts else ""
        who = f" by {', '.join(managers)}" if managers else ""
        out.append(f"  {what}{when}{who}", style=STYLE_BAD)
    elif diff.get("live") is None and diff.get("desired") is not None:
        out.append("  not in the cluster", style=STYLE_BUSY)
    elif diff.get("desired") is None and diff.get("live") is not None:
        out.append("  not in Git", style=STYLE_BUSY)
    return out


def change_lines(diff: dict[str, Any], limit: int = 4) -> list[Text]:
    """The changed field paths (``~ .spec.x: live -> desired``), at most ``limit`` lines."""
    changes = [str(c) for c in diff.get("changes") or []]
    if not changes:
        return [Text("no differences: live matches Git", style=STYLE_GOOD, no_wrap=True)]
    out = []
    for c in changes[:limit]:
        style = MARK_STYLE.get(c[:1], "")
        out.append(Text(f"  {c}", style=style.replace("bold ", ""), no_wrap=True, overflow="ellipsis"))
    if len(changes) > limit:
        out.append(Text(f"  … {len(changes) - limit} more", style=STYLE_DIM, no_wrap=True))
    return out


def side_by_side_text(desired: dict[str, Any] | None, live: dict[str, Any] | None,
                      width: int) -> tuple[Text, int]:
    """Desired (Git) on the left, live on the right, ``width`` columns in all; returns the
    text and the index of the first changed line (-1 when there is none)."""
    col = max(8, (width - 2 - len(GUTTER)) // 2)
    rows = side_by_side(desired, live, col)
    out = Text(no_wrap=True, overflow="crop")
    first = -1
    for i, (live_line, desired_line, marker) in enumerate(rows):
        if i:
            out.append("\n")
        style = MARK_STYLE.get(marker, "")
        if style and first < 0:
            first = i
        left_style = style if marker in ("~", "+") else ""
        right_style = style if marker in ("~", "-") else ""
        out.append(f"{marker} ", style=style)
        out.append(desired_line.ljust(col), style=left_style)
        out.append(GUTTER, style=STYLE_DIM)
        out.append(live_line.ljust(col), style=right_style)
    return out, first


def side_by_side_title(width: int) -> Text:
    """The column titles above :func:`side_by_side_text`."""
    col = max(8, (width - 2 - len(GUTTER)) // 2)
    out = Text(no_wrap=True, overflow="crop", style="bold")
    out.append("  " + "DESIRED (Git)".ljust(col))
    out.append(GUTTER, style=STYLE_DIM)
    out.append("LIVE (cluster)")
    return out


def unified_text(desired: dict[str, Any] | None, live: dict[str, Any] | None) -> tuple[Text, int]:
    """``kubectl diff``-style: ``-`` live, ``+`` desired; equal objects show their YAML.
    Returns the text and the index of the first changed line (-1 when there is none)."""
    diff = unified(desired, live)
    if not diff:
        body = "\n".join("  " + d for _live, d, _m in side_by_side(desired, live, 0))
        return Text(body, no_wrap=True, overflow="crop"), -1
    out = Text(no_wrap=True, overflow="crop")
    first = -1
    for i, line in enumerate(diff.rstrip("\n").split("\n")):
        if i:
            out.append("\n")
        if line.startswith(("---", "+++")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = {"+": MARK_STYLE["+"], "-": MARK_STYLE["-"]}.get(line[:1], "")
            if style and first < 0:
                first = i
        out.append(line, style=style)
    return out, first


# ----- history and commits --------------------------------------------------------------------


def when(ts: float, now: float, utc: bool) -> str:
    """``HH:MM:SS`` within a day of ``now``, else ``MM-DD HH:MM``."""
    if abs(now - ts) < 86400:
        return clock(ts, utc)
    return time.strftime("%m-%d %H:%M", time.gmtime(ts) if utc else time.localtime(ts))


def short_object(text: str) -> str:
    """``Deployment.apps/payments/payments-api`` -> ``Deployment/payments-api`` (the app's
    namespace is implied; the group rarely tells objects of one app apart)."""
    parts = text.split("/")
    if len(parts) < 2:
        return text
    return f"{parts[0].split('.', 1)[0]}/{parts[-1]}"


def history_cells(entry: dict[str, Any], now: float, utc: bool) -> list[Text]:
    """TIME/KIND/WHAT/WHO/RESULT for one ``client.history()`` entry."""
    kind = str(entry.get("kind", ""))
    ts = float(entry.get("ts") or 0)
    what = who = result = ""
    style = ""
    if kind == "sync":
        what = str(entry.get("revision") or "")[:7]
        who = str(entry.get("who") or "")
        ok = entry.get("ok")
        state = "running" if ok is None else ("ok" if ok else "FAILED")
        dry = " (dry run)" if entry.get("dry_run") else ""
        result = f"{state}{dry} {entry.get('message') or ''}".strip()
        style = STYLE_BUSY if ok is None else ("" if ok else STYLE_BAD)
    elif kind == "drift":
        what = short_object(str(entry.get("object") or ""))
        who = ", ".join(str(m) for m in entry.get("managers") or [])
        fields = ", ".join(str(f) for f in entry.get("fields") or [])
        if entry.get("resolved"):
            result = f"resolved ({entry.get('how') or '?'}) {fields}".strip()
            style = STYLE_DIM
        else:
            result = ("deleted live" if entry.get("missing") else f"open {fields}").strip()
            style = STYLE_BAD
    elif kind == "revert":
        reverted = ", ".join(str(s)[:7] for s in entry.get("reverted") or [])
        what = f"{reverted} → {str(entry.get('new_sha') or '')[:7]}"
        who = str(entry.get("who") or "")
        result = "committed"
    else:  # audit
        args = entry.get("args") or {}
        extra = " ".join(f"{k}={v}" for k, v in args.items()) if isinstance(args, dict) else str(args)
        what = f"{entry.get('action', '')} {extra}".strip()
        who = str(entry.get("who") or "")
        result = str(entry.get("result") or "")
        style = STYLE_DIM
    values = (when(ts, now, utc) if ts else "-", kind, what, who, result)
    return [Text(v, style=style, no_wrap=True, overflow="ellipsis") for v in values]


def commit_cells(commit: dict[str, Any]) -> list[Text]:
    """SHA/SUBJECT/AUTHOR/TIME for one ``client.commits()`` entry."""
    short = str(commit.get("short") or str(commit.get("sha", ""))[:7])
    stamp = str(commit.get("time") or "").replace("T", " ").removesuffix("Z")[:16]
    return [Text(v, no_wrap=True, overflow="ellipsis")
            for v in (short, str(commit.get("subject", "")), str(commit.get("author", "")), stamp)]
