"""The apiserver's field manager: server-side apply, update tracking and ``managedFields``.

:func:`apply` and :func:`update` follow the kube-apiserver wrapper chain
(``fieldmanager.go``): last-applied upgrade (manager ``kubectl``), skip of
untracked objects, the ``before-first-apply`` takeover, the cap on Update
entries, manager identities, the structured merge (``merge/update.go``) and the
stripping of metadata that is never recorded. Everything works on plain dicts and
does no I/O; preconditions, validation and persistence are the caller's job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from core.kube.fieldpath import EMPTY, FieldSet, Path, go_escape, go_quote, path_string, union_all
from core.kube.schema import Node
from core.kube.structured import compare, copy_json, drop_applied_nulls, merge, prune, remove, to_field_set

MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

APPLY = "Apply"
UPDATE = "Update"

# Paths that are never recorded for any manager (stripmeta.go); removed exactly, not recursively.
STRIP_SET = FieldSet(
    [
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        *(
            ("f:metadata", "f:" + name)
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        ),
    ]
)

# Metadata an apply body may carry but the REST layer resets from the live object.
_BODY_DROPPED_META = ("managedFields", "creationTimestamp", "generation", "selfLink", "deletionTimestamp")

_MISSING: Any = object()


# --- identities and entries -----------------------------------------------------------------------


@dataclass(frozen=True)
class ManagerIdentity:
    """Who owns a set: ``(manager, operation, subresource)``, plus ``apiVersion`` for Update."""

    manager: str
    operation: str
    api_version: str = ""
    subresource: str = ""

    @staticmethod
    def of(manager: str, operation: str, api_version: str, subresource: str = "") -> ManagerIdentity:
        """The identity the apiserver builds for a request (Apply ignores the version)."""
        return ManagerIdentity(
            manager or "unknown", operation, api_version if operation != APPLY else "", subresource
        )

    @property
    def key(self) -> str:
        """The Go JSON encoding used as the map key upstream (and for sorting conflicts)."""
        d: dict[str, str] = {}
        if self.manager:
            d["manager"] = self.manager
        if self.operation:
            d["operation"] = self.operation
        if self.api_version:
            d["apiVersion"] = self.api_version
        if self.subresource:
            d["subresource"] = self.subresource
        return go_escape(json.dumps(d, separators=(",", ":"), ensure_ascii=False))

    def render(self) -> str:
        """As conflict messages print it: ``"x"``, ``"x" using v1``, ``"x" with subresource "s" using v1``."""
        text = go_quote(self.manager)
        if self.subresource:
            text += f" with subresource {go_quote(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


@dataclass(frozen=True)
class ManagedEntry:
    """One ``managedFields`` entry, decoded."""

    identity: ManagerIdentity
    api_version: str
    fields: FieldSet
    time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as the apiserver writes it (key order included)."""
        out: dict[str, Any] = {
            "manager": self.identity.manager,
            "operation": self.identity.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = self.fields.to_fieldsv1()
        if self.identity.subresource:
            out["subresource"] = self.identity.subresource
        return out


Managed = dict[ManagerIdentity, ManagedEntry]


@lru_cache(maxsize=4096)
def _epoch(t: str | None) -> int:
    if not t:
        return 0
    try:
        return int(datetime.fromisoformat(t).timestamp())
    except ValueError:
        return 0


def decode_managed_fields(entries: Any) -> Managed:
    """Decode a ``metadata.managedFields`` list; a later duplicate identity replaces an earlier one.

    Raises ``ValueError`` for entries the apiserver could not decode.
    """
    out: Managed = {}
    if entries is None:
        return out
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    for raw in entries:
        if not isinstance(raw, dict):
            raise ValueError("managedFields entry is not an object")
        fields_type = raw.get("fieldsType")
        if fields_type not in ("FieldsV1", None, ""):
            raise ValueError(f"unexpected fieldsType {fields_type!r}")
        fv1 = raw.get("fieldsV1")
        fs = FieldSet.from_fieldsv1(fv1) if fv1 else EMPTY
        op = str(raw.get("operation") or "")
        api_version = str(raw.get("apiVersion") or "")
        ident = ManagerIdentity(
            str(raw.get("manager") or ""),
            op,
            api_version if op != APPLY else "",
            str(raw.get("subresource") or ""),
        )
        time = raw.get("time")
        out.pop(ident, None)
        out[ident] = ManagedEntry(ident, api_version, fs, str(time) if time else None)
    return out


def _sort_key(e: ManagedEntry) -> tuple[Any, ...]:
    i = e.identity
    return (i.operation, _epoch(e.time), i.manager, e.api_version, i.subresource)


def encode_managed_fields(managed: Managed) -> list[dict[str, Any]]:
    """Entries in the apiserver's order: Apply first, then by time, manager, version, subresource."""
    return [e.to_dict() for e in sorted(managed.values(), key=_sort_key)]


def _decode_lenient(obj: dict[str, Any] | None) -> Managed:
    if not obj:
        return {}
    try:
        return decode_managed_fields((obj.get("metadata") or {}).get("managedFields"))
    except ValueError:
        return {}


# --- conflicts ------------------------------------------------------------------------------------


class ApplyConflict(Exception):
    """A 409 apply conflict; ``conflicts`` holds ``(manager identity, path)`` pairs."""

    code = 409

    def __init__(self, conflicts: Iterable[tuple[ManagerIdentity, Path]]) -> None:
        self.conflicts = list(conflicts)
        self.message = conflict_message(self.conflicts)
        super().__init__(self.message)

    @classmethod
    def from_sets(cls, sets: dict[ManagerIdentity, FieldSet]) -> ApplyConflict:
        """Conflicts ordered by manager identity, paths in SMD iteration order."""
        pairs = [(ident, p) for ident in sorted(sets, key=lambda i: i.key) for p in sets[ident].iter_sorted()]
        return cls(pairs)

    def causes(self) -> list[dict[str, str]]:
        """``details.causes`` of the Status body."""
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {ident.render()}",
                "field": path_string(p),
            }
            for ident, p in self.conflicts
        ]

    def status(self) -> dict[str, Any]:
        """The full 409 ``Status`` body."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": "Conflict",
            "details": {"causes": self.causes()},
            "code": 409,
        }


def conflict_message(conflicts: list[tuple[ManagerIdentity, Path]]) -> str:
    """The apiserver's conflict message (one line, or one block per manager)."""
    if len(conflicts) == 1:
        ident, p = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {ident.render()}: {path_string(p)}"
    by_manager: dict[ManagerIdentity, list[Path]] = {}
    for ident, p in conflicts:
        by_manager.setdefault(ident, []).append(p)
    lines: list[str] = []
    for ident in sorted(by_manager, key=lambda i: i.key):
        lines.append(f"conflicts with {ident.render()}:")
        lines.extend(f"- {path_string(p)}" for p in by_manager[ident])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


