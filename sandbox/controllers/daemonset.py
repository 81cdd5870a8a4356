"""DaemonSet controller (minimal): one virtual node.

``desiredNumberScheduled``/``currentNumberScheduled``/``updatedNumberScheduled``
are 1 at once; ``numberReady``/``numberAvailable`` become 1 ``pace`` after each
generation (a rollout), never for a ``fail``-tagged image. No Pods are made.
"""

from __future__ import annotations

from typing import Any

from sandbox.controllers.base import DAEMONSETS, Controller, Obj, deleting, meta_of, template_fails


class DaemonSetController(Controller):
    name = "daemonset"
    primary = DAEMONSETS

    def reconcile(self, item: Any) -> None:
        ns, name = item
        ds = self.get(DAEMONSETS, ns, name)
        if ds is None or deleting(ds):
            return
        generation = int(meta_of(ds).get("generation") or 1)
        old: Obj = ds.get("status") or {}
        was_ready = old.get("observedGeneration") == generation and old.get("numberReady") == 1
        ready = not template_fails(ds) and (was_ready or self.elapsed(meta_of(ds)["uid"], ("ready", generation), item))
        status: Obj = {
            "currentNumberScheduled": 1,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 1,
            "numberReady": 1 if ready else 0,
            "observedGeneration": generation,
            "updatedNumberScheduled": 1,
        }
        if ready:
            status["numberAvailable"] = 1
        else:
            status["numberUnavailable"] = 1
        if status != old:
            self.update_status(DAEMONSETS, ds, status)
