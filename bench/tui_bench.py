"""Console responsiveness at scale (prints figures; never pass/fail).

    .venv/bin/python bench/tui_bench.py [--quick] [--rate 200] [--parts abcd]

A workspace of 5,000 objects in 100 apps and 50 pipelines (``tui.scale.scale_client``),
with drift churn (``tui.scale.churn_events``: DriftDetected / DriftResolved on rotating
objects) published at ``--rate`` events/s from an asyncio task in the app's loop:

a. update-to-paint of a drift highlight, headless ``run_test`` at 120x36, at the local default refresh (20 Hz): from
   ``publish(DriftDetected)`` to the ``call_after_refresh`` callback scheduled right
   after the batch holding that event was applied (the app is subclassed to hook
   ``_apply_pending``; nothing of ours is patched). Target p99 < 100 ms.
b. key press to screen change under the same load: from ``pilot.press("down"/"up")``
   to the refresh after the apps table's cursor moved. Target p99 < 50 ms.
c. bytes/s written to a real pty (TERM=xterm-256color, 120x36) by a child running the
   console on the same workspace and churn, at 2 Hz (the SSH default) and 10 Hz, from
   3 s after its first output. The child also reports update-to-paint with a real
   driver (ANSI rendering and writes included, which headless skips). Target < 20 KiB/s
   at 2 Hz.
d. ``driftdeck demo --dir TMP`` under a pty: time to the first output showing "Apps",
   on a fresh directory and again once the sandbox data and workspace exist.

Headless figures exclude turning the frame into escape sequences and writing them;
(c) includes it. ``--child`` is the pty child (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import math
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual.coordinate import Coordinate  # noqa: E402

from core.events import DriftDetected, Event  # noqa: E402
from tui.app import DEFAULT_REFRESH_HZ, DriftdeckApp  # noqa: E402
from tui.sample import T0  # noqa: E402
from tui.scale import ScaleClient, churn_events, scale_client  # noqa: E402

SIZE = (120, 36)
RATE = 200.0
PTY_SKIP = 3.0  # seconds of startup not counted in bytes/s


# ----- figures ---------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(values: Sequence[float], *qs: float) -> str:
    parts = [f"p{q:g} {pct(values, q) * 1000:.1f} ms" for q in qs]
    if values:
        parts.append(f"max {max(values) * 1000:.1f} ms")
    return " ".join(parts)


# ----- the measured app and the churn ----------------------------------------------------------


class TimedApp(DriftdeckApp):
    """The console, recording when each batch of drift events reached the screen.

    ``published`` maps each event to its publish time (``perf_counter``); after a batch
    is applied a ``call_after_refresh`` callback takes the time of the refresh that
    shows it."""

    def __init__(self, client: ScaleClient, published: dict[Event, float], **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.published = published
        self.recording = False
        self.latencies: list[float] = []  # publish -> paint
        self.waits: list[float] = []  # publish -> the batch applying it starts
        self.flush_to_paint: list[float] = []  # batch start -> paint
        self.flush_cpu: list[float] = []  # time inside _apply_pending

    def _apply_pending(self) -> None:
        batch = [ev for ev in self._pending if isinstance(ev, DriftDetected)]
        start = time.perf_counter()
        super()._apply_pending()
        if batch and self.recording:
            self.flush_cpu.append(time.perf_counter() - start)
            self.call_after_refresh(self._painted, batch, start)

    def _painted(self, batch: list[Event], flushed: float) -> None:
        now = time.perf_counter()
        self.flush_to_paint.append(now - flushed)
        for ev in batch:
            sent = self.published.pop(ev, None)
            if sent is not None:
                self.latencies.append(now - sent)
                self.waits.append(flushed - sent)


async def churn(client: ScaleClient, published: dict[Event, float], rate: float, stop: asyncio.Event) -> int:
    """Publish churn events at ``rate``/s on this loop until ``stop``; returns how many."""
    queue: deque[Event] = deque()
    step = sent = 0
    start = time.perf_counter()
    period = 1 / rate
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            if not queue:
                queue.extend(churn_events(client, step))
                step += 1
            ev = queue.popleft()
            published[ev] = time.perf_counter()
            client.publish(ev)
            sent += 1
        await asyncio.sleep(period)
    return sent


# ----- a and b: headless -----------------------------------------------------------------------


@dataclass
class HeadlessResult:
    latencies: list[float]
    waits: list[float]
    flush_to_paint: list[float]
    flush_cpu: list[float]
    keys: list[float]
    missed_keys: int
    events: int
    seconds: float
    flushes: int


async def headless(seconds: float, presses: int, rate: float) -> HeadlessResult:
    client = scale_client()
    published: dict[Event, float] = {}
    app = TimedApp(client, published, cluster="scale", clock=lambda: T0, refresh_hz=DEFAULT_REFRESH_HZ,
                   freeze_gc=True)  # as the CLI runs it
    rng = random.Random(7)
    async with app.run_test(size=SIZE, headless=True) as pilot:
        await pilot.pause()
        stop = asyncio.Event()
        producer = asyncio.create_task(churn(client, published, rate, stop))
        await asyncio.sleep(1.0)  # warm up
        app.recording = True
        flushes = app.flushes
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
        app.recording = False
        flushes = app.flushes - flushes

        # b: keys under the same churn.
        table = app.apps_table
        marks: list[float] = []

        def moved(old: Coordinate, new: Coordinate) -> None:
            if old.row != new.row:
                app.call_after_refresh(lambda: marks.append(time.perf_counter()))

        app.watch(table, "cursor_coordinate", moved, init=False)
        keys: list[float] = []
        missed = 0
        half = max(1, presses // 2)
        for i in range(presses):
            await asyncio.sleep(rng.uniform(0.0, 0.1))  # land anywhere between two batches
            seen = len(marks)
            key = "down" if (i // half) % 2 == 0 else "up"
            sent = time.perf_counter()
            await pilot.press(key)
            deadline = sent + 2.0
            while len(marks) == seen and time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
            if len(marks) > seen:
                keys.append(marks[seen] - sent)
            else:
                missed += 1
        stop.set()
        events = await producer
    return HeadlessResult(app.latencies, app.waits, app.flush_to_paint, app.flush_cpu, keys, missed,
                          events, elapsed, flushes)


# ----- c and d: a real pty ---------------------------------------------------------------------


class PtyProcess:
    """A child on a fresh pty of ``size`` (its controlling terminal); read the master side."""

    def __init__(self, argv: list[str], size: tuple[int, int], env: dict[str, str] | None = None) -> None:
        cols, rows = size
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        for var in ("COLORTERM", "TEXTUAL_COLOR_SYSTEM", "NO_COLOR", "SSH_CONNECTION"):
            full_env.pop(var, None)
        full_env.update(env or {})
        try:
            # Textual writes the screen to stderr: all three go to the terminal.
            self.proc = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=slave, env=full_env,
                start_new_session=True, preexec_fn=_take_tty, close_fds=True,
            )
        finally:
            os.close(slave)
        self.started = time.perf_counter()
        self.eof = False

    def read(self, timeout: float) -> bytes:
        """What arrived within ``timeout`` (b"" at end of output)."""
        if self.eof:
            return b""
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:  # EIO: the child side is closed
            data = b""
        if not data:
            self.eof = True
        return data

    def drain(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while not self.eof and time.perf_counter() < deadline:
            self.read(0.05)

    def stop(self) -> None:
        """SIGTERM to the child's process group, then SIGKILL; the pty is read meanwhile so
        the child never blocks on a full buffer; then the master is closed."""
        try:
            for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
                if self.proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                deadline = time.perf_counter() + grace
                while self.proc.poll() is None and time.perf_counter() < deadline:
                    self.read(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group
            self.drain(0.5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3)
        finally:
            with contextlib.suppress(OSError):
                os.close(self.master)


def _take_tty() -> None:
    """In the child (after setsid): make the pty its controlling terminal, like a login shell."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@dataclass
