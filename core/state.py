"""The in-memory state model: what the console shows, kept current by events.

Register it as a bus listener (``model.attach(bus)``). Each event updates one app in
O(1); :meth:`StateModel.snapshot` is JSON-safe and rebuilds only apps that changed since
the previous snapshot, sharing immutable per-object entries between snapshots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.events import (
    AppError,
    AppSuspended,
    DriftDetected,
    DriftResolved,
    Event,
    EventBus,
    HealthChanged,
    ObjectHealthChanged,
    PlanReady,
    RevertCommitted,
    RevisionDetected,
    SyncFinished,
    SyncStarted,
    SyncStatusChanged,
    decode,
    encode,
)
from core.model import AppSpec, Config, Health, ObjRef, Revision, SyncStatus


@dataclass(frozen=True)
class LastSync:
    """The outcome of the most recent finished (non-dry-run) sync."""

    revision_sha: str
    ok: bool
    message: str
    finished: float
    duration: float
    who: str = ""
    applied: int = 0
    pruned: int = 0


@dataclass(frozen=True)
class ObjectHealth:
    health: Health
    reason: str = ""
    ts: float = 0.0


@dataclass
class AppState:
    """One app as the console sees it. Instances from :meth:`StateModel.apps` are copies."""

    name: str
    source: str = ""
    revision: Revision | None = None  # latest revision of the app's source
    sync_status: SyncStatus = SyncStatus.UNKNOWN
    health: Health = Health.UNKNOWN
    health_reason: str = ""
    drifted: dict[ObjRef, DriftDetected] = field(default_factory=dict)
    objects: dict[ObjRef, ObjectHealth] = field(default_factory=dict)
    last_sync: LastSync | None = None
    syncing: SyncStarted | None = None  # the sync in flight
    plan: PlanReady | None = None
    suspended: bool = False
    last_error: str = ""
    last_error_ts: float = 0.0
    last_revert: RevertCommitted | None = None
    updated: float = 0.0  # ts of the last app-level change (per-object health excluded)

    @property
    def drift_count(self) -> int:
        return len(self.drifted)


def _drift_entry(ev: DriftDetected) -> dict[str, Any]:
    return {
        "ref": encode(ev.ref),
        "object": str(ev.ref),
        "fields": list(ev.fields),
        "managers": list(ev.managers),
        "missing": ev.missing,
        "ts": ev.ts,
    }


class _Entry:
    """An app's state plus its incrementally maintained JSON form."""

    __slots__ = ("core_json", "drift_json", "object_json", "state")

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.core_json: dict[str, Any] | None = None  # None: rebuild on next snapshot
        self.drift_json: dict[str, dict[str, Any]] = {}
        self.object_json: dict[str, dict[str, Any]] = {}


