"""The daemon's client API server: a unix socket (and optionally loopback TCP with a token).

* Identity comes from the socket's peer credentials (``SO_PEERCRED``): uid, gid and the
  caller's supplementary groups (read from ``/proc/PID/status``, so they are the process's
  real groups). Role: ``operator`` for root, the daemon's own user and members of the
  configured operator group; ``viewer`` otherwise. TCP callers prove a token in ``hello``
  and get the token's role.
* Fan-out: :class:`EventLog` is a bus listener that numbers every event, encodes it once
  and offers the bytes to every subscribed connection. Each connection has a bounded queue
  and its own writer task: a stalled client fills only its own queue, is then marked lagged
  (its queue dropped), and when it reads again it is told how many events it missed and gets
  a snapshot. The daemon and the other clients never wait for it.
* Resume: a client that reconnects with ``subscribe since=N`` gets events N+1… replayed
  from the ring, without a gap, or a snapshot when N is older than the ring.
* Every operator command is audited (user, terminal and tty as the client reports them,
  time, arguments, result); refused ones too.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hmac
import logging
import os
import pwd
import socket
import struct
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.client import LocalClient
from core.daemon.protocol import MAX_LINE, OPERATOR_OPS, READ_OPS, ProtocolError, dumps, loads
from core.engine import EngineError, SyncOutcome
from core.events import Event, EventBus

if TYPE_CHECKING:
    from core.daemon.runtime import DaemonRuntime

log = logging.getLogger(__name__)

RING_SIZE = 50_000  # events kept for resuming clients
QUEUE_SIZE = 10_000  # events queued per client before it is marked lagged


# ----- identity ------------------------------------------------------------------------------


@dataclass
class Identity:
    user: str
    role: str  # viewer | operator
    uid: int | None = None
    gid: int | None = None
    pid: int | None = None
    groups: tuple[int, ...] = ()
    via: str = "unix"
    terminal: str = ""  # as the client reports it: SSH_CONNECTION and tty

    @property
    def who(self) -> str:
        return self.user

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "role": self.role, "uid": self.uid, "gid": self.gid, "pid": self.pid,
                "via": self.via, "terminal": self.terminal}


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def _process_groups(pid: int, uid: int, gid: int) -> tuple[int, ...]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Groups:"):
                    return tuple(int(g) for g in line.split()[1:])
    except OSError:
        pass
    with contextlib.suppress(KeyError, OSError):
        return tuple(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    return (gid,)


def group_id(name_or_gid: str | int | None) -> int | None:
    if name_or_gid is None or name_or_gid == "":
        return None
    if isinstance(name_or_gid, int) or str(name_or_gid).isdigit():
        return int(name_or_gid)
    return grp.getgrnam(str(name_or_gid)).gr_gid


def peer_identity(sock: socket.socket, operator_gid: int | None) -> Identity:
    """Who is on the other end of a unix socket, and their role."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    groups = _process_groups(pid, uid, gid)
    operator = uid in (0, os.getuid()) or (operator_gid is not None and (gid == operator_gid or operator_gid in groups))
    return Identity(_user_name(uid), "operator" if operator else "viewer", uid, gid, pid, groups)


# ----- fan-out ---------------------------------------------------------------------------------


class EventLog:
    """Numbers, encodes (once) and keeps the last ``size`` events; offers each to the connections."""

    def __init__(self, bus: EventBus, size: int = RING_SIZE) -> None:
        self.ring: deque[tuple[int, bytes]] = deque(maxlen=size)
        self.last_eid = 0
        self.connections: set[Connection] = set()
        self.on_event: list[Callable[[Event], None]] = []
        self._detach = bus.on(self._on_event)

    def close(self) -> None:
        self._detach()

    def _on_event(self, event: Event) -> None:
        self.last_eid += 1
        eid = self.last_eid
        line = dumps({"eid": eid, "event": event.to_dict()})
        self.ring.append((eid, line))
        for conn in self.connections:
            conn.offer(eid, line)

    def replay(self, since: int) -> list[bytes] | None:
        """Lines of events after ``since``, or None when some of them are no longer kept."""
        if since >= self.last_eid:
            return []
        if not self.ring or self.ring[0][0] > since + 1:
            return None
        start = since + 1 - self.ring[0][0]
        return [line for _eid, line in list(self.ring)[start:]]


