"""The sandbox's object store: one global resourceVersion, per-resource event
history for watches, watch fan-out, and optional SQLite persistence.

Stored objects are treated as immutable: a write stores a new dict, so event
history and watchers can share references without copying. Everything runs on
the server's event loop thread; no locks are needed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace, name)

HISTORY_PER_RESOURCE = 20_000
WATCH_QUEUE_LIMIT = 50_000


@dataclass(slots=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    rv: int
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    _encoded: bytes | None = None

    def encoded(self) -> bytes:
        """The NDJSON line of this event (cached; shared by all watchers)."""
        if self._encoded is None:
            self._encoded = json.dumps({"type": self.type, "object": self.obj}, separators=(",", ":")).encode() + b"\n"
        return self._encoded


@dataclass(eq=False)
class Watcher:
    """One open watch. ``matches`` decides whether an object is in its view."""

    key: Key
    matches: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, ev: Event) -> None:
        """Translate a store event into this watcher's view and queue it."""
        now = self.matches(ev.obj)
        before = ev.old is not None and self.matches(ev.old)
        if ev.type == "ADDED":
            out = ev if now else None
        elif ev.type == "DELETED":
            out = ev if now or before else None
        elif now and before:
            out = ev
        elif now:
            out = Event("ADDED", ev.rv, ev.obj)
        elif before:
            out = Event("DELETED", ev.rv, ev.obj)
        else:
            out = None
        if out is None:
            return
        if self.queue.qsize() >= WATCH_QUEUE_LIMIT:
            # A consumer this far behind gets its stream closed and must relist.
            self.overflowed = True
            self.close()
            return
        self.queue.put_nowait(out)

    def close(self) -> None:
        self.queue.put_nowait(None)


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Store:
    def __init__(self, data_file: str | None = None) -> None:
        self.rv = 0
        self._objects: dict[Key, dict[ObjKey, dict[str, Any]]] = {}
        self._history: dict[Key, deque[Event]] = {}
        self._floor: dict[Key, int] = {}  # events with rv <= floor are gone for this resource
        self._watchers: dict[Key, list[Watcher]] = {}
        self._listeners: list[Callable[[Key, Event], None]] = []
        self._db: sqlite3.Connection | None = None
        if data_file:
            self._open(data_file)

    # ----- persistence -------------------------------------------------
    def _open(self, path: str) -> None:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS objects (grp TEXT, plural TEXT, ns TEXT, name TEXT, body TEXT,"
            " PRIMARY KEY (grp, plural, ns, name))"
        )
        db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        row = db.execute("SELECT v FROM meta WHERE k='rv'").fetchone()
        self.rv = int(row[0]) if row else 0
        for grp, plural, ns, name, body in db.execute("SELECT grp, plural, ns, name, body FROM objects"):
            self._objects.setdefault((grp, plural), {})[(ns, name)] = json.loads(body)
        # Nothing before a restart can be replayed to watchers.
        for key in self._objects:
            self._floor[key] = self.rv
        self._db = db

    @property
    def restored(self) -> bool:
        return any(self._objects.values())

    def _persist(self, key: Key, okey: ObjKey, obj: dict[str, Any] | None) -> None:
        if self._db is None:
            return
        if obj is None:
            self._db.execute(
                "DELETE FROM objects WHERE grp=? AND plural=? AND ns=? AND name=?", (key[0], key[1], *okey)
            )
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)",
                (key[0], key[1], okey[0], okey[1], json.dumps(obj, separators=(",", ":"))),
            )
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(self.rv),))

    def close(self) -> None:
        for ws in self._watchers.values():
            for w in ws:
                w.close()
        if self._db is not None:
            self._db.close()
            self._db = None

    # ----- reads ---------------------------------------------------------
    def get(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(key, {}).get((namespace, name))

    def items(self, key: Key, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a resource sorted by namespace/name, optionally in one namespace."""
        objs = self._objects.get(key, {})
        if namespace is None:
            return [objs[k] for k in sorted(objs)]
        return [objs[k] for k in sorted(k for k in objs if k[0] == namespace)]

    def count(self, key: Key) -> int:
        return len(self._objects.get(key, {}))

    def total(self) -> int:
        return sum(len(objs) for objs in self._objects.values())

    def keys(self) -> list[Key]:
        return list(self._objects)

    def all_objects(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        for key, objs in list(self._objects.items()):
            for obj in list(objs.values()):
                yield key, obj

    # ----- writes --------------------------------------------------------
    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, key: Key, obj: dict[str, Any], created: bool) -> dict[str, Any]:
        """Store ``obj`` under a fresh resourceVersion and emit ADDED/MODIFIED."""
        meta = obj["metadata"]
        okey = (meta.get("namespace", ""), meta["name"])
        bucket = self._objects.setdefault(key, {})
        old = bucket.get(okey)
        rv = self.next_rv()
        meta["resourceVersion"] = str(rv)
        bucket[okey] = obj
        self._persist(key, okey, obj)
        self._emit(key, Event("ADDED" if created or old is None else "MODIFIED", rv, obj, old))
        return obj

    def remove(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        """Delete an object; the DELETED event carries its last state at a new resourceVersion."""
        bucket = self._objects.get(key, {})
        old = bucket.pop((namespace, name), None)
        if old is None:
            return None
        rv = self.next_rv()
        gone = dict(old)
        gone["metadata"] = dict(old["metadata"], resourceVersion=str(rv))
        self._persist(key, (namespace, name), None)
        self._emit(key, Event("DELETED", rv, gone, old))
        return gone

    def _emit(self, key: Key, ev: Event) -> None:
        hist = self._history.get(key)
        if hist is None:
            hist = self._history[key] = deque(maxlen=HISTORY_PER_RESOURCE)
        if len(hist) == hist.maxlen:
            self._floor[key] = hist[0].rv
        hist.append(ev)
        for w in self._watchers.get(key, ()):
            w.offer(ev)
        for listener in self._listeners:
            listener(key, ev)

    def listen(self, fn: Callable[[Key, Event], None]) -> None:
        """In-process subscription to every event (the built-in controllers use it)."""
        self._listeners.append(fn)

    # ----- watch ---------------------------------------------------------
    def watch(self, key: Key, matches: Callable[[dict[str, Any]], bool], since: int | None) -> Watcher:
        """Open a watch. ``since=None`` replays the current state as ADDED events;
        an integer replays history after it, or raises TooOld when it was compacted."""
        w = Watcher(key, matches)
        if since is None:
            for obj in self.items(key):
                w.offer(Event("ADDED", int(obj["metadata"]["resourceVersion"]), obj))
        else:
            floor = self._floor.get(key, 0)
            if since < floor:
                raise TooOld(since, floor + 1)
            for ev in self._history.get(key, ()):
                if ev.rv > since:
                    w.offer(ev)
        self._watchers.setdefault(key, []).append(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        ws = self._watchers.get(w.key)
        if ws and w in ws:
            ws.remove(w)

    def watcher_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    def history_floor(self, key: Key) -> int:
        return self._floor.get(key, 0)

    # ----- faults ----------------------------------------------------------
    def compact(self) -> int:
        """Forget all event history: a watch from any older resourceVersion gets 410."""
        for key in set(self._history) | set(self._objects):
            self._floor[key] = self.rv
            self._history.pop(key, None)
        return self.rv

    def drop_watches(self) -> int:
        """Close every open watch stream (clients see EOF)."""
        n = 0
        for ws in self._watchers.values():
            for w in ws:
                w.close()
                n += 1
            ws.clear()
        return n
