"""A client of a running daemon with the same methods as :class:`core.client.LocalClient`.

* ``snapshot()`` reads a local mirror (a :class:`~core.state.StateModel` rebuilt from the
  daemon's snapshot and kept current by its events), so it costs what it costs in-process.
* ``subscribe()`` is a local bus fed by the daemon's event stream. After a reconnect the
  client resumes from the last event id it saw: the daemon replays what it missed, or sends
  a snapshot when too much was missed; either way subscribers get a ``Lagged`` marker when
  their view must be refreshed from ``snapshot()``.
* Reads (objects, diffs, runs, logs…) are short blocking request/responses on a second
  connection; commands go over the event connection and are awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

from core import paths
from core.client import plan_from_json
from core.daemon.protocol import MAX_LINE, RemoteError, dumps, loads
from core.engine import SyncOutcome
from core.events import ConfigReloaded, Event, EventBus, Lagged, Subscription
from core.model import Health, Plan, Revision
from core.state import StateModel

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


def default_socket() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(runtime, "driftdeck") if runtime else str(paths.state_dir())
    return os.path.join(base, "daemon.sock")


def terminal_info() -> dict[str, str]:
    """What the audit log records about where a command came from."""
    tty = ""
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            tty = os.ttyname(fd)
            break
    return {"ssh": os.environ.get("SSH_CONNECTION", ""), "tty": tty}


@dataclass(frozen=True)
class Address:
    path: str = ""
    host: str = ""
    port: int = 0
    token: str = ""

    @classmethod
    def parse(cls, value: str, token: str = "") -> Address:
        """``/path/to/sock`` or ``tcp://127.0.0.1:7420``."""
        if value.startswith("tcp://"):
            host, _, port = value[len("tcp://"):].rpartition(":")
            return cls(host=host or "127.0.0.1", port=int(port), token=token)
        return cls(path=value, token=token)

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}" if self.host else self.path


def daemon_available(path: str | None = None) -> bool:
    """Whether a daemon answers on ``path`` (default socket)."""
    path = path or default_socket()
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
    except OSError:
        return False
    finally:
        s.close()
    return True


def _outcome(result: Any) -> SyncOutcome:
    r = result or {}
    rev = Revision(r["revision"]) if r.get("revision") else None
    return SyncOutcome(r.get("app", ""), bool(r.get("ok")), str(r.get("message", "")), rev,
                       applied=int(r.get("applied") or 0), pruned=int(r.get("pruned") or 0),
                       health=Health(r.get("health") or Health.UNKNOWN.value), duration=float(r.get("duration") or 0))


