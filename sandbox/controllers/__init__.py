"""The sandbox's built-in controllers (kube-controller-manager, kubelet and
friends, simulated).

They react to store events on the server's event loop: a store listener keeps
the indexes current and enqueues work items; a drain callback reconciles them
one by one (level-triggered: each reconcile reads the current state and writes
only what differs). Later phases are scheduled with ``loop.call_later(pace)``.
All writes go through :class:`~sandbox.api.Api`, never to the store.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from sandbox.api import Api
from sandbox.controllers.base import Controller, log, meta_of
from sandbox.controllers.crd import CRDController
from sandbox.controllers.daemonset import DaemonSetController
from sandbox.controllers.deployment import DeploymentController
from sandbox.controllers.gc import GarbageCollector
from sandbox.controllers.hpa import HPAController
from sandbox.controllers.index import ObjectIndex
from sandbox.controllers.job import JobController
from sandbox.controllers.namespace import NamespaceController
from sandbox.controllers.pod import KubeletController
from sandbox.controllers.pvc import PVCController
from sandbox.controllers.replicaset import ReplicaSetController
from sandbox.controllers.service import ServiceController
from sandbox.controllers.statefulset import StatefulSetController
from sandbox.errors import ApiError
from sandbox.store import Event, Key

__all__ = ["Controllers"]

CONTROLLER_TYPES: tuple[type[Controller], ...] = (
    GarbageCollector,
    NamespaceController,
    DeploymentController,
    ReplicaSetController,
    KubeletController,
    StatefulSetController,
    DaemonSetController,
    JobController,
    PVCController,
    HPAController,
    ServiceController,
    CRDController,
)
MAX_CONFLICT_RETRIES = 5
DRAIN_SLICE = 0.02  # seconds of reconciling before the loop gets a turn

WorkKey = tuple[str, Hashable]


class Controllers:
    """All built-in controllers of one sandbox.

    ``pace`` is the delay between simulated phases (0: as fast as possible);
    ``pods=False`` keeps workload controllers from creating Pods (and PVCs).
    """

    def __init__(self, api: Api, pace: float = 0.5, pods: bool = True) -> None:
        self.api = api
        self.store = api.store
        self.registry = api.registry
        self.pace = max(0.0, float(pace))
        self.pods = pods
        self.index = ObjectIndex()
        self.controllers: dict[str, Controller] = {}
        for cls in CONTROLLER_TYPES:
            ctl = cls(self)
            self.controllers[ctl.name] = ctl
        self._by_key: dict[Key, list[Controller]] = {}
        self._every: list[Controller] = []
        for ctl in self.controllers.values():
            if ctl.all_events:
                self._every.append(ctl)
                continue
            for key in ctl.resource_keys():
                self._by_key.setdefault(key, []).append(ctl)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._running = False
        self._listening = False
        self._queue: dict[WorkKey, None] = {}
        self._drain_handle: asyncio.Handle | None = None
        self._timers: set[asyncio.Handle] = set()
        self._fired: dict[str, set[Hashable]] = {}
        self._pending: dict[str, set[Hashable]] = {}
        self._retries: dict[WorkKey, int] = {}

    # ----- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Index the store, subscribe to its events and enqueue a first sync of everything."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = asyncio.get_event_loop()
        self._thread_id = threading.get_ident()
        self.index.rebuild(self.store.all_objects())
        self.api._gc = self.index
        self._running = True
        if not self._listening:
            self.store.listen(self._on_event)
            self._listening = True
        for ctl in self.controllers.values():
            try:
                ctl.resync()
            except Exception:
                log.exception("controller %s: initial sync failed", ctl.name)

    async def stop(self) -> None:
        """Stop reacting to events and cancel every scheduled phase."""
        self._running = False
        if self.api._gc is self.index:
            self.api._gc = None
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        if self._drain_handle is not None:
            self._drain_handle.cancel()
            self._drain_handle = None
        self._queue.clear()
        self._fired.clear()
        self._pending.clear()

    # ----- events -------------------------------------------------------------------------------
    def _on_event(self, key: Key, ev: Event) -> None:
        if not self._running:
            return
        self.index.observe(key, ev)
        for ctl in self._by_key.get(key, ()):
            self._dispatch(ctl, key, ev)
        for ctl in self._every:
            self._dispatch(ctl, key, ev)
        if ev.type == "DELETED":
            uid = meta_of(ev.obj).get("uid", "")
            self._fired.pop(uid, None)
            self._pending.pop(uid, None)

    def _dispatch(self, ctl: Controller, key: Key, ev: Event) -> None:
        try:
            ctl.on_event(key, ev)
        except Exception:
            log.exception("controller %s: event handler failed", ctl.name)

    # ----- work queue ---------------------------------------------------------------------------
    def enqueue(self, ctl: Controller, item: Hashable, delay: float | None = None) -> None:
        """Queue ``ctl.reconcile(item)``; duplicates coalesce. ``delay`` defers the enqueue."""
        if not self._running:
            return
        if delay is not None:
            self._later(delay, lambda: self.enqueue(ctl, item))
            return
        self._queue[(ctl.name, item)] = None
        if self._drain_handle is None:
            self._drain_handle = self._soon(self._drain)

    def _soon(self, fn: Callable[[], Any]) -> asyncio.Handle | None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return None
        if threading.get_ident() == self._thread_id:
            return loop.call_soon(fn)
        return loop.call_soon_threadsafe(fn)

    def _later(self, delay: float, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or not self._running:
            return
        if threading.get_ident() != self._thread_id:
            loop.call_soon_threadsafe(self._later, delay, fn)
            return
        handle: asyncio.Handle

        def fire() -> None:
            self._timers.discard(handle)
            if self._running:
                fn()

        handle = loop.call_soon(fire) if delay <= 0 else loop.call_later(delay, fire)
        self._timers.add(handle)

    def _drain(self) -> None:
        self._drain_handle = None
        # Work queued while draining waits for the next round, and a round yields after
        # DRAIN_SLICE seconds, so HTTP requests and watches keep being served.
        deadline = time.monotonic() + DRAIN_SLICE
        for _ in range(len(self._queue)):
            if not self._running or not self._queue or time.monotonic() > deadline:
                break
            work = next(iter(self._queue))
            del self._queue[work]
            self._run(work)
        if self._queue and self._running and self._drain_handle is None:
            self._drain_handle = self._soon(self._drain)

    def _run(self, work: WorkKey) -> None:
        name, item = work
        ctl = self.controllers[name]
        try:
            ctl.reconcile(item)
            self._retries.pop(work, None)
        except ApiError as exc:
            if exc.code == 409:
                tries = self._retries.get(work, 0) + 1
                if tries <= MAX_CONFLICT_RETRIES:
                    self._retries[work] = tries
                    log.debug("controller %s: %s: conflict, retrying: %s", name, item, exc.message)
                    self.enqueue(ctl, item, self.pace)
                else:
                    self._retries.pop(work, None)
                    log.warning("controller %s: %s: giving up after conflicts: %s", name, item, exc.message)
            elif exc.code in (403, 404):
                log.debug("controller %s: %s: %s", name, item, exc.message)
            else:
                log.warning("controller %s: %s: %s %s", name, item, exc.code, exc.message)
        except Exception:
            log.exception("controller %s: reconcile of %s failed", name, item)

    # ----- phases -----------------------------------------------------------------------------
    def elapsed(self, uid: str, token: Hashable, ctl: Controller, item: Hashable) -> bool:
        """Whether ``pace`` has passed since (uid, token) was first asked about.

        The first call starts a timer that re-enqueues ``item`` for ``ctl`` when it fires.
        Timers are in memory: after a restart a phase simply takes ``pace`` again.
        """
        if token in self._fired.get(uid, ()):
            return True
        pending = self._pending.setdefault(uid, set())
        if token not in pending:
            pending.add(token)

            def fire() -> None:
                waiting = self._pending.get(uid)
                if waiting is None or token not in waiting:
                    return  # the object is gone
                waiting.discard(token)
                self._fired.setdefault(uid, set()).add(token)
                self.enqueue(ctl, item)

            self._later(self.pace, fire)
        return False

    # ----- introspection (tests, admin) --------------------------------------------------------------
    def idle(self) -> bool:
        """No queued work and no scheduled phase."""
        return not self._queue and not self._timers
