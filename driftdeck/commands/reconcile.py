"""Reconciliation verbs: status, diff, sync, suspend, resume, history, revert, watch.

Each runs the engine in-process (the daemon arrives with a later issue): it loads
the config, talks to the clusters and sources, records to the history database,
and exits. Exit codes: 0 ok, 1 "a difference was found" (diff), 2 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Any

from core.client import LocalClient
from core.config import load_config
from core.daemon.remote import RemoteClient
from core.diff import to_json_patch, unified
from core.engine import Engine, EngineError
from core.events import Event
from core.model import Action, Config, Plan, PlanItem, Revision
from driftdeck.attach import add_connect_options, run_on_daemon

EXIT_OK, EXIT_DIFF, EXIT_ERROR = 0, 1, 2


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _load(args: argparse.Namespace) -> Config | None:
    config, problems = load_config(args.config)
    errors = [p for p in problems]
    for p in errors:
        print(f"driftdeck: {p}", file=sys.stderr)
    if not config.apps and errors:
        return None
    return config


def _run(args: argparse.Namespace, body: Callable[[Engine], Awaitable[int]]) -> int:
    config = _load(args)
    if config is None:
        return EXIT_ERROR

    async def main() -> int:
        engine = Engine(config, who=who())
        try:
            return await body(engine)
        except EngineError as exc:
            print(f"driftdeck: {exc}", file=sys.stderr)
            return EXIT_ERROR
        finally:
            await engine.stop()

    return asyncio.run(main())


def _status_rows_from_snapshot(snap: dict[str, Any], app: str | None) -> list[dict[str, Any]]:
    rows = []
    for name, a in sorted(snap.get("apps", {}).items()):
        if app and name != app:
            continue
        last = a.get("last_sync")
        rows.append({
            "app": name, "revision": (a.get("revision") or {}).get("sha") or (last or {}).get("revision_sha"),
            "sync": a.get("sync_status"), "drifted": a.get("drift_count", 0), "pending": None,
            "health": a.get("health"), "healthReason": a.get("health_reason", ""), "suspended": a.get("suspended"),
            "lastSync": None if not last else {"ok": last.get("ok"), "finished": last.get("finished"),
                                               "started": last.get("finished"), "revision": last.get("revision_sha")},
            "problems": [a["last_error"]] if a.get("last_error") else [],
        })
    return rows


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    secs = int(time.time() - ts)
    if secs < 120:
        return f"{secs}s ago"
    if secs < 7200:
        return f"{secs // 60}m ago"
    if secs < 172800:
        return f"{secs // 3600}h ago"
    return f"{secs // 86400}d ago"


# ----- status ------------------------------------------------------------------------------------------


def _print_status(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    if args.output == "json":
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(f"{'APP':<16} {'REVISION':<9} {'SYNC':<16} {'HEALTH':<12} {'LAST SYNC':<28}")
        for r in rows:
            sync = str(r["sync"]) + (f" ({r['drifted']} drifted)" if r["drifted"] else "")
            if r["suspended"]:
                sync += " [suspended]"
            last = r["lastSync"]
            last_txt = "never"
            if last:
                result = "ok" if last.get("ok") else "failed" if last.get("ok") is not None else "running"
                last_txt = f"{result}, {_ago(last.get('finished') or last.get('started'))}"
            rev = (r["revision"] or "-")[:7]
            print(f"{r['app']:<16} {rev:<9} {sync:<16} {r['health']:<12} {last_txt:<28}")
            for p in r["problems"]:
                print(f"  ! {p}")
    return EXIT_ERROR if any(r["problems"] for r in rows) else EXIT_OK


def _status(args: argparse.Namespace) -> int:
    async def remote(client: RemoteClient) -> int:
        rows = _status_rows_from_snapshot(client.snapshot(), args.app)
        if args.app and not rows:
            print(f"driftdeck: unknown app {args.app!r}", file=sys.stderr)
            return EXIT_ERROR
        return _print_status(args, rows)

    done = run_on_daemon(args, remote)
    if done is not None:
        return done

    async def body(engine: Engine) -> int:
        names = [args.app] if args.app else sorted(engine.apps)
        rows: list[dict[str, Any]] = []
        for name in names:
            rt = engine.app(name)
            plan = await engine.plan(name)
            last = engine.history.last_sync(name)
            rows.append(
                {
                    "app": name,
                    "revision": rt.revision.sha if rt.revision else None,
                    "sync": str(rt.sync_status),
                    "drifted": len(rt.drifted),
                    "pending": rt.pending,
                    "health": str(rt.health),
                    "healthReason": rt.health_reason,
                    "suspended": rt.suspended,
                    "lastSync": last,
                    "problems": [str(p) for p in plan.problems],
                }
            )
        return _print_status(args, rows)

    return _run(args, body)


# ----- diff ----------------------------------------------------------------------------------------------


def _item_json(item: PlanItem) -> dict[str, Any]:
    out: dict[str, Any] = {"object": str(item.ref), "kind": item.ref.kind, "namespace": item.ref.namespace,
                           "name": item.ref.name, "action": str(item.action)}
    if item.message:
        out["message"] = item.message
    if item.action == Action.CONFIGURE and item.desired is not None and item.live is not None:
        out["patch"] = to_json_patch(item.desired, item.live)
    return out


def _print_plan(plan: Plan) -> None:
    for item in plan.items:
        if item.action == Action.UNCHANGED:
            continue
        mark = {"create": "+", "configure": "~", "prune": "-", "error": "!"}[str(item.action)]
        note = f" ({item.message})" if item.message else ""
        print(f"{mark} {item.ref} {item.action}{note}")
        if item.action == Action.CONFIGURE and item.desired is not None and item.live is not None:
            print(unified(item.desired, item.live), end="")
        elif item.action == Action.CREATE and item.desired is not None:
            print(unified(item.desired, {}), end="")
    for p in plan.problems:
        print(f"! {p}")
    counts = ", ".join(f"{plan.count(a)} {a}" for a in (Action.CREATE, Action.CONFIGURE, Action.UNCHANGED, Action.PRUNE))
    print(f"plan for {plan.app} at {plan.revision.short if plan.revision else '?'}: {counts}")


def _diff(args: argparse.Namespace) -> int:
    async def remote(client: RemoteClient) -> int:
        return _report_plan(args, await client.plan(args.app))

    done = run_on_daemon(args, remote)
    if done is not None:
        return done

    async def body(engine: Engine) -> int:
        return _report_plan(args, await engine.plan(args.app))

    return _run(args, body)


def _report_plan(args: argparse.Namespace, plan: Plan) -> int:
    if args.output == "json":
        print(json.dumps({
            "app": plan.app,
            "revision": plan.revision.sha if plan.revision else None,
            "items": [_item_json(i) for i in plan.items],
            "problems": [str(p) for p in plan.problems],
        }, indent=2))
    else:
        _print_plan(plan)
    if plan.problems or any(i.action == Action.ERROR for i in plan.items):
        return EXIT_ERROR
    return EXIT_DIFF if plan.has_changes else EXIT_OK


# ----- sync / suspend / resume / revert ----------------------------------------------------------------------


def _outcome(args: argparse.Namespace, outcome: Any) -> int:
    if args.output == "json":
        print(json.dumps({
            "app": outcome.app, "ok": outcome.ok, "message": outcome.message,
            "revision": outcome.revision.sha if outcome.revision else None,
            "applied": outcome.applied, "pruned": outcome.pruned, "health": str(outcome.health),
            "duration": round(outcome.duration, 3),
        }, indent=2))
    else:
        state = "synced" if outcome.ok else "FAILED"
        rev = outcome.revision.short if outcome.revision else "?"
        print(f"{outcome.app} {state} at {rev}: {outcome.message} (health {outcome.health}, {outcome.duration:.1f}s)")
    return EXIT_OK if outcome.ok else EXIT_ERROR


def _sync(args: argparse.Namespace) -> int:
    if not args.dry_run and args.timeout is None:
        done = run_on_daemon(args, lambda c: _remote_outcome(args, c.sync(args.app, wait=not args.no_wait)))
        if done is not None:
            return done

    async def body(engine: Engine) -> int:
        if args.dry_run:
            plan = await engine.plan(args.app)
            _print_plan(plan)
            return EXIT_ERROR if plan.problems else EXIT_OK
        if args.timeout is not None:
            rt = engine.app(args.app)
            from dataclasses import replace

            rt.spec = replace(rt.spec, timeout=args.timeout)
        engine.activate()  # watch the applied kinds while waiting for health
        outcome = await LocalClient(engine, who()).sync(args.app, wait=not args.no_wait)
        return _outcome(args, outcome)

    return _run(args, body)


async def _remote_outcome(args: argparse.Namespace, command: Awaitable[Any]) -> int:
    return _outcome(args, await command)


def _suspend(value: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def remote(client: RemoteClient) -> int:
            await (client.suspend(args.app) if value else client.resume(args.app))
            print(f"{args.app} {'suspended' if value else 'resumed'} (daemon)")
            return EXIT_OK

        done = run_on_daemon(args, remote)
        if done is not None:
            return done

        async def body(engine: Engine) -> int:
            client = LocalClient(engine, who())
            await (client.suspend(args.app) if value else client.resume(args.app))
            print(f"{args.app} {'suspended' if value else 'resumed'}")
            return EXIT_OK

        return _run(args, body)

    return run


def _revert(args: argparse.Namespace) -> int:
    done = run_on_daemon(args, lambda c: _remote_outcome(args, c.revert(args.app, to=args.to)))
    if done is not None:
        return done

    async def body(engine: Engine) -> int:
        engine.activate()
        outcome = await LocalClient(engine, who()).revert(args.app, to=args.to)
        return _outcome(args, outcome)

    return _run(args, body)


# ----- history ------------------------------------------------------------------------------------------------


def _print_history(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    if args.output == "json":
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    for r in rows:
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.get("ts") or 0))
        print(f"{ts}  {r['kind']:<6} {_summary(r)}")
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    async def remote(client: RemoteClient) -> int:
        return _print_history(args, client.history(args.app, args.limit))

    done = run_on_daemon(args, remote)
    if done is not None:
        return done
    config = _load(args)
    if config is None:
        return EXIT_ERROR
    if args.app not in config.apps:
        print(f"driftdeck: unknown app {args.app!r}", file=sys.stderr)
        return EXIT_ERROR
    from core import paths
    from core.history import History

    hist = History(paths.history_db())
    return _print_history(args, hist.app_history(args.app, limit=args.limit))


def _summary(r: dict[str, Any]) -> str:
    kind = r["kind"]
    if kind == "sync":
        result = "running" if r.get("ok") is None else "ok" if r["ok"] else "FAILED"
        return f"{result} at {str(r.get('revision', ''))[:7]} by {r.get('who', '')}: {r.get('message', '')}"
    if kind == "drift":
        what = "missing" if r.get("missing") else ", ".join(r.get("fields") or [])
        by = ", ".join(r.get("managers") or []) or "unknown"
        state = f"resolved ({r.get('how')})" if r.get("resolved") else "open"
        return f"{r.get('object', '')} {what} changed by {by}; {state}"
    if kind == "revert":
        return f"reverted {', '.join(s[:7] for s in r.get('reverted') or [])} as {str(r.get('new_sha', ''))[:7]} by {r.get('who', '')}"
    return f"{r.get('action', '')} {r.get('target', '')} by {r.get('who', '')}: {r.get('result', '')}"


# ----- watch ------------------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A field of an event as an operator reads it."""
    if isinstance(value, Revision):
        return f"{value.short} {value.subject!r}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, tuple | list):
        return ",".join(_show(v) for v in value)
    return str(value)


