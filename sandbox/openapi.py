"""OpenAPI v3 documents (``/openapi/v3`` and ``/openapi/v3/<path>``) built from a Registry.

kubectl 1.32 reads them for ``apply``/``diff --server-side`` (the PATCH operation of
a kind must list ``fieldValidation`` and carry ``x-kubernetes-group-version-kind``),
for ``explain`` and for client-side strategic merge. Documents follow kube-apiserver's
layout: one per group version (``api/v1``, ``apis/apps/v1``), plus the small ``api``,
``apis``, ``apis/<group>`` and ``version`` documents. Schemas come from the
kubernetes-validate definitions (JSON-schema ``type: [x, "null"]`` becomes ``type: x``,
``$ref`` with siblings is wrapped in ``allOf``) and, for custom resources, from the
CRD's ``openAPIV3Schema``.

Built documents are cached per Registry and rebuilt only for the group versions whose
types changed. Returned documents are shared: treat them as read-only.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from core.kube import schema
from sandbox.discovery import GIT_VERSION, served_groups
from sandbox.resources import SUB_VERBS, Registry, ResourceType

OPENAPI_VERSION = "3.0.0"
DEFS_PREFIX = "#/$defs/"
SCHEMAS_PREFIX = "#/components/schemas/"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = META + "ObjectMeta"
LIST_META = META + "ListMeta"
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH = META + "Patch"
RESOURCE_LIST = META + "APIResourceList"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

SCALE_GVK = {"group": "autoscaling", "kind": "Scale", "version": "v1"}
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
CRD_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)

# Query parameters: name -> (type, description).
_QUERY: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK events in a watch; the server may send them."),
    "continue": ("string", "The continue token of a previous paged list, to fetch the next page."),
    "dryRun": ("string", "When present, modifications are not persisted. Valid value: All."),
    "fieldManager": ("string", "Name of the actor making the change; required for apply patches."),
    "fieldSelector": ("string", "Restrict the objects returned by their fields. Defaults to everything."),
    "fieldValidation": (
        "string",
        "How to handle unknown or duplicate fields in the request: Ignore, Warn (default) or Strict.",
    ),
    "force": ("boolean", "Force an apply request: take over fields owned by other managers."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 deletes immediately."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean",
        "Delete an object whose stored data cannot be read (unsafe, alpha).",
    ),
    "labelSelector": ("string", "Restrict the objects returned by their labels. Defaults to everything."),
    "limit": ("integer", "Maximum number of objects in one list page; more pages carry a continue token."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy. Orphan the dependents when true."),
    "pretty": ("string", "If 'true', the output is pretty printed."),
    "propagationPolicy": ("string", "Garbage collection of dependents: Orphan, Background or Foreground."),
    "resourceVersion": ("string", "Constrain the resource version a list or watch is served from."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    "sendInitialEvents": ("boolean", "Start a watch with synthetic events for the current state."),
    "timeoutSeconds": ("integer", "Timeout of the list or watch call, regardless of activity."),
    "watch": ("boolean", "Watch for changes and return them as a stream of add, update and remove events."),
}
_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_PARAMS = (
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)
_DELETECOLLECTION_PARAMS = (
    *_DELETE_PARAMS,
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
)


# ----- schema conversion ---------------------------------------------------------------------


def convert_schema(node: Any) -> Any:
    """A JSON-schema node (kubernetes-validate style) as an OpenAPI 3.0 schema node."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
            elif types:
                out["oneOf"] = [{"type": t} for t in types]
        elif key == "$ref" and isinstance(value, str):
            out[key] = SCHEMAS_PREFIX + value[len(DEFS_PREFIX) :] if value.startswith(DEFS_PREFIX) else value
        elif key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: convert_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = convert_schema(value)
        elif key in ("allOf", "oneOf", "anyOf", "items") and isinstance(value, list):
            out[key] = [convert_schema(sub) for sub in value]
        else:
            out[key] = value
    if "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; kube wraps the reference instead.
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


_builtin_lock = threading.Lock()
_builtin_components: dict[str, dict[str, Any]] = {}