@dataclass(eq=False)
class Connection:
    server: DaemonServer
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    identity: Identity
    maxsize: int = QUEUE_SIZE
    queue: deque[bytes] = field(default_factory=deque)
    responses: deque[bytes] = field(default_factory=deque)
    subscribed: bool = False
    hello: bool = False
    lagged: int = 0  # events dropped since the client last caught up
    needs_snapshot: bool = False
    sent_events: int = 0
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def offer(self, eid: int, line: bytes) -> None:
        """From the bus listener: queue one event, or mark this client lagged. Never blocks."""
        if not self.subscribed or self.closed:
            return
        if self.needs_snapshot:
            self.lagged += 1
            return
        if len(self.queue) >= self.maxsize:
            self.lagged += len(self.queue) + 1
            self.queue.clear()
            self.needs_snapshot = True
        else:
            self.queue.append(line)
        self.wake.set()

    def respond(self, line: bytes) -> None:
        self.responses.append(line)
        self.wake.set()

    async def write_loop(self) -> None:
        try:
            while not self.closed:
                await self.wake.wait()
                self.wake.clear()
                out: list[bytes] = []
                while self.responses:
                    out.append(self.responses.popleft())
                if self.needs_snapshot:
                    # Consistent pair: the snapshot reflects exactly the events up to last_eid.
                    out.append(dumps({"lagged": self.lagged}))
                    out.append(self.server.snapshot_line())
                    self.needs_snapshot = False
                    self.lagged = 0
                    self.queue.clear()
                while self.queue:
                    out.append(self.queue.popleft())
                    self.sent_events += 1
                if out:
                    self.writer.write(b"".join(out))
                    await self.writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.closed = True


# ----- the server ------------------------------------------------------------------------------


def _encode_result(value: Any) -> Any:
    if isinstance(value, SyncOutcome):
        return {"app": value.app, "ok": value.ok, "message": value.message,
                "revision": value.revision.sha if value.revision else None, "applied": value.applied,
                "pruned": value.pruned, "health": value.health.value, "duration": value.duration}
    return value


@dataclass
class ServerOptions:
    socket_path: str
    socket_group: str | int | None = None  # socket mode 0660 with this group; 0600 without
    operator_group: str | int | None = None
    listen: tuple[str, int] | None = None  # TCP
    tokens: dict[str, str] = field(default_factory=dict)  # token -> role
    allow_remote: bool = False
    queue_size: int = QUEUE_SIZE
    ring_size: int = RING_SIZE


