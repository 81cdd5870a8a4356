"""ReplicaSet controller: keeps ``spec.replicas`` Pods and reports their status.

With ``pods=True`` it creates Pods ``<rs-name>-<5 chars>`` from the template
(controller ownerReference) and deletes the least useful ones on scale-down;
status counts come from the Pods the kubelet simulation moves to Ready. With
``pods=False`` no Pods exist: ``replicas`` follows the spec at once and
``readyReplicas``/``availableReplicas`` follow after ``pace`` (never for a
``fail``-tagged image).
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.controllers.base import (
    PODS,
    REPLICASETS,
    Controller,
    Obj,
    condition_true,
    controlled_by,
    deleting,
    meta_of,
    owner_ref,
    template_fails,
)

BURST = 500  # pods created or deleted per reconcile (kube's burstReplicas)


def pod_active(pod: Obj) -> bool:
    return not deleting(pod) and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def pod_ready(pod: Obj) -> bool:
    return condition_true(pod, "Ready")


def pod_from_template(template: Obj, namespace: str, owner: Obj) -> Obj:
    """A Pod body from a pod template, owned (controller) by ``owner``."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"namespace": namespace}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    meta["ownerReferences"] = [owner_ref(owner)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


class ReplicaSetController(Controller):
    name = "replicaset"
    primary = REPLICASETS
    owner_kind = "ReplicaSet"
    watches = (PODS,)

    def owned_pods(self, owner: Obj) -> list[Obj]:
        uid = meta_of(owner)["uid"]
        out = []
        for ref in self.ctx.index.dependents(uid):
            if ref[0] != PODS:
                continue
            pod = self.get(*ref)
            if pod is not None and controlled_by(pod, uid):
                out.append(pod)
        return out

    def reconcile(self, item: Any) -> None:
        ns, name = item
        rs = self.get(REPLICASETS, ns, name)
        if rs is None:
            return
        spec = rs.get("spec") or {}
        want = 1 if spec.get("replicas") is None else int(spec["replicas"])
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if self.ctx.pods:
            active = [p for p in self.owned_pods(rs) if pod_active(p)]
            if not deleting(rs):
                diff = want - len(active)
                if diff > 0:
                    for _ in range(min(diff, BURST)):
                        body = pod_from_template(template, ns, rs)
                        body["metadata"]["generateName"] = f"{name}-"
                        self.create(PODS, ns, body)
                elif diff < 0:
                    # Least useful first: not ready, then pending, then the newest.
                    newest = sorted(active, key=lambda p: meta_of(p).get("creationTimestamp", ""), reverse=True)
                    ranked = sorted(
                        newest, key=lambda p: (pod_ready(p), (p.get("status") or {}).get("phase") == "Running")
                    )
                    for pod in ranked[: min(-diff, BURST)]:
                        self.delete(PODS, ns, meta_of(pod)["name"])
                if diff:
                    active = [p for p in self.owned_pods(rs) if pod_active(p)]
            replicas = len(active)
            ready = sum(1 for p in active if pod_ready(p))
            labelled = sum(1 for p in active if labels.items() <= (meta_of(p).get("labels") or {}).items())
        else:
            replicas = want
            labelled = want
            prev_ready = int((rs.get("status") or {}).get("readyReplicas") or 0)
            if template_fails(rs):
                ready = 0
            elif want and self.elapsed(meta_of(rs)["uid"], ("ready", want), item):
                ready = want
            else:
                ready = min(prev_ready, want)
        status: Obj = {"replicas": replicas}
        if labelled:
            status["fullyLabeledReplicas"] = labelled
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        status["observedGeneration"] = int(meta_of(rs).get("generation") or 1)
        if status != (rs.get("status") or {}):
            self.update_status(REPLICASETS, rs, status)
