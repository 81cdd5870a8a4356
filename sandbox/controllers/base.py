"""Shared pieces of the built-in controllers: the base class, write helpers and
small Kubernetes conventions (owner references, conditions, image tags, hashes)."""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, ClassVar

from sandbox.api import Request, now_rfc3339
from sandbox.errors import ApiError
from sandbox.resources import ResourceType
from sandbox.store import Event, Key

if TYPE_CHECKING:
    from sandbox.controllers import Controllers

log = logging.getLogger("sandbox.controllers")

Obj = dict[str, Any]
KCM = "kube-controller-manager"
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphanums

DEPLOYMENTS: Key = ("apps", "deployments")
REPLICASETS: Key = ("apps", "replicasets")
STATEFULSETS: Key = ("apps", "statefulsets")
DAEMONSETS: Key = ("apps", "daemonsets")
PODS: Key = ("", "pods")
PVCS: Key = ("", "persistentvolumeclaims")
SERVICES: Key = ("", "services")
NAMESPACES: Key = ("", "namespaces")
JOBS: Key = ("batch", "jobs")
HPAS: Key = ("autoscaling", "horizontalpodautoscalers")
CRDS: Key = ("apiextensions.k8s.io", "customresourcedefinitions")


def now() -> str:
    return now_rfc3339()


