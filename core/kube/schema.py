"""Kubernetes type schemas and merge markers, read from the JSON schemas that
``kubernetes-validate`` ships.

A :class:`Node` is a view of one schema node with ``$ref`` resolved. It tells
the structured-merge code what a value is (struct, map, list, scalar) and how
it merges: list type (``atomic`` / ``set`` / ``map`` with keys), map type
(granular or atomic) and the strategic-merge-patch markers.

Rules for unmarked nodes follow kube-openapi's schemaconv: a list without
``x-kubernetes-list-type`` is atomic unless it carries
``x-kubernetes-patch-strategy: merge`` (then a map keyed by the patch merge key,
or a set for scalar items); objects with properties are granular structs;
``additionalProperties`` maps are granular. Nodes with no schema at all are
*deduced*: maps granular, lists atomic.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = "v1.32.0-local"

NodeKind = Literal["struct", "map", "list", "scalar", "deduced"]
ListType = Literal["atomic", "set", "map"]

# Defaults of list-map key fields. The Go types carry `+default="TCP"`, the JSON
# schemas do not, so they are written here (server-side-apply-cases.md 1.5).
_KEY_DEFAULTS: dict[str, dict[str, Any]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.EndpointPort": {"protocol": "TCP"},
}

# Property-level overrides where the Go marker differs from the referenced type's.
_GRANULAR_OVERRIDES = {
    ("io.k8s.api.core.v1.PersistentVolumeSpec", "claimRef"),
}


@dataclass(eq=False)
class Node:
    """One schema node. Children are built lazily and cached."""

    kind: NodeKind
    name: str = ""  # definition name when the node came from a $defs entry
    atomic: bool = False  # x-kubernetes-map-type: atomic (struct or map)
    list_type: ListType = "atomic"
    keys: tuple[str, ...] = ()
    key_defaults: dict[str, Any] = field(default_factory=dict)
    patch_strategy: str = ""
    patch_merge_key: str = ""
    scalar_type: str = ""  # string, integer, number, boolean, int-or-string, quantity, ...
    preserve_unknown: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    _resolver: SchemaSet | None = field(default=None, repr=False)
    _fields: dict[str, Node | None] = field(default_factory=dict, repr=False)
    _elem: Node | None = field(default=None, repr=False)
    _children: dict[str, tuple[Node, bool]] = field(default_factory=dict, repr=False)

    def field(self, name: str) -> Node | None:
        """The node of struct field ``name``; None when the struct has no such field.

        For maps and deduced nodes every key has the element node.
        """
        if self.kind == "map":
            return self.elem
        if self.kind == "deduced":
            return DEDUCED
        if self.kind != "struct":
            return None
        if name in self._fields:
            return self._fields[name]
        props = self.raw.get("properties") or {}
        child: Node | None = None
        if name in props:
            assert self._resolver is not None
            child = self._resolver.build(props[name], parent=self.name, prop=name)
        elif self.preserve_unknown:
            child = DEDUCED
        self._fields[name] = child
        return child

    def child(self, name: str) -> tuple[Node, bool]:
        """The node for key ``name`` of a struct/map/deduced value, and whether it is a declared field.

        Undeclared fields of a struct get the deduced node (cached per name).
        """
        hit = self._children.get(name)
        if hit is None:
            node = self.field(name)
            declared = self.kind == "struct" and name in (self.raw.get("properties") or {})
            hit = (node if node is not None else DEDUCED, declared)
            self._children[name] = hit
        return hit

    def field_names(self) -> list[str]:
        return list((self.raw.get("properties") or {}).keys())

    @property
    def elem(self) -> Node:
        """The element node of a list or map (deduced when not declared)."""
        if self._elem is None:
            raw: Any = None
            if self.kind == "list":
                raw = self.raw.get("items")
            elif self.kind == "map":
                raw = self.raw.get("additionalProperties")
            if isinstance(raw, dict) and self._resolver is not None:
                self._elem = self._resolver.build(raw)
            else:
                self._elem = DEDUCED
        return self._elem

    def required(self) -> list[str]:
        return list(self.raw.get("required") or [])


DEDUCED = Node(kind="deduced")


def _types(raw: dict[str, Any]) -> set[str]:
    t = raw.get("type")
    if isinstance(t, list):
        return {x for x in t if x != "null"}
    if isinstance(t, str):
        return {t}
    return set()


class SchemaSet:
    """A set of JSON-schema definitions (``$defs``) that nodes are built from."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self._by_name: dict[str, Node] = {}
        self._lock = threading.Lock()
        self._gvk: dict[tuple[str, str, str], str] = {}
        for name, d in defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind") or []:
                self._gvk[(gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))] = name

    def definition_for(self, group: str, version: str, kind: str) -> str | None:
        return self._gvk.get((group, version, kind))

    def for_gvk(self, group: str, version: str, kind: str) -> Node | None:
        name = self.definition_for(group, version, kind)
        return self.named(name) if name else None

    def named(self, name: str) -> Node:
        node = self._by_name.get(name)
        if node is None:
            with self._lock:
                node = self._by_name.get(name)
                if node is None:
                    node = self._build_raw(self.defs[name], name)
                    self._by_name[name] = node
        return node

    def build(self, raw: dict[str, Any], parent: str = "", prop: str = "") -> Node:
        """Build the node for an inline schema (a property, items or additionalProperties)."""
        ref = raw.get("$ref")
        if isinstance(ref, str):
            target = self.named(ref.rsplit("/", 1)[-1])
            overrides = {k: v for k, v in raw.items() if k.startswith("x-kubernetes-")}
            if (parent, prop) in _GRANULAR_OVERRIDES and target.atomic:
                return _copy(target, atomic=False)
            changes: dict[str, Any] = {}
            if overrides.get("x-kubernetes-map-type") == "atomic" and not target.atomic:
                changes["atomic"] = True
            if "x-kubernetes-patch-strategy" in overrides:
                changes["patch_strategy"] = overrides["x-kubernetes-patch-strategy"]
            if "x-kubernetes-patch-merge-key" in overrides:
                changes["patch_merge_key"] = overrides["x-kubernetes-patch-merge-key"]
            return _copy(target, **changes) if changes else target
        if "allOf" in raw and len(raw["allOf"]) == 1:
            merged = dict(raw["allOf"][0])
            merged.update({k: v for k, v in raw.items() if k != "allOf"})
            return self.build(merged, parent, prop)
        return self._build_raw(raw, "")

    def _build_raw(self, raw: dict[str, Any], name: str) -> Node:
        types = _types(raw)
        common: dict[str, Any] = {
            "name": name,
            "raw": raw,
            "_resolver": self,
            "patch_strategy": raw.get("x-kubernetes-patch-strategy", ""),
            "patch_merge_key": raw.get("x-kubernetes-patch-merge-key", ""),
            "preserve_unknown": bool(raw.get("x-kubernetes-preserve-unknown-fields")),
        }
        if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString" or raw.get("x-kubernetes-int-or-string"):
            return Node(kind="scalar", scalar_type="int-or-string", **common)
        if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            return Node(kind="scalar", scalar_type="quantity", **common)
        if "oneOf" in raw or "anyOf" in raw:
            return Node(kind="scalar", scalar_type="any", **common)
        if "array" in types:
            lt = raw.get("x-kubernetes-list-type")
            keys = tuple(raw.get("x-kubernetes-list-map-keys") or ())
            node = Node(kind="list", **common)
            if lt in ("atomic", "set", "map"):
                node.list_type = lt
            elif common["patch_strategy"] and "merge" in common["patch_strategy"].split(","):
                items = raw.get("items") or {}
                scalar_items = bool(_types(items) - {"object"}) and "$ref" not in items
                if common["patch_merge_key"] and not scalar_items:
                    node.list_type = "map"
                    keys = (common["patch_merge_key"],)
                else:
                    node.list_type = "set"
            if node.list_type == "map":
                node.keys = keys or ((common["patch_merge_key"],) if common["patch_merge_key"] else ())
                items = raw.get("items") or {}
                ref = items.get("$ref", "") if isinstance(items, dict) else ""
                node.key_defaults = _KEY_DEFAULTS.get(ref.rsplit("/", 1)[-1], {})
            return node
        if "object" in types or "properties" in raw or "additionalProperties" in raw:
            atomic = raw.get("x-kubernetes-map-type") == "atomic"
            if raw.get("properties"):
                return Node(kind="struct", atomic=atomic, **common)
            if isinstance(raw.get("additionalProperties"), dict):
                return Node(kind="map", atomic=atomic, **common)
            # A bare object (RawExtension, preserve-unknown-fields): structure deduced from the value.
            return Node(kind="deduced", atomic=atomic, **common)
        if types:
            return Node(kind="scalar", scalar_type=sorted(types)[0], **common)
        return Node(kind="deduced", **common)


