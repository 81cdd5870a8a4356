"""Server-side defaulting and the typed round trip of built-in objects.

:func:`apply_defaults` ports what kube-apiserver does to a written object
before it is stored: the ``SetDefaults_*`` functions of ``core/v1``,
``apps/v1``, ``batch/v1``, ``autoscaling/v2``, ``networking/v1``, ``rbac/v1``
and ``apiextensions/v1``, plus the parts of registry strategies and admission
plugins that visibly change objects (Secret ``stringData``, Namespace
finalizer/phase/label, Job selector, Pod priority/service account/tolerations/
status, Service IP and node-port allocation).

:func:`normalize` is the encode/decode round trip through the Go structs: it
drops ``null`` and the empty values that ``omitempty`` drops, keeps empty
structs (``securityContext: {}``), emits the fields Go always writes
(``resources: {}``, ``status: {}``, template ``creationTimestamp: null``),
canonicalises quantities and re-formats timestamps.

A write is processed as ``validation.typecheck`` → ``validation.unknown_fields``
→ :func:`apply_defaults` (which ends with :func:`normalize` unless
``round_trip=False``; the two commute) → ``validation.validate``. Do not
normalize an applied configuration before computing its server-side-apply
field set: the apiserver does not round-trip it.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.kube import quantity, schema
from core.kube.schema import Node
from sandbox.allocator import AllocationFailed, Allocator

Obj = dict[str, Any]

__all__ = ["AllocationError", "apply_defaults", "normalize", "release_allocations"]


class AllocationError(ValueError):
    """Service allocation failed; ``causes`` are 422 causes for ``validation.invalid_message``."""

    def __init__(self, causes: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{c['field']}: {c['message']}" for c in causes))
        self.causes = causes


@dataclass(slots=True)
class _Ctx:
    allocator: Allocator | None
    old: Obj | None
    dry_run: bool
    owner: str | None = None


# --------------------------------------------------------------------------- helpers


def _child(parent: Obj, key: str) -> Obj:
    """``parent[key]`` as a dict, created when absent or null."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def _dicts(value: Any) -> Iterable[Obj]:
    """The dict items of a list (anything else yields nothing)."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return ()


def _unset(d: Obj, key: str, value: Any) -> None:
    """Default a pointer field: only when absent or null."""
    if d.get(key) is None:
        d[key] = value


def _empty(d: Obj, key: str, value: Any) -> None:
    """Default a non-pointer field: when absent, null or the zero value."""
    current = d.get(key)
    if current is None or current == "" or (current == 0 and not isinstance(current, str)):
        d[key] = value


def _round_resource_list(d: Obj | None, key: str) -> None:
    """``SetDefaults_ResourceList``: canonical quantities rounded up to milli."""
    if not isinstance(d, dict):
        return
    rl = d.get(key)
    if not isinstance(rl, dict):
        return
    for name, value in rl.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            with contextlib.suppress(ValueError):
                rl[name] = quantity.canonical(value)


# --------------------------------------------------------------------------- pods

_IMAGE_TAG = re.compile(r":([\w][\w.-]{0,127})$")


def _image_pull_policy(image: Any) -> str:
    """``Always`` for ``:latest`` or an untagged, undigested image; else ``IfNotPresent``."""
    if not isinstance(image, str) or not image:
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    m = _IMAGE_TAG.search(last)
    if m:
        return "Always" if m.group(1) == "latest" else "IfNotPresent"
    return "IfNotPresent" if digest else "Always"


def _http_get(action: Any) -> None:
    if isinstance(action, dict):
        _empty(action, "path", "/")
        _empty(action, "scheme", "HTTP")


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _empty(probe, "timeoutSeconds", 1)
    _empty(probe, "periodSeconds", 10)
    _empty(probe, "successThreshold", 1)
    _empty(probe, "failureThreshold", 3)
    _http_get(probe.get("httpGet"))
    grpc = probe.get("grpc")
    if isinstance(grpc, dict):
        _unset(grpc, "service", "")


def _field_ref(holder: Any) -> None:
    if isinstance(holder, dict):
        ref = holder.get("fieldRef")
        if isinstance(ref, dict):
            _empty(ref, "apiVersion", "v1")


def _container(c: Obj) -> None:
    """``SetDefaults_Container`` and everything nested in a container."""
    _empty(c, "imagePullPolicy", _image_pull_policy(c.get("image")))
    _empty(c, "terminationMessagePath", "/dev/termination-log")
    _empty(c, "terminationMessagePolicy", "File")
    resources = _child(c, "resources")
    _round_resource_list(resources, "limits")
    _round_resource_list(resources, "requests")
    for port in _dicts(c.get("ports")):
        _empty(port, "protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            handler = lifecycle.get(hook)
            if isinstance(handler, dict):
                _http_get(handler.get("httpGet"))
    for env in _dicts(c.get("env")):
        _field_ref(env.get("valueFrom"))


_VOLUME_DEFAULT_MODE = ("secret", "configMap", "downwardAPI", "projected")


def _volume(v: Obj) -> None:
    """``SetDefaults_Volume`` and the defaults of the volume sources."""
    if not any(k != "name" and v[k] is not None for k in v):
        v["emptyDir"] = {}
    for key in _VOLUME_DEFAULT_MODE:
        src = v.get(key)
        if isinstance(src, dict):
            _unset(src, "defaultMode", 420)
    for item in _dicts((v.get("downwardAPI") or {}).get("items")):
        _field_ref(item)
    projected = v.get("projected")
    if isinstance(projected, dict):
        for source in _dicts(projected.get("sources")):
            token = source.get("serviceAccountToken")
            if isinstance(token, dict):
                _unset(token, "expirationSeconds", 3600)
            for item in _dicts((source.get("downwardAPI") or {}).get("items")):
                _field_ref(item)
    host_path = v.get("hostPath")
    if isinstance(host_path, dict):
        _unset(host_path, "type", "")
    iscsi = v.get("iscsi")
    if isinstance(iscsi, dict):
        _empty(iscsi, "iscsiInterface", "default")
    rbd = v.get("rbd")
    if isinstance(rbd, dict):
        _empty(rbd, "pool", "rbd")
        _empty(rbd, "user", "admin")
        _empty(rbd, "keyring", "/etc/ceph/keyring")
    azure = v.get("azureDisk")
    if isinstance(azure, dict):
        _unset(azure, "cachingMode", "ReadWrite")
        _unset(azure, "fsType", "ext4")
        _unset(azure, "readOnly", False)
        _unset(azure, "kind", "Shared")
    scale_io = v.get("scaleIO")
    if isinstance(scale_io, dict):
        _empty(scale_io, "storageMode", "ThinProvisioned")
        _empty(scale_io, "fsType", "xfs")
    ephemeral = v.get("ephemeral")
    if isinstance(ephemeral, dict):
        template = ephemeral.get("volumeClaimTemplate")
        if isinstance(template, dict):
            _pvc_spec(_child(template, "spec"))


def _pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` plus container/volume defaults (templates and Pods)."""
    _empty(spec, "dnsPolicy", "ClusterFirst")
    _empty(spec, "restartPolicy", "Always")
    _unset(spec, "securityContext", {})
    _unset(spec, "terminationGracePeriodSeconds", 30)
    _empty(spec, "schedulerName", "default-scheduler")
    # v1 conversion mirrors the deprecated serviceAccount field.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _container(c)
    for v in _dicts(spec.get("volumes")):
        _volume(v)
    _round_resource_list(spec, "overhead")
    _round_resource_list(spec.get("resources"), "limits")
    _round_resource_list(spec.get("resources"), "requests")


