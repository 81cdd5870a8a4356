"""Pipeline verbs: run, runs, logs, approve, reject, retry, stop, transition(s), trace.

``run`` executes a run in this process (approvals can come from another terminal through
the commands table). approve/reject/retry/stop queue a command for the process running
the run (``driftdeck run`` or ``driftdeck watch``) and wait for its answer. Exit codes:
0 ok, 1 the run did not succeed, 2 errors.

``transition PIPELINE STAGE --disable|--enable`` goes to the process running the pipeline
through the same queue; when none picks it up it is written to the store, which every later
``run``/``watch`` reads at start (and running ones re-read at each command poll).

Operator commands (run, approve, reject, retry, stop, transition) add an audit row to the
history database: who, action, target (the pipeline or the run id), arguments (variable
names only, never their values) and the result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from core import paths
from core.engine import Engine
from core.events import ActionChanged, ApprovalRequested, LogLines, RunFinished, StageChanged
from core.pipelines.scheduler import SchedulerError
from core.pipelines.service import (
    COMMAND_POLL_SECONDS,
    CommandQueue,
    PipelineService,
    default_store_path,
    trace_app,
)
from core.pipelines.store import RunStore
from core.pipelines.types import Status
from driftdeck.attach import add_connect_options, run_on_daemon
from driftdeck.commands.reconcile import EXIT_DIFF, EXIT_ERROR, EXIT_OK, _run, who

COMMAND_WAIT = 10.0


def _store(args: argparse.Namespace) -> RunStore:
    return RunStore(args.store or default_store_path())


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# ----- audit -----------------------------------------------------------------------------------------


def _terminal() -> str:
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            return os.ttyname(fd)
    return ""


def _audit(action: str, target: str, details: dict[str, Any], result: str) -> None:
    """An audit row in the history database (never secret values: callers pass names only)."""
    from core.history import History

    try:
        with History(paths.history_db()) as hist:
            hist.add_audit(who(), action, target, details, result, terminal=_terminal())
    except Exception as exc:
        print(f"driftdeck: cannot write the audit log: {exc}", file=sys.stderr)


# ----- run -----------------------------------------------------------------------------------------


def _print_run_event(ev: object, run_id: str) -> None:
    """One line (or a log batch) of a run's progress, as ``driftdeck run`` streams it."""
    if isinstance(ev, LogLines):
        for line in ev.lines:
            print(f"  [{ev.stage}/{ev.action}] {line}", flush=True)
    elif isinstance(ev, ActionChanged):
        msg = f": {ev.message}" if ev.message else ""
        print(f"{ev.stage}/{ev.action} {ev.status}{msg}", flush=True)
    elif isinstance(ev, StageChanged):
        print(f"stage {ev.stage} {ev.status}", flush=True)
    elif isinstance(ev, ApprovalRequested):
        print(f"{ev.stage}/{ev.action} waiting for approval{': ' + ev.message if ev.message else ''}"
              f" (driftdeck approve {run_id} {ev.action})", flush=True)


def _run_on_daemon(args: argparse.Namespace) -> int | None:
    """``run`` through a running daemon: it starts the run; this prints the run's events until it ends."""
    from core.daemon.remote import RemoteClient

    if args.var or args.stage:
        return None  # variables and start stages: in-process only for now

    async def body(client: RemoteClient) -> int:
        sub = client.subscribe()
        run_id = await client.start_run(args.pipeline)
        print(f"run {run_id} of {args.pipeline} (daemon)", flush=True)
        async for ev in sub:
            if getattr(ev, "run_id", None) != run_id:
                continue
            if isinstance(ev, RunFinished):
                print(f"run {run_id} {ev.status}{': ' + ev.message if ev.message else ''}")
                return EXIT_OK if ev.status == Status.SUCCEEDED.value else EXIT_DIFF
            _print_run_event(ev, run_id)
        return EXIT_ERROR

    return run_on_daemon(args, body)


