"""StatefulSet controller (minimal): Pods ``<name>-0..N-1`` and their PVCs.

With ``pods=True``: for each ordinal, PVCs ``<template>-<name>-<i>`` from
``volumeClaimTemplates`` and then the Pod (labels ``controller-revision-hash``,
``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index``);
``OrderedReady`` waits for each Pod to be Ready before the next; scale-down
removes the highest ordinal first; a template change replaces Pods from the
highest ordinal down (RollingUpdate, honouring ``partition``). Status:
replicas, readyReplicas, currentReplicas, updatedReplicas, availableReplicas,
currentRevision/updateRevision (equal once rolled out), observedGeneration.
With ``pods=False`` the counts follow the spec, Ready after ``pace``.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.controllers.base import (
    PODS,
    PVCS,
    STATEFULSETS,
    Controller,
    Obj,
    controlled_by,
    deleting,
    meta_of,
    owner_ref,
    template_fails,
    template_hash,
)
from sandbox.controllers.replicaset import pod_from_template, pod_ready

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


class StatefulSetController(Controller):
    name = "statefulset"
    primary = STATEFULSETS
    owner_kind = "StatefulSet"
    watches = (PODS,)

    def reconcile(self, item: Any) -> None:
        ns, name = item
        sts = self.get(STATEFULSETS, ns, name)
        if sts is None or deleting(sts):
            return
        spec = sts.get("spec") or {}
        replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
        old: Obj = sts.get("status") or {}
        update_rev = f"{name}-{template_hash(spec.get('template'), old.get('collisionCount'))}"
        current_rev = old.get("currentRevision") or update_rev
        if self.ctx.pods:
            pods = self._pods(sts)
            self._manage(sts, pods, replicas, update_rev)
            pods = self._pods(sts)
            count = len(pods)
            ready = sum(1 for p in pods.values() if pod_ready(p))
            revs = [(meta_of(p).get("labels") or {}).get(REVISION_LABEL) for p in pods.values()]
            updated = revs.count(update_rev)
            if updated == replicas == count and ready == count:
                current_rev = update_rev
            current = revs.count(current_rev)
        else:
            count = replicas
            done = replicas == 0 or (
                not template_fails(sts)
                and self.elapsed(meta_of(sts)["uid"], ("ready", meta_of(sts).get("generation"), replicas), item)
            )
            ready = replicas if done else min(int(old.get("readyReplicas") or 0), replicas)
            if done:
                current_rev = update_rev
            updated = replicas
            current = replicas if current_rev == update_rev else 0
        status: Obj = {"observedGeneration": int(meta_of(sts).get("generation") or 1), "replicas": count}
        if ready:
            status["readyReplicas"] = ready
        if current:
            status["currentReplicas"] = current
        if updated:
            status["updatedReplicas"] = updated
        status["currentRevision"] = current_rev
        status["updateRevision"] = update_rev
        status["collisionCount"] = int(old.get("collisionCount") or 0)
        status["availableReplicas"] = ready
        if status != old:
            self.update_status(STATEFULSETS, sts, status)

    def _pods(self, sts: Obj) -> dict[int, Obj]:
        uid = meta_of(sts)["uid"]
        prefix = f"{meta_of(sts)['name']}-"
        out: dict[int, Obj] = {}
        for ref in self.ctx.index.dependents(uid):
            if ref[0] != PODS or not ref[2].startswith(prefix) or not ref[2][len(prefix):].isdigit():
                continue
            pod = self.get(*ref)
            if pod is not None and controlled_by(pod, uid) and not deleting(pod):
                out[int(ref[2][len(prefix):])] = pod
        return out

    def _manage(self, sts: Obj, pods: dict[int, Obj], replicas: int, update_rev: str) -> None:
        spec = sts.get("spec") or {}
        ns, name = meta_of(sts).get("namespace", ""), meta_of(sts)["name"]
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        condemned = sorted((i for i in pods if i >= replicas), reverse=True)
        for i in condemned[:1] if ordered else condemned:
            self.delete(PODS, ns, f"{name}-{i}")
        if condemned and ordered:
            return
        for i in range(replicas):
            pod = pods.get(i)
            if pod is None:
                self._create_claims(sts, i)
                self._create_pod(sts, i, update_rev)
                if ordered:
                    return
                continue
            if ordered and not pod_ready(pod):
                return
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        live = {i: p for i, p in pods.items() if i < replicas}
        if len(live) < replicas or not all(pod_ready(p) for p in live.values()):
            return
        for i in sorted(live, reverse=True):
            if i < partition:
                break
            if (meta_of(live[i]).get("labels") or {}).get(REVISION_LABEL) != update_rev:
                self.delete(PODS, ns, f"{name}-{i}")
                return

    def _claim_name(self, tpl: Obj, sts_name: str, i: int) -> str:
        return f"{(tpl.get('metadata') or {}).get('name', '')}-{sts_name}-{i}"

    def _create_claims(self, sts: Obj, i: int) -> None:
        spec = sts.get("spec") or {}
        ns, name = meta_of(sts).get("namespace", ""), meta_of(sts)["name"]
        match = ((spec.get("selector") or {}).get("matchLabels")) or {}
        retain = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for tpl in spec.get("volumeClaimTemplates") or []:
            claim = self._claim_name(tpl, name, i)
            if self.get(PVCS, ns, claim) is not None:
                continue
            tmeta = tpl.get("metadata") or {}
            meta: Obj = {"name": claim, "namespace": ns}
            labels = {**(tmeta.get("labels") or {}), **match}
            if labels:
                meta["labels"] = labels
            if tmeta.get("annotations"):
                meta["annotations"] = dict(tmeta["annotations"])
            if retain.get("whenDeleted") == "Delete":
                meta["ownerReferences"] = [owner_ref(sts, controller=False)]
            body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                    "spec": copy.deepcopy(tpl.get("spec") or {})}
            self.create(PVCS, ns, body)

    def _create_pod(self, sts: Obj, i: int, update_rev: str) -> None:
        spec = sts.get("spec") or {}
        ns, name = meta_of(sts).get("namespace", ""), meta_of(sts)["name"]
        pod_name = f"{name}-{i}"
        body = pod_from_template(spec.get("template") or {}, ns, sts)
        body["metadata"]["name"] = pod_name
        body["metadata"]["labels"] = {
            **body["metadata"].get("labels", {}),
            REVISION_LABEL: update_rev,
            POD_NAME_LABEL: pod_name,
            POD_INDEX_LABEL: str(i),
        }
        pspec = body["spec"]
        pspec["hostname"] = pod_name
        if spec.get("serviceName"):
            pspec["subdomain"] = spec["serviceName"]
        volumes = [v for v in pspec.get("volumes") or []]
        for tpl in spec.get("volumeClaimTemplates") or []:
            vname = (tpl.get("metadata") or {}).get("name", "")
            volumes = [v for v in volumes if v.get("name") != vname]
            volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": self._claim_name(tpl, name, i)}})
        if volumes:
            pspec["volumes"] = volumes
        self.create(PODS, ns, body)
