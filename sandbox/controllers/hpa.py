"""HorizontalPodAutoscaler controller (no metrics pipeline).

Reads the target's ``/scale``: ``currentReplicas`` is its status replicas and
``desiredReplicas`` its spec replicas clamped to [minReplicas, maxReplicas].
When the target is outside that range the controller writes the target's
``/scale`` (manager ``kube-controller-manager``, ``subresource: scale``) and
reports ``SucceededRescale``/``ScalingLimited``. Metrics are assumed on target,
so ``ScalingActive`` is True (ValidMetricFound).
"""

from __future__ import annotations

from typing import Any

from sandbox.controllers.base import HPAS, Controller, Obj, deleting, meta_of, now, set_condition
from sandbox.store import Event, Key

TargetKey = tuple[str, str, str]  # namespace, kind, name


def _metric_phrase(spec: Obj) -> str:
    metrics = spec.get("metrics") or [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]
    m = metrics[0]
    mtype = m.get("type", "")
    if mtype == "Resource":
        res = m.get("resource") or {}
        if (res.get("target") or {}).get("type") == "Utilization":
            return f"{res.get('name', 'cpu')} resource utilization (percentage of request)"
        return f"{res.get('name', 'cpu')} resource"
    if mtype == "ContainerResource":
        res = m.get("containerResource") or {}
        return f"{res.get('name', 'cpu')} container resource utilization (percentage of request)"
    if mtype == "Pods":
        return f"pods metric {((m.get('pods') or {}).get('metric') or {}).get('name', '')}"
    if mtype == "Object":
        obj = m.get("object") or {}
        kind = (obj.get("describedObject") or {}).get("kind", "")
        return f"{kind} metric {(obj.get('metric') or {}).get('name', '')}"
    return f"external metric {((m.get('external') or {}).get('metric') or {}).get('name', '')}"


class HPAController(Controller):
    name = "horizontal-pod-autoscaler"
    primary = HPAS
    all_events = True

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._targets: dict[TargetKey, set[str]] = {}
        self._target_of: dict[tuple[str, str], TargetKey] = {}

    def on_event(self, key: Key, ev: Event) -> None:
        meta = meta_of(ev.obj)
        ns = meta.get("namespace", "")
        if key == HPAS:
            hpa = (ns, meta["name"])
            before = self._target_of.pop(hpa, None)
            if before is not None:
                self._targets.get(before, set()).discard(meta["name"])
            if ev.type != "DELETED":
                ref = (ev.obj.get("spec") or {}).get("scaleTargetRef") or {}
                target = (ns, str(ref.get("kind", "")), str(ref.get("name", "")))
                self._target_of[hpa] = target
                self._targets.setdefault(target, set()).add(meta["name"])
                self.enqueue(hpa)
            return
        for name in self._targets.get((ns, str(ev.obj.get("kind", "")), meta["name"]), ()):
            self.enqueue((ns, name))

    def resync(self) -> None:
        for hpa in self.store.items(HPAS):
            meta = meta_of(hpa)
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            target = (meta.get("namespace", ""), str(ref.get("kind", "")), str(ref.get("name", "")))
            self._target_of[(target[0], meta["name"])] = target
            self._targets.setdefault(target, set()).add(meta["name"])
            self.enqueue((target[0], meta["name"]))

    def reconcile(self, item: Any) -> None:
        ns, name = item
        hpa = self.get(HPAS, ns, name)
        if hpa is None or deleting(hpa):
            return
        spec = hpa.get("spec") or {}
        old: Obj = hpa.get("status") or {}
        conds = list(old.get("conditions") or [])
        stamp = now()
        ref = spec.get("scaleTargetRef") or {}
        rt = self.registry.by_gvk(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        target = self.get(rt.key, ns, str(ref.get("name", ""))) if rt is not None and "scale" in rt.subresources else None
        if rt is None or target is None:
            if rt is None:
                group = str(ref.get("apiVersion", "")).rpartition("/")[0]
                why = f'no matches for kind "{ref.get("kind", "")}" in group "{group}"'
            else:
                why = f'{rt.group_resource} "{ref.get("name", "")}" not found'
            conds = set_condition(conds, "AbleToScale", "False", "FailedGetScale",
                                  f"the HPA controller was unable to get the target's current scale: {why}", stamp)
            status: Obj = {"currentReplicas": int(old.get("currentReplicas") or 0),
                           "desiredReplicas": int(old.get("desiredReplicas") or 0),
                           "currentMetrics": old.get("currentMetrics"), "conditions": conds}
            if old.get("lastScaleTime"):
                status["lastScaleTime"] = old["lastScaleTime"]
            self._write(hpa, status)
            return
        scale = self.api.scale_of(rt, target)
        spec_replicas = int(scale["spec"].get("replicas") or 0)
        current = int(scale["status"].get("replicas") or 0)
        low = 1 if spec.get("minReplicas") is None else int(spec["minReplicas"])
        high = int(spec.get("maxReplicas") or low)
        last_scale = old.get("lastScaleTime")
        if spec_replicas == 0 and low > 0:
            desired = 0
            conds = set_condition(conds, "AbleToScale", "True", "SucceededGetScale",
                                  "the HPA controller was able to get the target's current scale", stamp)
            conds = set_condition(conds, "ScalingActive", "False", "ScalingDisabled",
                                  "scaling is disabled since the replica count of the target is zero", stamp)
        else:
            desired = min(max(spec_replicas, low), high)
            if desired != spec_replicas:
                self.api.update_scale(rt, ns, str(ref["name"]), {"spec": {"replicas": desired}}, self.request())
                last_scale = stamp
                conds = set_condition(conds, "AbleToScale", "True", "SucceededRescale",
                                      f"the HPA controller was able to update the target scale to {desired}", stamp)
            else:
                conds = set_condition(conds, "AbleToScale", "True", "ReadyForNewScale",
                                      "recommended size matches current size", stamp)
            conds = set_condition(
                conds, "ScalingActive", "True", "ValidMetricFound",
                f"the HPA was able to successfully calculate a replica count from {_metric_phrase(spec)}", stamp,
            )
            if spec_replicas < low:
                conds = set_condition(conds, "ScalingLimited", "True", "TooFewReplicas",
                                      "the desired replica count is less than the minimum replica count", stamp)
            elif spec_replicas > high:
                conds = set_condition(conds, "ScalingLimited", "True", "TooManyReplicas",
                                      "the desired replica count is more than the maximum replica count", stamp)
            else:
                conds = set_condition(conds, "ScalingLimited", "False", "DesiredWithinRange",
                                      "the desired count is within the acceptable range", stamp)
        status = {}
        if last_scale:
            status["lastScaleTime"] = last_scale
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        status["currentMetrics"] = old.get("currentMetrics")  # no metrics pipeline: serialized as null
        status["conditions"] = conds
        self._write(hpa, status)

    def _write(self, hpa: Obj, status: Obj) -> None:
        if status != (hpa.get("status") or {}):
            self.update_status(HPAS, hpa, status)