class PtyResult:
    hz: float
    bytes_per_s: float
    window: float
    frames: int
    latencies: list[float] = field(default_factory=list)
    events: int = 0
    error: str = ""


def pty_bandwidth(hz: float, seconds: float, rate: float) -> PtyResult:
    with tempfile.TemporaryDirectory(prefix="tui-bench-") as tmp:
        stats = os.path.join(tmp, "stats.json")
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--hz", str(hz),
                "--seconds", str(PTY_SKIP + seconds + 2.0), "--rate", str(rate), "--stats", stats]
        child = PtyProcess(argv, SIZE)
        counted = 0
        chunks = 0
        # The window opens PTY_SKIP seconds after the first output (the child churns from then on).
        window_start = window_end = math.inf
        try:
            limit = time.perf_counter() + PTY_SKIP + seconds + 60.0  # slack: imports, building the workspace
            while not child.eof and time.perf_counter() < min(limit, window_end + 5.0):
                data = child.read(0.1)
                now = time.perf_counter()
                if data and window_start == math.inf:
                    window_start = now + PTY_SKIP
                    window_end = window_start + seconds
                if data and window_start <= now <= window_end:
                    counted += len(data)
                    chunks += 1
                if child.proc.poll() is not None and not data:
                    child.drain(1.0)
                    break
        finally:
            child.stop()
        result = PtyResult(hz, counted / seconds, seconds, chunks)
        if not os.path.exists(stats):
            result.error = f"child exited with {child.proc.returncode} and no figures"
            return result
        with open(stats) as f:
            figures = json.load(f)
        result.latencies = [float(x) for x in figures.get("latencies", [])]
        result.events = int(figures.get("events", 0))
        result.error = str(figures.get("error", ""))
        return result


ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1bP[^\x1b]*\x1b\\|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def demo_first_paint(workdir: str, state: str, timeout: float) -> float | None:
    """Seconds from spawning ``driftdeck demo --dir workdir`` to output showing "Apps"; None if never."""
    exe = Path(sys.executable).with_name("driftdeck")
    cmd = str(exe) if exe.exists() else (shutil.which("driftdeck") or "driftdeck")
    env = {"XDG_STATE_HOME": os.path.join(state, "state"), "XDG_CONFIG_HOME": os.path.join(state, "config"),
           "XDG_CACHE_HOME": os.path.join(state, "cache"), "XDG_DATA_HOME": os.path.join(state, "data")}
    child = PtyProcess([cmd, "demo", "--dir", workdir], SIZE, env=env)
    seen = b""
    try:
        while time.perf_counter() - child.started < timeout and not child.eof:
            data = child.read(0.05)
            if data:
                seen = (seen + data)[-(1 << 20):]
                if b"Apps" in ANSI.sub(b"", seen):
                    return time.perf_counter() - child.started
        return None
    finally:
        child.stop()


