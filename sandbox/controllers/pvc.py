"""PersistentVolumeClaim binder: Pending -> Bound after ``pace``.

As kube's persistentvolume-binder does: ``spec.volumeName`` (``pvc-<uid>``)
and the ``pv.kubernetes.io/bind-completed`` / ``bound-by-controller``
annotations through a normal update, then status ``Bound`` with
``accessModes`` and ``capacity`` from the claim. No PersistentVolume object is
created.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.controllers.base import PVCS, Controller, Obj, deleting, meta_of


class PVCController(Controller):
    name = "persistentvolume-binder"
    primary = PVCS

    def reconcile(self, item: Any) -> None:
        ns, name = item
        pvc = self.get(PVCS, ns, name)
        if pvc is None or deleting(pvc):
            return
        old: Obj = pvc.get("status") or {}
        if old.get("phase") in ("Bound", "Lost"):
            return
        if not self.elapsed(meta_of(pvc)["uid"], "bind", item):
            return
        spec = pvc.get("spec") or {}
        annotations = meta_of(pvc).get("annotations") or {}
        if not spec.get("volumeName") or annotations.get("pv.kubernetes.io/bind-completed") != "yes":
            body = copy.deepcopy(pvc)
            body.setdefault("spec", {}).setdefault("volumeName", f"pvc-{meta_of(pvc)['uid']}")
            ann = body["metadata"].setdefault("annotations", {})
            ann["pv.kubernetes.io/bind-completed"] = "yes"
            if not spec.get("volumeName"):
                ann["pv.kubernetes.io/bound-by-controller"] = "yes"
            body["metadata"]["annotations"] = dict(sorted(ann.items()))
            pvc = self.update(PVCS, body)
            spec = pvc.get("spec") or {}
        status: Obj = {"phase": "Bound"}
        if spec.get("accessModes"):
            status["accessModes"] = list(spec["accessModes"])
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if storage is not None:
            status["capacity"] = {"storage": storage}
        self.update_status(PVCS, pvc, status)