class DaemonServer:
    def __init__(self, runtime: DaemonRuntime, options: ServerOptions) -> None:
        self.runtime = runtime
        self.options = options
        self.events = EventLog(runtime.bus, options.ring_size)
        self.operator_gid = group_id(options.operator_group)
        self.draining = False
        self.instance = uuid.uuid4().hex  # event ids are per daemon instance
        self.inflight: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.base_events.Server] = []
        self.tcp_port: int | None = None

    # ----- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        path = self.options.socket_path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            if await self._alive(path):
                raise OSError(f"another daemon is listening on {path}")
            os.unlink(path)  # stale, from a killed daemon
        old = os.umask(0o177)
        try:
            unix = await asyncio.start_unix_server(self._on_unix, path=path, limit=MAX_LINE)
        finally:
            os.umask(old)
        gid = group_id(self.options.socket_group)
        if gid is not None:
            os.chown(path, -1, gid)
            os.chmod(path, 0o660)
        else:
            os.chmod(path, 0o600)
        self._servers.append(unix)
        if self.options.listen is not None:
            host, port = self.options.listen
            if not self.options.allow_remote and host not in ("127.0.0.1", "::1", "localhost"):
                raise ValueError(f"refusing to listen on {host}: only loopback without --allow-remote")
            if not self.options.tokens:
                raise ValueError("TCP needs a token (--token-file)")
            tcp = await asyncio.start_server(self._on_tcp, host, port, limit=MAX_LINE)
            self.tcp_port = tcp.sockets[0].getsockname()[1]
            self._servers.append(tcp)

    @staticmethod
    async def _alive(path: str) -> bool:
        try:
            _r, w = await asyncio.wait_for(asyncio.open_unix_connection(path), 1.0)
        except (TimeoutError, OSError):
            return False
        w.close()
        return True

    async def stop_accepting(self) -> None:
        for s in self._servers:
            s.close()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await s.wait_closed()

    async def drain(self, timeout: float) -> None:
        """Refuse new commands; wait for the ones in flight."""
        self.draining = True
        if self.inflight:
            await asyncio.wait(self.inflight, timeout=timeout)

    async def close(self) -> None:
        await self.stop_accepting()
        for conn in list(self.events.connections):
            conn.closed = True
            conn.wake.set()
            conn.writer.close()
        self.events.close()
        with contextlib.suppress(FileNotFoundError):
            if os.path.exists(self.options.socket_path):
                os.unlink(self.options.socket_path)

    def snapshot_line(self) -> bytes:
        return dumps({"snapshot": self.runtime.engine.state.snapshot(), "eid": self.events.last_eid})

    @property
    def clients(self) -> int:
        return len(self.events.connections)

    # ----- connections -----------------------------------------------------------------------

    async def _on_unix(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            identity = peer_identity(sock, self.operator_gid)
        except OSError as exc:
            log.warning("cannot read peer credentials: %s", exc)
            writer.close()
            return
        await self._serve(reader, writer, identity)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        await self._serve(reader, writer, Identity(f"tcp:{peer[0] if peer else '?'}", "none", via="tcp"))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, identity: Identity) -> None:
        conn = Connection(self, reader, writer, identity, maxsize=self.options.queue_size)
        self.events.connections.add(conn)
        writer_task = asyncio.create_task(conn.write_loop(), name=f"client {identity.user} writer")
        try:
            while not conn.closed:
                try:
                    line = await reader.readline()
                except (ConnectionError, ValueError):
                    break
                if not line:
                    break
                try:
                    req = loads(line)
                except ProtocolError as exc:
                    conn.respond(dumps({"id": None, "ok": False, "error": str(exc), "code": "bad_request"}))
                    continue
                await self._handle(conn, req)
        finally:
            conn.closed = True
            conn.wake.set()
            self.events.connections.discard(conn)
            writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer_task
            writer.close()

    def _error(self, conn: Connection, rid: Any, message: str, code: str) -> None:
        conn.respond(dumps({"id": rid, "ok": False, "error": message, "code": code}))

    async def _handle(self, conn: Connection, req: dict[str, Any]) -> None:
        rid = req.get("id")
        op = req.get("op")
        args = req.get("args") or {}
        if not isinstance(op, str) or op not in READ_OPS | OPERATOR_OPS or not isinstance(args, dict):
            self._error(conn, rid, f"unknown operation {op!r}", "bad_request")
            return
        ident = conn.identity
        if op == "hello":
            if ident.via == "tcp":
                role = self._token_role(str(args.get("token") or ""))
                if role is None:
                    conn.closed = True  # nothing more is read or queued for this caller
                    with contextlib.suppress(ConnectionError):
                        conn.writer.write(dumps({"id": rid, "ok": False, "error": "a valid token is required",
                                                 "code": "forbidden"}))
                        await conn.writer.drain()
                    conn.wake.set()
                    return
                ident.role = role
                ident.user = str(args.get("user") or ident.user)
            parts = [str(args.get(k) or "") for k in ("ssh", "tty")]
            ident.terminal = " ".join(p for p in (f"ssh={parts[0]}" if parts[0] else "",
                                                  f"tty={parts[1]}" if parts[1] else "") if p)
            conn.hello = True
            conn.respond(dumps({"id": rid, "ok": True, "result": {
                **ident.to_dict(), "eid": self.events.last_eid, "instance": self.instance}}))
            return
        if not conn.hello:
            self._error(conn, rid, "say hello first", "bad_request")
            return
        if op == "ping":
            conn.respond(dumps({"id": rid, "ok": True, "result": "pong"}))
            return
        if op == "whoami":
            conn.respond(dumps({"id": rid, "ok": True, "result": ident.to_dict()}))
            return
        if op == "subscribe":
            same = args.get("instance") in (None, self.instance)
            self._subscribe(conn, rid, args.get("since") if same else None)
            return
        if op in OPERATOR_OPS:
            if ident.role != "operator":
                self._audit_refused(ident, op, args, f"refused: {ident.user} is a {ident.role}")
                self._error(conn, rid, f"{op} needs the operator role; {ident.user} is a {ident.role}", "forbidden")
                return
            if self.draining:
                self._error(conn, rid, "the daemon is shutting down", "draining")
                return
            task = asyncio.create_task(self._answer(conn, rid, op, args), name=f"{op} by {ident.user}")
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
            return
        await self._answer(conn, rid, op, args)  # reads: answered in order

    def _token_role(self, token: str) -> str | None:
        for known, role in self.options.tokens.items():
            if token and hmac.compare_digest(token, known):
                return role
        return None

    def _audit_refused(self, ident: Identity, op: str, args: dict[str, Any], result: str) -> None:
        target = str(args.get("app") or args.get("run_id") or args.get("pipeline") or "")
        with contextlib.suppress(Exception):
            self.runtime.engine.history.add_audit(ident.user, op, target=target, args=args, result=result,
                                                  terminal=ident.terminal)

    def _subscribe(self, conn: Connection, rid: Any, since: Any) -> None:
        replay = self.events.replay(int(since)) if isinstance(since, int) else None
        conn.subscribed = True
        if replay is None:
            conn.respond(dumps({"id": rid, "ok": True, "result": {"replayed": 0, "snapshot": True}}))
            conn.respond(self.snapshot_line())
        else:
            conn.respond(dumps({"id": rid, "ok": True, "result": {"replayed": len(replay), "snapshot": False}}))
            for line in replay:
                conn.respond(line)

    def _client(self, conn: Connection) -> LocalClient:
        rt = self.runtime
        return LocalClient(rt.engine, conn.identity.user, rt.service, terminal=conn.identity.terminal)

    def _calls(self, client: LocalClient, args: dict[str, Any]) -> dict[str, Callable[[], Awaitable[Any]]]:
        """Every operation but hello/ping/whoami/subscribe, as a call (blocking reads in a thread)."""

        async def now(value: Any) -> Any:
            return value

        def thread(fn: Callable[..., Any], *a: Any) -> Awaitable[Any]:
            return asyncio.to_thread(fn, *a)

        a = args
        return {
            "snapshot": lambda: now(self.runtime.engine.state.snapshot()),
            "objects": lambda: now(client.objects(a["app"])),
            "object_diff": lambda: now(client.object_diff(a["app"], a["ref_id"])),
            "history": lambda: now(client.history(a["app"], int(a.get("limit", 50)))),
            "commits": lambda: thread(client.commits, a["app"], int(a.get("limit", 30))),
            "pipelines": lambda: now(client.pipelines()),
            "runs": lambda: now(client.runs(a.get("pipeline"), int(a.get("limit", 50)))),
            "run": lambda: now(client.run(a["run_id"])),
            "run_log": lambda: thread(client.run_log, a["run_id"], a["stage"], a["action"], int(a.get("limit", 5000))),
            "trace": lambda: thread(client.trace, a["app"]),
            "plan": lambda: client.plan_json(a["app"]),
            "sync": lambda: client.sync(a["app"], dry_run=bool(a.get("dry_run")), wait=bool(a.get("wait", True))),
            "suspend": lambda: client.suspend(a["app"]),
            "resume": lambda: client.resume(a["app"]),
            "revert": lambda: client.revert(a["app"], to=a.get("to")),
            "start_run": lambda: client.start_run(a["pipeline"], a.get("stage")),
            "approve": lambda: client.approve(a["run_id"], a["action"], str(a.get("comment", ""))),
            "reject": lambda: client.reject(a["run_id"], a["action"], str(a.get("comment", ""))),
            "retry": lambda: client.retry(a["run_id"], a["stage"], bool(a.get("failed_only", True))),
            "stop": lambda: client.stop(a["run_id"], bool(a.get("abandon"))),
        }

    async def _answer(self, conn: Connection, rid: Any, op: str, args: dict[str, Any]) -> None:
        """Run one operation for ``conn`` and respond: the result, or a typed error."""
        try:
            result = await self._calls(self._client(conn), args)[op]()
        except KeyError as exc:
            self._error(conn, rid, f"{op}: missing argument {exc}", "bad_request")
            return
        except EngineError as exc:
            self._error(conn, rid, str(exc), "not_found")
            return
        except Exception as exc:
            log.warning("%s by %s failed: %s", op, conn.identity.user, exc)
            self._error(conn, rid, f"{op} failed: {exc}", "error")
            return
        if not conn.closed:
            conn.respond(dumps({"id": rid, "ok": True, "result": _encode_result(result)}))