def _copy(node: Node, **changes: Any) -> Node:
    fresh = Node(
        kind=node.kind,
        name=node.name,
        atomic=node.atomic,
        list_type=node.list_type,
        keys=node.keys,
        key_defaults=node.key_defaults,
        patch_strategy=node.patch_strategy,
        patch_merge_key=node.patch_merge_key,
        scalar_type=node.scalar_type,
        preserve_unknown=node.preserve_unknown,
        raw=node.raw,
        _resolver=node._resolver,
    )
    for k, v in changes.items():
        setattr(fresh, k, v)
    return fresh


def schema_dir() -> Path:
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / SCHEMA_VERSION


@cache
def builtin() -> SchemaSet:
    """The built-in Kubernetes definitions (loaded once per process)."""
    with open(schema_dir() / "_definitions.json", encoding="utf-8") as fh:
        data = json.load(fh)
    return SchemaSet(data["$defs"])


def for_object(api_version: str, kind: str) -> Node | None:
    """The schema node of a built-in kind, or None when the kind is not built in."""
    group, _, version = api_version.rpartition("/")
    return builtin().for_gvk(group, version, kind)


def from_openapi_v3(schema: dict[str, Any]) -> Node:
    """A node for a CRD's ``openAPIV3Schema``.

    ``metadata`` always gets the ObjectMeta schema, as the apiserver does. Lists
    without markers are atomic; maps are granular.
    """
    defs = builtin().defs
    local = SchemaSet(defs)
    raw = dict(schema)
    props = dict(raw.get("properties") or {})
    props["metadata"] = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    raw["properties"] = props
    raw.setdefault("type", "object")
    return local.build(raw)
