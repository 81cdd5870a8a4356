"""Typed events and the asyncio event bus that carries them.

Every event is a frozen dataclass deriving from :class:`Event`. Subclasses register
themselves by class name, so ``Event.from_dict(event.to_dict())`` round-trips any of
them (the daemon protocol sends exactly these dicts). Adding an event is declaring a
dataclass; encoding and decoding follow its type hints.

Events carry field *paths* and messages, never object values: secrets cannot leak
through the bus, the history database or the daemon socket.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import threading
import time
import types
import typing
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, TypeVar

from core.model import Action, Health, ObjRef, Plan, Problem, Revision, SyncStatus

log = logging.getLogger(__name__)

E = TypeVar("E", bound="Event")
Listener = Callable[["Event"], None]

_REGISTRY: dict[str, builtins.type[Event]] = {}
_HINTS: dict[builtins.type[Any], dict[str, Any]] = {}
_COERCE: dict[builtins.type[Any], list[tuple[str, Callable[[Any], Any]]]] = {}


# ----- encoding ------------------------------------------------------------------------------


def _hints(cls: builtins.type[Any]) -> dict[str, Any]:
    """Resolved type hints of a dataclass's fields (cached per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = typing.get_type_hints(cls)
        hints = _HINTS[cls] = {f.name: resolved[f.name] for f in fields(cls)}
    return hints