class _Conflicts(Exception):
    def __init__(self, sets: dict[ManagerIdentity, FieldSet]) -> None:
        super().__init__("conflicts")
        self.sets = sets


# --- per-kind tables ------------------------------------------------------------------------------

_POD_TEMPLATE: dict[str, Any] = {"metadata": {}, "spec": {"containers": None}}

# Nodes present in the Go zero value of a kind (non-pointer structs), for "." on creation (§1.9).
_ZERO: dict[tuple[str, str], dict[str, Any]] = {
    ("apps", "Deployment"): {"spec": {"template": _POD_TEMPLATE, "strategy": {}}, "status": {}},
    ("apps", "ReplicaSet"): {"spec": {"template": _POD_TEMPLATE}, "status": {}},
    ("apps", "StatefulSet"): {"spec": {"template": _POD_TEMPLATE, "updateStrategy": {}}, "status": {}},
    ("apps", "DaemonSet"): {"spec": {"template": _POD_TEMPLATE, "updateStrategy": {}}, "status": {}},
    ("batch", "Job"): {"spec": {"template": _POD_TEMPLATE}, "status": {}},
    ("batch", "CronJob"): {
        "spec": {"jobTemplate": {"metadata": {}, "spec": {"template": _POD_TEMPLATE}}},
        "status": {},
    },
    ("", "Pod"): {"spec": {"containers": None}, "status": {}},
    ("", "PodTemplate"): {"template": _POD_TEMPLATE},
    ("", "ReplicationController"): {"spec": {}, "status": {}},
    ("", "Service"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("", "PersistentVolumeClaim"): {"spec": {"resources": {}}, "status": {}},
    ("networking.k8s.io", "Ingress"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("autoscaling", "HorizontalPodAutoscaler"): {"spec": {"scaleTargetRef": {}}, "status": {}},
}


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def zero_object(api_version: str, kind: str, node: Node | None = None) -> dict[str, Any]:
    """The structural part of the kind's Go zero value (what a POST compares against).

    Built-in kinds always have ``metadata`` and, when declared, ``spec``/``status``
    objects; custom resources start from nothing.
    """
    base = _ZERO.get((_group(api_version), kind))
    if node is None or not node.name:
        return copy_json(base) if base is not None else {}
    out: dict[str, Any] = {"metadata": {}}
    for name in ("spec", "status"):
        if node.kind == "struct" and node.field(name) is not None:
            out[name] = {}
    if base is not None:
        out.update(copy_json(base))
    return out


def reset_fields(api_version: str, kind: str, subresource: str = "", *, builtin: bool = True) -> FieldSet:
    """Paths the endpoint's strategy resets, so nobody owns them through it (§1.7).

    ``/status`` ignores ``spec`` (and, for Deployments, ``metadata.labels``); the
    main resource of a built-in kind ignores ``status``. For custom resources the
    main endpoint resets nothing here: with a status subresource the caller drops
    ``status`` from bodies (or passes ``reset`` explicitly); without one, ``status``
    is an ordinary field.
    """
    if subresource == "status":
        paths: list[Path] = [("f:spec",)]
        if (_group(api_version), kind) == ("apps", "Deployment"):
            paths.append(("f:metadata", "f:labels"))
        return FieldSet(paths)
    return FieldSet([("f:status",)]) if builtin else EMPTY


# --- object helpers -------------------------------------------------------------------------------


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    out = dict(obj)
    out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _overlay(skeleton: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for k, sv in skeleton.items():
        if k not in out:
            out[k] = copy_json(sv)
        elif isinstance(sv, dict) and sv and isinstance(out[k], dict):
            out[k] = _overlay(sv, out[k])
    return out


def _set_managed(obj: dict[str, Any], managed: Managed) -> None:
    meta = obj.get("metadata")
    if managed:
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        meta["managedFields"] = encode_managed_fields(managed)
    elif isinstance(meta, dict):
        meta.pop("managedFields", None)


def _without_times(entries: Any) -> Any:
    if not isinstance(entries, list):
        return entries
    stripped = [{k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e for e in entries]
    if all(isinstance(e, dict) for e in stripped):
        stripped.sort(
            key=lambda e: tuple(
                str(e.get(k, "")) for k in ("operation", "manager", "apiVersion", "subresource")
            )
        )
    return stripped


def _equal_ignoring_times(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ma = (a.get("metadata") or {}).get("managedFields")
    mb = (b.get("metadata") or {}).get("managedFields")
    if (ma is None) != (mb is None) or _without_times(ma) != _without_times(mb):
        return False
    return _without_managed_fields(a) == _without_managed_fields(b)


def _prepare_body(body: dict[str, Any], reset: FieldSet, node: Node) -> dict[str, Any]:
    patch = dict(body)
    meta = body.get("metadata")
    if isinstance(meta, dict):
        m = {k: v for k, v in meta.items() if k not in _BODY_DROPPED_META}
        for k in ("resourceVersion", "uid"):
            if k in m and m[k] is None:
                del m[k]
        patch["metadata"] = m
    return remove(patch, reset, node)


# --- the update core ------------------------------------------------------------------------------


def _track_update(
    managed: Managed,
    before: dict[str, Any],
    after: dict[str, Any],
    me: ManagerIdentity,
    api_version: str,
    node: Node,
    reset: FieldSet,
    now: str,
) -> Managed:
    """SMD ``Update`` for ``me``: others lose what changed; ``me`` gains what changed or was added."""
    added, modified, removed = compare(before, after, node)
    changed = added.union(modified).recursive_difference(reset)
    removed = removed.recursive_difference(reset)
    out: Managed = {}
    for ident, e in managed.items():
        fs = e.fields.difference(changed).difference(removed)
        if fs:
            out[ident] = e if fs is e.fields else replace(e, fields=fs)
    mine = changed.difference(STRIP_SET)
    if mine:
        prev = out.get(me)
        out[me] = ManagedEntry(me, api_version, mine.union(prev.fields) if prev else mine, now)
    return out


def _cap_updates(managed: Managed, limit: int = MAX_UPDATE_MANAGERS) -> Managed:
    """Merge the oldest Update entries per version into ``ancient-changes`` (capmanagers.go)."""
    updaters = [i for i in managed if i.operation != APPLY]
    if len(updaters) <= limit:
        return managed
    out = dict(managed)
    updaters.sort(key=lambda i: (_epoch(out[i].time), i.key))
    first_per_version: dict[str, ManagerIdentity] = {}
    length = len(updaters)
    for ident in updaters:
        if length <= limit:
            break
        e = out[ident]
        bucket = ManagerIdentity(ANCIENT_CHANGES, UPDATE, e.api_version)
        first = first_per_version.get(e.api_version)
        if first is None:
            first_per_version[e.api_version] = ident
            continue
        if bucket not in out:
            moved = out.pop(first)
            out[bucket] = ManagedEntry(bucket, moved.api_version, moved.fields, moved.time)
        if ident == bucket:
            moved = out.pop(first)
            out[bucket] = ManagedEntry(bucket, e.api_version, e.fields.union(moved.fields), e.time)
        else:
            b = out[bucket]
            out[bucket] = ManagedEntry(bucket, e.api_version, e.fields.union(b.fields), e.time)
            del out[ident]
        length -= 1
    return out


def _apply_core(
    live_view: dict[str, Any],
    patch: dict[str, Any],
    managed: Managed,
    me: ManagerIdentity,
    api_version: str,
    node: Node,
    reset: FieldSet,
    force: bool,
) -> tuple[dict[str, Any], Managed]:
    """SMD ``Apply``: merge, own the applied set, prune, then resolve conflicts with others."""
    managed = dict(managed)
    merged = merge(live_view, patch, node)
    new_set = to_field_set(patch, node).recursive_difference(reset)
    prev = managed.get(me)
    managed[me] = ManagedEntry(me, api_version, new_set, prev.time if prev else None)
    if prev is not None and prev.fields:
        prune(merged, prev.fields, union_all(e.fields for e in managed.values()), node)
    added, modified, removed = compare(live_view, merged, node)
    changed = added.union(modified).recursive_difference(reset)
    removed = removed.recursive_difference(reset)
    conflicts: dict[ManagerIdentity, FieldSet] = {}
    if changed:
        for ident, e in managed.items():
            if ident != me:
                hit = e.fields.intersection(changed)
                if hit:
                    conflicts[ident] = hit
    if conflicts and not force:
        raise _Conflicts(conflicts)
    for ident, e in list(managed.items()):
        if ident == me:
            continue
        fs = e.fields.difference(changed).difference(removed)
        if not fs:
            del managed[ident]
        elif fs is not e.fields:
            managed[ident] = replace(e, fields=fs)
    mine = new_set.difference(STRIP_SET)
    if mine:
        managed[me] = replace(managed[me], fields=mine)
    else:
        del managed[me]
    drop_applied_nulls(merged, patch, node)
    return merged, managed


def _allowed_from_last_applied(live_view: dict[str, Any], node: Node, api_version: str) -> FieldSet:
    """Paths whose live value still equals the client-side last-applied annotation (E7)."""
    ann = ((live_view.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not ann or not isinstance(ann, str):
        return EMPTY
    try:
        last = json.loads(ann)
    except ValueError:
        return EMPTY
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return EMPTY
    try:
        owned = to_field_set(last, node)
        added, modified, removed = compare(last, live_view, node)
    except ValueError:
        return EMPTY
    return owned.difference(modified).difference(removed).difference(added)


def build_last_applied(body: dict[str, Any]) -> str:
    """The last-applied annotation the server writes for ``kubectl`` (body without the annotation)."""
    obj = copy_json(body)
    meta = obj.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)
    return go_escape(json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True)) + "\n"


# --- public entry points --------------------------------------------------------------------------


def apply(
    live: dict[str, Any] | None,
    body: dict[str, Any],
    *,
    manager: str,
    node: Node,
    api_version: str,
    force: bool,
    now: str,
    subresource: str = "",
    default: Callable[[dict[str, Any]], Any] | None = None,
    reset: FieldSet | None = None,
) -> dict[str, Any]:
    """Server-side apply ``body`` over ``live`` (None to create) as ``manager``.

    Returns the new object with ``metadata.managedFields``; when nothing but
    managedFields timestamps would change, returns a copy equal to ``live``.
    ``default`` runs on the merged object when it changed (it may mutate in place
    or return a new dict). ``reset`` overrides :func:`reset_fields`. Raises
    :class:`ApplyConflict` (409) without ``force``, ``ValueError`` for undecodable
    live managedFields, and :class:`~core.kube.structured.StructuredError` for
    bodies that do not fit the schema (duplicate or missing list keys).
    """
    kind = str(body.get("kind") or (live or {}).get("kind") or "")
    if reset is None:
        reset = reset_fields(api_version, kind, subresource, builtin=bool(node.name))
    if live is not None:
        try:
            managed = decode_managed_fields((live.get("metadata") or {}).get("managedFields"))
        except ValueError as exc:
            raise ValueError(f"failed to decode managed fields: {exc}") from None
        live_view = _without_managed_fields(live)
    else:
        managed = {}
        live_view = {}
    patch = _prepare_body(body, reset, node)

    if live is not None and not managed:
        skeleton = zero_object(api_version, kind, node)
        first = ManagerIdentity.of(BEFORE_FIRST_APPLY, UPDATE, api_version, subresource)
        managed = _track_update(
            managed, skeleton, _overlay(skeleton, live_view), first, api_version, node, reset, now
        )
        managed = _cap_updates(managed)

    me = ManagerIdentity.of(manager, APPLY, api_version, subresource)
    try:
        merged, managed = _apply_core(live_view, patch, managed, me, api_version, node, reset, force)
    except _Conflicts as exc:
        if manager != "kubectl" or live is None:
            raise ApplyConflict.from_sets(exc.sets) from None
        allowed = _allowed_from_last_applied(live_view, node, api_version)
        remaining = {i: s.difference(allowed) for i, s in exc.sets.items()}
        remaining = {i: s for i, s in remaining.items() if s}
        if remaining:
            raise ApplyConflict.from_sets(remaining) from None
        merged, managed = _apply_core(live_view, patch, managed, me, api_version, node, reset, True)

    if merged != live_view:
        if default is not None:
            res = default(merged)
            if isinstance(res, dict):
                merged = res
        if me in managed:
            managed[me] = replace(managed[me], time=now)

    if manager == "kubectl":
        meta = merged.get("metadata")
        ann = meta.get("annotations") if isinstance(meta, dict) else None
        if isinstance(ann, dict) and ann.get(LAST_APPLIED):
            ann[LAST_APPLIED] = build_last_applied(body)

    _set_managed(merged, managed)
    if live is not None and _equal_ignoring_times(merged, live):
        return copy_json(live)
    return merged


def _is_reset(entries: Any) -> bool:
    if not isinstance(entries, list):
        return False
    if not entries:
        return True
    return len(entries) == 1 and isinstance(entries[0], dict) and not any(entries[0].values())


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    node: Node,
    api_version: str,
    now: str,
    subresource: str = "",
    zero: dict[str, Any] | None = None,
    reset: FieldSet | None = None,
) -> dict[str, Any]:
    """Record a non-apply write (POST when ``old`` is None, PUT, non-apply PATCH) by ``manager``.

    Returns ``new`` (a shallow copy) with ``metadata.managedFields`` computed (§1.9):
    the writer gains what changed or was added, everyone loses what changed or was
    removed. ``managedFields`` carried by ``new`` are used when decodable (``[]`` or
    ``[{}]`` clears them); an existing object without entries stays untracked. On
    create, ``new`` should already be defaulted; ``zero`` overrides the kind's
    zero-value skeleton (:func:`zero_object`).
    """
    kind = str(new.get("kind") or (old or {}).get("kind") or "")
    if reset is None:
        reset = reset_fields(api_version, kind, subresource, builtin=bool(node.name))
    result = dict(new)
    meta_in = new.get("metadata")
    incoming: Any = _MISSING
    if isinstance(meta_in, dict):
        meta = dict(meta_in)
        incoming = meta.pop("managedFields", _MISSING)
        result["metadata"] = meta

    managed: Managed
    if subresource:
        managed = _decode_lenient(old)
    elif _is_reset(incoming):
        managed = {}
    else:
        managed = {}
        if isinstance(incoming, list) and incoming:
            try:
                managed = decode_managed_fields(incoming)
            except ValueError:
                managed = {}
        if not managed:
            managed = _decode_lenient(old)
    if not managed and old is not None:
        return result

    skeleton = zero if zero is not None else zero_object(api_version, kind, node)
    before = _overlay(skeleton, _without_managed_fields(old)) if old is not None else copy_json(skeleton)
    after = _overlay(skeleton, result)
    me = ManagerIdentity.of(manager, UPDATE, api_version, subresource)
    managed = _track_update(managed, before, after, me, api_version, node, reset, now)
    managed = _cap_updates(managed)
    _set_managed(result, managed)
    return result


def owned_by(obj: dict[str, Any]) -> Managed:
    """The decoded entries of an object (empty when absent or undecodable)."""
    return _decode_lenient(obj)