def _run_pipeline(args: argparse.Namespace) -> int:
    done = _run_on_daemon(args)
    if done is not None:
        return done
    variables: dict[str, str] = {}
    for kv in args.var or ():
        key, sep, value = kv.partition("=")
        if not sep or not key:
            print(f"driftdeck: --var {kv!r}: expected K=V", file=sys.stderr)
            return EXIT_ERROR
        variables[key] = value
    details: dict[str, Any] = {"stage": args.stage or "", "variables": sorted(variables)}  # names, not values

    async def body(engine: Engine) -> int:
        engine.activate()
        svc = PipelineService(engine, engine.config, store=_store(args))
        for p in svc.problems:
            print(f"driftdeck: {p}", file=sys.stderr)
        await svc.load_repo_pipelines()
        spec = svc.scheduler.specs.get(args.pipeline)
        if spec is None:
            print(f"driftdeck: no pipeline {args.pipeline!r} (pipelines: {', '.join(sorted(svc.scheduler.specs)) or 'none'})",
                  file=sys.stderr)
            await svc.stop()
            return EXIT_ERROR
        sub = engine.bus.subscribe(types=(ActionChanged, StageChanged, LogLines, ApprovalRequested, RunFinished))
        await svc.start(watch=False, recover=False)  # runs of other processes are theirs; `driftdeck watch` recovers
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            revision = await asyncio.to_thread(engine.source(spec.source).head)
            run_id = await svc.scheduler.start_run(args.pipeline, revision, variables=variables, stage=args.stage,
                                                   trigger="manual", who=who())
        except SchedulerError as exc:
            await asyncio.to_thread(_audit, "run", args.pipeline, details, f"error: {exc}")
            print(f"driftdeck: {exc}", file=sys.stderr)
            await svc.stop()
            return EXIT_ERROR
        await asyncio.to_thread(_audit, "run", args.pipeline, details,
                                f"started run {run_id} at {revision.short}")
        if args.output != "json":
            print(f"run {run_id} of {args.pipeline} at {revision.short}", flush=True)

        async def printer() -> None:
            async for ev in sub:
                if getattr(ev, "run_id", None) == run_id and args.output != "json":
                    _print_run_event(ev, run_id)

        printing = asyncio.create_task(printer())
        waiting = asyncio.create_task(svc.scheduler.wait(run_id))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            print("stopping (Ctrl-C again to abandon)...", file=sys.stderr, flush=True)
            with contextlib.suppress(SchedulerError):
                svc.scheduler.stop(run_id, abandon=False, who=who())
            stop.clear()
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                with contextlib.suppress(SchedulerError):
                    svc.scheduler.stop(run_id, abandon=True, who=who())
                await waiting
        stopping.cancel()
        status = waiting.result()
        await asyncio.sleep(0.1)  # let the printer drain the last events
        printing.cancel()
        svc.store.flush_logs(5.0)
        row = svc.store.run(run_id)
        if args.output == "json":
            _dump(row)
        else:
            print(f"run {run_id} {status}{': ' + row['message'] if row and row['message'] else ''}")
        await svc.stop()
        svc.store.close()
        return EXIT_OK if status is Status.SUCCEEDED else EXIT_DIFF

    return _run(args, body)


# ----- read verbs -----------------------------------------------------------------------------------


def _runs(args: argparse.Namespace) -> int:
    with _store(args) as store:
        rows = store.runs(args.pipeline, limit=args.limit)
    if args.output == "json":
        _dump(rows)
        return EXIT_OK
    print(f"{'RUN':<36} {'STATUS':<12} {'REVISION':<9} {'TRIGGER':<8} {'STARTED':<20} MESSAGE")
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"]))
        print(f"{r['id']:<36} {r['status']!s:<12} {r['revision'][:7]:<9} {r['trigger']:<8} {started:<20} {r['message']}")
    return EXIT_OK


def _logs(args: argparse.Namespace) -> int:
    with _store(args) as store:
        run = store.run(args.run)
        if run is None:
            print(f"driftdeck: no run {args.run!r}", file=sys.stderr)
            return EXIT_ERROR
        printed: dict[tuple[str, str, int], int] = {}
        while True:
            run = store.run(args.run) or run
            for stage in run["stages"]:
                for a in stage["actions"]:
                    if args.action and a["action"] != args.action:
                        continue
                    key = (stage["stage"], a["action"], a["attempt"])
                    lines = list(store.read_log(args.run, stage["stage"], a["action"], a["attempt"]))
                    for line in lines[printed.get(key, 0):]:
                        if getattr(args, "output", "text") == "json":
                            print(json.dumps({"stage": stage["stage"], "action": a["action"],
                                              "attempt": a["attempt"], "line": line}), flush=True)
                            continue
                        prefix = "" if args.action else f"[{stage['stage']}/{a['action']}#{a['attempt']}] "
                        print(prefix + line, flush=True)
                    printed[key] = len(lines)
            if not args.follow or Status(run["status"]).done:
                return EXIT_OK
            time.sleep(0.5)