def encode(value: Any) -> Any:
    """A JSON-safe form of an event field: enums by value, dataclasses as dicts, tuples as lists."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple | frozenset | set):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    raise TypeError(f"cannot encode {type(value).__name__} in an event")


def decode(hint: Any, value: Any) -> Any:
    """Rebuild a value of type ``hint`` from its :func:`encode` form."""
    if value is None or hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return decode(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in value)
        return tuple(decode(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        (arg,) = typing.get_args(hint) or (Any,)
        return [decode(arg, v) for v in value]
    if origin is dict:
        _, varg = typing.get_args(hint) or (Any, Any)
        return {k: decode(varg, v) for k, v in value.items()}
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if issubclass(hint, Enum):
            return hint(value)
        if is_dataclass(hint):
            known = _hints(hint)
            return hint(**{k: decode(known[k], v) for k, v in value.items() if k in known})
        if hint is float and isinstance(value, int):
            return float(value)
    return value


def _coercer(hint: Any) -> Callable[[Any], Any] | None:
    """A normaliser for a field whose callers may pass a list or a plain string."""
    if typing.get_origin(hint) is tuple:
        return lambda v: v if isinstance(v, tuple) else decode(hint, v)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return lambda v: v if isinstance(v, hint) else hint(v)
    return None


# ----- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of every event: ``ts`` (epoch seconds) is set at creation, keyword-only."""

    ts: float = field(default_factory=time.time, kw_only=True, compare=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        existing = _REGISTRY.get(cls.__name__)
        if existing is not None and (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"event type {cls.__name__!r} is already defined in {existing.__module__}")
        _REGISTRY[cls.__name__] = cls

    def __post_init__(self) -> None:
        cls = builtins.type(self)
        coercions = _COERCE.get(cls)
        if coercions is None:
            coercions = _COERCE[cls] = [
                (name, fn) for name, hint in _hints(cls).items() if (fn := _coercer(hint)) is not None
            ]
        for name, fn in coercions:
            current = getattr(self, name)
            fixed = fn(current)
            if fixed is not current:
                object.__setattr__(self, name, fixed)

    @property
    def type(self) -> str:
        """The event's wire name: its class name."""
        return builtins.type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``{"type": ..., "ts": ..., <fields>}``."""
        out: dict[str, Any] = {"type": builtins.type(self).__name__}
        for f in fields(self):
            out[f.name] = encode(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: builtins.type[E], data: Mapping[str, Any]) -> E:
        """Rebuild an event from :meth:`to_dict` output; unknown keys are ignored (newer peers)."""
        name = data.get("type")
        target = _REGISTRY.get(name) if isinstance(name, str) else None
        if target is None:
            raise ValueError(f"unknown event type {name!r}")
        if not issubclass(target, cls):
            raise ValueError(f"event type {name!r} is not a {cls.__name__}")
        hints = _hints(target)
        kwargs = {k: decode(hints[k], v) for k, v in data.items() if k in hints}
        return target(**kwargs)


def event_types() -> dict[str, builtins.type[Event]]:
    """Every registered event class by wire name."""
    return dict(_REGISTRY)


@dataclass(frozen=True)
class Lagged(Event):
    """Marker for a subscriber that fell behind: ``dropped`` older events were discarded."""

    dropped: int


@dataclass(frozen=True)
class RevisionDetected(Event):
    """A source has a new head revision."""

    source: str
    revision: Revision


@dataclass(frozen=True)
class PlanReady(Event):
    """A dry-run plan: counts per action, and the problems that made items fail."""

    app: str
    revision_sha: str
    create: int = 0
    configure: int = 0
    unchanged: int = 0
    prune: int = 0
    errors: int = 0
    problems: tuple[Problem, ...] = ()

    @classmethod
    def of(cls, plan: Plan) -> PlanReady:
        """The event for a computed plan (ERROR items and problems both count as errors)."""
        return cls(
            plan.app,
            plan.revision.sha if plan.revision else "",
            create=plan.count(Action.CREATE),
            configure=plan.count(Action.CONFIGURE),
            unchanged=plan.count(Action.UNCHANGED),
            prune=plan.count(Action.PRUNE),
            errors=plan.count(Action.ERROR) + len(plan.problems),
            problems=tuple(plan.problems),
        )


@dataclass(frozen=True)
class SyncStarted(Event):
    app: str
    revision_sha: str
    who: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class SyncFinished(Event):
    app: str
    revision_sha: str
    ok: bool
    message: str = ""
    duration: float = 0.0
    applied: int = 0
    pruned: int = 0
    who: str = ""


@dataclass(frozen=True)
class DriftDetected(Event):
    """An object's live state left what we applied: the field paths (never values) and who changed them."""

    app: str
    ref: ObjRef
    fields: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()
    missing: bool = False


DRIFT_RESOLUTIONS = ("self-heal", "sync", "reverted-externally")


@dataclass(frozen=True)
class DriftResolved(Event):
    """A drifted object matches again; ``how`` is one of :data:`DRIFT_RESOLUTIONS`."""

    app: str
    ref: ObjRef
    how: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.how not in DRIFT_RESOLUTIONS:
            raise ValueError(f"DriftResolved.how must be one of {DRIFT_RESOLUTIONS}, not {self.how!r}")


@dataclass(frozen=True)
class HealthChanged(Event):
    app: str
    health: Health
    previous: Health = Health.UNKNOWN
    reason: str = ""


@dataclass(frozen=True)
class SyncStatusChanged(Event):
    app: str
    status: SyncStatus
    previous: SyncStatus = SyncStatus.UNKNOWN
    drifted: int = 0


@dataclass(frozen=True)
class AppError(Event):
    """Rendering, planning or applying failed for a reason other than a failed sync."""

    app: str
    message: str


@dataclass(frozen=True)
class AppSuspended(Event):
    app: str
    suspended: bool
    who: str = ""


@dataclass(frozen=True)
class RevertCommitted(Event):
    """A ``git revert`` commit landed on the app's source."""

    app: str
    source: str
    reverted: tuple[str, ...]
    new_sha: str
    who: str = ""


@dataclass(frozen=True)
class ObjectHealthChanged(Event):
    app: str
    ref: ObjRef
    health: Health
    reason: str = ""


@dataclass(frozen=True)
class ConfigReloaded(Event):
    """The daemon reloaded its configuration (SIGHUP): apps or pipelines may have come or gone,
    so clients re-read a snapshot."""

    changes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


# ----- pipelines ------------------------------------------------------------------------------
# Statuses are ``core.pipelines.types.Status`` values, carried as strings so this module stays
# independent of the pipeline package.


@dataclass(frozen=True)
class RunStarted(Event):
    """A pipeline run was created (``trigger``: manual | commit | rollback | retry...)."""

    pipeline: str
    run_id: str
    revision_sha: str
    trigger: str = "manual"
    who: str = ""
    variables: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class RunFinished(Event):
    pipeline: str
    run_id: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class StageChanged(Event):
    pipeline: str
    run_id: str
    stage: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class ActionChanged(Event):
    pipeline: str
    run_id: str
    stage: str
    action: str
    status: str
    message: str = ""
    attempt: int = 1


@dataclass(frozen=True)
class LogLines(Event):
    """A batch of output lines of one action attempt (never one event per line)."""

    pipeline: str
    run_id: str
    stage: str
    action: str
    lines: tuple[str, ...]
    stream: str = "stdout"
    attempt: int = 1
    offset: int = -1  # lines of this attempt's log written before this batch (-1: unknown)


@dataclass(frozen=True)
class ApprovalRequested(Event):
    pipeline: str
    run_id: str
    stage: str
    action: str
    message: str = ""
    timeout: float = 0.0


@dataclass(frozen=True)
class ApprovalDecided(Event):
    pipeline: str
    run_id: str
    stage: str
    action: str
    approved: bool
    who: str = ""
    comment: str = ""


@dataclass(frozen=True)
class TransitionChanged(Event):
    """The transition into ``stage`` was enabled or disabled."""

    pipeline: str
    stage: str
    enabled: bool
    who: str = ""
    reason: str = ""


# ----- bus -------------------------------------------------------------------------------------


class SubscriptionClosed(Exception):
    """Raised by :meth:`Subscription.get` once the subscription is closed and drained."""


class Subscription:
    """A bounded per-subscriber queue; read it with ``async for event in sub``.

    When full, the oldest event is dropped and the next read returns ``Lagged(dropped)``
    first, so a slow reader never blocks the publisher or other subscribers.
    """

    def __init__(self, bus: EventBus, maxsize: int, types: tuple[builtins.type[Event], ...] | None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self._buf: deque[Event] = deque()
        self._types = types
        self._lag = 0
        self._waiter: asyncio.Future[None] | None = None
        self.maxsize = maxsize
        self.dropped = 0
        self.closed = False

    def _push(self, event: Event) -> None:
        if self.closed or (self._types is not None and not isinstance(event, self._types)):
            return
        if len(self._buf) >= self.maxsize:
            self._buf.popleft()
            self._lag += 1
            self.dropped += 1
        self._buf.append(event)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def pending(self) -> int:
        """Events waiting to be read."""
        return len(self._buf)

    def get_nowait(self) -> Event | None:
        """The next event (a pending ``Lagged`` marker first), or None when empty."""
        if self._lag:
            lag, self._lag = self._lag, 0
            return Lagged(lag)
        return self._buf.popleft() if self._buf else None

    async def get(self) -> Event:
        """Wait for the next event; raises :class:`SubscriptionClosed` after close once drained."""
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            if self.closed:
                raise SubscriptionClosed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Stop receiving; readers drain what is queued, then stop."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._wake()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class EventBus:
    """In-process pub/sub: sync listeners (state model, history) and async subscriptions.

    ``publish`` runs on the loop thread: listeners are called first, in registration
    order, then every subscription's queue gets the event. Events published from inside a
    listener are delivered after the current one, so every consumer sees one order.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._subs: tuple[Subscription, ...] = ()
        self._pending: deque[Event] = deque()
        self._publishing = False
        self._lock = threading.Lock()  # guards the copy-on-write tuples only
        self._loop = loop or _running_loop()
        self.published = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set the loop that :meth:`publish_threadsafe` hands events to."""
        self._loop = loop

    # listeners
    def on(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(event)`` synchronously for every event; returns a function that removes it."""
        with self._lock:
            self._listeners = (*self._listeners, fn)
        return lambda: self.off(fn)

    def off(self, fn: Listener) -> None:
        with self._lock:
            self._listeners = tuple(f for f in self._listeners if f is not fn)

    # subscriptions
    def subscribe(
        self, maxsize: int = 10000, types: Iterable[builtins.type[Event]] | None = None
    ) -> Subscription:
        """A new bounded subscription, optionally limited to some event classes (``Lagged`` always comes)."""
        if self._loop is None:
            self._loop = _running_loop()
        sub = Subscription(self, maxsize, tuple(types) if types is not None else None)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    # publishing
    def publish(self, event: Event) -> None:
        """Deliver ``event`` now; call from the loop thread (or any single thread that owns the bus)."""
        if self._publishing:
            self._pending.append(event)
            return
        self._publishing = True
        try:
            self._deliver(event)
            while self._pending:
                self._deliver(self._pending.popleft())
        finally:
            self._publishing = False

    def publish_threadsafe(self, event: Event) -> bool:
        """Hand ``event`` to the bus's loop from another thread; False when the loop is closed."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("EventBus has no loop: create it inside the loop or call bind(loop)")
        try:
            loop.call_soon_threadsafe(self.publish, event)
        except RuntimeError:  # loop closed: shutting down
            return False
        return True

    def _deliver(self, event: Event) -> None:
        self.published += 1
        for fn in self._listeners:
            try:
                fn(event)
            except Exception:
                log.exception("event listener %r failed on %s", fn, event.type)
        for sub in self._subs:
            sub._push(event)

    def close(self) -> None:
        """Close every subscription (readers drain and stop) and drop the listeners."""
        for sub in self._subs:
            sub.close()
        with self._lock:
            self._listeners = ()

