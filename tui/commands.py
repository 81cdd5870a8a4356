"""The command palette's contextual entries and the k9s-style ``:`` command line.

Both build on the same list of :class:`Entry` objects, made from what is on screen now
(the selected app first, then every app, pipeline and waiting approval), so "Sync web"
in the palette and ``:sync web`` do the same thing: call ``app.request_*``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from themes import theme_names

if TYPE_CHECKING:
    from tui.app import DriftdeckApp


@dataclass(frozen=True)
class Entry:
    title: str
    help: str
    callback: Callable[[], object]
    operator: bool = False  # disabled (not offered) when read-only


def entries(app: DriftdeckApp) -> list[Entry]:
    """Every palette entry for the current state, contextual ones first."""
    out: list[Entry] = []
    selected = app.selected_app()
    apps = sorted(app._rows)
    if selected in apps:
        apps.remove(selected)
        apps.insert(0, selected)
    for name in apps:
        out += [
            Entry(f"Sync {name}", "apply the app's manifests at its source head", partial(app.request_sync, name), True),
            Entry(f"Revert {name} (last commit)", "git revert of the head commit, then sync",
                  partial(app.request_revert, name), True),
            Entry(f"Revert {name} to …", "choose a commit in the app's history", partial(app.open_app, name), True),
            Entry(f"Open {name}", "resources, diff and history", partial(app.open_app, name)),
            Entry(f"Diff {name}", "desired vs live, drifted objects first", partial(app.open_app, name, True)),
        ]
    for run_id, stage, action in app.waiting_approvals():
        out += [
            Entry(f"Approve {run_id} {stage}.{action}", "the run goes on", partial(app.request_approve, run_id, action),
                  True),
            Entry(f"Reject {run_id} {stage}.{action}", "the run fails", partial(app.request_reject, run_id, action),
                  True),
        ]
    for name, run in sorted(app._latest.items()):
        out += [
            Entry(f"Run pipeline {name}", "start a run at the head of its source", partial(app.request_run, name),
                  True),
            Entry(f"Open pipeline {name}", "runs, stages and logs", partial(app.open_pipeline, name)),
        ]
        if run.get("id") and str(run.get("status")) in ("InProgress", "Waiting", "Pending"):
            out.append(Entry(f"Stop {run['id']}", f"stop the running run of {name}",
                             partial(app.request_stop, str(run["id"])), True))
        failed = [s["stage"] for s in run.get("stages") or []
                  if str(s.get("status")) in ("Failed", "Stopped", "Interrupted", "Abandoned")]
        if run.get("id") and failed:
            out.append(Entry(f"Retry {run['id']} {failed[0]}", f"run the failed stage of {name} again",
                             partial(app.request_retry, str(run["id"]), str(failed[0])), True))
    for theme in theme_names():
        out.append(Entry(f"Theme {theme}", "switch the colour theme", partial(setattr, app, "theme", theme)))
    if app.read_only:
        out = [e for e in out if not e.operator]
    return out


class ConsoleCommands(Provider):
    """Contextual commands: "Sync web", "Revert web (last commit)", "Run pipeline web"…"""

    async def discover(self) -> Hits:
        app = self.app
        from tui.app import DriftdeckApp

        if not isinstance(app, DriftdeckApp):
            return
        for e in entries(app)[:12]:
            yield DiscoveryHit(e.title, e.callback, help=e.help)

    async def search(self, query: str) -> Hits:
        app = self.app
        from tui.app import DriftdeckApp

        if not isinstance(app, DriftdeckApp):
            return
        matcher = self.matcher(query)
        for e in entries(app):
            score = matcher.match(e.title)
            if score > 0:
                yield Hit(score, matcher.highlight(e.title), e.callback, help=e.help)


USAGE = ("commands: sync APP · revert APP [SHA] · suspend APP · resume APP · app APP · diff APP · "
         "run PIPELINE · pipeline NAME · approve RUN ACTION · reject RUN ACTION · retry RUN STAGE · "
         "stop RUN · filter TEXT · theme NAME · help · q")


def run_command_line(app: DriftdeckApp, line: str) -> None:
    """Carry out one ``:`` command; unknown or malformed ones say what is expected."""
    try:
        words = shlex.split(line.strip().lstrip(":"))
    except ValueError as exc:
        app.notify(f":{line}: {exc}", severity="error")
        return
    if not words:
        return
    verb, args = words[0].lower(), words[1:]
    apps = set(app._rows)
    pipelines = set(app._latest)

    def need(n: int, usage: str) -> bool:
        if len(args) < n:
            app.notify(f"usage: :{usage}", severity="error")
            return False
        return True

    def known_app(name: str) -> bool:
        if name not in apps:
            app.notify(f"no app {name!r} (apps: {', '.join(sorted(apps)) or 'none'})", severity="error")
            return False
        return True

    def known_pipeline(name: str) -> bool:
        if name not in pipelines:
            app.notify(f"no pipeline {name!r} (pipelines: {', '.join(sorted(pipelines)) or 'none'})",
                       severity="error")
            return False
        return True

    if verb in ("q", "quit", "q!"):
        app.exit()
    elif verb in ("help", "h", "?"):
        app.action_help()
    elif verb in ("sync", "revert", "suspend", "resume", "app", "open", "diff"):
        if not need(1, f"{verb} APP") or not known_app(args[0]):
            return
        name = args[0]
        if verb == "sync":
            app.request_sync(name)
        elif verb == "revert":
            app.request_revert(name, args[1] if len(args) > 1 else None)
        elif verb in ("suspend", "resume"):
            app.request_suspend(name, verb == "suspend")
        else:
            app.open_app(name, diff=verb == "diff")
    elif verb in ("run", "pipeline", "pipe"):
        if need(1, f"{verb} PIPELINE") and known_pipeline(args[0]):
            if verb == "run":
                app.request_run(args[0])
            else:
                app.open_pipeline(args[0])
    elif verb in ("approve", "reject"):
        if need(2, f"{verb} RUN ACTION"):
            action = args[1].split(".")[-1]
            (app.request_approve if verb == "approve" else app.request_reject)(args[0], action)
    elif verb == "retry":
        if need(2, "retry RUN STAGE"):
            app.request_retry(args[0], args[1])
    elif verb == "stop":
        if need(1, "stop RUN"):
            app.request_stop(args[0])
    elif verb == "filter":
        box = app.query_one("#filter")
        app.action_filter()
        box.value = " ".join(args)  # type: ignore[attr-defined]
    elif verb == "theme":
        if need(1, "theme NAME"):
            if args[0] not in theme_names():
                app.notify(f"no theme {args[0]!r} (themes: {', '.join(theme_names())})", severity="error")
            else:
                app.theme = args[0]
    elif verb in ("apps", "pipelines"):
        (app.apps_table if verb == "apps" else app.pipelines_table).focus()
    else:
        app.notify(f"unknown command {verb!r}; {USAGE}", severity="error", timeout=8)