def _trace(args: argparse.Namespace) -> int:
    async def body(engine: Engine) -> int:
        with _store(args) as store:
            out = await asyncio.to_thread(trace_app, engine, store, args.app)
        if args.output == "json":
            _dump(out)
            return EXIT_OK
        sync, cm, run, src = out["sync"], out["commit"], out["run"], out["source_revision"]
        if sync:
            print(f"live:    {args.app} synced {sync['revision'][:7]} by {sync['who']}")
        if cm:
            print(f"commit:  {cm['sha'][:7]} in {cm['source']}: {cm['subject']} ({cm['author']})")
        if run:
            print(f"run:     {run['id']} of {run['pipeline']}: {run['status']} ({run['trigger']} by {run['who']})")
        if src:
            print(f"source:  {src['sha'][:7]} {src.get('subject', '')}")
        if out["message"]:
            print(f"note:    {out['message']}")
        return EXIT_OK

    return _run(args, body)


# ----- commands for the process that runs a run -------------------------------------------------------


def _daemon_command(args: argparse.Namespace) -> int | None:
    """approve/reject/stop/retry through a running daemon (it owns the runs and audits the
    caller by peer credentials); None when no daemon is used."""
    from core.daemon.remote import RemoteClient

    async def body(client: RemoteClient) -> int:
        verb = args.verb
        if verb == "approve":
            await client.approve(args.run, args.action, args.message or "")
        elif verb == "reject":
            await client.reject(args.run, args.action, args.message or "")
        elif verb == "stop":
            await client.stop(args.run, abandon=bool(args.abandon))
        else:
            await client.retry(args.run, args.stage, failed_only=bool(args.failed_only))
        print(f"{verb}: done (daemon)")
        return EXIT_OK

    return run_on_daemon(args, body)


def _command(args: argparse.Namespace) -> int:
    done = _daemon_command(args)
    if done is not None:
        return done
    outcome: list[str] = []
    try:
        code = _command_body(args, outcome)
    except BaseException as exc:
        outcome.append(f"error: {exc!r}")
        raise
    finally:
        details: dict[str, Any] = {k: getattr(args, k) for k in ("action", "stage", "message", "abandon", "failed_only")
                                   if getattr(args, k, None) not in (None, False)}
        _audit(args.verb, args.run, details, outcome[-1] if outcome else "")
    return code


def _command_body(args: argparse.Namespace, outcome: list[str]) -> int:
    verb = args.verb
    target = getattr(args, "action", None) or getattr(args, "stage", None) or ""
    extra: dict[str, Any] = {}
    if verb in ("approve", "reject"):
        extra["comment"] = args.message or ""
    elif verb == "stop":
        extra["abandon"] = bool(args.abandon)
    elif verb == "retry":
        extra["failed_only"] = bool(args.failed_only)
    with _store(args) as store:
        if not store.run_exists(args.run):
            outcome.append(f"error: no run {args.run!r}")
            print(f"driftdeck: no run {args.run!r}", file=sys.stderr)
            return EXIT_ERROR
        queue = CommandQueue(store.path)
        try:
            cid = queue.submit(verb, args.run, target, extra, who=who())
            print(f"queued for the process running {args.run}", flush=True)
            deadline = time.monotonic() + args.wait
            # A retry of a finished run that no `driftdeck watch` picks up within a few polls
            # is withdrawn (claimed, so nobody else takes it) and carried out in this process.
            here_at = time.monotonic() + min(args.wait / 2, 4 * COMMAND_POLL_SECONDS)
            while time.monotonic() < deadline:
                result = queue.result(cid)
                if result is not None:
                    outcome.append(("" if result.get("ok") else "error: ") + str(result.get("message", "")))
                    print(result.get("message", ""))
                    return EXIT_OK if result.get("ok") else EXIT_ERROR
                if verb == "retry" and time.monotonic() >= here_at and queue.claim(cid):
                    outcome.append(f"retrying {args.stage} of {args.run} in this process")
                    code = _retry_here(args, queue, cid)
                    outcome.append(f"retried {args.stage} of {args.run} in this process: exit {code}")
                    return code
                time.sleep(0.2)
        finally:
            queue.close()
    outcome.append(f"error: not picked up within {args.wait:g}s (left queued)")
    print(f"driftdeck: no process picked the command up within {args.wait:g}s: is the run being executed by "
          f"`driftdeck run` or `driftdeck watch`? (the command stays queued)", file=sys.stderr)
    return EXIT_ERROR


