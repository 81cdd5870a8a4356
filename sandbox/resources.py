"""The resource types the sandbox serves: built-in kinds and CRD-defined kinds.

A :class:`ResourceType` carries everything discovery, routing, the store and
the field manager need to know about one REST resource.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from core.kube import schema
from core.kube.schema import Node

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NS_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status", "scale"
    crd: bool = False
    # For CRDs: the openAPIV3Schema node, and the scale subresource paths.
    crd_schema: Node | None = field(default=None, compare=False, hash=False)
    scale_paths: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``configmaps``: the name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def key(self) -> tuple[str, str]:
        """Storage identity: (group, plural). One stored version per resource."""
        return (self.group, self.plural)

    @property
    def schema(self) -> Node | None:
        if self.crd:
            return self.crd_schema
        return schema.for_object(self.api_version, self.kind)

    def url(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        return base


def _rt(
    gv: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    subs: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=cats,
        verbs=verbs,
        subresources=subs,
    )


BUILTIN: tuple[ResourceType, ...] = (
    _rt("v1", "ConfigMap", "configmaps", short=("cm",)),
    _rt("v1", "Endpoints", "endpoints", short=("ep",)),
    _rt("v1", "Event", "events", short=("ev",)),
    _rt("v1", "LimitRange", "limitranges", short=("limits",)),
    _rt("v1", "Namespace", "namespaces", namespaced=False, short=("ns",), subs=("status",), verbs=NS_VERBS),
    _rt("v1", "Node", "nodes", namespaced=False, short=("no",), subs=("status",)),
    _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), subs=("status",)),
    _rt("v1", "PersistentVolume", "persistentvolumes", namespaced=False, short=("pv",), subs=("status",)),
    _rt("v1", "Pod", "pods", short=("po",), cats=("all",), subs=("status",)),
    _rt("v1", "PodTemplate", "podtemplates"),
    _rt("v1", "ResourceQuota", "resourcequotas", short=("quota",), subs=("status",)),
    _rt("v1", "Secret", "secrets"),
    _rt("v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _rt("v1", "Service", "services", short=("svc",), cats=("all",), subs=("status",)),
    _rt(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short=("crd", "crds"),
        cats=("api-extensions",),
        subs=("status",),
    ),
    _rt("apps/v1", "ControllerRevision", "controllerrevisions"),
    _rt("apps/v1", "DaemonSet", "daemonsets", short=("ds",), cats=("all",), subs=("status",)),
    _rt("apps/v1", "Deployment", "deployments", short=("deploy",), cats=("all",), subs=("scale", "status")),
    _rt("apps/v1", "ReplicaSet", "replicasets", short=("rs",), cats=("all",), subs=("scale", "status")),
    _rt("apps/v1", "StatefulSet", "statefulsets", short=("sts",), cats=("all",), subs=("scale", "status")),
    _rt(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        cats=("all",),
        subs=("status",),
    ),
    _rt("batch/v1", "CronJob", "cronjobs", short=("cj",), cats=("all",), subs=("status",)),
    _rt("batch/v1", "Job", "jobs", cats=("all",), subs=("status",)),
    _rt("coordination.k8s.io/v1", "Lease", "leases"),
    _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", namespaced=False),
    _rt("networking.k8s.io/v1", "Ingress", "ingresses", short=("ing",), subs=("status",)),
    _rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), subs=("status",)),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    _rt("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io/v1", "Role", "roles"),
)

# Order in which groups appear in /apis (as kube-apiserver lists them).
GROUP_ORDER = (
    "apiextensions.k8s.io",
    "apps",
    "autoscaling",
    "batch",
    "coordination.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
)


class Registry:
    """Served resource types; CRDs add and remove theirs at run time."""

    generation: int = 0  # bumped on every change of the served types (cache invalidation)

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._types: list[ResourceType] = list(BUILTIN)
        self._index()

    def _index(self) -> None:
        self.generation += 1
        self._by_path = {(t.group, t.version, t.plural): t for t in self._types}
        self._by_gvk = {(t.group, t.version, t.kind): t for t in self._types}
        self._by_key = {t.key: t for t in self._types}

    @property
    def types(self) -> list[ResourceType]:
        return list(self._types)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_gvk(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def by_key(self, key: tuple[str, str]) -> ResourceType | None:
        return self._by_key.get(key)

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions (preferred first); the core group is ''."""
        out: dict[str, list[str]] = {}
        for t in self._types:
            versions = out.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (t for t in self._types if t.group == group and t.version == version), key=lambda t: t.plural
        )

    def set_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Register (or re-register) the kinds a CRD defines; returns them."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        added: list[ResourceType] = []
        with self._lock:
            self._types = [t for t in self._types if not (t.crd and t.group == group and t.plural == names.get("plural"))]
            for v in spec.get("versions") or []:
                if not v.get("served", True):
                    continue
                sch = (v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
                subs = v.get("subresources") or {}
                sub_names: tuple[str, ...] = tuple(
                    s for s in ("scale", "status") if s in subs
                )
                scale = subs.get("scale") or {}
                rt = ResourceType(
                    group=group,
                    version=v.get("name", ""),
                    kind=names.get("kind", ""),
                    plural=names.get("plural", ""),
                    singular=names.get("singular") or names.get("kind", "").lower(),
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    short_names=tuple(names.get("shortNames") or ()),
                    categories=tuple(names.get("categories") or ()),
                    subresources=sub_names,
                    crd=True,
                    crd_schema=schema.from_openapi_v3(sch),
                    scale_paths={k: scale[k] for k in ("specReplicasPath", "statusReplicasPath", "labelSelectorPath") if k in scale},
                )
                self._types.append(rt)
                added.append(rt)
            self._index()
        return added

    def remove_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        plural = (spec.get("names") or {}).get("plural")
        with self._lock:
            self._types = [t for t in self._types if not (t.crd and t.group == group and t.plural == plural)]
            self._index()