# ----- the pty child ---------------------------------------------------------------------------


def child_main(hz: float, seconds: float, rate: float, stats: str) -> int:
    """The console on a real terminal (our stdout), churn for ``seconds``, then exit and
    write update-to-paint figures (recorded after the startup skip) to ``stats``."""
    client = scale_client()
    published: dict[Event, float] = {}
    app = TimedApp(client, published, cluster="scale", refresh_hz=hz, freeze_gc=True)
    sent = 0

    async def drive() -> None:
        nonlocal sent
        while app.sub is None or not app.is_running:  # mounted and subscribed
            await asyncio.sleep(0.02)
        stop = asyncio.Event()
        producer = asyncio.create_task(churn(client, published, rate, stop))
        await asyncio.sleep(min(PTY_SKIP - 1.0, seconds / 2))
        app.recording = True
        await asyncio.sleep(max(0.0, seconds - PTY_SKIP + 1.0))
        stop.set()
        sent = await producer
        app.exit()

    async def main() -> None:
        driver = asyncio.create_task(drive())
        await app.run_async()
        if not driver.done():
            driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver

    error = ""
    try:
        asyncio.run(main())
    except Exception as exc:  # reported by the parent (our stderr is the measured terminal)
        error = f"{type(exc).__name__}: {exc}"
    with open(stats, "w") as f:
        json.dump({"latencies": app.latencies, "events": sent, "error": error}, f)
    return 0 if not error else 1