def _retry_here(args: argparse.Namespace, queue: CommandQueue, cid: int) -> int:
    """Carry out a claimed retry command in this process, streaming the logs like ``run``."""

    async def body(engine: Engine) -> int:
        engine.activate()
        svc = PipelineService(engine, engine.config, store=_store(args))
        await svc.load_repo_pipelines()
        sub = engine.bus.subscribe(types=(ActionChanged, LogLines))
        # No recovery: other processes' runs in the store are still theirs.
        await svc.start(watch=False, recover=False)
        try:
            await svc.scheduler.retry(args.run, args.stage, failed_only=bool(args.failed_only), who=who())
        except SchedulerError as exc:
            await asyncio.to_thread(queue.finish, cid, False, str(exc))
            print(f"driftdeck: {exc}", file=sys.stderr)
            await svc.stop()
            svc.store.close()
            return EXIT_ERROR
        await asyncio.to_thread(queue.finish, cid, True, f"retrying {args.stage} of {args.run} in this process")
        print(f"retrying {args.stage} of {args.run} in this process (no other process picked it up)", flush=True)

        async def printer() -> None:
            async for ev in sub:
                if getattr(ev, "run_id", None) != args.run:
                    continue
                if isinstance(ev, LogLines):
                    for line in ev.lines:
                        print(f"  [{ev.stage}/{ev.action}] {line}", flush=True)
                elif isinstance(ev, ActionChanged):
                    print(f"{ev.stage}/{ev.action} {ev.status}{': ' + ev.message if ev.message else ''}", flush=True)

        printing = asyncio.create_task(printer())
        status = await svc.scheduler.wait(args.run)
        await asyncio.sleep(0.1)  # let the printer drain the last events
        printing.cancel()
        svc.store.flush_logs(5.0)
        row = svc.store.run(args.run)
        print(f"run {args.run} {status}{': ' + row['message'] if row and row['message'] else ''}")
        await svc.stop()
        svc.store.close()
        return EXIT_OK if status is Status.SUCCEEDED else EXIT_DIFF

    return _run(args, body)


# ----- transitions -----------------------------------------------------------------------------------


def _transition(args: argparse.Namespace) -> int:
    enabled = bool(args.enable)
    if enabled and args.reason:
        print("driftdeck: --reason goes with --disable", file=sys.stderr)
        return EXIT_ERROR
    extra: dict[str, Any] = {"enabled": enabled, "reason": args.reason or ""}
    ok, msg = False, ""
    try:
        ok, msg = _transition_body(args, extra)
    except BaseException as exc:
        msg = f"error: {exc!r}"
        raise
    finally:
        _audit("transition", args.pipeline, {"stage": args.stage, **extra}, msg)
    return EXIT_OK if ok else EXIT_ERROR


def _transition_body(args: argparse.Namespace, extra: dict[str, Any]) -> tuple[bool, str]:
    """Through the process running the pipeline (which holds/releases its runs at once); when
    none picks the command up within a few polls, straight into the store (later runs honour it)."""
    with _store(args) as store:
        queue = CommandQueue(store.path)
        try:
            cid = queue.submit("transition", args.pipeline, args.stage, extra, who=who())
            deadline = time.monotonic() + args.wait
            here_at = time.monotonic() + min(args.wait / 2, 4 * COMMAND_POLL_SECONDS)
            while time.monotonic() < deadline:
                result = queue.result(cid)
                if result is not None:
                    message = str(result.get("message", ""))
                    if result.get("ok"):
                        print(message)
                        return True, message
                    print(f"driftdeck: {message}", file=sys.stderr)
                    return False, f"error: {message}"
                if time.monotonic() >= here_at and queue.claim(cid):
                    store.set_transition(args.pipeline, args.stage, bool(extra["enabled"]), who(),
                                         str(extra["reason"]))
                    message = (f"{'enabled' if extra['enabled'] else 'disabled'} the transition to {args.stage} of "
                               f"{args.pipeline} in the store (no running process picked it up; "
                               f"runs started later honour it)")
                    queue.finish(cid, True, message)
                    print(message)
                    return True, message
                time.sleep(0.2)
        finally:
            queue.close()
    # Only when another process claimed the command without answering in time.
    print(f"driftdeck: no answer within {args.wait:g}s", file=sys.stderr)
    return False, f"error: no answer within {args.wait:g}s"


