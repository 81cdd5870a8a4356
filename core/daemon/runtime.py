"""The daemon process: engine + pipelines + client API server + metrics, and its signals.

* Start: syncs and pipeline runs a killed predecessor left open are marked interrupted
  (retryable) before anything runs, so nothing runs twice; the first reconcile converges.
* SIGTERM: drain — new commands are refused, the reconcile loops stop, syncs in flight
  finish, running pipeline actions are stopped with their grace period (SIGTERM, then
  SIGKILL), then the process exits.
* SIGHUP: the configuration is read again and applied in place; a broken file is reported
  and the running configuration kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import load_config
from core.daemon.metrics import Metrics
from core.daemon.server import DaemonServer, ServerOptions
from core.engine import Engine
from core.events import ConfigReloaded, EventBus
from core.history import History
from core.inventory import Inventory
from core.model import Config
from core.pipelines.service import PipelineService
from core.pipelines.store import RunStore
from core.pipelines.types import Status

log = logging.getLogger("driftdeck.daemon")


class DaemonError(Exception):
    """The daemon cannot start (broken config, socket in use, ...)."""


@dataclass
class DaemonOptions:
    config_path: str
    server: ServerOptions
    history_db: Path | None = None
    runs_db: Path | None = None
    work_root: Path | None = None
    cache_dir: Path | None = None
    metrics_listen: tuple[str, int] | None = None
    drain_timeout: float = 60.0
    who: str = "driftdeck-daemon"
    extra: dict[str, Any] = field(default_factory=dict)


class DaemonRuntime:
    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        config, problems = load_config(options.config_path)
        if not config.apps and not config.pipelines:
            shown = "; ".join(str(p) for p in problems) or "no apps and no pipelines"
            raise DaemonError(f"{options.config_path}: {shown}")
        for p in problems:
            log.warning("config: %s", p)
        self.config: Config = config
        self.bus = EventBus()
        db = options.history_db
        self.history = History(db) if db else None
        self.engine = Engine(config, bus=self.bus, history=self.history,
                             inventory=Inventory(db) if db else None, cache_dir=options.cache_dir, who=options.who)
        store = RunStore(options.runs_db) if options.runs_db else None
        self.service = PipelineService(self.engine, config, store=store, work_root=options.work_root)
        for p in self.service.problems:
            log.warning("pipelines: %s", p)
        self.server = DaemonServer(self, options.server)
        self.metrics = Metrics(self)
        self.stopping = asyncio.Event()
        self._metrics_runner: Any = None
        self.interrupted_syncs = 0

    async def start(self) -> None:
        self.interrupted_syncs = await asyncio.to_thread(self.engine.history.mark_interrupted)
        if self.interrupted_syncs:
            log.warning("%d sync(s) were in flight when the previous daemon stopped: marked interrupted",
                        self.interrupted_syncs)
        await self.server.start()  # clients may attach while the first reconcile runs
        if self.server.tcp_port is not None and self.options.server.listen is not None:
            log.info("listening on tcp %s:%d", self.options.server.listen[0], self.server.tcp_port)
        if self.options.metrics_listen:
            self._metrics_runner = await self.metrics.serve(*self.options.metrics_listen)
        await self.engine.start()
        await self.service.start(recover=True)
        log.info("daemon ready: %d apps, %d pipelines, socket %s", len(self.engine.apps),
                 len(self.service.specs()), self.options.server.socket_path)

    async def reload(self) -> list[str]:
        config, problems = await asyncio.to_thread(load_config, self.options.config_path)
        shown = tuple(str(p) for p in problems)
        if not config.apps and not config.pipelines:
            log.error("reload: %s is not usable, keeping the running configuration: %s",
                      self.options.config_path, "; ".join(shown))
            self.bus.publish(ConfigReloaded((), (*shown, "kept the running configuration")))
            return []
        changes = await self.engine.reconfigure(config)
        changes += self.service.reconfigure(config)
        self.config = config
        for line in changes:
            log.info("reload: %s", line)
        for p in shown:
            log.warning("reload: %s", p)
        self.bus.publish(ConfigReloaded(tuple(changes), shown))
        for conn in list(self.server.events.connections):  # apps may have gone: clients re-read the state
            if conn.subscribed:
                conn.needs_snapshot = True
                conn.wake.set()
        return changes

    async def drain(self) -> None:
        """SIGTERM: no new work, in-flight syncs finish, running actions stop with their grace."""
        timeout = self.options.drain_timeout
        log.info("draining: refusing new commands")
        self.server.draining = True
        for task in list(self.engine._tasks):  # reconcile loops: nothing new starts
            task.cancel()
        sched = self.service.scheduler
        active = list(sched.active)
        for run_id in active:
            with contextlib.suppress(Exception):
                sched.stop(run_id, abandon=True, who="driftdeck daemon (shutting down)")
        waits = [asyncio.create_task(sched.wait(r)) for r in active]
        locks = [asyncio.create_task(self._idle(rt.lock)) for rt in self.engine.apps.values()]
        pending = [*waits, *locks, *self.server.inflight]
        if pending:
            _done, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                log.warning("drain: %d task(s) still running after %.0fs", len(still), timeout)
        statuses = {r: sched.store.run(r) for r in active}
        for run_id, row in statuses.items():
            log.info("drain: run %s ended %s", run_id, row["status"] if row else Status.INTERRUPTED)

    @staticmethod
    async def _idle(lock: asyncio.Lock) -> None:
        async with lock:
            pass

    async def close(self) -> None:
        await self.server.close()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        await self.service.stop()
        await self.engine.stop()

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT (draining) with SIGHUP reloads, stop."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self._reload_logged()))
        try:
            # A stop during the first reconcile must not wait for all of it.
            starting = asyncio.create_task(self.start(), name="daemon start")
            stop = asyncio.create_task(self.stopping.wait(), name="stop signal")
            await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # start errors (socket in use...) propagate
                await stop
            else:
                log.info("stop requested during start: abandoning the first reconcile")
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                stop.cancel()
            await self.drain()
        finally:
            await self.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        log.info("daemon stopped")
        return 0

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("reload failed; keeping the running configuration")