def meta_of(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def deleting(obj: Obj) -> bool:
    return bool(meta_of(obj).get("deletionTimestamp"))


def owner_ref(owner: Obj, controller: bool = True) -> Obj:
    """An ownerReference to ``owner`` as controllers write it."""
    meta = meta_of(owner)
    ref: Obj = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"]}
    if controller:
        ref["controller"] = True
        ref["blockOwnerDeletion"] = True
    return ref


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in meta_of(obj).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def controlled_by(obj: Obj, uid: str) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == uid


def image_tag(image: str) -> str:
    """The tag of an image reference ('' when it has none)."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def failing_images(pod_spec: Obj | None) -> list[str]:
    """Images tagged ``fail`` (the sandbox's fault injection) in a pod spec."""
    spec = pod_spec or {}
    out = []
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict) and image_tag(str(c.get("image", ""))) == "fail":
            out.append(str(c["image"]))
    return out


def template_fails(obj: Obj) -> bool:
    """Whether a workload's pod template uses a ``fail``-tagged image."""
    template = (obj.get("spec") or {}).get("template") or {}
    return bool(failing_images(template.get("spec")))


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """Map each character into the DNS-safe alphabet, as rand.SafeEncodeString does."""
    return "".join(NAME_ALPHABET[ord(ch) % len(NAME_ALPHABET)] for ch in s)


def template_hash(template: Obj | None, collision_count: int | None = None) -> str:
    """A stable short hash of a pod template (``pod-template-hash``, revision names)."""
    data = json.dumps(template or {}, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def set_condition(
    conditions: list[Obj],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    stamp: str,
    *,
    probe_time: bool = False,
) -> list[Obj]:
    """Set a condition in place (order kept); lastTransitionTime moves only when status changes."""
    out = [dict(c) for c in conditions]
    for c in out:
        if c.get("type") != ctype:
            continue
        if c.get("status") != status:
            c["lastTransitionTime"] = stamp
            if probe_time:
                c["lastProbeTime"] = stamp
        c["status"] = status
        c["reason"] = reason
        c["message"] = message
        return out
    cond: Obj = {"type": ctype, "status": status}
    if probe_time:
        cond["lastProbeTime"] = stamp
    cond.update({"lastTransitionTime": stamp, "reason": reason, "message": message})
    out.append(cond)
    return out


def find_condition(conditions: list[Obj] | None, ctype: str) -> Obj | None:
    for c in conditions or ():
        if c.get("type") == ctype:
            return c
    return None


def condition_true(obj: Obj, ctype: str) -> bool:
    cond = find_condition((obj.get("status") or {}).get("conditions"), ctype)
    return cond is not None and cond.get("status") == "True"


def _body(obj: Obj) -> Obj:
    """A write body from a stored object: managedFields left out so the server keeps its own.

    Shallow: the API copies what it is given, and callers replace (never mutate) nested values.
    """
    body = dict(obj)
    body["metadata"] = {k: v for k, v in meta_of(obj).items() if k != "managedFields"}
    return body


class Controller:
    """One controller: maps store events to work items and reconciles them.

    ``on_event`` runs synchronously inside the store's write and must only
    update in-memory state and enqueue; ``reconcile`` runs later on the loop
    and may write through the API.
    """

    name: ClassVar[str] = ""
    primary: ClassVar[Key | None] = None  # the kind it reconciles (item = (namespace, name))
    watches: ClassVar[tuple[Key, ...]] = ()  # further kinds whose events it maps
    all_events: ClassVar[bool] = False  # receives every event (must stay O(1) per event)
    # When set, an event of a watched kind enqueues the object's controller of this kind
    # (e.g. a Pod event wakes its ReplicaSet), before and after the change.
    owner_kind: ClassVar[str] = ""

    def __init__(self, ctx: Controllers) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.store = ctx.store
        self.registry = ctx.registry

    # ----- event mapping -------------------------------------------------------------
    def resource_keys(self) -> tuple[Key, ...]:
        return ((self.primary,) if self.primary else ()) + self.watches

    def on_event(self, key: Key, ev: Event) -> None:
        if key == self.primary:
            meta = meta_of(ev.obj)
            self.enqueue((meta.get("namespace", ""), meta["name"]))
        elif self.owner_kind and self.primary is not None:
            ns = meta_of(ev.obj).get("namespace", "")
            group = self.primary[0]
            for obj in (ev.obj, ev.old):
                ref = controller_ref(obj) if obj is not None else None
                if (ref is not None and ref.get("kind") == self.owner_kind
                        and str(ref.get("apiVersion", "")).rpartition("/")[0] == group):
                    self.enqueue((ns, ref["name"]))

    def resync(self) -> None:
        """Enqueue every existing object of the primary kind (once, at start)."""
        if self.primary is None:
            return
        for obj in self.store.items(self.primary):
            meta = meta_of(obj)
            self.enqueue((meta.get("namespace", ""), meta["name"]))

    def reconcile(self, item: Any) -> None:
        raise NotImplementedError

    def enqueue(self, item: Hashable, delay: float | None = None) -> None:
        self.ctx.enqueue(self, item, delay)

    def elapsed(self, uid: str, token: Hashable, item: Hashable) -> bool:
        """True once ``pace`` has passed since this (uid, token) was first asked about."""
        return self.ctx.elapsed(uid, token, self, item)

    # ----- API helpers ----------------------------------------------------------------------
    def rt(self, key: Key) -> ResourceType:
        rt = self.registry.by_key(key)
        if rt is None:
            raise LookupError(f"resource {key} is not served")
        return rt

    def rt_of(self, key: Key, obj: Obj) -> ResourceType:
        """The resource type matching an object's own apiVersion (CRDs may serve several)."""
        return self.registry.by_gvk(obj.get("apiVersion", ""), obj.get("kind", "")) or self.rt(key)

    def get(self, key: Key, namespace: str, name: str) -> Obj | None:
        return self.store.get(key, namespace, name)

    def request(self, manager: str = KCM) -> Request:
        return Request(field_manager=manager, user_agent=f"{manager}/v1.32.4", field_validation="Warn")

    def _warned(self, req: Request, what: str) -> None:
        if req.warnings:
            log.debug("%s: %s: warnings %s", self.name, what, req.warnings)

    def create(self, key: Key, namespace: str, body: Obj, manager: str = KCM) -> Obj:
        req = self.request(manager)
        _, out = self.api.create(self.rt(key), namespace, body, req)
        self._warned(req, f"create {key[1]}")
        return out

    def update(self, key: Key, obj: Obj, manager: str = KCM) -> Obj:
        """Replace the main resource with ``obj`` (its resourceVersion is the precondition)."""
        meta = meta_of(obj)
        req = self.request(manager)
        _, out = self.api.replace(self.rt_of(key, obj), meta.get("namespace", ""), meta["name"], _body(obj), req)
        self._warned(req, f"update {key[1]}/{meta['name']}")
        return out

    def update_status(self, key: Key, obj: Obj, status: Obj, manager: str = KCM, annotations: Obj | None = None) -> Obj:
        """Write ``status`` through the status subresource (an Update with ``subresource: status``)."""
        body = _body(obj)
        body["status"] = status
        if annotations is not None:
            body["metadata"]["annotations"] = annotations
        meta = meta_of(obj)
        req = self.request(manager)
        _, out = self.api.replace(
            self.rt_of(key, obj), meta.get("namespace", ""), meta["name"], body, req, subresource="status"
        )
        self._warned(req, f"status {key[1]}/{meta['name']}")
        return out

    def delete(self, key: Key, namespace: str, name: str, policy: str | None = None) -> bool:
        """Delete an object; False when it was already gone."""
        obj = self.store.get(key, namespace, name)
        if obj is None:
            return False
        options: Obj = {"propagationPolicy": policy} if policy else {}
        try:
            self.api.delete(self.rt_of(key, obj), namespace, name, options, self.request())
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise
        return True
