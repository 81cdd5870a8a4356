"""Kubelet simulation: moves every Pod from Pending to Running and Ready.

First write: ``Pending``, scheduled, containers waiting ``ContainerCreating``.
After ``pace``: ``Running`` with Ready/ContainersReady True and running
containerStatuses. A ``fail``-tagged image instead waits with ``ErrImagePull``,
then ``ImagePullBackOff`` after another ``pace``; the Pod stays Pending and
not Ready. Status is written as manager ``kubelet`` (``subresource: status``),
as on a real node.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox.controllers.base import (
    PODS,
    Controller,
    Obj,
    deleting,
    failing_images,
    meta_of,
    now,
    set_condition,
)

MANAGER = "kubelet"
HOST_IP = "172.18.0.2"


def normalize_image(image: str) -> str:
    """``nginx:1.27`` -> ``docker.io/library/nginx:1.27``, as containerd reports it."""
    name = image
    first, sep, _ = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if sep else f"docker.io/library/{name}"
    last = name.rsplit("/", 1)[-1]
    if "@" not in name and ":" not in last:
        name += ":latest"
    return name


def _repository(image: str) -> str:
    """An image reference without its tag or digest."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stage(status: Obj) -> str:
    if status.get("phase") == "Running":
        return "running"
    reasons = set()
    for cs in status.get("containerStatuses") or ():
        reasons.add(((cs.get("state") or {}).get("waiting") or {}).get("reason"))
    if "ImagePullBackOff" in reasons:
        return "backoff"
    if "ErrImagePull" in reasons:
        return "errimagepull"
    return "pending" if status.get("containerStatuses") else ""


def qos_class(spec: Obj) -> str:
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    requests_seen = limits_seen = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        requests_seen = requests_seen or bool(req)
        limits_seen = limits_seen or bool(lim)
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not requests_seen and not limits_seen:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class KubeletController(Controller):
    name = "kubelet"
    primary = PODS

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._ips = 0

    def _pod_ip(self) -> str:
        self._ips += 1
        n = self._ips % (254 * 255)
        return f"10.244.{n // 254}.{n % 254 + 1}"

    def reconcile(self, item: Any) -> None:
        ns, name = item
        pod = self.get(PODS, ns, name)
        if pod is None or deleting(pod):
            return
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        uid = meta_of(pod)["uid"]
        failing = set(failing_images(pod.get("spec")))
        current = _stage(status)
        # Phases only move forward (a restarted sandbox does not send Running pods back to Pending).
        if current not in ("running", "errimagepull", "backoff") and not self.elapsed(uid, "start", item):
            stage = "pending"
        elif failing:
            stage = "backoff" if current == "backoff" or self.elapsed(uid, "backoff", item) else "errimagepull"
        else:
            stage = "running"
        if current == stage:
            return
        self.update_status(PODS, pod, self._status(pod, stage, failing), manager=MANAGER)

    def _status(self, pod: Obj, stage: str, failing: set[str]) -> Obj:
        old = pod.get("status") or {}
        spec = pod.get("spec") or {}
        stamp = now()
        uid = meta_of(pod)["uid"]
        started = stage != "pending"
        old_running = {
            cs.get("name"): cs for cs in old.get("containerStatuses") or () if (cs.get("state") or {}).get("running")
        }
        statuses = []
        unready = []
        for c in spec.get("containers") or []:
            cname = c.get("name", "")
            image = str(c.get("image", ""))
            if started and image not in failing:
                prev = old_running.get(cname)
                startedat = ((prev or {}).get("state") or {}).get("running", {}).get("startedAt", stamp)
                full = normalize_image(image)
                statuses.append({
                    "containerID": f"containerd://{_digest(uid + '/' + cname)}",
                    "image": full,
                    "imageID": f"{_repository(full)}@sha256:{_digest(full)}",
                    "lastState": {},
                    "name": cname,
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": startedat}},
                })
                continue
            unready.append(cname)
            if not started:
                waiting: Obj = {"reason": "ContainerCreating"}
            elif stage == "backoff":
                waiting = {"message": f'Back-off pulling image "{image}"', "reason": "ImagePullBackOff"}
            else:
                ref = normalize_image(image)
                waiting = {
                    "message": f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {ref}: not found',
                    "reason": "ErrImagePull",
                }
            statuses.append({
                "image": image, "imageID": "", "lastState": {}, "name": cname, "ready": False,
                "restartCount": 0, "started": False, "state": {"waiting": waiting},
            })
        statuses.sort(key=lambda s: s["name"])
        inits = []
        for c in spec.get("initContainers") or []:
            cname = c.get("name", "")
            image = str(c.get("image", ""))
            if started:
                state: Obj = {"terminated": {"containerID": f"containerd://{_digest(uid + '/' + cname)}", "exitCode": 0,
                                             "finishedAt": stamp, "reason": "Completed", "startedAt": stamp}}
            else:
                state = {"waiting": {"reason": "PodInitializing"}}
            inits.append({"image": normalize_image(image), "imageID": "", "lastState": {}, "name": cname,
                          "ready": started, "restartCount": 0, "started": False, "state": state})

        conds = list(old.get("conditions") or [])
        conds = set_condition(conds, "PodReadyToStartContainers", "True" if started else "False", "", "", stamp)
        if inits and not started:
            names = " ".join(i["name"] for i in inits)
            conds = set_condition(conds, "Initialized", "False", "ContainersNotInitialized",
                                  f"containers with incomplete status: [{names}]", stamp)
        else:
            conds = set_condition(conds, "Initialized", "True", "", "", stamp)
        if unready:
            message = f"containers with unready status: [{' '.join(unready)}]"
            conds = set_condition(conds, "Ready", "False", "ContainersNotReady", message, stamp)
            conds = set_condition(conds, "ContainersReady", "False", "ContainersNotReady", message, stamp)
        else:
            conds = set_condition(conds, "Ready", "True", "", "", stamp)
            conds = set_condition(conds, "ContainersReady", "True", "", "", stamp)
        conds = set_condition(conds, "PodScheduled", "True", "", "", stamp)
        for cond in conds:  # reason/message are omitted when empty
            for k in ("reason", "message"):
                if not cond.get(k):
                    cond.pop(k, None)

        status: Obj = {"conditions": conds}
        if inits:
            status["initContainerStatuses"] = inits
        status["containerStatuses"] = statuses
        status["hostIP"] = HOST_IP
        status["hostIPs"] = [{"ip": HOST_IP}]
        status["phase"] = "Running" if stage == "running" else "Pending"
        if started:
            ip = old.get("podIP") or self._pod_ip()
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        status["qosClass"] = old.get("qosClass") or qos_class(spec)
        status["startTime"] = old.get("startTime") or stamp
        return status
