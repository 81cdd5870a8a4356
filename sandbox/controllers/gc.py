"""Garbage collector: cascading deletion through ownerReferences.

- An owner that is gone (DELETED, or never existed after ``pace``) takes its
  dependents with it (Background), unless another owner still exists: then
  only the dangling reference is removed, as kube's GC does.
- An owner with ``deletionTimestamp`` and the ``foregroundDeletion`` finalizer:
  dependents are deleted first (Foreground when they have dependents of their
  own); the finalizer is removed once no dependent with
  ``blockOwnerDeletion: true`` is left.
- An owner with the ``orphan`` finalizer: its ownerReference is stripped from
  every dependent, then the finalizer is removed.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.controllers.base import Controller, Obj, deleting, meta_of
from sandbox.store import Event, Key

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def _owner_uids(obj: Obj | None) -> set[str]:
    if obj is None:
        return set()
    return {r["uid"] for r in meta_of(obj).get("ownerReferences") or () if isinstance(r, dict) and r.get("uid")}


class GarbageCollector(Controller):
    name = "garbagecollector"
    all_events = True

    def on_event(self, key: Key, ev: Event) -> None:
        meta = meta_of(ev.obj)
        ns, name, uid = meta.get("namespace", ""), meta["name"], meta.get("uid", "")
        owners = _owner_uids(ev.obj)
        index = self.ctx.index
        if ev.type == "DELETED":
            for dep in index.dependents(uid):
                self.enqueue(("dep", *dep))
            for o in owners:
                self._enqueue_owner(o)
            return
        if meta.get("deletionTimestamp") and {FOREGROUND, ORPHAN} & set(meta.get("finalizers") or ()):
            self.enqueue(("owner", key, ns, name))
        before = _owner_uids(ev.old) if ev.type == "MODIFIED" else set()
        if owners and owners != before:
            # Owners that do not exist (yet) are judged after a pace, like the real GC's delayed processing.
            self.enqueue(("dep", key, ns, name), self.ctx.pace)
        for o in before - owners:
            self._enqueue_owner(o)

    def _enqueue_owner(self, uid: str) -> None:
        loc = self.ctx.index.locate(uid)
        if loc is not None:
            self.enqueue(("owner", *loc))

    def resync(self) -> None:
        for key, obj in self.store.all_objects():
            meta = meta_of(obj)
            item = (key, meta.get("namespace", ""), meta["name"])
            if meta.get("deletionTimestamp") and {FOREGROUND, ORPHAN} & set(meta.get("finalizers") or ()):
                self.enqueue(("owner", *item))
            if meta.get("ownerReferences"):
                self.enqueue(("dep", *item), self.ctx.pace)

    def reconcile(self, item: Any) -> None:
        what, key, ns, name = item
        if what == "owner":
            self._owner(key, ns, name)
        else:
            self._dependent(key, ns, name)

    # ----- owners being deleted -------------------------------------------------------------
    def _owner(self, key: Key, ns: str, name: str) -> None:
        obj = self.get(key, ns, name)
        if obj is None or not deleting(obj):
            return
        meta = meta_of(obj)
        uid = meta.get("uid", "")
        finalizers = list(meta.get("finalizers") or ())
        index = self.ctx.index
        if ORPHAN in finalizers:
            for dep in index.dependents(uid):
                self._strip(dep, {uid})
            self._drop_finalizer(key, ns, name, ORPHAN)
            return
        if FOREGROUND not in finalizers:
            return
        blocked = False
        for dep in index.dependents(uid):
            d = self.get(*dep)
            if d is not None and not deleting(d):
                self._dependent(*dep)
                d = self.get(*dep)
            if d is None:
                continue
            for ref in meta_of(d).get("ownerReferences") or ():
                if ref.get("uid") == uid and ref.get("blockOwnerDeletion"):
                    blocked = True
        if not blocked:
            self._drop_finalizer(key, ns, name, FOREGROUND)

    def _drop_finalizer(self, key: Key, ns: str, name: str, finalizer: str) -> None:
        obj = self.get(key, ns, name)
        if obj is None:
            return
        finalizers = [f for f in meta_of(obj).get("finalizers") or () if f != finalizer]
        if len(finalizers) == len(meta_of(obj).get("finalizers") or ()):
            return
        body = copy.deepcopy(obj)
        if finalizers:
            body["metadata"]["finalizers"] = finalizers
        else:
            body["metadata"].pop("finalizers", None)
        self.update(key, body)

    # ----- dependents ---------------------------------------------------------------------------
    def _dependent(self, key: Key, ns: str, name: str) -> None:
        obj = self.get(key, ns, name)
        if obj is None or deleting(obj):
            return
        refs = [r for r in meta_of(obj).get("ownerReferences") or () if isinstance(r, dict) and r.get("uid")]
        if not refs:
            return
        solid: list[str] = []
        dangling: list[str] = []
        waiting: list[str] = []
        index = self.ctx.index
        for ref in refs:
            loc = index.locate(ref["uid"])
            owner = self.get(*loc) if loc is not None else None
            if owner is None:
                dangling.append(ref["uid"])
            elif deleting(owner) and FOREGROUND in (meta_of(owner).get("finalizers") or ()):
                waiting.append(ref["uid"])
            else:
                solid.append(ref["uid"])
        if solid:
            if dangling or waiting:
                self._strip((key, ns, name), set(dangling) | set(waiting))
            return
        finalizers = meta_of(obj).get("finalizers") or ()
        if FOREGROUND in finalizers or (waiting and index.has_dependents(meta_of(obj).get("uid", ""))):
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        else:
            policy = "Background"
        self.delete(key, ns, name, policy)

    def _strip(self, ref: tuple[Key, str, str], uids: set[str]) -> None:
        """Remove the ownerReferences to ``uids`` from one object."""
        key, ns, name = ref
        obj = self.get(key, ns, name)
        if obj is None:
            return
        refs = meta_of(obj).get("ownerReferences") or []
        keep = [r for r in refs if not (isinstance(r, dict) and r.get("uid") in uids)]
        if len(keep) == len(refs):
            return
        body = copy.deepcopy(obj)
        if keep:
            body["metadata"]["ownerReferences"] = keep
        else:
            body["metadata"].pop("ownerReferences", None)
        self.update(key, body)
