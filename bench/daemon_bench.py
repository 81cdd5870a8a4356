"""Daemon figures: event fan-out latency, RSS at 10,000 objects, idle CPU (prints; never pass/fail).

    .venv/bin/python bench/daemon_bench.py [--quick] [--only fanout,scale]

Every daemon is a real ``driftdeck daemon`` subprocess; every process this script starts is
stopped at the end, on errors and Ctrl-C too.

a. Fan-out, daemon -> 20 clients at 500 events/s. A pipeline stage runs N parallel actions;
   each prints its ``time.time()`` to stdout and to stderr every ``period`` seconds (longer
   than the daemon's 50 ms log batch window), so each print becomes one ``LogLines`` event
   per stream: N x 2 / period events/s in all (15 x 2 / 0.06 s = 500). 20 ``RemoteClient``s
   in 4 worker processes (5 each, so the clients' own parsing is spread over processes, not
   measured through one GIL) record, for every event, the time it was handed to them minus the
   event's ``ts``, which the daemon sets when it creates the event, just before publishing it:
   publish -> encode once -> 20 per-client queues -> unix socket -> client parse and dispatch.
   The same clock (one machine). Also shown: the delivered rate, and the print -> client
   latency of the stamped lines, which adds the action's pipe and the 50 ms batch window.
b. RSS with 10,000 objects: 50 apps x 200 ConfigMaps (plus a Namespace each), ``sync: auto``,
   on ``driftdeck sandbox serve --no-pods`` (its own process). Time from starting the daemon
   until a client's mirror shows every app Synced, then the daemon's VmRSS (and VmHWM).
c. Idle CPU: after convergence (and a short settle), the daemon's utime + stime from
   ``/proc/PID/stat`` over 30 s (``--quick``: 10 s) with one client attached and no changes.

Targets: fan-out p99 < 50 ms; RSS < 400 MiB; idle CPU < 2 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from core.daemon.remote import Address, RemoteClient  # noqa: E402
from core.events import Event, Lagged, LogLines, RunFinished  # noqa: E402

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.org",
}

# a. fan-out
CLIENTS = 20
WORKERS = 4
TARGET_RATE = 500.0  # events/s
PERIOD = 0.06  # s between one action's prints: > the 50 ms log batch window, so one line per event
STREAMS = 2  # stdout and stderr: one event each per batch
EMIT = """\
import sys, time
period, seconds = float(sys.argv[1]), float(sys.argv[2])
start = time.time()
n = 0
while time.time() - start < seconds:
    stamp = repr(time.time())
    sys.stdout.write(stamp + "\\n")
    sys.stdout.flush()
    sys.stderr.write(stamp + "\\n")
    sys.stderr.flush()
    n += 1
    time.sleep(max(0.0, start + n * period - time.time()))
"""

# b./c. scale
APPS = 50
PER_APP = 200


# ----- figures -------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def proc_status(pid: int, key: str) -> float:
    """A ``/proc/PID/status`` size (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proc_cpu(pid: int) -> float:
    """CPU seconds (utime + stime) of a process, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                   env=dict(os.environ, **GIT_ENV))


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "commit.gpgsign", "false")
    return path


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


# ----- processes -----------------------------------------------------------------------------------


class Processes:
    """Every subprocess this bench starts; :meth:`stop_all` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(cmd, cwd=str(ROOT), text=True, **kwargs)
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[str], grace: float = 90.0) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                self.stop(proc, grace=30.0)
        self.procs.clear()


@dataclass
class DaemonProc:
    proc: subprocess.Popen[str]
    socket: str
    log: Path
    started: float  # time.monotonic() before Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait_for(self, what: Callable[[], bool], timeout: float, label: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the daemon exited {self.proc.returncode} while waiting for {label}:\n"
                                 f"{self.logs()[-3000:]}")
            if what():
                return
            time.sleep(0.05)
        raise SystemExit(f"timed out after {timeout:.0f}s waiting for {label}:\n{self.logs()[-3000:]}")


