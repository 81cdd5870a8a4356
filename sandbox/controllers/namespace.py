"""Namespace controller: empties a terminating namespace, then finalizes it.

A Namespace with ``deletionTimestamp`` gets every namespaced object in it
deleted (Background). Objects with finalizers linger; meanwhile the namespace
reports the ``NamespaceContentRemaining`` / ``NamespaceFinalizersRemaining``
conditions kube's namespace controller writes. Once nothing is left, the
``kubernetes`` entry is removed from ``spec.finalizers`` (what
``PUT namespaces/{name}/finalize`` does); the API then removes the namespace.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from sandbox.controllers.base import NAMESPACES, Controller, Obj, meta_of, now, set_condition
from sandbox.store import Event, Key

FINALIZER = "kubernetes"


class NamespaceController(Controller):
    name = "namespace"
    primary = NAMESPACES
    all_events = True

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._terminating: set[str] = set()
        self._swept: set[str] = set()  # namespace uids whose content deletion was issued

    def on_event(self, key: Key, ev: Event) -> None:
        meta = meta_of(ev.obj)
        if key == NAMESPACES:
            name = meta["name"]
            if ev.type != "DELETED" and meta.get("deletionTimestamp"):
                self._terminating.add(name)
                self.enqueue(("", name))
            else:
                self._terminating.discard(name)
                if ev.type == "DELETED":
                    self._swept.discard(meta.get("uid", ""))
            return
        ns = meta.get("namespace", "")
        if ns and ev.type == "DELETED" and ns in self._terminating:
            self.enqueue(("", ns))

    def reconcile(self, item: Any) -> None:
        _, name = item
        ns = self.get(NAMESPACES, "", name)
        if ns is None or not meta_of(ns).get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or ()):
            return
        uid = meta_of(ns).get("uid", "")
        index = self.ctx.index
        if uid not in self._swept:
            self._swept.add(uid)
            for ref in index.members(name):
                obj = self.get(*ref)
                if obj is not None and not meta_of(obj).get("deletionTimestamp"):
                    self.delete(ref[0], ref[1], ref[2], "Background")
        ns = self.get(NAMESPACES, "", name)
        if ns is None:
            return
        remaining = index.members(name)
        ns = self._write_conditions(ns, remaining)
        if remaining:
            return
        body = copy.deepcopy(ns)
        body.setdefault("spec", {})["finalizers"] = [f for f in body["spec"].get("finalizers") or () if f != FINALIZER]
        self.update(NAMESPACES, body)

    def _write_conditions(self, ns: Obj, remaining: list[Any]) -> Obj:
        """Report what is left in the namespace, as kube's namespace deleter does."""
        resources: Counter[str] = Counter()
        finalizers: Counter[str] = Counter()
        for ref in remaining:
            obj = self.get(*ref)
            if obj is None:
                continue
            rt = self.registry.by_key(ref[0])
            resources[rt.group_resource if rt else f"{ref[0][1]}.{ref[0][0]}".rstrip(".")] += 1
            for f in meta_of(obj).get("finalizers") or ():
                finalizers[f] += 1
        status = copy.deepcopy(ns.get("status") or {})
        conds = list(status.get("conditions") or [])
        stamp = now()
        conds = set_condition(conds, "NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
                              "All resources successfully discovered", stamp)
        conds = set_condition(conds, "NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
                              "All legacy kube types successfully parsed", stamp)
        conds = set_condition(conds, "NamespaceDeletionContentFailure", "False", "ContentDeleted",
                              "All content successfully deleted, may be waiting on finalization", stamp)
        if resources:
            listed = ", ".join(f"{gr} has {n} resource instances" for gr, n in sorted(resources.items()))
            conds = set_condition(conds, "NamespaceContentRemaining", "True", "SomeResourcesRemain",
                                  f"Some resources are remaining: {listed}", stamp)
        else:
            conds = set_condition(conds, "NamespaceContentRemaining", "False", "ContentRemoved",
                                  "All content successfully removed", stamp)
        if finalizers:
            listed = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
            conds = set_condition(conds, "NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                                  f"Some content in the namespace has finalizers remaining: {listed}", stamp)
        else:
            conds = set_condition(conds, "NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
                                  "All content-preserving finalizers finished", stamp)
        status["phase"] = "Terminating"
        status["conditions"] = conds
        if status == ns.get("status"):
            return ns
        return self.update_status(NAMESPACES, ns, status)
