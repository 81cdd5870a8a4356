"""In-memory indexes over the store, kept current from store events.

Every update is O(1) in the number of stored objects. The garbage collector's
``dependents(uid)`` is what ``Api.dependents_of`` consults (``api._gc``).
"""

from __future__ import annotations

from typing import Any

from sandbox.store import Event, Key

ObjRef = tuple[Key, str, str]  # (group, plural), namespace, name


class ObjectIndex:
    """Owner uid -> dependents, uid -> object, namespace -> members."""

    def __init__(self) -> None:
        self._deps: dict[str, dict[ObjRef, None]] = {}
        self._owners: dict[ObjRef, tuple[str, ...]] = {}
        self._uids: dict[str, ObjRef] = {}
        self._ref_uid: dict[ObjRef, str] = {}
        self._members: dict[str, dict[ObjRef, None]] = {}

    # ----- maintenance ------------------------------------------------------------
    def rebuild(self, objects: Any) -> None:
        """Index ``(key, obj)`` pairs of an existing store (once, at start)."""
        for key, obj in objects:
            self._put(key, obj)

    def observe(self, key: Key, ev: Event) -> None:
        """Apply one store event."""
        if ev.type == "DELETED":
            meta = ev.obj["metadata"]
            self._forget((key, meta.get("namespace", ""), meta["name"]))
        else:
            self._put(key, ev.obj)

    def _put(self, key: Key, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        ref: ObjRef = (key, ns, meta["name"])
        uid = meta.get("uid", "")
        known = self._ref_uid.get(ref)
        if known is not None and known != uid:
            self._forget(ref)
            known = None
        if known is None:
            self._ref_uid[ref] = uid
            if uid:
                self._uids[uid] = ref
            if ns:
                self._members.setdefault(ns, {})[ref] = None
        owners = tuple(r["uid"] for r in meta.get("ownerReferences") or () if isinstance(r, dict) and r.get("uid"))
        before = self._owners.get(ref, ())
        if owners == before:
            return
        for o in before:
            if o not in owners:
                self._unlink(o, ref)
        for o in owners:
            self._deps.setdefault(o, {})[ref] = None
        if owners:
            self._owners[ref] = owners
        else:
            self._owners.pop(ref, None)

    def _unlink(self, owner: str, ref: ObjRef) -> None:
        deps = self._deps.get(owner)
        if deps is not None:
            deps.pop(ref, None)
            if not deps:
                del self._deps[owner]

    def _forget(self, ref: ObjRef) -> None:
        uid = self._ref_uid.pop(ref, None)
        if uid is None:
            return
        if self._uids.get(uid) == ref:
            del self._uids[uid]
        for o in self._owners.pop(ref, ()):
            self._unlink(o, ref)
        ns = ref[1]
        members = self._members.get(ns)
        if members is not None:
            members.pop(ref, None)
            if not members:
                del self._members[ns]

    # ----- queries ------------------------------------------------------------------
    def dependents(self, uid: str) -> list[ObjRef]:
        """Objects whose ownerReferences name ``uid`` (a copy)."""
        return list(self._deps.get(uid, ()))

    def has_dependents(self, uid: str) -> bool:
        return bool(self._deps.get(uid))

    def locate(self, uid: str) -> ObjRef | None:
        """Where the live object with ``uid`` is stored, or None when it does not exist."""
        return self._uids.get(uid)

    def owners(self, ref: ObjRef) -> tuple[str, ...]:
        return self._owners.get(ref, ())

    def members(self, namespace: str) -> list[ObjRef]:
        """Every namespaced object stored in ``namespace`` (a copy)."""
        return list(self._members.get(namespace, ()))

    def count_in_namespace(self, namespace: str) -> int:
        return len(self._members.get(namespace, ()))