def _transitions(args: argparse.Namespace) -> int:
    with _store(args) as store:
        rows = store.disabled_transitions(args.pipeline)
    rows.sort(key=lambda r: (r["pipeline"], r["stage"]))
    if args.output == "json":
        _dump(rows)
        return EXIT_OK
    print(f"{'PIPELINE':<20} {'STAGE':<16} {'WHO':<24} {'SINCE':<20} REASON")
    for r in rows:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
        print(f"{r['pipeline']:<20} {r['stage']:<16} {r['who']:<24} {since:<20} {r['reason']}")
    return EXIT_OK


def register(sub: Any) -> None:
    def common(p: argparse.ArgumentParser, output: bool = True, config: bool = False, daemon: bool = False) -> None:
        if daemon:
            add_connect_options(p)
        if config:
            p.add_argument("-c", "--config", default="driftdeck.yaml", help="configuration file (default ./driftdeck.yaml)")
        p.add_argument("--store", type=Path, help=f"pipeline run database (default {default_store_path()})")
        if output:
            p.add_argument("-o", "--output", choices=["text", "json"], default="text")

    p = sub.add_parser("run", help="run a pipeline (on the daemon when one runs), streaming its logs")
    common(p, config=True, daemon=True)
    p.add_argument("pipeline")
    p.add_argument("--stage", help="start from this stage (earlier outputs: their last successful run)")
    p.add_argument("--var", action="append", metavar="K=V", help="a variable (repeatable)")
    p.set_defaults(func=_run_pipeline)

    p = sub.add_parser("runs", help="pipeline runs, newest first")
    common(p)
    p.add_argument("pipeline", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_runs)

    p = sub.add_parser("logs", help="the logs of a run (or one action); -o json: one JSON object a line")
    common(p)
    p.add_argument("run")
    p.add_argument("action", nargs="?")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the run ends")
    p.set_defaults(func=_logs)

    for verb, helptext in (("approve", "approve a waiting approval"), ("reject", "reject a waiting approval")):
        p = sub.add_parser(verb, help=helptext)
        common(p, output=False, daemon=True)
        p.add_argument("run")
        p.add_argument("action")
        p.add_argument("-m", "--message", help="a comment kept with the decision")
        p.add_argument("--wait", type=float, default=COMMAND_WAIT, help=argparse.SUPPRESS)
        p.set_defaults(func=_command)

    p = sub.add_parser("retry", help="retry a stage of a finished run (here, if no other process takes it)")
    common(p, output=False, config=True, daemon=True)  # config: to carry the retry out in this process
    p.add_argument("run")
    p.add_argument("stage")
    p.add_argument("--failed-only", action="store_true", help="only the failed/abandoned/never-run actions")
    p.add_argument("--wait", type=float, default=COMMAND_WAIT, help=argparse.SUPPRESS)
    p.set_defaults(func=_command)

    p = sub.add_parser("stop", help="stop a run (in-flight actions finish unless --abandon)")
    common(p, output=False, daemon=True)
    p.add_argument("run")
    p.add_argument("--abandon", action="store_true")
    p.add_argument("--wait", type=float, default=COMMAND_WAIT, help=argparse.SUPPRESS)
    p.set_defaults(func=_command)

    p = sub.add_parser("transition", help="disable or enable the transition into a stage (holds runs before it)")
    common(p, output=False)
    p.add_argument("pipeline")
    p.add_argument("stage")
    onoff = p.add_mutually_exclusive_group(required=True)
    onoff.add_argument("--disable", action="store_true")
    onoff.add_argument("--enable", action="store_true")
    p.add_argument("--reason", help="why (with --disable)")
    p.add_argument("--wait", type=float, default=COMMAND_WAIT, help=argparse.SUPPRESS)
    p.set_defaults(func=_transition)

    p = sub.add_parser("transitions", help="disabled transitions, with who disabled them, when and why")
    common(p)
    p.add_argument("pipeline", nargs="?")
    p.set_defaults(func=_transitions)

    p = sub.add_parser("trace", help="which runs and commits led to what is live for an app")
    common(p, config=True)
    p.add_argument("app")
    p.set_defaults(func=_trace)