# ----- main ------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short windows (5 s, 30 key presses)")
    ap.add_argument("--rate", type=float, default=RATE, help="drift churn, events per second")
    ap.add_argument("--seconds", type=float, help="measuring window (default 20, quick 5)")
    ap.add_argument("--presses", type=int, help="key presses (default 100, quick 30)")
    ap.add_argument("--parts", default="abcd", help="which figures: a b (headless), c (pty), d (demo); default abcd")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--hz", type=float, default=2.0, help=argparse.SUPPRESS)
    ap.add_argument("--stats", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args.hz, args.seconds or 20.0, args.rate, args.stats or os.devnull)

    seconds = args.seconds or (5.0 if args.quick else 20.0)
    presses = args.presses or (30 if args.quick else 100)
    rate = args.rate
    load = f"5000 objects, {rate:g} ev/s"
    load1, load5, _ = os.getloadavg()
    print(f"workspace: 100 apps x 50 objects, 50 pipelines; churn {rate:g} events/s; {SIZE[0]}x{SIZE[1]}; "
          f"window {seconds:g} s; {os.cpu_count()} cores, load average {load1:.2f} {load5:.2f} at start")
    if "a" in args.parts or "b" in args.parts:
        parts = args.parts
        report_headless(asyncio.run(headless(seconds, presses if "b" in parts else 0, rate)), load, parts)
    if "c" in args.parts:
        for hz in (2.0, 10.0):
            report_pty(pty_bandwidth(hz, seconds, rate), load)
    if "d" in args.parts:
        report_demo()
    return 0


def report_headless(r: HeadlessResult, load: str, parts: str) -> None:
    if "a" in parts:
        print(f"drift highlight update-to-paint ({load}, {DEFAULT_REFRESH_HZ:g} Hz): {ms(r.latencies, 50, 99)} "
              f"(target p99 < 100 ms) [{len(r.latencies)} drift events, {r.flushes} batches in {r.seconds:.1f} s]")
        print(f"  of which waiting for the next batch: {ms(r.waits, 50, 99)}; batch applied to painted: "
              f"{ms(r.flush_to_paint, 50, 99)}; inside _apply_pending: {ms(r.flush_cpu, 50, 99)}")
    if "b" in parts:
        missed = f", {r.missed_keys} presses with no change" if r.missed_keys else ""
        print(f"key press to screen change ({load}, {DEFAULT_REFRESH_HZ:g} Hz): {ms(r.keys, 50, 99)} "
              f"(target p99 < 50 ms) [{len(r.keys)} presses{missed}]")


def report_pty(p: PtyResult, load: str) -> None:
    hz = p.hz
    target = " (target < 20 KiB/s)" if hz == 2.0 else ""
    if p.error:
        print(f"pty bytes/s ({load}, {hz:g} Hz): {p.bytes_per_s / 1024:.1f} KiB/s; child failed: {p.error}")
        return
    print(f"pty bytes/s ({load}, {hz:g} Hz, TERM=xterm-256color): {p.bytes_per_s / 1024:.1f} KiB/s{target} "
          f"[{p.bytes_per_s * p.window / 1024:.0f} KiB in {p.window:g} s after {PTY_SKIP:g} s startup, "
          f"{p.frames} reads]")
    print(f"  drift highlight update-to-paint on the pty ({hz:g} Hz, real driver): {ms(p.latencies, 50, 99)} "
          f"[{len(p.latencies)} drift events]")


def report_demo() -> None:
    with tempfile.TemporaryDirectory(prefix="tui-bench-demo-") as tmp:
        workdir = os.path.join(tmp, "demo")
        for label in ("fresh directory", "sandbox data exists"):
            took = demo_first_paint(workdir, tmp, timeout=20.0)
            if took is None:
                print("demo first paint: console not wired yet")
                return
            print(f"demo first paint (`driftdeck demo --dir TMP`, {label}): {took * 1000:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
