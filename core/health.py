"""Health of one live object, in Argo CD's vocabulary with kstatus' rules.

:func:`assess` returns a :class:`~core.model.Health` and a short human reason.
Order of checks (kubernetes-semantics.md section 5):

1. ``None`` (not in the cluster) is Missing; ``metadata.deletionTimestamp`` is Progressing.
2. A kind-specific rule for built-in kinds (Deployment, StatefulSet, DaemonSet,
   ReplicaSet, Job, CronJob, Pod, PVC, Service, Ingress, HPA, Namespace, CRD).
   Kinds without status (ConfigMap, Secret, ServiceAccount, RBAC, ...) are Healthy.
3. Any other kind (CRs, Flux/Argo objects): a top-level ``status.observedGeneration``
   behind ``metadata.generation`` is Progressing; ``spec.suspend: true`` is Suspended;
   ``Stalled=True`` Degraded; ``Reconciling=True`` Progressing; ``Ready=True`` Healthy;
   ``Ready=False`` Degraded when its reason looks like a failure, else Progressing;
   no conditions at all is Healthy.

Pure function of the object (and of the clock, for a Pod's 15 s Unschedulable grace).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeGuard

from core.model import Health

Obj = dict[str, Any]
Result = tuple[Health, str]

UNSCHEDULABLE_GRACE = 15.0  # seconds a Pod may stay Unschedulable before it is Degraded (kstatus)

_NO_STATUS_KINDS = frozenset({
    "ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding",
    "Endpoints", "EndpointSlice", "LimitRange", "ResourceQuota", "NetworkPolicy", "PriorityClass",
    "StorageClass", "IngressClass", "ControllerRevision", "Lease", "Event",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
})
_FAILED_WORDS = ("fail", "error", "invalid", "backoff", "exceeded", "crash", "denied", "forbidden")


# ----- helpers ------------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _conditions(obj: Obj) -> dict[str, Obj]:
    """Conditions by type (the last one wins for a duplicated type)."""
    conds = _status(obj).get("conditions")
    if not isinstance(conds, list):
        return {}
    return {str(c.get("type")): c for c in conds if isinstance(c, dict)}


def _is(cond: Obj | None, status: str) -> TypeGuard[Obj]:
    return cond is not None and cond.get("status") == status


def _detail(cond: Obj, fallback: str = "") -> str:
    """``Reason: message`` of a condition, trailing period removed."""
    reason = str(cond.get("reason") or "")
    message = str(cond.get("message") or "").strip().rstrip(".")
    if reason and message:
        return f"{reason}: {message}"
    return reason or message or fallback


def _looks_failed(reason: str) -> bool:
    low = reason.lower()
    return any(word in low for word in _FAILED_WORDS)


def _generation_lag(obj: Obj, *, required: bool) -> Result | None:
    """Progressing when the controller has not observed the latest generation.

    ``required``: a missing ``observedGeneration`` counts as not observed (workloads);
    otherwise it is skipped (kstatus' generic rule).
    """
    generation = _meta(obj).get("generation")
    observed = _status(obj).get("observedGeneration")
    if generation is None or (observed is None and not required):
        return None
    if _int(observed) < _int(generation):
        return Health.PROGRESSING, f"waiting for the controller to observe generation {_int(generation)}"
    return None


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


# ----- workloads ----------------------------------------------------------------------------


def _deployment(obj: Obj, now: float) -> Result:
    spec, st = _spec(obj), _status(obj)
    if spec.get("paused"):
        return Health.SUSPENDED, "deployment is paused"
    lag = _generation_lag(obj, required=True)
    if lag:
        return lag
    conds = _conditions(obj)
    progressing = conds.get("Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health.DEGRADED, _detail(progressing)
    want = _int(spec.get("replicas"), 1)
    replicas, updated = _int(st.get("replicas")), _int(st.get("updatedReplicas"))
    ready, available = _int(st.get("readyReplicas")), _int(st.get("availableReplicas"))
    if updated < want:
        return Health.PROGRESSING, f"{updated}/{want} replicas updated"
    if replicas > updated:
        return Health.PROGRESSING, f"{replicas - updated} old replicas pending termination"
    if available < updated or available < want:
        return Health.PROGRESSING, f"{available}/{want} replicas available"
    if ready < want:
        return Health.PROGRESSING, f"{ready}/{want} replicas ready"
    avail_cond = conds.get("Available")
    if avail_cond is not None and not _is(avail_cond, "True"):
        return Health.PROGRESSING, _detail(avail_cond, "deployment not available")
    if progressing is not None and progressing.get("reason") != "NewReplicaSetAvailable":
        return Health.PROGRESSING, _detail(progressing, "rollout in progress")
    return Health.HEALTHY, f"{available}/{want} replicas available"


def _statefulset(obj: Obj, now: float) -> Result:
    spec, st = _spec(obj), _status(obj)
    lag = _generation_lag(obj, required=True)
    if lag:
        return lag
    want = _int(spec.get("replicas"), 1)
    replicas, ready = _int(st.get("replicas")), _int(st.get("readyReplicas"))
    if replicas < want:
        return Health.PROGRESSING, f"{replicas}/{want} replicas created"
    if ready < want:
        return Health.PROGRESSING, f"{ready}/{want} replicas ready"
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return Health.HEALTHY, f"{ready}/{want} replicas ready (OnDelete updates)"
    if replicas > want:
        return Health.PROGRESSING, f"{replicas - want} replicas pending termination"
    updated = _int(st.get("updatedReplicas"))
    partition = _int((strategy.get("rollingUpdate") or {}).get("partition"))
    if partition > 0:
        target = max(want - partition, 0)
        if updated < target:
            return Health.PROGRESSING, f"partitioned rollout: {updated}/{target} replicas updated"
        return Health.HEALTHY, f"partitioned rollout complete: {updated} replicas updated"
    if updated < want:
        return Health.PROGRESSING, f"{updated}/{want} replicas updated"
    current = _int(st.get("currentReplicas"))
    if current < want:
        return Health.PROGRESSING, f"{current}/{want} replicas at the current revision"
    update_rev, current_rev = st.get("updateRevision"), st.get("currentRevision")
    if update_rev != current_rev:
        return Health.PROGRESSING, f"rolling update to revision {update_rev} in progress"
    return Health.HEALTHY, f"{ready}/{want} replicas ready"


def _daemonset(obj: Obj, now: float) -> Result:
    spec, st = _spec(obj), _status(obj)
    lag = _generation_lag(obj, required=True)
    if lag:
        return lag
    desired = _int(st.get("desiredNumberScheduled"))
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return Health.HEALTHY, f"{_int(st.get('numberReady'))}/{desired} pods ready (OnDelete updates)"
    for field, label in (
        ("currentNumberScheduled", "scheduled"),
        ("updatedNumberScheduled", "updated"),
        ("numberAvailable", "available"),
        ("numberReady", "ready"),
    ):
        have = _int(st.get(field))
        if have < desired:
            return Health.PROGRESSING, f"{have}/{desired} pods {label}"
    return Health.HEALTHY, f"{desired}/{desired} pods ready"


def _replicaset(obj: Obj, now: float) -> Result:
    spec, st = _spec(obj), _status(obj)
    lag = _generation_lag(obj, required=True)
    if lag:
        return lag
    failure = _conditions(obj).get("ReplicaFailure")
    if _is(failure, "True"):
        return Health.DEGRADED, _detail(failure, "replica failure")
    want = _int(spec.get("replicas"), 1)
    for field, label in (("replicas", "created"), ("readyReplicas", "ready"), ("availableReplicas", "available")):
        have = _int(st.get(field))
        if have < want:
            return Health.PROGRESSING, f"{have}/{want} replicas {label}"
    return Health.HEALTHY, f"{want}/{want} replicas available"


def _job(obj: Obj, now: float) -> Result:
    conds = _conditions(obj)
    for ctype in ("Failed", "FailureTarget"):
        cond = conds.get(ctype)
        if _is(cond, "True"):
            return Health.DEGRADED, _detail(cond, "job failed")
    for ctype in ("Complete", "SuccessCriteriaMet"):
        cond = conds.get(ctype)
        if _is(cond, "True"):
            return Health.HEALTHY, _detail(cond, "job completed")
    if _spec(obj).get("suspend") or _is(conds.get("Suspended"), "True"):
        return Health.SUSPENDED, "job is suspended"
    st = _status(obj)
    if not st.get("startTime"):
        return Health.PROGRESSING, "job has not started"
    return Health.PROGRESSING, f"job is running ({_int(st.get('active'))} active, {_int(st.get('succeeded'))} succeeded)"


def _cronjob(obj: Obj, now: float) -> Result:
    if _spec(obj).get("suspend"):
        return Health.SUSPENDED, "cronjob is suspended"
    last = _status(obj).get("lastScheduleTime")
    return Health.HEALTHY, f"last scheduled {last}" if last else "not scheduled yet"


def _container_problem(st: Obj) -> str | None:
    """``reason: message`` of the first container waiting with an error reason (Argo's rule)."""
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in st.get(key) or ():
            if not isinstance(cs, dict):
                continue
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            if reason.startswith("Err") or reason.endswith(("Error", "BackOff")):
                message = str(waiting.get("message") or "").strip()
                return f"{reason}: {message}" if message else f"{reason} ({cs.get('name', '')})"
    return None


def _pod(obj: Obj, now: float) -> Result:
    st = _status(obj)
    phase = st.get("phase") or "Pending"
    if phase == "Succeeded":
        return Health.HEALTHY, "pod completed"
    if phase == "Failed":
        reason = st.get("reason") or ""
        message = str(st.get("message") or "").strip()
        return Health.DEGRADED, ": ".join(x for x in (reason, message) if x) or "pod failed"
    problem = _container_problem(st)
    if problem:
        return Health.DEGRADED, problem
    conds = _conditions(obj)
    if phase == "Running":
        ready = conds.get("Ready")
        if _is(ready, "True"):
            total = len(st.get("containerStatuses") or ())
            return Health.HEALTHY, f"running, {total}/{total} containers ready" if total else "running"
        return Health.PROGRESSING, _detail(ready, "running, not ready") if ready else "running, not ready"
    if phase == "Pending":
        scheduled = conds.get("PodScheduled")
        if _is(scheduled, "False") and scheduled.get("reason") == "Unschedulable":
            since = _parse_time(scheduled.get("lastTransitionTime"))
            detail = _detail(scheduled)
            if since is not None and now - since > UNSCHEDULABLE_GRACE:
                return Health.DEGRADED, detail
            return Health.PROGRESSING, detail
        for cs in st.get("containerStatuses") or ():
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason") if isinstance(cs, dict) else None
            if reason:
                return Health.PROGRESSING, f"pending: {reason}"
        return Health.PROGRESSING, "pending"
    return Health.UNKNOWN, f"pod phase {phase}"


# ----- other built-ins ----------------------------------------------------------------------


def _pvc(obj: Obj, now: float) -> Result:
    phase = _status(obj).get("phase") or "Pending"
    if phase == "Bound":
        return Health.HEALTHY, "claim is bound"
    if phase == "Pending":
        return Health.PROGRESSING, "claim is pending"
    if phase == "Lost":
        return Health.DEGRADED, "claim lost its volume"
    return Health.UNKNOWN, f"claim phase {phase}"


def _lb_ingress(obj: Obj) -> list[Any]:
    ingress = ((_status(obj).get("loadBalancer") or {}).get("ingress")) or []
    return ingress if isinstance(ingress, list) else []


def _lb_addresses(ingress: list[Any]) -> str:
    return ", ".join(str(i.get("ip") or i.get("hostname") or "") for i in ingress if isinstance(i, dict))


def _service(obj: Obj, now: float) -> Result:
    spec = _spec(obj)
    if spec.get("type") != "LoadBalancer":
        return Health.HEALTHY, f"{spec.get('type') or 'ClusterIP'} service"
    ingress = _lb_ingress(obj)
    if not ingress:
        return Health.PROGRESSING, "waiting for a load balancer address"
    return Health.HEALTHY, f"load balancer {_lb_addresses(ingress)}"


def _ingress(obj: Obj, now: float) -> Result:
    ingress = _lb_ingress(obj)
    if not ingress:
        return Health.PROGRESSING, "waiting for a load balancer address"
    return Health.HEALTHY, f"load balancer {_lb_addresses(ingress)}"


def _hpa(obj: Obj, now: float) -> Result:
    conds = _conditions(obj)
    if not conds:
        return Health.PROGRESSING, "waiting to autoscale"
    able = conds.get("AbleToScale")
    if _is(able, "False"):
        return Health.DEGRADED, _detail(able, "unable to scale")
    active = conds.get("ScalingActive")
    if _is(active, "False"):
        reason = str(active.get("reason") or "")
        if reason.startswith("FailedGet") or reason in ("InvalidSelector", "InvalidMetricSourceType"):
            return Health.DEGRADED, _detail(active)
    st = _status(obj)
    return Health.HEALTHY, f"{_int(st.get('currentReplicas'))} current, {_int(st.get('desiredReplicas'))} desired replicas"


def _namespace(obj: Obj, now: float) -> Result:
    if _status(obj).get("phase") == "Terminating":
        return Health.PROGRESSING, "namespace is terminating"
    return Health.HEALTHY, "namespace is active"


def _crd(obj: Obj, now: float) -> Result:
    conds = _conditions(obj)
    names = conds.get("NamesAccepted")
    if _is(names, "False"):
        return Health.DEGRADED, _detail(names, "names not accepted")
    if _is(conds.get("Established"), "True"):
        return Health.HEALTHY, "established"
    return Health.PROGRESSING, "waiting to be established"


def _generic(obj: Obj, now: float) -> Result:
    lag = _generation_lag(obj, required=False)
    if lag:
        return lag
    if _spec(obj).get("suspend") is True:
        return Health.SUSPENDED, "suspended"
    conds = _conditions(obj)
    if not conds:
        return Health.HEALTHY, "no conditions reported"
    stalled = conds.get("Stalled")
    if _is(stalled, "True"):
        return Health.DEGRADED, _detail(stalled, "stalled")
    reconciling = conds.get("Reconciling")
    if _is(reconciling, "True"):
        return Health.PROGRESSING, _detail(reconciling, "reconciling")
    ready = conds.get("Ready")
    if ready is None:
        return Health.HEALTHY, "no Ready condition"
    if _is(ready, "True"):
        return Health.HEALTHY, _detail(ready, "ready")
    if _is(ready, "False") and _looks_failed(str(ready.get("reason") or "")):
        return Health.DEGRADED, _detail(ready, "not ready")
    return Health.PROGRESSING, _detail(ready, "not ready")


Check = Callable[[Obj, float], Result]

_CHECKS: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("extensions", "Ingress"): _ingress,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def assess(obj: Obj | None, *, now: float | None = None) -> Result:
    """Health of a live object and a short reason; ``None`` means not found (Missing).

    ``now`` (epoch seconds, default: the clock) is only read for a Pod's Unschedulable grace.
    """
    if obj is None:
        return Health.MISSING, "not found in the cluster"
    if _meta(obj).get("deletionTimestamp"):
        return Health.PROGRESSING, "being deleted"
    kind = str(obj.get("kind") or "")
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    check = _CHECKS.get((group, kind))
    if check is not None:
        return check(obj, time.time() if now is None else now)
    if kind in _NO_STATUS_KINDS:
        return Health.HEALTHY, "no status to assess"
    return _generic(obj, time.time() if now is None else now)
