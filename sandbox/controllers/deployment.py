"""Deployment controller: Deployment -> ReplicaSet ``<name>-<pod-template-hash>``.

Follows kube's deployment controller where it shows: the new ReplicaSet is
found by template (ignoring ``pod-template-hash``), created with a controller
ownerReference and revision annotations, old ReplicaSets are scaled to 0 and
pruned beyond ``revisionHistoryLimit``. Status is computed from the
ReplicaSets' status with the real condition rules (``Available``
MinimumReplicasAvailable/Unavailable; ``Progressing`` NewReplicaSetCreated,
ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded,
DeploymentPaused). The new ReplicaSet gets all replicas at once; old ones are
scaled down as new Pods become available (at once for Recreate). A template with a ``fail``-tagged image exceeds its progress
deadline after ``pace`` instead of ``progressDeadlineSeconds``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from sandbox.controllers.base import (
    DEPLOYMENTS,
    REPLICASETS,
    Controller,
    Obj,
    controlled_by,
    controller_ref,
    deleting,
    find_condition,
    meta_of,
    now,
    owner_ref,
    template_fails,
    template_hash,
)
from sandbox.errors import ApiError

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}
MAX_INT32 = 2**31 - 1


def _scaled(value: Any, total: int, round_up: bool) -> int:
    """Resolve an IntOrString (``3`` or ``"25%"``) against ``total``."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = float(value[:-1])
        except ValueError:
            return 0
        raw = pct * total / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def surge_and_unavailable(d: Obj, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as kube's deployment util resolves them."""
    strategy = (d.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    surge = _scaled(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = _scaled(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    if replicas == 0:
        unavailable = 0
    return surge, min(unavailable, replicas)


def revision(rs: Obj) -> int:
    try:
        return int((meta_of(rs).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _without_hash(template: Obj | None) -> Obj:
    t = copy.deepcopy(template or {})
    meta = t.get("metadata")
    if isinstance(meta, dict):
        labels = dict(meta.get("labels") or {})
        labels.pop(HASH_LABEL, None)
        if labels:
            meta["labels"] = labels
        else:
            meta.pop("labels", None)
        if not meta:
            t.pop("metadata")
    return t


def same_template(rs: Obj, template: Obj | None) -> bool:
    return _without_hash((rs.get("spec") or {}).get("template")) == _without_hash(template)


def _spec_replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _st(obj: Obj | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def set_deployment_condition(conds: list[Obj], ctype: str, status: str, reason: str, message: str, stamp: str) -> list[Obj]:
    """SetDeploymentCondition: no-op for the same status and reason; otherwise replace and append."""
    cur = find_condition(conds, ctype)
    if cur is not None and cur.get("status") == status and cur.get("reason") == reason:
        return conds
    transition = cur.get("lastTransitionTime", stamp) if cur is not None and cur.get("status") == status else stamp
    cond = {"type": ctype, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": transition,
            "reason": reason, "message": message}
    return [c for c in conds if c.get("type") != ctype] + [cond]


class DeploymentController(Controller):
    name = "deployment"
    primary = DEPLOYMENTS
    owner_kind = "Deployment"
    watches = (REPLICASETS,)

    def _owned(self, d: Obj) -> list[Obj]:
        uid = meta_of(d)["uid"]
        out = []
        for ref in self.ctx.index.dependents(uid):
            if ref[0] != REPLICASETS:
                continue
            rs = self.get(*ref)
            if rs is not None and controlled_by(rs, uid):
                out.append(rs)
        return out

    def reconcile(self, item: Any) -> None:
        ns, name = item
        d = self.get(DEPLOYMENTS, ns, name)
        if d is None or deleting(d):
            return
        spec = d.get("spec") or {}
        replicas = _spec_replicas(d)
        paused = bool(spec.get("paused"))
        template = spec.get("template") or {}
        surge, max_unavailable = surge_and_unavailable(d, replicas)
        deadline = spec.get("progressDeadlineSeconds", 600) not in (None, MAX_INT32)
        stamp = now()
        old_status: Obj = d.get("status") or {}
        status: Obj = copy.deepcopy(old_status)
        conds: list[Obj] = list(status.get("conditions") or [])
        annotations = dict(meta_of(d).get("annotations") or {})

        owned = self._owned(d)
        new_rs = next((rs for rs in owned if same_template(rs, template)), None)
        old_rss = [rs for rs in owned if rs is not new_rs]

        prog = find_condition(conds, "Progressing")
        if deadline and paused and (prog is None or prog.get("reason") != "DeploymentPaused"):
            conds = set_deployment_condition(conds, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", stamp)
        elif deadline and not paused and prog is not None and prog.get("reason") == "DeploymentPaused":
            conds = set_deployment_condition(conds, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", stamp)

        if not paused:
            next_revision = max((revision(rs) for rs in old_rss), default=0) + 1
            if new_rs is None:
                created = self._create_rs(d, template, replicas, surge, next_revision, status)
                if created is None:  # name collision: collisionCount was bumped, retry with a new hash
                    status["conditions"] = conds
                    self.update_status(DEPLOYMENTS, d, status)
                    return
                new_rs, was_created = created
                if deadline and was_created:
                    conds = set_deployment_condition(conds, "Progressing", "True", "NewReplicaSetCreated",
                                                     f'Created new replica set "{meta_of(new_rs)["name"]}"', stamp)
            else:
                new_rs = self._sync_rs(d, new_rs, replicas, surge, next_revision)
            if deadline and find_condition(conds, "Progressing") is None:
                conds = set_deployment_condition(conds, "Progressing", "True", "FoundNewReplicaSet",
                                                 f'Found new replica set "{meta_of(new_rs)["name"]}"', stamp)
            self._scale_down_old(d, new_rs, old_rss, replicas, surge)
        else:
            active = new_rs or next(
                (rs for rs in sorted(old_rss, key=revision, reverse=True) if _spec_replicas(rs) > 0), None
            )
            if active is not None and _spec_replicas(active) != replicas:
                self._scale(d, active, replicas, replicas, surge)
        if new_rs is not None and revision(new_rs):
            annotations[REVISION] = str(revision(new_rs))
        self._cleanup(d, old_rss)

        # Counts from the ReplicaSets as stored now.
        names = [meta_of(rs)["name"] for rs in ([new_rs] if new_rs else []) + old_rss]
        current = [rs for rs in (self.get(REPLICASETS, ns, n) for n in names) if rs is not None]
        new_now = self.get(REPLICASETS, ns, meta_of(new_rs)["name"]) if new_rs else None
        available = sum(_st(rs, "availableReplicas") for rs in current)
        total_spec = sum(_spec_replicas(rs) for rs in current)
        counts = {
            "replicas": sum(_st(rs, "replicas") for rs in current),
            "updatedReplicas": _st(new_now, "replicas"),
            "readyReplicas": sum(_st(rs, "readyReplicas") for rs in current),
            "availableReplicas": available,
            "unavailableReplicas": max(total_spec - available, 0),
        }
        if available >= replicas - max_unavailable:
            conds = set_deployment_condition(conds, "Available", "True", "MinimumReplicasAvailable",
                                             "Deployment has minimum availability.", stamp)
        else:
            conds = set_deployment_condition(conds, "Available", "False", "MinimumReplicasUnavailable",
                                             "Deployment does not have minimum availability.", stamp)
        generation = int(meta_of(d).get("generation") or 1)
        if not paused and deadline and new_rs is not None:
            conds = self._progressing(d, new_rs, conds, counts, old_status, replicas, generation, stamp)

        new_status: Obj = {"observedGeneration": generation}
        for k, v in counts.items():
            if v:
                new_status[k] = v
        if conds:
            new_status["conditions"] = conds
        if status.get("collisionCount"):
            new_status["collisionCount"] = status["collisionCount"]
        if new_status != old_status or annotations != (meta_of(d).get("annotations") or {}):
            # The revision annotation rides on the status write, as kube's controller does
            # (the Deployment status strategy keeps annotations).
            out = self.update_status(DEPLOYMENTS, d, new_status, annotations=annotations)
            if (meta_of(out).get("annotations") or {}) != annotations:
                body = copy.deepcopy(out)
                body["metadata"]["annotations"] = annotations
                self.update(DEPLOYMENTS, body)

    def _progressing(
        self, d: Obj, new_rs: Obj, conds: list[Obj], counts: dict[str, int], old: Obj,
        replicas: int, generation: int, stamp: str,
    ) -> list[Obj]:
        rs_name = meta_of(new_rs)["name"]
        cur = find_condition(conds, "Progressing")
        if (counts["replicas"] == counts["updatedReplicas"] and cur is not None
                and cur.get("reason") == "NewReplicaSetAvailable"):
            return conds
        if (counts["updatedReplicas"] == replicas and counts["replicas"] == replicas
                and counts["availableReplicas"] == replicas):
            return set_deployment_condition(conds, "Progressing", "True", "NewReplicaSetAvailable",
                                            f'ReplicaSet "{rs_name}" has successfully progressed.', stamp)
        old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
        new_old = counts["replicas"] - counts["updatedReplicas"]
        if (counts["updatedReplicas"] > int(old.get("updatedReplicas") or 0) or new_old < old_old
                or counts["readyReplicas"] > int(old.get("readyReplicas") or 0)
                or counts["availableReplicas"] > int(old.get("availableReplicas") or 0)):
            transition = cur.get("lastTransitionTime", stamp) if cur is not None and cur.get("status") == "True" else stamp
            cond = {"type": "Progressing", "status": "True", "lastUpdateTime": stamp, "lastTransitionTime": transition,
                    "reason": "ReplicaSetUpdated", "message": f'ReplicaSet "{rs_name}" is progressing.'}
            return [c for c in conds if c.get("type") != "Progressing"] + [cond]
        if template_fails(new_rs):
            timed_out = (cur is not None and cur.get("reason") == "ProgressDeadlineExceeded") or self.elapsed(
                meta_of(new_rs)["uid"], "progress-deadline", (meta_of(d).get("namespace", ""), meta_of(d)["name"])
            )
            if timed_out:
                return set_deployment_condition(conds, "Progressing", "False", "ProgressDeadlineExceeded",
                                                f'ReplicaSet "{rs_name}" has timed out progressing.', stamp)
        return conds

    # ----- ReplicaSets ------------------------------------------------------------------------
    def _copied_annotations(self, d: Obj) -> dict[str, str]:
        return {k: v for k, v in (meta_of(d).get("annotations") or {}).items() if k not in NOT_COPIED}

    def _create_rs(
        self, d: Obj, template: Obj, replicas: int, surge: int, rev: int, status: Obj
    ) -> tuple[Obj, bool] | None:
        """Create the new ReplicaSet; (rs, created), or None after a hash collision."""
        meta = meta_of(d)
        ns = meta.get("namespace", "")
        h = template_hash(template, status.get("collisionCount"))
        rs_name = f"{meta['name']}-{h}"
        labels = dict(sorted({**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: h}.items()))
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        annotations = {**self._copied_annotations(d), DESIRED: str(replicas),
                       MAX_REPLICAS: str(replicas + surge), REVISION: str(rev)}
        rs_spec: Obj = {"replicas": replicas}
        if (d.get("spec") or {}).get("minReadySeconds"):
            rs_spec["minReadySeconds"] = d["spec"]["minReadySeconds"]
        rs_spec["selector"] = selector
        rs_spec["template"] = rs_template
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": labels,
                "annotations": dict(sorted(annotations.items())),
                "ownerReferences": [owner_ref(d)],
            },
            "spec": rs_spec,
        }
        try:
            return self.create(REPLICASETS, ns, body), True
        except ApiError as exc:
            if exc.code != 409:
                raise
        existing = self.get(REPLICASETS, ns, rs_name)
        if existing is not None and same_template(existing, template):
            ref = controller_ref(existing)
            if ref is None and not deleting(existing):  # adopt an orphan
                adopted = copy.deepcopy(existing)
                adopted["metadata"]["ownerReferences"] = [*meta_of(existing).get("ownerReferences", []), owner_ref(d)]
                return self._sync_rs(d, self.update(REPLICASETS, adopted), replicas, surge, rev), False
            if ref is not None and ref.get("uid") == meta["uid"]:
                return existing, False
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        return None

    def _sync_rs(self, d: Obj, rs: Obj, replicas: int, surge: int, next_revision: int) -> Obj:
        """Bring the new ReplicaSet's annotations, revision, minReadySeconds and size up to date."""
        have = meta_of(rs).get("annotations") or {}
        min_ready = (d.get("spec") or {}).get("minReadySeconds") or None
        if (revision(rs) >= next_revision and _spec_replicas(rs) == replicas
                and (rs.get("spec") or {}).get("minReadySeconds") == min_ready
                and all(have.get(k) == v for k, v in self._copied_annotations(d).items())):
            return rs
        body = copy.deepcopy(rs)
        ann = body["metadata"].setdefault("annotations", {})
        ann.update(self._copied_annotations(d))
        current = revision(rs)
        if current < next_revision:
            if current:
                history = ann.get(REVISION_HISTORY)
                ann[REVISION_HISTORY] = f"{history},{current}" if history else str(current)
            ann[REVISION] = str(next_revision)
        spec = body.setdefault("spec", {})
        if min_ready:
            spec["minReadySeconds"] = min_ready
        else:
            spec.pop("minReadySeconds", None)
        if _spec_replicas(rs) != replicas:
            spec["replicas"] = replicas
            ann[DESIRED] = str(replicas)
            ann[MAX_REPLICAS] = str(replicas + surge)
        if body == rs:
            return rs
        body["metadata"]["annotations"] = dict(sorted(ann.items()))
        return self.update(REPLICASETS, body)

    def _scale(self, d: Obj, rs: Obj, size: int, replicas: int, surge: int) -> Obj:
        body = copy.deepcopy(rs)
        body.setdefault("spec", {})["replicas"] = size
        ann = body["metadata"].setdefault("annotations", {})
        ann[DESIRED] = str(replicas)
        ann[MAX_REPLICAS] = str(replicas + surge)
        body["metadata"]["annotations"] = dict(sorted(ann.items()))
        return self.update(REPLICASETS, body)

    def _scale_down_old(self, d: Obj, new_rs: Obj, old_rss: list[Obj], replicas: int, surge: int) -> None:
        """Scale old ReplicaSets down as new Pods become available (RollingUpdate), or at once (Recreate).

        The new ReplicaSet gets all its replicas at once; old Pods are kept until
        enough new ones are available, so a rollout that never becomes available
        (a ``fail`` image) leaves the old ReplicaSet serving, as in a real cluster.
        """
        strategy = ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate")
        allowed = 0
        if strategy == "RollingUpdate":
            allowed = max(0, replicas - _st(new_rs, "availableReplicas"))
        excess = sum(_spec_replicas(rs) for rs in old_rss) - allowed
        for rs in sorted(old_rss, key=revision):
            if excess <= 0:
                break
            size = _spec_replicas(rs)
            if size == 0:
                continue
            cut = min(size, excess)
            self._scale(d, rs, size - cut, replicas, surge)
            excess -= cut

    def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        """Delete the oldest scaled-down ReplicaSets beyond revisionHistoryLimit."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            limit = 10
        alive = [rs for rs in old_rss if not deleting(rs)]
        extra = len(alive) - int(limit)
        if extra <= 0:
            return
        for rs in sorted(alive, key=revision)[:extra]:
            current = self.get(REPLICASETS, meta_of(rs).get("namespace", ""), meta_of(rs)["name"])
            if current is None:
                continue
            st = current.get("status") or {}
            if (int(st.get("replicas") or 0) != 0 or _spec_replicas(current) != 0
                    or int(meta_of(current).get("generation") or 1) > int(st.get("observedGeneration") or 0)):
                continue
            self.delete(REPLICASETS, meta_of(current).get("namespace", ""), meta_of(current)["name"])