def builtin_component(name: str) -> dict[str, Any] | None:
    """The OpenAPI v3 schema of a built-in definition (memoised), or None if unknown."""
    with _builtin_lock:
        done = _builtin_components.get(name)
        if done is not None:
            return done
        raw = schema.builtin().defs.get(name)
        if raw is None:
            return None
        conv: dict[str, Any] = convert_schema(raw)
        if name == INT_OR_STRING:
            conv = {**conv, "format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}
        props = conv.get("properties")
        if conv.get("x-kubernetes-group-version-kind") and isinstance(props, dict):
            # kubernetes-validate pins apiVersion/kind with enums; kube's documents do not.
            conv["properties"] = {
                k: ({kk: vv for kk, vv in v.items() if kk != "enum"} if k in ("apiVersion", "kind") else v)
                for k, v in props.items()
            }
        _builtin_components[name] = conv
        return conv


def _type_meta_props() -> dict[str, Any]:
    """apiVersion/kind/metadata properties as kube publishes them on every kind."""
    pod = builtin_component("io.k8s.api.core.v1.Pod") or {}
    props = pod.get("properties") or {}
    return {k: props[k] for k in ("apiVersion", "kind", "metadata") if k in props}


def crd_schema_name(group: str, version: str, kind: str) -> str:
    """Component name of a custom kind: reversed group, version, kind (com.example.v1.Widget)."""
    return ".".join(p for p in [*reversed(group.split(".")), version, kind] if p)


def _crd_components(rt: ResourceType) -> dict[str, dict[str, Any]]:
    """The kind and list schemas of a custom resource type (an open object without a schema)."""
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    raw = rt.crd_schema.raw if rt.crd_schema is not None else open_object
    kind_schema: dict[str, Any] = convert_schema(raw)
    meta = _type_meta_props()
    kind_schema["properties"] = {**(kind_schema.get("properties") or {}), **meta}
    kind_schema.setdefault("type", "object")
    kind_schema["x-kubernetes-group-version-kind"] = [gvk]
    name = crd_schema_name(rt.group, rt.version, rt.kind)
    list_meta = {"allOf": [{"$ref": SCHEMAS_PREFIX + LIST_META}], "description": "Standard list metadata."}
    list_schema = {
        "description": f"{rt.kind}List is a list of {rt.kind}",
        "properties": {
            "apiVersion": meta.get("apiVersion", {"type": "string"}),
            "items": {
                "description": f"List of {rt.plural}.",
                "items": {"$ref": SCHEMAS_PREFIX + name},
                "type": "array",
            },
            "kind": meta.get("kind", {"type": "string"}),
            "metadata": list_meta,
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [{**gvk, "kind": rt.kind + "List"}],
    }
    return {name: kind_schema, f"{name}List": list_schema}


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMAS_PREFIX):
            found.add(ref[len(SCHEMAS_PREFIX) :])
        for value in node.values():
            if isinstance(value, dict | list):
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _closure(paths: dict[str, Any], local: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every schema reachable from ``paths`` (local CRD schemas first, then built-ins)."""
    pending: set[str] = set()
    _refs(paths, pending)
    out: dict[str, Any] = {}
    while pending:
        name = pending.pop()
        if name in out:
            continue
        comp = local.get(name) or builtin_component(name)
        if comp is None:
            continue
        out[name] = comp
        found: set[str] = set()
        _refs(comp, found)
        pending |= found - out.keys()
    return dict(sorted(out.items()))


# ----- paths ---------------------------------------------------------------------------------


def _camel(group: str) -> str:
    parts = group.removesuffix(".k8s.io").replace("-", ".").split(".")
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


def _gv_id(group: str, version: str) -> str:
    return (_camel(group) if group else "Core") + version[:1].upper() + version[1:]


def _group_tag(group: str) -> str:
    camel = _camel(group) if group else "Core"
    return camel[:1].lower() + camel[1:]


def _query(name: str) -> dict[str, Any]:
    typ, desc = _QUERY[name]
    return {"description": desc, "in": "query", "name": name, "schema": {"type": typ, "uniqueItems": True}}


def _path_param(name: str, desc: str) -> dict[str, Any]:
    return {
        "description": desc,
        "in": "path",
        "name": name,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


def _content(ref: str, *types: str) -> dict[str, Any]:
    return {t: {"schema": {"$ref": SCHEMAS_PREFIX + ref}} for t in (types or ("application/json",))}


def _responses(ref: str, codes: dict[str, str], *types: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        code: {"content": _content(ref, *types), "description": desc} for code, desc in codes.items()
    }
    out["401"] = {"description": "Unauthorized"}
    return out


@dataclass
class _Ops:
    """Operations of one path, with their parameters before hoisting."""

    path_params: list[dict[str, Any]]
    verbs: tuple[str, ...]
    ops: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, method: str, op: dict[str, Any], query: tuple[str, ...]) -> None:
        op["parameters"] = [*self.path_params, *(_query(q) for q in ("pretty", *query))]
        self.ops[method] = op

    def render(self) -> dict[str, Any]:
        """Parameters every operation shares move to the path, as in kube's documents."""
        methods = list(self.ops)
        shared: list[dict[str, Any]] = []
        if methods != ["patch"]:  # a lone PATCH keeps its parameters (kubectl reads them there)
            names = [{p["name"] for p in self.ops[m]["parameters"]} for m in methods]
            common = set.intersection(*names) if names else set()
            shared = [p for p in self.ops[methods[0]]["parameters"] if p["name"] in common]
        out: dict[str, Any] = {}
        for method, op in self.ops.items():
            params = sorted((p for p in op["parameters"] if p not in shared), key=lambda p: p["name"])
            body = {k: v for k, v in op.items() if k != "parameters"}
            if params:
                body["parameters"] = params
            out[method] = body
        if shared:
            out["parameters"] = sorted(shared, key=lambda p: p["name"])
        return out


_OK = {"200": "OK"}
_OK_CREATED = {"200": "OK", "201": "Created"}
_PATCH_PARAMS = (*_WRITE_PARAMS, "force")
_LIST_TYPES = ("application/json", "application/json;stream=watch")


def _type_paths(rt: ResourceType, kind_ref: str, list_ref: str) -> dict[str, _Ops]:
    """The paths and operations of one resource type (the deprecated watch paths are not served)."""
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    gv = _gv_id(rt.group, rt.version)
    scoped = f"{gv}{'Namespaced' if rt.namespaced else ''}{rt.kind}"  # AppsV1NamespacedDeployment
    tags = [f"{_group_tag(rt.group)}_{rt.version}"]
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    ns_params = [_path_param("namespace", "object name and auth scope, such as for teams and projects")]
    ns_params = ns_params if rt.namespaced else []
    name_param = _path_param("name", f"name of the {rt.kind}")
    coll_path = f"{prefix}{'/namespaces/{namespace}' if rt.namespaced else ''}/{rt.plural}"
    item_path = coll_path + "/{name}"
    patch_types = CRD_PATCH_TYPES if rt.crd else PATCH_TYPES
    delete_body = {"content": _content(DELETE_OPTIONS, "*/*")}
    patch_body = {"content": _content(PATCH, *patch_types), "required": True}

    def add(
        ops: _Ops,
        verb: str,
        method: str,
        op_id: str,
        desc: str,
        responses: dict[str, Any],
        query: tuple[str, ...],
        body: dict[str, Any] | None = None,
        op_gvk: dict[str, str] = gvk,
    ) -> None:
        if verb not in ops.verbs:
            return
        op: dict[str, Any] = {"description": desc, "operationId": op_id}
        if body is not None:
            op["requestBody"] = body
        op.update(responses=responses, tags=tags)
        op["x-kubernetes-action"] = {"create": "post", "update": "put"}.get(verb, verb)
        op["x-kubernetes-group-version-kind"] = dict(op_gvk)
        ops.add(method, op, query)

    kind_body = {"content": _content(kind_ref, "*/*"), "required": True}
    list_resp = _responses(list_ref, _OK, *_LIST_TYPES)
    kind_ok, kind_put = _responses(kind_ref, _OK), _responses(kind_ref, _OK_CREATED)
    all_ns, coll, item = _Ops([], rt.verbs), _Ops(ns_params, rt.verbs), _Ops([name_param, *ns_params], rt.verbs)
    paths: dict[str, _Ops] = {}
    if rt.namespaced:
        add(all_ns, "list", "get", f"list{gv}{rt.kind}ForAllNamespaces", f"list or watch objects of kind {rt.kind}",
            list_resp, _LIST_PARAMS)
        paths[f"{prefix}/{rt.plural}"] = all_ns
    add(coll, "list", "get", f"list{scoped}", f"list or watch objects of kind {rt.kind}", list_resp, _LIST_PARAMS)
    add(coll, "create", "post", f"create{scoped}", f"create a {rt.kind}",
        _responses(kind_ref, {**_OK_CREATED, "202": "Accepted"}), _WRITE_PARAMS, kind_body)
    add(coll, "deletecollection", "delete", f"delete{gv}Collection{scoped.removeprefix(gv)}",
        f"delete collection of {rt.kind}", _responses(STATUS, _OK), _DELETECOLLECTION_PARAMS, delete_body)
    add(item, "get", "get", f"read{scoped}", f"read the specified {rt.kind}", kind_ok, ())
    add(item, "update", "put", f"replace{scoped}", f"replace the specified {rt.kind}", kind_put, _WRITE_PARAMS,
        kind_body)
    add(item, "patch", "patch", f"patch{scoped}", f"partially update the specified {rt.kind}", kind_put,
        _PATCH_PARAMS, patch_body)
    add(item, "delete", "delete", f"delete{scoped}", f"delete a {rt.kind}",
        _responses(STATUS, {**_OK, "202": "Accepted"}), _DELETE_PARAMS, delete_body)
    paths.update({coll_path: coll, item_path: item})
    for sub in sorted(rt.subresources):
        ref, sub_gvk = (SCALE, SCALE_GVK) if sub == "scale" else (kind_ref, gvk)
        ops = _Ops([name_param, *ns_params], SUB_VERBS)
        title = f"{scoped}{sub.capitalize()}"
        sub_body = {"content": _content(ref, "*/*"), "required": True}
        put_resp = _responses(ref, _OK_CREATED)
        add(ops, "get", "get", f"read{title}", f"read {sub} of the specified {rt.kind}", _responses(ref, _OK), (),
            op_gvk=sub_gvk)
        add(ops, "update", "put", f"replace{title}", f"replace {sub} of the specified {rt.kind}", put_resp,
            _WRITE_PARAMS, sub_body, sub_gvk)
        add(ops, "patch", "patch", f"patch{title}", f"partially update {sub} of the specified {rt.kind}",
            put_resp, _PATCH_PARAMS, patch_body, sub_gvk)
        paths[f"{item_path}/{sub}"] = ops
    return {path: ops for path, ops in paths.items() if ops.ops}


def _document(paths: dict[str, Any], local: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _closure(paths, local or {})},
    }


def _simple_doc(path: str, op_id: str, desc: str, ref: str, tag: str) -> dict[str, Any]:
    op = {
        "description": desc,
        "operationId": op_id,
        "responses": _responses(ref, {"200": "OK"}),
        "tags": [tag],
    }
    return _document({path: {"get": op}})


def _build_gv(group: str, version: str, types: tuple[ResourceType, ...]) -> dict[str, Any]:
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    gv = _gv_id(group, version)
    root = {
        "description": "get available resources",
        "operationId": f"get{gv}APIResources",
        "responses": _responses(RESOURCE_LIST, {"200": "OK"}),
        "tags": [f"{_group_tag(group)}_{version}"],
    }
    paths: dict[str, Any] = {f"{prefix}/": {"get": root}}
    local: dict[str, dict[str, Any]] = {}
    for rt in types:
        defs = schema.builtin()
        kind_ref = defs.definition_for(rt.group, rt.version, rt.kind) or ""
        list_ref = defs.definition_for(rt.group, rt.version, rt.kind + "List") or ""
        if rt.crd or not kind_ref or not list_ref:
            comps = _crd_components(rt)  # also for a built-in kind missing from the bundled schemas
            local.update(comps)
            kind_ref, list_ref = list(comps)
        for path, ops in _type_paths(rt, kind_ref, list_ref).items():
            paths[path] = ops.render()
    return _document(paths, local)


# ----- documents, hashes and caching ---------------------------------------------------------


@dataclass
class _Built:
    types: tuple[ResourceType, ...]
    doc: dict[str, Any]
    body: bytes
    hash: str


@dataclass
class _Cache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = -1
    specs: dict[str, tuple[ResourceType, ...]] = field(default_factory=dict)
    built: dict[str, _Built] = field(default_factory=dict)


_caches: weakref.WeakKeyDictionary[Registry, _Cache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _specs(reg: Registry) -> dict[str, tuple[ResourceType, ...]]:
    """Document path -> the types it is built from (empty for the fixed documents)."""
    specs: dict[str, tuple[ResourceType, ...]] = {"api": ()}
    core = tuple(reg.in_group_version("", "v1"))
    if core:
        specs["api/v1"] = core
    specs["apis"] = ()
    for group, versions in served_groups(reg):
        specs[f"apis/{group}"] = ()
        for version in versions:
            specs[f"apis/{group}/{version}"] = tuple(reg.in_group_version(group, version))
    specs["version"] = ()
    return specs


def _same(a: tuple[ResourceType, ...], b: tuple[ResourceType, ...]) -> bool:
    return len(a) == len(b) and all(
        x == y and x.crd_schema is y.crd_schema for x, y in zip(a, b, strict=True)
    )


def _build(path: str, types: tuple[ResourceType, ...]) -> dict[str, Any]:
    parts = path.split("/")
    if path == "api":
        return _simple_doc(
            "/api/", "getCoreAPIVersions", "get available API versions", META + "APIVersions", "core"
        )
    if path == "apis":
        return _simple_doc(
            "/apis/", "getAPIVersions", "get available API versions", META + "APIGroupList", "apis"
        )
    if path == "version":
        return _simple_doc(
            "/version/",
            "getCodeVersion",
            "get the version information for this server",
            "io.k8s.apimachinery.pkg.version.Info",
            "version",
        )
    if parts[0] == "apis" and len(parts) == 2:
        return _simple_doc(
            f"/apis/{parts[1]}/",
            f"get{_camel(parts[1])}APIGroup",
            "get information of a group",
            META + "APIGroup",
            _group_tag(parts[1]),
        )
    group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
    return _build_gv(group, version, types)


def _entry(reg: Registry, path: str | None) -> tuple[_Cache, _Built | None]:
    """The cache of ``reg`` refreshed to its generation, and the built document at ``path``."""
    with _caches_lock:
        cache = _caches.get(reg)
        if cache is None:
            cache = _caches[reg] = _Cache()
    with cache.lock:
        generation = reg.generation  # read before the types: a racing change re-validates next call
        if generation != cache.generation:
            cache.specs = _specs(reg)
            cache.built = {
                p: b for p, b in cache.built.items() if p in cache.specs and _same(b.types, cache.specs[p])
            }
            cache.generation = generation
        if path is None:
            return cache, None
        if path not in cache.specs:
            return cache, None
        built = cache.built.get(path)
        if built is None:
            types = cache.specs[path]
            doc = _build(path, types)
            body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
            built = _Built(types, doc, body, hashlib.sha512(body).hexdigest().upper())
            cache.built[path] = built
        return cache, built


def openapi_doc(reg: Registry, path: str) -> dict[str, Any] | None:
    """The document at ``/openapi/v3/<path>`` (``api/v1``, ``apis/apps/v1``, ``apis``, ...)."""
    _, built = _entry(reg, path.strip("/"))
    return built.doc if built else None


def openapi_body(reg: Registry, path: str) -> tuple[bytes, str] | None:
    """Serialized JSON of the document at ``path`` and its hash (upper-case hex SHA-512)."""
    _, built = _entry(reg, path.strip("/"))
    return (built.body, built.hash) if built else None


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_gv(reg: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group version, or None when it is not served."""
    return openapi_doc(reg, gv_path(group, version))


def openapi_gv_body(reg: Registry, group: str, version: str) -> bytes | None:
    """The serialized document of one group version (what to send as the response body)."""
    found = openapi_body(reg, gv_path(group, version))
    return found[0] if found else None


def openapi_index(reg: Registry) -> dict[str, Any]:
    """``/openapi/v3``: every document path with a URL whose ``hash`` changes with the content."""
    cache, _ = _entry(reg, None)
    paths: dict[str, Any] = {}
    for path in sorted(cache.specs):
        found = openapi_body(reg, path)
        if found:
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={found[1]}"}
    return {"paths": paths}
