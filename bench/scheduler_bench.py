"""Pipeline scheduler figures (prints; never pass/fail).

    .venv/bin/python bench/scheduler_bench.py [--actions 200] [--mb 100] [--no-real]

1. Overhead: one pipeline of ``--actions`` run actions, each in its own ``runOrder`` group
   (and a second stage, to include a stage change), with a fake executor that returns at
   once. The figure is the time from one action's end (its executor returning) to the next
   action's start (its executor called): store writes, events and gate logic. Target < 10 ms.
2. Output: one action writes ``--mb`` MB as 100-byte lines, streamed to the store's log
   file and to a bus subscriber (an ``async for`` reader). MB/s end to end (until the
   subscriber has every line and the file is written) and event-loop lag p99, measured by a
   5 ms ticker on the same loop. Target p99 < 50 ms. Run twice: a fake executor that emits
   lines as fast as it can (64 KiB chunks, like a pipe reader), and the real runner
   (``yes <99 chars> | head -c N`` in a worktree of a temporary git repository).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.events import EventBus, Lagged, LogLines  # noqa: E402
from core.model import Revision, SourceSpec  # noqa: E402
from core.pipelines import runner  # noqa: E402
from core.pipelines.runner import ActionContext, ActionResult  # noqa: E402
from core.pipelines.scheduler import Scheduler  # noqa: E402
from core.pipelines.store import RunStore  # noqa: E402
from core.pipelines.types import ActionSpec, PipelineSpec, RunAction, StageSpec, Status  # noqa: E402
from core.source import GitSource  # noqa: E402

LINE = "x" * 99  # + "\n" = 100 bytes
CHUNK_LINES = 64 * 1024 // 100


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def make_scheduler(tmp: Path, spec: PipelineSpec, **executors: Any) -> tuple[Scheduler, RunStore, EventBus]:
    store = RunStore(tmp / "state" / "history.db")
    bus = EventBus()
    source = executors.pop("source", None)
    sched = Scheduler(
        {spec.name: spec}, store, bus, source_for=lambda name: source, work_root=tmp / "work", **executors
    )
    return sched, store, bus


# ----- 1. overhead ----------------------------------------------------------------------------------


async def overhead(tmp: Path, actions: int) -> None:
    half = actions // 2
    spec = PipelineSpec("bench", "src", (
        StageSpec("one", tuple(ActionSpec(f"a{i}", "run", i + 1, run=RunAction(("true",))) for i in range(half))),
        StageSpec("two", tuple(ActionSpec(f"b{i}", "run", i + 1, run=RunAction(("true",))) for i in range(half))),
    ))
    marks: list[tuple[str, float, float]] = []

    async def instant(spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event) -> ActionResult:
        start = time.perf_counter()
        ctx.log("stdout", "hello")
        marks.append((f"{ctx.stage}.{ctx.action}", start, time.perf_counter()))
        return ActionResult(Status.SUCCEEDED, "ok", {"K": "v"})

    sched, store, _ = make_scheduler(tmp, spec, run_command=instant)
    t0 = time.perf_counter()
    run_id = await sched.start_run("bench", Revision("a" * 40))
    status = await sched.wait(run_id)
    total = time.perf_counter() - t0
    assert status is Status.SUCCEEDED, status
    gaps = [marks[i + 1][1] - marks[i][2] for i in range(len(marks) - 1)]
    stage_gap = marks[half][1] - marks[half - 1][2]
    print(f"1. overhead, {len(marks)} sequential actions over 2 stages (fake executor, store on disk)")
    print(f"   end → next start: p50 {ms(statistics.median(gaps))}  p99 {ms(pct(gaps, 99))}"
          f"  max {ms(max(gaps))}   (target < 10 ms)")
    print(f"   across the stage change: {ms(stage_gap)};  whole run {ms(total)}")
    store.close()


# ----- 2. output ------------------------------------------------------------------------------------


async def stream(
    label: str, megabytes: int, sha: str, sched: Scheduler, store: RunStore, bus: EventBus
) -> None:
    total_bytes = megabytes * 1024 * 1024
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - before - 0.005)

    got = {"lines": 0, "chars": 0, "events": 0, "dropped": 0}
    sub = bus.subscribe(maxsize=10000, types=[LogLines])

    async def reader() -> None:
        async for ev in sub:
            if isinstance(ev, Lagged):
                got["dropped"] += ev.dropped
                continue
            assert isinstance(ev, LogLines)
            got["events"] += 1
            got["lines"] += len(ev.lines)
            got["chars"] += sum(map(len, ev.lines)) + len(ev.lines)

    tick = asyncio.create_task(ticker())
    read = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    run_id = await sched.start_run("bench", Revision(sha))
    status = await sched.wait(run_id)
    await asyncio.to_thread(store.flush_logs)
    while sub.pending:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - t0
    stop.set()
    sub.close()
    await tick
    await read
    path = store.log_path(run_id, "out", "spew", 1)
    size = path.stat().st_size if path.exists() else 0
    print(f"2. output, {label}: {status.value}, {megabytes} MB in {elapsed:.2f} s = {megabytes / elapsed:.1f} MB/s")
    print(f"   loop lag (5 ms ticker, {len(lags)} ticks): p50 {ms(statistics.median(lags))}"
          f"  p99 {ms(pct(lags, 99))}  max {ms(max(lags))}   (target p99 < 50 ms)")
    print(f"   subscriber: {got['lines']:,} lines in {got['events']:,} LogLines events"
          f" ({got['dropped']} dropped); log file {size / 1e6:.1f} MB"
          f" ({'complete' if size == total_bytes else f'expected {total_bytes / 1e6:.1f} MB'})")
    store.close()


SPEW = PipelineSpec("bench", "src", (StageSpec("out", (ActionSpec("spew", "run", run=RunAction(("true",))),)),))


async def stream_fake(tmp: Path, megabytes: int) -> None:
    lines = megabytes * 1024 * 1024 // 100

    async def spew(spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event) -> ActionResult:
        emit: Callable[[str, str], None] = ctx.log
        for start in range(0, lines, CHUNK_LINES):
            for _ in range(min(CHUNK_LINES, lines - start)):
                emit("stdout", LINE)
            await asyncio.sleep(0)  # the next pipe read
        return ActionResult(Status.SUCCEEDED, "ok")

    sched, store, bus = make_scheduler(tmp, SPEW, run_command=spew)
    await stream("fake executor", megabytes, "0" * 40, sched, store, bus)


async def stream_real(tmp: Path, megabytes: int) -> None:
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x")
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    source = GitSource(SourceSpec("src", path=str(repo)), cache_dir=tmp / "cache")
    command = f"yes {LINE} | head -c {megabytes * 1024 * 1024}"
    spec = PipelineSpec("bench", "src", (StageSpec("out", (ActionSpec("spew", "run", run=RunAction(command)),)),))
    sched, store, bus = make_scheduler(tmp, spec, run_command=runner.run_command, source=source)
    await stream("real runner (yes | head -c)", megabytes, source.head().sha, sched, store, bus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--no-real", action="store_true", help="skip the real-runner output run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="driftdeck-sched-bench-") as d:
        tmp = Path(d)
        asyncio.run(overhead(tmp / "overhead", args.actions))
        asyncio.run(stream_fake(tmp / "fake", args.mb))
        if not args.no_real and shutil.which("git"):
            asyncio.run(stream_real(tmp / "real", args.mb))


if __name__ == "__main__":
    main()