class RemoteClient:
    def __init__(self, address: Address, user_hint: str = "") -> None:
        self.address = address
        self.user_hint = user_hint
        self.bus = EventBus()
        self.mirror = StateModel()
        self.last_eid: int | None = None
        self.status = "connecting"  # attached | reconnecting | closed
        self.identity: dict[str, Any] = {}
        self.reconnects = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._sync_sock: socket.socket | None = None
        self._sync_file: Any = None
        self._sync_lock = threading.Lock()
        self._sync_ids = itertools.count(1)

    # ----- connection --------------------------------------------------------------------------

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.address.host:
            return await asyncio.open_connection(self.address.host, self.address.port, limit=MAX_LINE)
        return await asyncio.open_unix_connection(self.address.path, limit=MAX_LINE)

    def _hello_args(self) -> dict[str, Any]:
        return {**terminal_info(), "token": self.address.token, "user": self.user_hint}

    async def connect(self, timeout: float = 10.0) -> RemoteClient:
        """Attach (hello, subscribe) and wait for the first snapshot; raises OSError/RemoteError."""
        reader, writer = await asyncio.wait_for(self._open(), timeout)
        await self._handshake(reader, writer)
        self._reader_task = asyncio.create_task(self._run(reader), name="daemon events")
        await asyncio.wait_for(self._ready.wait(), timeout)
        return self

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(dumps({"id": 0, "op": "hello", "args": self._hello_args()}))
        since = {"since": self.last_eid, "instance": self.identity.get("instance")}  # ids of another instance mean nothing
        writer.write(dumps({"id": -1, "op": "subscribe", "args": since}))
        await writer.drain()
        hello = loads(await reader.readline() or b"{}")
        if not hello.get("ok"):
            writer.close()
            raise RemoteError(str(hello.get("error") or "the daemon closed the connection"),
                              str(hello.get("code") or "error"))
        self.identity = hello.get("result") or {}
        self._writer = writer
        self.status = "attached"

    async def _run(self, reader: asyncio.StreamReader) -> None:
        while not self._closing:
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    self._dispatch(loads(line))
            except (ConnectionError, ValueError, asyncio.IncompleteReadError) as exc:
                log.info("daemon connection lost: %s", exc)
            if self._closing:
                break
            self.status = "reconnecting"
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RemoteError("the daemon connection was lost", "disconnected"))
            self._pending.clear()
            reader = await self._reconnect()

    async def _reconnect(self) -> asyncio.StreamReader:
        for attempt in itertools.count():
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            try:
                reader, writer = await asyncio.wait_for(self._open(), 5.0)
                await self._handshake(reader, writer)
            except (TimeoutError, OSError, RemoteError, ValueError) as exc:
                log.debug("reconnect failed: %s", exc)
                continue
            self.reconnects += 1
            return reader
        raise AssertionError("unreachable")

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "eid" in msg and "event" in msg:
            eid = int(msg["eid"])
            if self.last_eid is not None and eid <= self.last_eid:
                return  # replayed twice (a reconnect raced a resubscribe)
            self.last_eid = eid
            try:
                event = Event.from_dict(msg["event"])
            except ValueError:
                return  # a newer daemon's event type
            self.mirror.apply(event)
            self.bus.publish(event)
            if isinstance(event, ConfigReloaded):
                pass  # the daemon follows it with a snapshot
            return
        if "snapshot" in msg:
            self.mirror = StateModel.from_snapshot(msg["snapshot"])
            first = not self._ready.is_set()
            self.last_eid = int(msg.get("eid") or 0)
            self._ready.set()
            if not first:
                self.bus.publish(Lagged(0))  # views refresh from the new snapshot
            return
        if "lagged" in msg:
            log.info("fell behind the daemon by %s events; resyncing from a snapshot", msg["lagged"])
            return
        rid = msg.get("id")
        if rid == -1:
            if not msg.get("ok"):
                log.warning("subscribe refused: %s", msg.get("error"))
            elif not (msg.get("result") or {}).get("snapshot"):
                self._ready.set()  # resumed by replay: the mirror is still right
            return
        fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if fut is not None and not fut.done():
            if msg.get("ok"):
                fut.set_result(msg.get("result"))
            else:
                fut.set_exception(RemoteError(str(msg.get("error")), str(msg.get("code") or "error")))

    async def close(self) -> None:
        self._closing = True
        self.status = "closed"
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        with self._sync_lock:
            if self._sync_sock is not None:
                self._sync_sock.close()
                self._sync_sock = None
        self.bus.close()

    # ----- requests ----------------------------------------------------------------------------

    async def call(self, op: str, **args: Any) -> Any:
        if self._writer is None or self.status != "attached":
            raise RemoteError(f"not attached to the daemon ({self.status})", "disconnected")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._writer.write(dumps({"id": rid, "op": op, "args": args}))
        await self._writer.drain()
        return await fut

    def call_blocking(self, op: str, timeout: float = 10.0, **args: Any) -> Any:
        """A read on the second (blocking) connection; the console calls these between frames."""
        with self._sync_lock:
            for attempt in (0, 1):
                try:
                    f = self._sync_conn(timeout)
                    rid = next(self._sync_ids)
                    f.write(dumps({"id": rid, "op": op, "args": args}))
                    f.flush()
                    while True:
                        line = f.readline()
                        if not line:
                            raise ConnectionError("the daemon closed the connection")
                        msg = loads(line)
                        if msg.get("id") == rid:
                            break
                except (OSError, ConnectionError):
                    self._drop_sync()
                    if attempt:
                        raise RemoteError("the daemon is not reachable", "disconnected") from None
                    continue
                if msg.get("ok"):
                    return msg.get("result")
                raise RemoteError(str(msg.get("error")), str(msg.get("code") or "error"))
        raise AssertionError("unreachable")

    def _sync_conn(self, timeout: float) -> Any:
        if self._sync_file is not None:
            return self._sync_file
        if self.address.host:
            sock = socket.create_connection((self.address.host, self.address.port), timeout)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.address.path)
        f = sock.makefile("rwb")
        f.write(dumps({"id": 0, "op": "hello", "args": self._hello_args()}))
        f.flush()
        hello = loads(f.readline() or b"{}")
        if not hello.get("ok"):
            sock.close()
            raise RemoteError(str(hello.get("error")), str(hello.get("code") or "error"))
        self._sync_sock, self._sync_file = sock, f
        return f

    def _drop_sync(self) -> None:
        if self._sync_sock is not None:
            with contextlib.suppress(OSError):
                self._sync_sock.close()
        self._sync_sock = self._sync_file = None

    # ----- the client API ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return self.mirror.snapshot()

    def subscribe(self) -> Subscription:
        return self.bus.subscribe()

    def objects(self, app: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call_blocking("objects", app=app)
        return result

    def object_diff(self, app: str, ref_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call_blocking("object_diff", app=app, ref_id=ref_id)
        return result

    def history(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call_blocking("history", app=app, limit=limit)
        return result

    def commits(self, app: str, limit: int = 30) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call_blocking("commits", app=app, limit=limit)
        return result

    def pipelines(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call_blocking("pipelines")
        return result

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call_blocking("runs", pipeline=pipeline, limit=limit)
        return result

    def run(self, run_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.call_blocking("run", run_id=run_id)
        return result

    def run_log(self, run_id: str, stage: str, action: str, limit: int = 5000) -> list[str]:
        result: list[str] = self.call_blocking("run_log", run_id=run_id, stage=stage, action=action, limit=limit)
        return result

    def trace(self, app: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call_blocking("trace", app=app)
        return result

    async def plan(self, app: str) -> Plan:
        """The daemon's plan: from its baselines and watch cache, dry runs only for what changed."""
        return plan_from_json(await self.call("plan", app=app))

    async def sync(self, app: str, *, dry_run: bool = False, wait: bool = True) -> SyncOutcome:
        return _outcome(await self.call("sync", app=app, dry_run=dry_run, wait=wait))

    async def suspend(self, app: str) -> None:
        await self.call("suspend", app=app)

    async def resume(self, app: str) -> None:
        await self.call("resume", app=app)

    async def revert(self, app: str, *, to: str | None = None) -> SyncOutcome:
        return _outcome(await self.call("revert", app=app, to=to))

    async def start_run(self, pipeline: str, stage: str | None = None) -> str:
        return str(await self.call("start_run", pipeline=pipeline, stage=stage))

    async def approve(self, run_id: str, action: str, comment: str = "") -> None:
        await self.call("approve", run_id=run_id, action=action, comment=comment)

    async def reject(self, run_id: str, action: str, comment: str = "") -> None:
        await self.call("reject", run_id=run_id, action=action, comment=comment)

    async def retry(self, run_id: str, stage: str, failed_only: bool = True) -> None:
        await self.call("retry", run_id=run_id, stage=stage, failed_only=failed_only)

    async def stop(self, run_id: str, abandon: bool = False) -> None:
        await self.call("stop", run_id=run_id, abandon=abandon)