def _format_event(ev: Event) -> str:
    """One line an event: time, type, app, then its non-empty fields (object refs as Kind/ns/name)."""
    rest = " ".join(
        f"{f.name}={_show(getattr(ev, f.name))}"
        for f in fields(ev)
        if f.name not in ("ts", "app") and getattr(ev, f.name) not in ("", (), [], None, {})
    )
    if len(rest) > 300:
        rest = rest[:297] + "..."
    stamp = time.strftime("%H:%M:%S", time.localtime(ev.ts))
    return f"{stamp} {ev.type:<18} {getattr(ev, 'app', ''):<14} {rest}"


def _watch(args: argparse.Namespace) -> int:
    async def body(engine: Engine) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        sub = engine.bus.subscribe()

        async def printer() -> None:
            async for ev in sub:
                if args.output == "json":
                    print(json.dumps(ev.to_dict(), default=str), flush=True)
                else:
                    print(_format_event(ev), flush=True)

        task = asyncio.create_task(printer())
        await engine.start()
        # Pipelines: triggers, and approve/reject/stop/retry from other processes (core/pipelines/service.py).
        from core.pipelines.service import PipelineService

        pipelines = PipelineService(engine, engine.config)
        for problem in pipelines.problems:
            print(f"driftdeck: {problem}", file=sys.stderr)
        await pipelines.start()
        try:
            await stop.wait()
        finally:
            await pipelines.stop()
        task.cancel()
        return EXIT_OK

    return _run(args, body)