def _pod_template(template: Any) -> None:
    if isinstance(template, dict):
        _child(template, "metadata")
        _pod_spec(_child(template, "spec"))


_SYSTEM_PRIORITIES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_QOS_RESOURCES = ("cpu", "memory")


def _qos_class(spec: Obj) -> str:
    """``GetPodQOS`` over containers and init containers (cpu and memory only)."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for key in ("containers", "initContainers"):
        for c in _dicts(spec.get(key)):
            res = c.get("resources") or {}
            for name, value in (res.get("requests") or {}).items():
                q = _quantity_value(value)
                if name in _QOS_RESOURCES and q is not None and q > 0:
                    requests[name] = requests.get(name, 0) + q
            found = set()
            for name, value in (res.get("limits") or {}).items():
                q = _quantity_value(value)
                if name in _QOS_RESOURCES and q is not None and q > 0:
                    found.add(name)
                    limits[name] = limits.get(name, 0) + q
            if not found.issuperset(_QOS_RESOURCES):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, req in requests.items():
            if limits.get(name) != req:
                guaranteed = False
                break
    return "Guaranteed" if guaranteed and len(requests) == len(limits) else "Burstable"


def _quantity_value(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        return quantity.parse(str(value) if not isinstance(value, str) else value)
    except ValueError:
        return None


def _pod(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _pod_spec(spec)
    # SetDefaults_Pod: requests default to limits (Pods only, not templates).
    for key in ("containers", "initContainers"):
        for c in _dicts(spec.get(key)):
            res = _child(c, "resources")
            lim = res.get("limits")
            if isinstance(lim, dict) and lim:
                req = _child(res, "requests")
                for name, value in lim.items():
                    req.setdefault(name, value)
    _unset(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for c in _dicts(spec.get(key)):
                for port in _dicts(c.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    # Admission: ServiceAccount, Priority, DefaultTolerationSeconds.
    _empty(spec, "serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    if spec.get("priority") is None:
        pc = spec.get("priorityClassName") or ""
        if not pc:
            spec["priority"] = 0
        elif pc in _SYSTEM_PRIORITIES:
            spec["priority"] = _SYSTEM_PRIORITIES[pc]
    _unset(spec, "preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    for key in _DEFAULT_TOLERATIONS:
        covered = any(
            t.get("key") in (key, "", None) and t.get("effect") in ("NoExecute", "", None)
            for t in _dicts(tolerations)
        )
        if not covered:
            tolerations.append(
                {"effect": "NoExecute", "key": key, "operator": "Exists", "tolerationSeconds": 300}
            )
    if tolerations:
        spec["tolerations"] = tolerations
    status = _child(obj, "status")
    _empty(status, "phase", "Pending")
    _empty(status, "qosClass", _qos_class(spec))


def _pod_template_kind(obj: Obj, ctx: _Ctx) -> None:
    _pod_template(obj.get("template"))


# --------------------------------------------------------------------------- apps


def _deployment(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _unset(spec, "replicas", 1)
    strategy = _child(spec, "strategy")
    _empty(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _child(strategy, "rollingUpdate")
        _unset(ru, "maxUnavailable", "25%")
        _unset(ru, "maxSurge", "25%")
    _unset(spec, "revisionHistoryLimit", 10)
    _unset(spec, "progressDeadlineSeconds", 600)
    _pod_template(_child(spec, "template"))


def _replicaset(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _unset(spec, "replicas", 1)
    _pod_template(_child(spec, "template"))


def _daemonset(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    strategy = _child(spec, "updateStrategy")
    _empty(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _child(strategy, "rollingUpdate")
        _unset(ru, "maxUnavailable", 1)
        _unset(ru, "maxSurge", 0)
    _unset(spec, "revisionHistoryLimit", 10)
    _pod_template(_child(spec, "template"))


def _statefulset(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _empty(spec, "podManagementPolicy", "OrderedReady")
    strategy = _child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        _unset(strategy, "rollingUpdate", {})
    ru = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(ru, dict):
        _unset(ru, "partition", 0)
    policy = _child(spec, "persistentVolumeClaimRetentionPolicy")
    _empty(policy, "whenDeleted", "Retain")
    _empty(policy, "whenScaled", "Retain")
    _unset(spec, "replicas", 1)
    _unset(spec, "revisionHistoryLimit", 10)
    _pod_template(_child(spec, "template"))
    for claim in _dicts(spec.get("volumeClaimTemplates")):
        _empty(claim, "apiVersion", "v1")
        _empty(claim, "kind", "PersistentVolumeClaim")
        _child(claim, "metadata")
        _pvc_spec(_child(claim, "spec"))
        status = _child(claim, "status")
        _empty(status, "phase", "Pending")
        _round_resource_list(status, "capacity")
        _round_resource_list(status, "allocatedResources")


# --------------------------------------------------------------------------- batch

_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"


def _job_spec_selector(obj: Obj, spec: Obj) -> None:
    """The Job strategy's generated selector and pod labels (needs ``metadata.uid``)."""
    meta = obj.get("metadata") or {}
    uid, name = meta.get("uid"), meta.get("name")
    if spec.get("manualSelector") is True or not uid:
        return
    template = _child(spec, "template")
    labels = _child(_child(template, "metadata"), "labels")
    for key in ("job-name", "batch.kubernetes.io/job-name"):
        if name:
            labels.setdefault(key, name)
    for key in ("controller-uid", _CONTROLLER_UID):
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match = _child(selector, "matchLabels")
    match.setdefault(_CONTROLLER_UID, uid)