class StateModel:
    """Per-app state updated by events; apps appear on first mention or via :meth:`add_app`."""

    def __init__(self) -> None:
        self._apps: dict[str, _Entry] = {}
        self._sources: dict[str, Revision] = {}
        self._by_source: dict[str, set[str]] = {}
        self.seq = 0  # events applied
        self.ts = 0.0  # ts of the last event applied
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            RevisionDetected: self._on_revision,
            PlanReady: self._on_plan,
            SyncStarted: self._on_sync_started,
            SyncFinished: self._on_sync_finished,
            DriftDetected: self._on_drift,
            DriftResolved: self._on_drift_resolved,
            HealthChanged: self._on_health,
            SyncStatusChanged: self._on_sync_status,
            AppError: self._on_error,
            AppSuspended: self._on_suspended,
            RevertCommitted: self._on_revert,
            ObjectHealthChanged: self._on_object_health,
        }

    @classmethod
    def from_config(cls, config: Config) -> StateModel:
        model = cls()
        for spec in config.apps.values():
            model.add_app(spec)
        return model

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Listen to ``bus``; returns the function that detaches."""
        return bus.on(self.apply)

    # ----- apps -------------------------------------------------------------------------------

    def add_app(self, spec: AppSpec | str, source: str = "", suspended: bool = False) -> AppState:
        """Declare an app (from config) so it shows before any event; idempotent."""
        if isinstance(spec, AppSpec):
            name, source, suspended = spec.name, spec.source, spec.suspend
        else:
            name = spec
        entry = self._entry(name)
        st = entry.state
        if source and st.source != source:
            self._by_source.get(st.source, set()).discard(name)
            st.source = source
            self._by_source.setdefault(source, set()).add(name)
            st.revision = self._sources.get(source, st.revision)
        st.suspended = st.suspended or suspended
        entry.core_json = None
        return st

    def remove_app(self, name: str) -> None:
        entry = self._apps.pop(name, None)
        if entry is not None:
            self._by_source.get(entry.state.source, set()).discard(name)

    def _entry(self, name: str) -> _Entry:
        entry = self._apps.get(name)
        if entry is None:
            entry = self._apps[name] = _Entry(AppState(name))
        return entry

    def app(self, name: str) -> AppState | None:
        """A copy of one app's state (its dicts copied too), or None."""
        entry = self._apps.get(name)
        if entry is None:
            return None
        st = entry.state
        return dataclasses.replace(st, drifted=dict(st.drifted), objects=dict(st.objects))

    def names(self) -> list[str]:
        return sorted(self._apps)

    def apps(self) -> list[AppState]:
        """Copies of every app's state, by name."""
        return [s for name in sorted(self._apps) if (s := self.app(name)) is not None]

    def source_revision(self, source: str) -> Revision | None:
        return self._sources.get(source)

    # ----- events -----------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Update from one event; unknown event types are ignored."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        self.seq += 1
        self.ts = event.ts
        handler(event)

    def _touch(self, app: str, ts: float) -> AppState:
        entry = self._entry(app)
        entry.core_json = None
        entry.state.updated = ts
        return entry.state

    def _on_revision(self, ev: RevisionDetected) -> None:
        self._sources[ev.source] = ev.revision
        for name in self._by_source.get(ev.source, ()):
            self._touch(name, ev.ts).revision = ev.revision

    def _on_plan(self, ev: PlanReady) -> None:
        self._touch(ev.app, ev.ts).plan = ev

    def _on_sync_started(self, ev: SyncStarted) -> None:
        self._touch(ev.app, ev.ts).syncing = ev

    def _on_sync_finished(self, ev: SyncFinished) -> None:
        st = self._touch(ev.app, ev.ts)
        started, st.syncing = st.syncing, None
        if started is not None and started.dry_run:
            return
        st.last_sync = LastSync(ev.revision_sha, ev.ok, ev.message, ev.ts, ev.duration, ev.who, ev.applied, ev.pruned)
        if ev.ok:
            st.last_error, st.last_error_ts = "", 0.0

    def _on_drift(self, ev: DriftDetected) -> None:
        st = self._touch(ev.app, ev.ts)
        st.drifted[ev.ref] = ev
        self._apps[ev.app].drift_json[ev.ref.inventory_id] = _drift_entry(ev)

    def _on_drift_resolved(self, ev: DriftResolved) -> None:
        st = self._touch(ev.app, ev.ts)
        st.drifted.pop(ev.ref, None)
        self._apps[ev.app].drift_json.pop(ev.ref.inventory_id, None)

    def _on_health(self, ev: HealthChanged) -> None:
        st = self._touch(ev.app, ev.ts)
        st.health, st.health_reason = ev.health, ev.reason

    def _on_sync_status(self, ev: SyncStatusChanged) -> None:
        self._touch(ev.app, ev.ts).sync_status = ev.status

    def _on_error(self, ev: AppError) -> None:
        st = self._touch(ev.app, ev.ts)
        st.last_error, st.last_error_ts = ev.message, ev.ts

    def _on_suspended(self, ev: AppSuspended) -> None:
        self._touch(ev.app, ev.ts).suspended = ev.suspended

    def _on_revert(self, ev: RevertCommitted) -> None:
        self._touch(ev.app, ev.ts).last_revert = ev

    def _on_object_health(self, ev: ObjectHealthChanged) -> None:
        entry = self._entry(ev.app)
        entry.state.objects[ev.ref] = ObjectHealth(ev.health, ev.reason, ev.ts)
        entry.object_json[ev.ref.inventory_id] = {"health": ev.health.value, "reason": ev.reason, "ts": ev.ts}

    # ----- snapshot ---------------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any]) -> StateModel:
        """A model equal to the one that produced ``snap`` (a client's mirror of the daemon's)."""
        model = cls()
        model.seq = int(snap.get("seq") or 0)
        model.ts = float(snap.get("ts") or 0.0)
        for name, rev in (snap.get("sources") or {}).items():
            if rev:
                model._sources[name] = decode(Revision, rev)
        for name, data in (snap.get("apps") or {}).items():
            st = model.add_app(name, source=str(data.get("source") or ""), suspended=bool(data.get("suspended")))
            entry = model._apps[name]
            st.revision = decode(Revision, data["revision"]) if data.get("revision") else None
            st.sync_status = SyncStatus(data.get("sync_status") or SyncStatus.UNKNOWN.value)
            st.health = Health(data.get("health") or Health.UNKNOWN.value)
            st.health_reason = str(data.get("health_reason") or "")
            st.last_sync = decode(LastSync, data["last_sync"]) if data.get("last_sync") else None
            syncing = data.get("syncing")
            if syncing:
                st.syncing = SyncStarted(name, syncing["revision_sha"], who=syncing.get("who", ""),
                                         dry_run=bool(syncing.get("dry_run")), ts=float(syncing.get("started") or 0))
            plan = data.get("plan")
            if plan:
                st.plan = PlanReady.from_dict({**plan, "type": "PlanReady", "app": name})
            revert = data.get("last_revert")
            if revert:
                st.last_revert = RevertCommitted.from_dict({**revert, "type": "RevertCommitted", "app": name})
            st.last_error = str(data.get("last_error") or "")
            st.last_error_ts = float(data.get("last_error_ts") or 0.0)
            st.updated = float(data.get("updated") or 0.0)
            for inv_id, d in (data.get("drifted") or {}).items():
                ref = ObjRef.from_inventory_id(inv_id)
                st.drifted[ref] = DriftDetected(name, ref, fields=tuple(d.get("fields") or ()),
                                                managers=tuple(d.get("managers") or ()),
                                                missing=bool(d.get("missing")), ts=float(d.get("ts") or 0))
                entry.drift_json[inv_id] = d
            for inv_id, d in (data.get("objects") or {}).items():
                ref = ObjRef.from_inventory_id(inv_id)
                st.objects[ref] = ObjectHealth(Health(d["health"]), d.get("reason", ""), float(d.get("ts") or 0))
                entry.object_json[inv_id] = d
            entry.core_json = None
        return model

    def snapshot(self, app: str | None = None) -> dict[str, Any]:
        """JSON-safe state: ``{"seq", "ts", "sources", "apps": {name: {...}}}``.

        Treat it as read-only: per-object entries are shared between snapshots.
        With ``app``, only that app is included.
        """
        names = [app] if app is not None else sorted(self._apps)
        apps: dict[str, Any] = {}
        for name in names:
            entry = self._apps.get(name)
            if entry is None:
                continue
            if entry.core_json is None:
                entry.core_json = self._core_json(entry.state)
            apps[name] = {
                **entry.core_json,
                "drifted": dict(entry.drift_json),
                "objects": dict(entry.object_json),
            }
        return {
            "seq": self.seq,
            "ts": self.ts,
            "sources": {name: encode(rev) for name, rev in self._sources.items()},
            "apps": apps,
        }

    @staticmethod
    def _core_json(st: AppState) -> dict[str, Any]:
        syncing = st.syncing
        revert = st.last_revert
        plan = st.plan
        return {
            "name": st.name,
            "source": st.source,
            "revision": encode(st.revision),
            "sync_status": st.sync_status.value,
            "health": st.health.value,
            "health_reason": st.health_reason,
            "drift_count": len(st.drifted),
            "last_sync": encode(st.last_sync),
            "syncing": None
            if syncing is None
            else {"revision_sha": syncing.revision_sha, "who": syncing.who, "dry_run": syncing.dry_run, "started": syncing.ts},
            "plan": None if plan is None else {k: v for k, v in plan.to_dict().items() if k not in ("type", "app")},
            "suspended": st.suspended,
            "last_error": st.last_error,
            "last_error_ts": st.last_error_ts,
            "last_revert": None if revert is None else {k: v for k, v in revert.to_dict().items() if k not in ("type", "app")},
            "updated": st.updated,
        }
