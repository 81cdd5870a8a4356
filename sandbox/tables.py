"""``meta.k8s.io/v1`` Table responses, so ``kubectl get`` prints the columns it
prints against a real cluster (NAME, READY, STATUS, AGE, ...)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.resources import ResourceType

Column = tuple[str, str, Callable[[dict[str, Any], float], Any]]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").timestamp() - datetime(1970, 1, 1).timestamp()
    except ValueError:
        return None


def human_age(created: str | None, now: float) -> str:
    """kubectl's short duration format: 5s, 3m, 2m10s, 4h, 3d."""
    start = _ts(created)
    if start is None:
        return "<unknown>"
    secs = max(0, int(now - start))
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        rem = secs % 60
        return f"{mins}m{rem}s" if rem else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _age(o: dict[str, Any], now: float) -> str:
    return human_age(o["metadata"].get("creationTimestamp"), now)


def _status(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("status") or {}


def _spec(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("spec") or {}


def _pod_ready(o: dict[str, Any], _: float) -> str:
    statuses = _status(o).get("containerStatuses") or []
    total = len(_spec(o).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{total}"


def _pod_restarts(o: dict[str, Any], _: float) -> int:
    return sum(int(s.get("restartCount", 0)) for s in _status(o).get("containerStatuses") or [])


def _pod_status(o: dict[str, Any], _: float) -> str:
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for s in _status(o).get("containerStatuses") or []:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(_status(o).get("phase", "Pending"))


def _svc_ports(o: dict[str, Any], _: float) -> str:
    parts = []
    for p in _spec(o).get("ports") or []:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        parts.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _selector(o: dict[str, Any], _: float) -> str:
    sel = _spec(o).get("selector") or {}
    labels = sel.get("matchLabels", sel) if isinstance(sel, dict) else {}
    return ",".join(f"{k}={v}" for k, v in labels.items() if isinstance(v, str)) or "<none>"


COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _pod_status),
        ("Restarts", "string", _pod_restarts),
        ("Age", "string", _age),
    ],
    "Deployment": [
        ("Ready", "string", lambda o, n: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}"),
        ("Up-to-date", "integer", lambda o, n: _status(o).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o, n: _status(o).get("availableReplicas", 0)),
        ("Age", "string", _age),
    ],
    "ReplicaSet": [
        ("Desired", "integer", lambda o, n: _spec(o).get("replicas", 1)),
        ("Current", "integer", lambda o, n: _status(o).get("replicas", 0)),
        ("Ready", "integer", lambda o, n: _status(o).get("readyReplicas", 0)),
        ("Age", "string", _age),
    ],
    "StatefulSet": [
        ("Ready", "string", lambda o, n: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}"),
        ("Age", "string", _age),
    ],
    "DaemonSet": [
        ("Desired", "integer", lambda o, n: _status(o).get("desiredNumberScheduled", 0)),
        ("Current", "integer", lambda o, n: _status(o).get("currentNumberScheduled", 0)),
        ("Ready", "integer", lambda o, n: _status(o).get("numberReady", 0)),
        ("Up-to-date", "integer", lambda o, n: _status(o).get("updatedNumberScheduled", 0)),
        ("Available", "integer", lambda o, n: _status(o).get("numberAvailable", 0)),
        ("Age", "string", _age),
    ],
    "Service": [
        ("Type", "string", lambda o, n: _spec(o).get("type", "ClusterIP")),
        ("Cluster-IP", "string", lambda o, n: _spec(o).get("clusterIP", "<none>")),
        ("External-IP", "string", lambda o, n: ",".join(_spec(o).get("externalIPs") or []) or "<none>"),
        ("Port(s)", "string", _svc_ports),
        ("Age", "string", _age),
    ],
    "Namespace": [
        ("Status", "string", lambda o, n: _status(o).get("phase", "Active")),
        ("Age", "string", _age),
    ],
    "ConfigMap": [("Data", "integer", lambda o, n: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
                  ("Age", "string", _age)],
    "Secret": [
        ("Type", "string", lambda o, n: o.get("type", "Opaque")),
        ("Data", "integer", lambda o, n: len(o.get("data") or {})),
        ("Age", "string", _age),
    ],
    "Job": [
        ("Status", "string", lambda o, n: "Complete" if _status(o).get("succeeded") else "Running"),
        ("Completions", "string", lambda o, n: f"{_status(o).get('succeeded', 0)}/{_spec(o).get('completions', 1)}"),
        ("Age", "string", _age),
    ],
    "PersistentVolumeClaim": [
        ("Status", "string", lambda o, n: _status(o).get("phase", "Pending")),
        ("Volume", "string", lambda o, n: _spec(o).get("volumeName", "")),
        ("Age", "string", _age),
    ],
    "HorizontalPodAutoscaler": [
        ("Reference", "string", lambda o, n: f"{(_spec(o).get('scaleTargetRef') or {}).get('kind')}/{(_spec(o).get('scaleTargetRef') or {}).get('name')}"),
        ("MinPods", "integer", lambda o, n: _spec(o).get("minReplicas", 1)),
        ("MaxPods", "integer", lambda o, n: _spec(o).get("maxReplicas", 0)),
        ("Replicas", "integer", lambda o, n: _status(o).get("currentReplicas", 0)),
        ("Age", "string", _age),
    ],
    "CronJob": [
        ("Schedule", "string", lambda o, n: _spec(o).get("schedule", "")),
        ("Suspend", "boolean", lambda o, n: bool(_spec(o).get("suspend", False))),
        ("Age", "string", _age),
    ],
}
DEFAULT_COLUMNS: list[Column] = [("Age", "string", _age)]


def _columns(rt: ResourceType) -> list[Column]:
    return COLUMNS.get(rt.kind, DEFAULT_COLUMNS) if not rt.crd else DEFAULT_COLUMNS


def _definitions(rt: ResourceType) -> list[dict[str, Any]]:
    defs = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    for title, typ, _ in _columns(rt):
        defs.append({"name": title, "type": typ, "format": "", "description": title, "priority": 0})
    return defs


def _row(rt: ResourceType, obj: dict[str, Any], now: float) -> dict[str, Any]:
    meta = obj["metadata"]
    cells: list[Any] = [meta["name"]]
    cells.extend(fn(obj, now) for _, _, fn in _columns(rt))
    partial = {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
    }
    return {"cells": cells, "object": partial}


def list_table(rt: ResourceType, listed: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": listed["metadata"],
        "columnDefinitions": _definitions(rt),
        "rows": [_row(rt, o, now) for o in listed["items"]],
    }


def object_table(rt: ResourceType, obj: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
        "columnDefinitions": _definitions(rt),
        "rows": [_row(rt, obj, now)],
    }