def _job(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _unset(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    _unset(spec, "completionMode", "NonIndexed")
    _unset(spec, "suspend", False)
    failure_policy = spec.get("podFailurePolicy")
    if isinstance(failure_policy, dict):
        for rule in _dicts(failure_policy.get("rules")):
            for pattern in _dicts(rule.get("onPodConditions")):
                _empty(pattern, "status", "True")
    _unset(spec, "podReplacementPolicy", "Failed" if failure_policy is not None else "TerminatingOrFailed")
    if ctx.old is None or not (ctx.old.get("spec") or {}).get("selector"):
        _job_spec_selector(obj, spec)
    _pod_template(_child(spec, "template"))
    # Decoding from storage copies the (final) template labels when the Job has none.
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    meta = _child(obj, "metadata")
    if isinstance(template_labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(template_labels)


def _cronjob(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _empty(spec, "concurrencyPolicy", "Allow")
    _unset(spec, "suspend", False)
    _unset(spec, "successfulJobsHistoryLimit", 3)
    _unset(spec, "failedJobsHistoryLimit", 1)
    job_template = _child(spec, "jobTemplate")
    _child(job_template, "metadata")
    _pod_template(_child(_child(job_template, "spec"), "template"))


# --------------------------------------------------------------------------- core


def _secret(obj: Obj, ctx: _Ctx) -> None:
    _empty(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for key, value in string_data.items():
            text = "" if value is None else str(value)
            data[key] = base64.b64encode(text.encode()).decode("ascii")


def _namespace(obj: Obj, ctx: _Ctx) -> None:
    meta = _child(obj, "metadata")
    name = meta.get("name")
    if name:
        _child(meta, "labels")["kubernetes.io/metadata.name"] = name
    spec = _child(obj, "spec")
    old_spec = (ctx.old or {}).get("spec") or {}
    if meta.get("deletionTimestamp"):
        pass  # finalization (the namespace controller) owns spec.finalizers now
    elif ctx.old is not None:
        if old_spec.get("finalizers"):
            spec["finalizers"] = list(old_spec["finalizers"])
        else:
            spec.pop("finalizers", None)
    else:
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = []
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
        spec["finalizers"] = finalizers
    _empty(_child(obj, "status"), "phase", "Active")


def _pvc_spec(spec: Obj) -> None:
    _unset(spec, "volumeMode", "Filesystem")
    resources = spec.get("resources")
    _round_resource_list(resources, "limits")
    _round_resource_list(resources, "requests")


def _pvc(obj: Obj, ctx: _Ctx) -> None:
    _pvc_spec(_child(obj, "spec"))
    status = _child(obj, "status")
    _empty(status, "phase", "Pending")
    _round_resource_list(status, "capacity")
    _round_resource_list(status, "allocatedResources")


def _pv(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _empty(spec, "persistentVolumeReclaimPolicy", "Retain")
    _unset(spec, "volumeMode", "Filesystem")
    _round_resource_list(spec, "capacity")
    _empty(_child(obj, "status"), "phase", "Pending")


def _endpoints(obj: Obj, ctx: _Ctx) -> None:
    for subset in _dicts(obj.get("subsets")):
        for port in _dicts(subset.get("ports")):
            _empty(port, "protocol", "TCP")


def _resource_quota(obj: Obj, ctx: _Ctx) -> None:
    _round_resource_list(obj.get("spec"), "hard")
    status = obj.get("status")
    _round_resource_list(status, "hard")
    _round_resource_list(status, "used")


def _limit_range(obj: Obj, ctx: _Ctx) -> None:
    for item in _dicts((obj.get("spec") or {}).get("limits")):
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            _round_resource_list(item, key)
        if item.get("type") == "Container":
            default = _child(item, "default")
            request = _child(item, "defaultRequest")
            for name, value in (item.get("max") or {}).items():
                default.setdefault(name, value)
            for name, value in default.items():
                request.setdefault(name, value)
            for name, value in (item.get("min") or {}).items():
                request.setdefault(name, value)


# --------------------------------------------------------------------------- Service


def _needs_cluster_ip(spec: Obj) -> bool:
    return spec.get("type") != "ExternalName"


def _needs_node_port(spec: Obj) -> bool:
    t = spec.get("type")
    if t == "NodePort":
        return True
    return t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _externally_accessible(spec: Obj) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _service(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _empty(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        client_ip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _empty(spec, "type", "ClusterIP")
    for port in _dicts(spec.get("ports")):
        _empty(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec):
        _empty(spec, "externalTrafficPolicy", "Cluster")
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer":
        _unset(spec, "allocateLoadBalancerNodePorts", True)
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        for ing in _dicts(ingress):
            if ing.get("ip"):
                _unset(ing, "ipMode", "VIP")
    if ctx.old is not None:
        _service_update(spec, obj, _child(ctx.old, "spec"))
    _service_ips(spec, ctx)
    if ctx.allocator is not None:
        _allocate_service(spec, ctx)
    _child(_child(obj, "status"), "loadBalancer")


def _service_update(spec: Obj, obj: Obj, old: Obj) -> None:
    """Registry update logic: drop type-dependent fields, carry allocated values over."""
    if _needs_cluster_ip(old) and not _needs_cluster_ip(spec):
        if spec.get("clusterIP") == old.get("clusterIP") and spec.get("clusterIPs") == old.get("clusterIPs"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == old.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if _needs_node_port(old) and not _needs_node_port(spec):
        old_ports = [p.get("nodePort") for p in _dicts(old.get("ports"))]
        new_ports = [p.get("nodePort") for p in _dicts(spec.get("ports"))]
        if all(p in old_ports for p in new_ports if p):
            for p in _dicts(spec.get("ports")):
                p.pop("nodePort", None)
    if old.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if spec.get("type") != "LoadBalancer":
        spec.pop("allocateLoadBalancerNodePorts", None)
        status = obj.get("status")
        if isinstance(status, dict):
            status["loadBalancer"] = {}
    if (
        _externally_accessible(old)
        and not _externally_accessible(spec)
        and spec.get("externalTrafficPolicy") == old.get("externalTrafficPolicy")
    ):
        spec.pop("externalTrafficPolicy", None)
    # patchAllocatedValues: keep what was allocated when the new object omits it.
    if _needs_cluster_ip(old) and _needs_cluster_ip(spec):
        if not spec.get("clusterIP") and old.get("clusterIP"):
            spec["clusterIP"] = old["clusterIP"]
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])
        elif (
            spec.get("clusterIP")
            and spec.get("clusterIP") != old.get("clusterIP")
            and spec.get("clusterIPs") == old.get("clusterIPs")
            and spec.get("clusterIPs")
        ):
            # The singular field changed and the plural did not: mirror it.
            spec["clusterIPs"] = [spec["clusterIP"], *spec["clusterIPs"][1:]]
    if _needs_node_port(old) and _needs_node_port(spec):
        by_key = {
            (p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort")
            for p in _dicts(old.get("ports"))
            if p.get("nodePort")
        }
        for p in _dicts(spec.get("ports")):
            if not p.get("nodePort"):
                carried = by_key.get((p.get("port"), p.get("protocol") or "TCP"))
                if carried:
                    p["nodePort"] = carried
    if (
        old.get("healthCheckNodePort")
        and not spec.get("healthCheckNodePort")
        and spec.get("type") == "LoadBalancer"
        and spec.get("externalTrafficPolicy") == "Local"
    ):
        spec["healthCheckNodePort"] = old["healthCheckNodePort"]


def _service_ips(spec: Obj, ctx: _Ctx) -> None:
    """IP family fields as the registry initialises them (single-stack IPv4 cluster)."""
    if not _needs_cluster_ip(spec):
        return
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [cluster_ip]
    elif not cluster_ip and spec.get("clusterIPs"):
        spec["clusterIP"] = spec["clusterIPs"][0]
    headless = spec.get("clusterIP") == "None"
    if spec.get("ipFamilyPolicy") is None:
        families = spec.get("ipFamilies")
        if (headless and not spec.get("selector")) or (isinstance(families, list) and len(families) == 2):
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]


def _allocate_service(spec: Obj, ctx: _Ctx) -> None:
    allocator = ctx.allocator
    assert allocator is not None
    old = _child(ctx.old, "spec") if ctx.old is not None else {}
    owner = ctx.owner
    causes: list[dict[str, str]] = []
    taken: list[str | int] = []

    def reserve(value: str | int, field: str, bad: Any, what: str) -> None:
        try:
            allocator.reserve(value, dry_run=ctx.dry_run, owner=owner)
            if not ctx.dry_run:
                taken.append(value)
        except AllocationFailed as exc:
            rendered = _go_value(bad)
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {rendered}: {what}{exc}",
                    "field": field,
                }
            )

    if _needs_cluster_ip(spec):
        ip = spec.get("clusterIP")
        if not ip:
            ip = allocator.allocate_ip(dry_run=ctx.dry_run, owner=owner)
            if not ctx.dry_run:
                taken.append(ip)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        elif ip != "None" and ctx.old is None:
            # On updates a changed IP is rejected by validation (immutable), not reserved.
            ips = spec.get("clusterIPs") or [ip]
            reserve(ip, "spec.clusterIPs", ips, f"failed to allocate IP {ip}: ")
    if _needs_node_port(spec):
        old_ports = {p.get("nodePort") for p in _dicts(old.get("ports"))}
        for i, port in enumerate(_dicts(spec.get("ports"))):
            node_port = port.get("nodePort")
            if not node_port:
                new_port = allocator.allocate_node_port(dry_run=ctx.dry_run, owner=owner)
                if not ctx.dry_run:
                    taken.append(new_port)
                port["nodePort"] = new_port
            elif isinstance(node_port, int) and node_port not in old_ports:
                reserve(node_port, f"spec.ports[{i}].nodePort", node_port, "")
    if causes:
        for value in taken:
            allocator.release(value)
        raise AllocationError(causes)


def _go_value(value: Any) -> str:
    if isinstance(value, list):
        return "[]string{" + ", ".join(f'"{v}"' for v in value) + "}"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _service_allocations(obj: Obj | None) -> set[str | int]:
    if not isinstance(obj, dict) or obj.get("kind") != "Service":
        return set()
    spec = obj.get("spec") or {}
    found: set[str | int] = set()
    for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
        if isinstance(ip, str) and ip and ip != "None":
            found.add(ip)
    for port in _dicts(spec.get("ports")):
        if isinstance(port.get("nodePort"), int):
            found.add(port["nodePort"])
    if isinstance(spec.get("healthCheckNodePort"), int):
        found.add(spec["healthCheckNodePort"])
    return found


def release_allocations(obj: Obj, allocator: Allocator, *, keep: Obj | None = None) -> None:
    """Return a Service's cluster IPs and node ports to ``allocator``, except those ``keep`` uses.

    Call it after a delete (``keep=None``), after a successful update
    (``obj=old, keep=new``) and after a create or update that failed once
    :func:`apply_defaults` had allocated (``obj=new, keep=old``).
    """
    for value in _service_allocations(obj) - _service_allocations(keep):
        allocator.release(value)


# --------------------------------------------------------------------------- other groups

_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _scaling_rules(given: Any, defaults: Obj) -> Obj:
    result: Obj = {
        "selectPolicy": defaults["selectPolicy"],
        "policies": [dict(p) for p in defaults["policies"]],
    }
    if "stabilizationWindowSeconds" in defaults:
        result["stabilizationWindowSeconds"] = defaults["stabilizationWindowSeconds"]
    if isinstance(given, dict):
        for key in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
            if given.get(key) is not None:
                result[key] = given[key]
    return result


def _hpa(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    _unset(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), _SCALE_DOWN)


def _network_policy(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                _unset(port, "protocol", "TCP")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _ingress_class(obj: Obj, ctx: _Ctx) -> None:
    params = (obj.get("spec") or {}).get("parameters")
    if isinstance(params, dict):
        _unset(params, "scope", "Cluster")


def _role_binding(obj: Obj, ctx: _Ctx) -> None:
    _empty(_child(obj, "roleRef"), "apiGroup", "rbac.authorization.k8s.io")
    for subject in _dicts(obj.get("subjects")):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = "rbac.authorization.k8s.io"


def _crd(obj: Obj, ctx: _Ctx) -> None:
    spec = _child(obj, "spec")
    conversion = spec.get("conversion")
    if not isinstance(conversion, dict):
        spec["conversion"] = conversion = {"strategy": "None"}
    _empty(conversion, "strategy", "None")
    service = (((conversion.get("webhook") or {}).get("clientConfig")) or {}).get("service")
    if isinstance(service, dict):
        _unset(service, "port", 443)


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj, _Ctx], None]] = {
    ("v1", "Pod"): _pod,
    ("v1", "PodTemplate"): _pod_template_kind,
    ("v1", "Service"): _service,
    ("v1", "Secret"): _secret,
    ("v1", "Namespace"): _namespace,
    ("v1", "PersistentVolumeClaim"): _pvc,
    ("v1", "PersistentVolume"): _pv,
    ("v1", "Endpoints"): _endpoints,
    ("v1", "ResourceQuota"): _resource_quota,
    ("v1", "LimitRange"): _limit_range,
    ("apps/v1", "Deployment"): _deployment,
    ("apps/v1", "ReplicaSet"): _replicaset,
    ("apps/v1", "StatefulSet"): _statefulset,
    ("apps/v1", "DaemonSet"): _daemonset,
    ("batch/v1", "Job"): _job,
    ("batch/v1", "CronJob"): _cronjob,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): _hpa,
    ("networking.k8s.io/v1", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io/v1", "IngressClass"): _ingress_class,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _role_binding,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): _crd,
}


def apply_defaults(
    obj: Obj,
    allocator: Allocator | None = None,
    *,
    old: Obj | None = None,
    dry_run: bool = False,
    round_trip: bool = True,
) -> None:
    """Default a full built-in object in place (other kinds only get the round trip).

    ``allocator`` fills Service ``clusterIP``/``clusterIPs`` (unless set or
    ``None``) and node ports, reserving user-chosen values; a conflict raises
    :class:`AllocationError` (a 422 in the apiserver) after releasing what
    this call took. ``old`` is the stored object on updates: Services then
    keep their allocations and drop type-dependent fields, Namespaces keep
    their finalizers and Jobs keep their selector. ``dry_run`` allocates
    without reserving. Values are reserved for ``metadata.uid``, so
    re-defaulting a stored Service without ``old`` does not conflict with
    its own allocations. With ``round_trip`` (default) the result is also
    passed through :func:`normalize`, as the apiserver's output would be.
    """
    fn = _DEFAULTERS.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if fn is not None:
        uid = (obj.get("metadata") or {}).get("uid") if isinstance(obj.get("metadata"), dict) else None
        fn(obj, _Ctx(allocator, old, dry_run, uid if isinstance(uid, str) and uid else None))
    if round_trip:
        normalize(obj)


# --------------------------------------------------------------------------- normalize


def _expand(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    prefixes = {
        "core": "io.k8s.api.core.v1.",
        "apps": "io.k8s.api.apps.v1.",
        "batch": "io.k8s.api.batch.v1.",
        "autoscaling": "io.k8s.api.autoscaling.v2.",
        "networking": "io.k8s.api.networking.v1.",
        "policy": "io.k8s.api.policy.v1.",
        "rbac": "io.k8s.api.rbac.v1.",
        "coordination": "io.k8s.api.coordination.v1.",
        "meta": "io.k8s.apimachinery.pkg.apis.meta.v1.",
        "apiext": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.",
    }
    out: dict[str, dict[str, Any]] = {}
    for key, fields in table.items():
        group, _, name = key.partition(".")
        out[prefixes[group] + name] = fields
    return out


_TOP: dict[str, Any] = {"metadata": {}, "spec": {}, "status": {}}
_META: dict[str, Any] = {"metadata": {}}

# Fields Go always writes: non-pointer structs (emitted even when empty) and
# fields without omitempty, with the zero value written when absent or null.
_ALWAYS = _expand(
    {
        "meta.ObjectMeta": {"creationTimestamp": None},
        "core.Pod": _TOP,
        "core.PodSpec": {"containers": None},
        "core.PodTemplateSpec": {"metadata": {}, "spec": {}},
        "core.PodTemplate": {"metadata": {}, "template": {}},
        "core.Container": {"resources": {}},
        "core.EphemeralContainer": {"resources": {}},
        "core.ResourceFieldSelector": {"divisor": "0"},
        "core.Service": _TOP,
        "core.ServiceStatus": {"loadBalancer": {}},
        "core.Namespace": _TOP,
        "core.PersistentVolumeClaim": _TOP,
        "core.PersistentVolumeClaimSpec": {"resources": {}},
        "core.PersistentVolumeClaimTemplate": {"metadata": {}, "spec": {}},
        "core.PersistentVolume": _TOP,
        "core.ConfigMap": _META,
        "core.Secret": _META,
        "core.ServiceAccount": _META,
        "core.Endpoints": _META,
        "core.Event": {
            "metadata": {},
            "involvedObject": {},
            "source": {},
            "firstTimestamp": None,
            "lastTimestamp": None,
            "eventTime": None,
            "reportingComponent": "",
            "reportingInstance": "",
        },
        "core.LimitRange": {"metadata": {}, "spec": {}},
        "core.LimitRangeSpec": {"limits": None},
        "core.ResourceQuota": _TOP,
        "core.Node": _TOP,
        "core.NodeStatus": {"daemonEndpoints": {}, "nodeInfo": {}},
        "core.NodeDaemonEndpoints": {"kubeletEndpoint": {}},
        "core.DaemonEndpoint": {"Port": 0},
        "apps.Deployment": _TOP,
        "apps.DeploymentSpec": {"template": {}, "strategy": {}},
        "apps.ReplicaSet": _TOP,
        "apps.ReplicaSetSpec": {"template": {}},
        "apps.ReplicaSetStatus": {"replicas": 0},
        "apps.StatefulSet": _TOP,
        "apps.StatefulSetSpec": {"template": {}, "updateStrategy": {}, "serviceName": ""},
        "apps.StatefulSetStatus": {"replicas": 0, "availableReplicas": 0},
        "apps.DaemonSet": _TOP,
        "apps.DaemonSetSpec": {"template": {}, "updateStrategy": {}},
        "apps.DaemonSetStatus": {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        },
        "apps.ControllerRevision": {"metadata": {}, "revision": 0},
        "batch.Job": _TOP,
        "batch.JobSpec": {"template": {}},
        "batch.CronJob": _TOP,
        "batch.CronJobSpec": {"jobTemplate": {}, "schedule": ""},
        "batch.JobTemplateSpec": {"metadata": {}, "spec": {}},
        "autoscaling.HorizontalPodAutoscaler": _TOP,
        "autoscaling.HorizontalPodAutoscalerSpec": {"scaleTargetRef": {}, "maxReplicas": 0},
        "autoscaling.HorizontalPodAutoscalerStatus": {"desiredReplicas": 0, "currentMetrics": None},
        "autoscaling.ResourceMetricSource": {"target": {}},
        "autoscaling.ContainerResourceMetricSource": {"target": {}},
        "networking.Ingress": _TOP,
        "networking.IngressStatus": {"loadBalancer": {}},
        "networking.HTTPIngressPath": {"backend": {}},
        "networking.NetworkPolicy": {"metadata": {}, "spec": {}},
        "networking.NetworkPolicySpec": {"podSelector": {}},
        "networking.IngressClass": {"metadata": {}, "spec": {}},
        "policy.PodDisruptionBudget": _TOP,
        "policy.PodDisruptionBudgetStatus": {
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        },
        "rbac.Role": {"metadata": {}, "rules": None},
        "rbac.ClusterRole": {"metadata": {}, "rules": None},
        "rbac.RoleBinding": {"metadata": {}, "roleRef": {}},
        "rbac.ClusterRoleBinding": {"metadata": {}, "roleRef": {}},
        "rbac.PolicyRule": {"verbs": None},
        "coordination.Lease": {"metadata": {}, "spec": {}},
        "apiext.CustomResourceDefinition": _TOP,
        "apiext.CustomResourceDefinitionStatus": {"acceptedNames": {}, "storedVersions": None},
        "apiext.CustomResourceDefinitionNames": {"plural": "", "kind": ""},
    }
)

# Non-pointer numbers/booleans with omitempty: their zero value is not written.
_ZERO_DROPPED = _expand(
    {
        "meta.ObjectMeta": {"generation": 0},
        "apps.DeploymentSpec": {"minReadySeconds": 0, "paused": 0},
        "apps.ReplicaSetSpec": {"minReadySeconds": 0},
        "apps.StatefulSetSpec": {"minReadySeconds": 0},
        "apps.DaemonSetSpec": {"minReadySeconds": 0},
        "apps.DeploymentStatus": dict.fromkeys(
            (
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            ),
            0,
        ),
        "apps.ReplicaSetStatus": dict.fromkeys(
            ("fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"), 0
        ),
        "apps.StatefulSetStatus": dict.fromkeys(
            ("observedGeneration", "readyReplicas", "currentReplicas", "updatedReplicas"), 0
        ),
        "apps.DaemonSetStatus": dict.fromkeys(
            ("observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"), 0
        ),
        "batch.JobStatus": dict.fromkeys(("active", "succeeded", "failed"), 0),
        "autoscaling.HorizontalPodAutoscalerStatus": {"currentReplicas": 0},
        "core.PodSpec": dict.fromkeys(("hostNetwork", "hostPID", "hostIPC"), 0),
        "core.Container": dict.fromkeys(("stdin", "stdinOnce", "tty"), 0),
        "core.EphemeralContainer": dict.fromkeys(("stdin", "stdinOnce", "tty"), 0),
        "core.ContainerPort": {"hostPort": 0},
        "core.VolumeMount": {"readOnly": 0},
        "core.Probe": dict.fromkeys(
            (
                "initialDelaySeconds",
                "timeoutSeconds",
                "periodSeconds",
                "successThreshold",
                "failureThreshold",
            ),
            0,
        ),
        "core.ServicePort": {"nodePort": 0},
        "core.ServiceSpec": {"healthCheckNodePort": 0, "publishNotReadyAddresses": 0},
        "core.PersistentVolumeClaimVolumeSource": {"readOnly": 0},
        "core.NFSVolumeSource": {"readOnly": 0},
    }
)

# Pointer strings: an explicit "" is kept (everything else optional drops "").
_POINTER_STRINGS = _expand(
    {
        "core.PersistentVolumeClaimSpec": dict.fromkeys(
            ("storageClassName", "volumeMode", "volumeAttributesClassName"), 1
        ),
        "core.PodSpec": dict.fromkeys(("runtimeClassName", "preemptionPolicy"), 1),
        "core.ServiceSpec": dict.fromkeys(
            ("ipFamilyPolicy", "internalTrafficPolicy", "loadBalancerClass", "trafficDistribution"), 1
        ),
        "core.ServicePort": {"appProtocol": 1},
        "core.EndpointPort": {"appProtocol": 1},
        "core.VolumeMount": dict.fromkeys(("mountPropagation", "recursiveReadOnly"), 1),
        "core.HostPathVolumeSource": {"type": 1},
        "core.GRPCAction": {"service": 1},
        "core.Container": {"restartPolicy": 1},
        "core.SecurityContext": {"procMount": 1},
        "core.SeccompProfile": {"localhostProfile": 1},
        "core.AppArmorProfile": {"localhostProfile": 1},
        "core.PodSecurityContext": dict.fromkeys(
            ("fsGroupChangePolicy", "seLinuxChangePolicy", "supplementalGroupsPolicy"), 1
        ),
        "core.TopologySpreadConstraint": dict.fromkeys(("nodeAffinityPolicy", "nodeTaintsPolicy"), 1),
        "core.PodDNSConfigOption": {"value": 1},
        "core.TypedLocalObjectReference": {"apiGroup": 1},
        "core.TypedObjectReference": {"apiGroup": 1, "namespace": 1},
        "core.CSIVolumeSource": {"fsType": 1},
        "core.WindowsSecurityContextOptions": dict.fromkeys(
            ("gmsaCredentialSpecName", "gmsaCredentialSpec", "runAsUserName"), 1
        ),
        "core.PodResourceClaim": dict.fromkeys(("resourceClaimName", "resourceClaimTemplateName"), 1),
        "batch.JobSpec": dict.fromkeys(("completionMode", "podReplacementPolicy", "managedBy"), 1),
        "batch.CronJobSpec": {"timeZone": 1},
        "networking.IngressSpec": {"ingressClassName": 1},
        "networking.HTTPIngressPath": {"pathType": 1},
        "networking.IngressClassParametersReference": dict.fromkeys(("apiGroup", "scope", "namespace"), 1),
        "networking.NetworkPolicyPort": {"protocol": 1},
        "autoscaling.HPAScalingRules": {"selectPolicy": 1},
        "policy.PodDisruptionBudgetSpec": {"unhealthyPodEvictionPolicy": 1},
        "coordination.LeaseSpec": {"holderIdentity": 1},
    }
)

_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
_required_cache: dict[int, frozenset[str]] = {}
_EMPTY: dict[str, Any] = {}


def _required(node: Node) -> frozenset[str]:
    key = id(node.raw)
    found = _required_cache.get(key)
    if found is None:
        found = _required_cache[key] = frozenset(node.required())
    return found


def _format_time(value: str, micro: bool) -> str:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return value
    if dt.tzinfo is None:
        return value
    dt = dt.astimezone(UTC)
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _zero_of(node: Node) -> Any:
    """The Go zero value a ``null`` map/list element decodes to."""
    if node.kind == "struct":
        return {}
    if node.kind == "scalar":
        t = node.scalar_type
        if t == "quantity":
            return "0"
        if t == "string":
            return None if node.raw.get("format") == "byte" else ""
        if t in ("integer", "number", "int-or-string"):
            return 0
        if t == "boolean":
            return False
    return None


def _norm_value(value: Any, node: Node) -> Any:
    """Normalise one value of schema ``node``; returns the value to store."""
    kind = node.kind
    if kind == "struct":
        if isinstance(value, dict):
            _norm_struct(value, node)
    elif kind == "map":
        if isinstance(value, dict):
            elem = node.elem
            if elem.kind in ("struct", "map", "list") or (
                elem.kind == "scalar" and elem.scalar_type not in ("any", "int-or-string")
            ):
                for k, v in value.items():
                    value[k] = _zero_of(elem) if v is None else _norm_value(v, elem)
    elif kind == "list":
        if isinstance(value, list):
            elem = node.elem
            if elem.kind in ("struct", "map", "list") or elem.scalar_type == "quantity":
                for i, v in enumerate(value):
                    value[i] = _zero_of(elem) if v is None else _norm_value(v, elem)
    elif kind == "scalar":
        st = node.scalar_type
        if st == "quantity":
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                try:
                    return quantity.canonical(value, round_up_milli=False)
                except ValueError:
                    return value
        elif st == "string" and isinstance(value, str) and node.name in (_TIME, _MICRO_TIME):
            return _format_time(value, node.name == _MICRO_TIME)
    return value


def _norm_struct(d: Obj, node: Node) -> None:
    name = node.name
    always = _ALWAYS.get(name, _EMPTY)
    builtin_type = name.startswith("io.k8s.")
    zero_dropped = _ZERO_DROPPED.get(name, _EMPTY)
    pointer_strings = _POINTER_STRINGS.get(name, _EMPTY)
    required = _required(node) if builtin_type else frozenset()
    for key in list(d):
        child = node.field(key)
        if child is None:
            continue
        value = d[key]
        if value is None:
            if key in always:
                d[key] = _fresh(always[key])
                if isinstance(d[key], dict):
                    _norm_struct(d[key], child)
            elif key in required and child.kind in ("struct", "scalar"):
                zero = _zero_of(child)
                if zero is None:
                    continue
                d[key] = zero
                if isinstance(zero, dict):
                    _norm_struct(zero, child)
            elif builtin_type:
                del d[key]
            continue
        if builtin_type and key not in always and key not in required:
            if (value == {} and child.kind == "map") or (value == [] and child.kind == "list"):
                del d[key]
                continue
            if value == "" and child.kind == "scalar" and key not in pointer_strings:
                del d[key]
                continue
            if key in zero_dropped and (value == 0 or value is False) and not isinstance(value, str):
                del d[key]
                continue
        new = _norm_value(value, child)
        if new is not value:
            d[key] = new
    for key, zero in always.items():
        if key not in d:
            child = node.field(key)
            if child is None:
                continue
            d[key] = _fresh(zero)
            if isinstance(d[key], dict):
                _norm_struct(d[key], child)


def _fresh(zero: Any) -> Any:
    return {} if isinstance(zero, dict) else zero


def normalize(obj: Obj, node: Node | None = None) -> None:
    """The typed round trip of a built-in object, in place.

    ``node`` is the object's schema (looked up from apiVersion/kind when
    omitted; unknown kinds are left alone). Unknown fields are not touched
    (see ``validation.unknown_fields``); values of the wrong type are left as
    they are (see ``validation.typecheck``).
    """
    if node is None:
        node = schema.for_object(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if node is None:
            return
    if node.kind == "struct":
        _norm_struct(obj, node)
