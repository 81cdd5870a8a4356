"""Value types shared across the core: configuration, object references,
revisions, plans, health and sync vocabulary. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class SyncStatus(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class Health(StrEnum):
    """Argo CD's health vocabulary."""

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def severity(self) -> int:
        """Argo's order, best first: an app's health is the worst of its objects'."""
        return _HEALTH_ORDER.index(self)

    @staticmethod
    def worst(values: list[Health]) -> Health:
        return max(values, key=lambda h: h.severity) if values else Health.HEALTHY


_HEALTH_ORDER = [Health.HEALTHY, Health.SUSPENDED, Health.PROGRESSING, Health.MISSING, Health.DEGRADED, Health.UNKNOWN]


@dataclass(frozen=True, order=True)
class ObjRef:
    """Identity of a Kubernetes object (the version is not part of identity)."""

    group: str
    kind: str
    namespace: str
    name: str

    @property
    def inventory_id(self) -> str:
        """Flux's inventory ID: ``<namespace>_<name>_<group>_<Kind>``."""
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @classmethod
    def from_inventory_id(cls, value: str) -> ObjRef:
        namespace, name, group, kind = value.split("_", 3)
        return cls(group, kind, namespace, name)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjRef:
        api_version = obj.get("apiVersion", "")
        group = api_version.rpartition("/")[0]
        meta = obj.get("metadata") or {}
        return cls(group, obj.get("kind", ""), meta.get("namespace") or "", meta.get("name", ""))

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


@dataclass(frozen=True)
class Revision:
    """A commit of a source."""

    sha: str
    author: str = ""
    message: str = ""
    time: str = ""  # RFC 3339
    branch: str = ""

    @property
    def short(self) -> str:
        return self.sha[:7]

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


@dataclass(frozen=True)
class Location:
    """Where something came from: file and 1-based line (0 when unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    """A user-facing error: what is wrong and where (file:line, object, field)."""

    message: str
    location: Location | None = None
    obj: str = ""  # e.g. "Deployment/web/api"
    field: str = ""  # e.g. "spec.replicas"
    app: str = ""

    def __str__(self) -> str:
        parts = []
        if self.location:
            parts.append(str(self.location))
        if self.obj:
            parts.append(self.obj)
        if self.field:
            parts.append(self.field)
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


# ----- configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    context: str = ""
    kubeconfig: str = ""
    sandbox: bool = False


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: str = ""  # a local repository (watched)
    url: str = ""  # a remote repository (fetched on interval)
    branch: str = "main"
    interval: float = 60.0  # seconds


@dataclass(frozen=True)
class IgnoreRule:
    """Ignore differences at a JSON pointer and/or owned by a field manager."""

    pointer: str = ""
    manager: str = ""
    kind: str = ""
    group: str | None = None
    name: str = ""
    namespace: str = ""

    def applies_to(self, ref: ObjRef) -> bool:
        if self.kind and self.kind != ref.kind:
            return False
        if self.group is not None and self.group != ref.group:
            return False
        if self.name and self.name != ref.name:
            return False
        return not (self.namespace and self.namespace != ref.namespace)


@dataclass(frozen=True)
class AppSpec:
    name: str
    source: str
    path: str = "."
    cluster: str = ""
    namespace: str = ""
    sync: str = "manual"  # auto | manual
    self_heal: bool = False
    prune: bool = False
    interval: float = 300.0
    depends_on: tuple[str, ...] = ()
    ignore: tuple[IgnoreRule, ...] = ()
    suspend: bool = False
    timeout: float = 300.0  # health wait after a sync
    location: Location | None = None


@dataclass(frozen=True)
class Config:
    path: str
    clusters: dict[str, ClusterSpec] = field(default_factory=dict)
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    apps: dict[str, AppSpec] = field(default_factory=dict)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)


# ----- plans -------------------------------------------------------------------------------


class Action(StrEnum):
    CREATE = "create"
    CONFIGURE = "configure"
    UNCHANGED = "unchanged"
    PRUNE = "prune"
    ERROR = "error"


@dataclass
class PlanItem:
    ref: ObjRef
    action: Action
    desired: dict[str, Any] | None = None  # server's dry-run answer (masked before it leaves the core)
    live: dict[str, Any] | None = None
    message: str = ""


@dataclass
class Plan:
    app: str
    revision: Revision | None
    items: list[PlanItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def has_changes(self) -> bool:
        return any(i.action in (Action.CREATE, Action.CONFIGURE, Action.PRUNE) for i in self.items)