def start_daemon(procs: Processes, config: Path, state: Path, sock: Path, *extra: str) -> DaemonProc:
    log = state / "daemon.log"
    env = dict(os.environ, XDG_STATE_HOME=str(state / "xdg-state"), XDG_CACHE_HOME=str(state / "xdg-cache"),
               XDG_CONFIG_HOME=str(state / "xdg-config"))
    cmd = [sys.executable, "-m", "driftdeck", "daemon", "-c", str(config), "--socket", str(sock),
           "--history-db", str(state / "history.db"), "--runs-db", str(state / "runs.db"), "--log-format", "json",
           *extra]
    started = time.monotonic()
    with open(log, "w") as err:
        proc = procs.start(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return DaemonProc(proc, str(sock), log, started)


class Sandbox:
    """``driftdeck sandbox serve --no-pods`` in its own process."""

    def __init__(self, procs: Processes, tmp: Path) -> None:
        self.kubeconfig = str(tmp / "kubeconfig")
        self.proc = procs.start(
            [sys.executable, "-m", "driftdeck", "sandbox", "serve", "--port", "0", "--no-pods",
             "--kubeconfig", self.kubeconfig],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        out = self.proc.stdout
        assert out is not None
        self.url = ""
        for line in out:
            if line.startswith("driftdeck sandbox listening on "):
                self.url = line.split(" on ", 1)[1].strip()
                break
        if not self.url:
            raise SystemExit("the sandbox did not start")
        threading.Thread(target=self._drain, args=(out,), daemon=True).start()

    @staticmethod
    def _drain(out: TextIO) -> None:
        for _ in out:
            pass

    def objects(self) -> int:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_sandbox/state", timeout=10) as resp:
            state: dict[str, Any] = json.loads(resp.read())
        return int(state.get("objects") or state.get("object_count") or 0)


class RawClient:
    """hello + one command on the wire protocol, without subscribing (not one of the measured clients)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.n = 0

    def call(self, op: str, **args: Any) -> Any:
        self.n += 1
        self.file.write(json.dumps({"id": self.n, "op": op, "args": args}).encode() + b"\n")
        self.file.flush()
        while True:
            msg = json.loads(self.file.readline() or b"{}")
            if msg.get("id") == self.n:
                if not msg.get("ok"):
                    raise SystemExit(f"{op}: {msg.get('error')}")
                return msg.get("result")

    def close(self) -> None:
        self.sock.close()


# ----- a. fan-out ------------------------------------------------------------------------------------


def fanout_config(tmp: Path, actions: int, seconds: float) -> Path:
    repo = init_repo(tmp / "app-repo")
    (repo / "README").write_text("bench\n")
    commit(repo, "bench")
    emit = [{"name": f"emit-{i:02d}", "run": [sys.executable, "-c", EMIT, str(PERIOD), str(seconds)]}
            for i in range(actions)]
    config = {
        "sources": {"app": {"path": "./app-repo", "branch": "main"}},
        "pipelines": {"fanout": {"source": "app", "trigger": {"manual": True},
                                 "stages": [{"name": "emit", "actions": emit}]}},
    }
    path = tmp / "driftdeck.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def _worker(sock: str, n: int, out: str, pipeline: str, timeout: float) -> None:
    clients = [await RemoteClient(Address(sock)).connect() for _ in range(n)]
    latency: list[list[float]] = [[] for _ in clients]
    line_latency: list[float] = []
    first: list[float] = [0.0] * n
    last: list[float] = [0.0] * n
    lagged = [0] * n
    lines = [0] * n
    finished = [False] * n
    done = asyncio.Event()

    def listener(i: int) -> Callable[[Event], None]:
        def on(ev: Event) -> None:
            now = time.time()
            if isinstance(ev, LogLines) and ev.pipeline == pipeline:
                latency[i].append(now - ev.ts)
                lines[i] += len(ev.lines)
                first[i] = first[i] or now
                last[i] = now
                if i == 0:  # the stamped lines: one client per worker is enough
                    for line in ev.lines:
                        with contextlib.suppress(ValueError):
                            line_latency.append(now - float(line))
            elif isinstance(ev, Lagged):
                lagged[i] += 1
            elif isinstance(ev, RunFinished) and ev.pipeline == pipeline:
                finished[i] = True
                if all(finished):
                    done.set()
        return on

    for i, c in enumerate(clients):
        c.bus.on(listener(i))
    print("ready", flush=True)
    with contextlib.suppress(TimeoutError):  # a run that never finishes shows as missing events
        await asyncio.wait_for(done.wait(), timeout)
    Path(out).write_text(json.dumps({"latency": latency, "line_latency": line_latency, "first": first,
                                     "last": last, "lagged": lagged, "lines": lines,
                                     "finished": finished}))
    for c in clients:
        await c.close()


def worker_main(argv: list[str]) -> int:
    sock, n, out, pipeline, timeout = argv
    asyncio.run(_worker(sock, int(n), out, pipeline, float(timeout)))
    return 0


def bench_fanout(procs: Processes, tmp: Path, sock: Path, seconds: float) -> None:
    actions = round(TARGET_RATE * PERIOD / STREAMS)
    rate = actions * STREAMS / PERIOD
    config = fanout_config(tmp, actions, seconds)
    d = start_daemon(procs, config, tmp, sock)
    d.wait_for(lambda: "daemon ready" in d.logs(), 60, "daemon ready")
    per_worker = CLIENTS // WORKERS
    outs = [tmp / f"worker-{w}.json" for w in range(WORKERS)]
    workers = [procs.start([sys.executable, str(Path(__file__).resolve()), "--worker", d.socket, str(per_worker),
                            str(out), "fanout", str(seconds + 120)], stdout=subprocess.PIPE)
               for out in outs]
    for w in workers:
        assert w.stdout is not None
        if w.stdout.readline().strip() != "ready":
            raise SystemExit("a client worker did not attach")
    raw = RawClient(d.socket)
    raw.call("hello")
    cpu0, t0 = proc_cpu(d.pid), time.monotonic()
    run_id = raw.call("start_run", pipeline="fanout")
    for w in workers:
        w.wait(seconds + 180)
    cpu = proc_cpu(d.pid) - cpu0
    wall = time.monotonic() - t0
    run = raw.call("run", run_id=run_id) or {}
    raw.close()
    results = [json.loads(out.read_text()) for out in outs]
    latency = [x * 1000 for r in results for per_client in r["latency"] for x in per_client]
    lines = [x * 1000 for r in results for x in r["line_latency"]]
    rates = [len(evs) / (last - first) for r in results
             for evs, first, last in zip(r["latency"], r["first"], r["last"], strict=True) if last > first]
    counts = [len(evs) for r in results for evs in r["latency"]]
    per_event = sum(n for r in results for n in r["lines"]) / max(1, sum(counts))
    lagged = sum(sum(r["lagged"]) for r in results)
    clients = sum(len(r["latency"]) for r in results)
    delivered = sum(rates) / len(rates) if rates else 0.0
    print(f"fan-out daemon -> {clients} clients at {rate:.0f} ev/s: p50 {pct(latency, 50):.1f} ms "
          f"p99 {pct(latency, 99):.1f} ms max {max(latency, default=float('nan')):.1f} ms (target p99 < 50 ms)")
    print(f"  delivered {delivered:.0f} ev/s per client ({delivered * clients:.0f} deliveries/s in all); "
          f"{min(counts, default=0)}-{max(counts, default=0)} events per client over {seconds:.0f} s "
          f"({per_event:.2f} lines per event); "
          f"{lagged} lagged; run {run.get('status')}; {actions} actions x {STREAMS} streams every "
          f"{PERIOD * 1000:.0f} ms")
    print(f"  print -> client (action pipe + 50 ms batch window + fan-out): p50 {pct(lines, 50):.1f} ms "
          f"p99 {pct(lines, 99):.1f} ms; daemon CPU during the run {100 * cpu / wall:.0f}% of one core "
          f"(its actions are separate processes)")
    Processes.stop(d.proc)


# ----- b./c. scale: RSS and idle CPU -------------------------------------------------------------------


def scale_config(tmp: Path, kubeconfig: str) -> Path:
    repo = init_repo(tmp / "config-repo")
    apps: dict[str, Any] = {}
    for a in range(APPS):
        ns = f"bench-{a:02d}"
        d = repo / "apps" / ns
        d.mkdir(parents=True)
        (d / "namespace.yaml").write_text(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
        docs = [f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:03d}\n  namespace: {ns}\n"
                f"  labels: {{tier: bench}}\ndata:\n  key: value-{i}\n  mode: production\n" for i in range(PER_APP)]
        (d / "configmaps.yaml").write_text("---\n".join(docs))
        apps[f"app-{a:02d}"] = {"source": "config", "path": f"apps/{ns}", "cluster": "local", "namespace": ns,
                                "sync": "auto", "prune": True, "timeout": 300}
    commit(repo, "50 apps")
    config = {
        "clusters": {"local": {"kubeconfig": kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"}},
        "apps": apps,
    }
    path = tmp / "driftdeck.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def _converge(d: DaemonProc, timeout: float) -> tuple[RemoteClient, float, float]:
    """Attach as soon as the socket answers; (client, seconds to ready, seconds until all apps Synced)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(d.socket):
        if d.proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the daemon did not start:\n{d.logs()[-3000:]}")
        await asyncio.sleep(0.05)
    client = await RemoteClient(Address(d.socket)).connect(timeout=60)
    ready = float("nan")
    while True:
        if ready != ready and "daemon ready" in d.logs():  # nan: not seen yet
            ready = time.monotonic() - d.started
        apps = client.snapshot()["apps"]
        if len(apps) == APPS and all(a["sync_status"] == "Synced" for a in apps.values()):
            return client, ready, time.monotonic() - d.started
        if d.proc.poll() is not None:
            raise SystemExit(f"the daemon exited {d.proc.returncode}:\n{d.logs()[-3000:]}")
        if time.monotonic() > deadline:
            states = sorted({a["sync_status"] for a in apps.values()})
            raise SystemExit(f"not converged after {timeout:.0f}s ({len(apps)} apps; states {states})")
        await asyncio.sleep(0.2)


async def _scale(d: DaemonProc, sandbox: Sandbox, idle_seconds: float, settle: float) -> None:
    client, ready, converged = await _converge(d, timeout=1200)
    try:
        snap = client.snapshot()["apps"]
        managed = sum(len(a["objects"]) for a in snap.values())
        rss, hwm = proc_status(d.pid, "VmRSS"), proc_status(d.pid, "VmHWM")
        print(f"converge {APPS} apps x {PER_APP} ConfigMaps ({managed} objects managed, {sandbox.objects()} in the "
              f"sandbox): all Synced {converged:.1f} s after the daemon started (ready after {ready:.1f} s)")
        print(f"daemon RSS with {managed} objects across {APPS} apps: {rss:.0f} MiB (peak {hwm:.0f} MiB) "
              f"(target < 400 MiB)")
        await asyncio.sleep(settle)
        cpu0, sb0, t0 = proc_cpu(d.pid), proc_cpu(sandbox.proc.pid), time.monotonic()
        await asyncio.sleep(idle_seconds)
        wall = time.monotonic() - t0
        cpu, sb = proc_cpu(d.pid) - cpu0, proc_cpu(sandbox.proc.pid) - sb0
        print(f"idle CPU, {managed} objects, 1 client attached, {wall:.0f} s after a {settle:.0f} s settle: "
              f"{100 * cpu / wall:.2f}% of one core ({cpu * 1000:.0f} ms CPU) (target < 2%); "
              f"sandbox {100 * sb / wall:.2f}%; RSS then {proc_status(d.pid, 'VmRSS'):.0f} MiB")
    finally:
        await client.close()


def bench_scale(procs: Processes, tmp: Path, sock: Path, idle_seconds: float) -> None:
    sandbox = Sandbox(procs, tmp)
    config = scale_config(tmp, sandbox.kubeconfig)
    d = start_daemon(procs, config, tmp, sock)
    asyncio.run(_scale(d, sandbox, idle_seconds, settle=5.0))
    Processes.stop(d.proc)


# ----- main ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP end the bench with KeyboardInterrupt, so the ``finally`` that stops the
    processes runs (a daemon still in its first reconcile may take a while to drain)."""
    def interrupt(_sig: int, _frame: Any) -> None:
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # a second signal must not cut the cleanup short
            signal.signal(s, signal.SIG_IGN)
        raise KeyboardInterrupt

    old = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fan-out 10 s, idle CPU over 10 s")
    p.add_argument("--only", default="fanout,scale", help="comma-separated: fanout, scale")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="daemon-bench-"))
    sock_dir = Path(tempfile.mkdtemp(prefix="dd-bench-"))  # short: unix socket paths are limited to 108 bytes
    procs = Processes()
    try:
        with stop_on_signals():
            print(f"driftdeck daemon bench ({'quick' if args.quick else 'full'}; {os.cpu_count()} cores)", flush=True)
            if "fanout" in only:
                (tmp / "fanout").mkdir()
                bench_fanout(procs, tmp / "fanout", sock_dir / "fanout.sock", seconds=10.0 if args.quick else 30.0)
            if "scale" in only:
                (tmp / "scale").mkdir()
                bench_scale(procs, tmp / "scale", sock_dir / "scale.sock", idle_seconds=10.0 if args.quick else 30.0)
    except KeyboardInterrupt:
        print("interrupted: stopping the processes this bench started", file=sys.stderr, flush=True)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(sock_dir, ignore_errors=True)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