def register(sub: Any) -> None:
    def common(p: argparse.ArgumentParser, output: bool = True, daemon: bool = False) -> None:
        p.add_argument("-c", "--config", default="driftdeck.yaml", help="configuration file (default ./driftdeck.yaml)")
        if output:
            p.add_argument("-o", "--output", choices=["text", "json"], default="text")
        if daemon:
            add_connect_options(p)

    p = sub.add_parser("status", help="sync status, health and last sync of every app")
    common(p, daemon=True)
    p.add_argument("app", nargs="?")
    p.set_defaults(func=_status)

    p = sub.add_parser("diff", help="the plan: what a sync would create, change and prune (exit 1 on a difference)")
    common(p, daemon=True)
    p.add_argument("app")
    p.set_defaults(func=_diff)

    p = sub.add_parser("sync", help="apply an app (server-side apply), prune, and wait until healthy")
    common(p, daemon=True)
    p.add_argument("app")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--no-wait", action="store_true", help="do not wait for health")
    p.add_argument("--timeout", type=float, help="seconds to wait for health (default: the app's timeout)")
    p.set_defaults(func=_sync)

    for verb, value in (("suspend", True), ("resume", False)):
        p = sub.add_parser(verb, help=f"{verb} automatic reconciliation of an app")
        common(p, output=False, daemon=True)
        p.add_argument("app")
        p.set_defaults(func=_suspend(value))

    p = sub.add_parser("history", help="syncs, drifts and reverts of an app")
    common(p, daemon=True)
    p.add_argument("app")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_history)

    p = sub.add_parser("revert", help="git revert on the app's source, then sync the result")
    common(p, daemon=True)
    p.add_argument("app")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--to", metavar="SHA", help="revert every commit after SHA")
    g.add_argument("--last", action="store_true", help="revert the newest commit")
    p.set_defaults(func=_revert)

    p = sub.add_parser("watch", help="run the reconciliation loops headless and print every event")
    common(p)
    p.set_defaults(func=_watch)
