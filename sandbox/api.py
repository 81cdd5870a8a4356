"""The REST verbs of the sandbox apiserver, independent of HTTP.

Each verb takes plain dicts and a :class:`Request` context and returns
``(http_code, body)`` or raises :class:`~sandbox.errors.ApiError`. The HTTP layer
(``server.py``) and the built-in controllers both go through here, so every
write gets the same defaulting, validation, field management and events.
"""

from __future__ import annotations

import base64
import builtins
import copy
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from core.kube import managedfields
from sandbox import defaulting, errors, patching, selectors, validation
from sandbox.allocator import Allocator
from sandbox.errors import ApiError
from sandbox.resources import Registry, ResourceType
from sandbox.store import Store

# Kinds whose strategy maintains metadata.generation (bumped on spec changes).
GENERATION_KINDS = {
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "Ingress",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "CustomResourceDefinition",
}
# Kinds whose API default deletion propagation is Orphan (batch/v1 Job).
ORPHAN_BY_DEFAULT = {("batch", "jobs")}
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "unsupported",
}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Request:
    """Per-request options taken from the query string and headers."""

    field_manager: str = ""
    user_agent: str = ""
    dry_run: bool = False
    force: bool | None = None
    field_validation: str = "Strict"  # kubectl sends Strict; the server default is Warn for most clients
    warnings: list[str] | None = None

    def manager(self) -> str:
        if self.field_manager:
            return self.field_manager
        ua = "".join(ch for ch in self.user_agent.split("/", 1)[0] if ch.isprintable())[:128]
        return ua or "unknown"

    def warn(self, text: str) -> None:
        if self.warnings is None:
            self.warnings = []
        self.warnings.append(text)


def decode_body(raw: bytes, content_type: str) -> Any:
    """Parse a request body as JSON, or YAML where the content type allows it."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype in ("application/vnd.kubernetes.protobuf", "application/cbor", "application/apply-patch+cbor"):
        # Only JSON and YAML are served (discovery advertises no protobuf); see docs/sandbox.md.
        raise errors.unsupported_media_type(ctype)
    if not raw.strip():
        raise errors.bad_request("the body of the request was empty")
    if raw.lstrip()[:1] in (b"{", b"["):
        # JSON is valid YAML, but YAML 1.1 would read "y" or "on" as booleans: parse JSON as JSON.
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            if ctype not in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
                raise errors.bad_request("couldn't get version/kind; json parse error: invalid JSON") from None
    if ctype in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
        try:
            return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


def _patch_error(exc: patching.PatchError) -> ApiError:
    status = exc.status()
    return ApiError(exc.code, status.get("reason", ""), status.get("message", exc.message), status.get("details"))


def _strip_managed(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without metadata.resourceVersion: what a no-op check compares."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Api:
    def __init__(self, store: Store, registry: Registry, allocator: Allocator | None = None) -> None:
        self.store = store
        self.registry = registry
        self.allocator = allocator or Allocator()
        self._rng = random.Random()

    # ----- helpers ---------------------------------------------------------
    def _kind_group(self, rt: ResourceType) -> str:
        return f"{rt.kind}.{rt.group}" if rt.group else rt.kind

    def _not_found(self, rt: ResourceType, name: str) -> ApiError:
        return errors.not_found(rt.group_resource, name, rt.group, rt.plural)

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str, creating: bool) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(("", "namespaces"), "", namespace)
        if ns is None:
            raise errors.ApiError(
                404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
            )
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rt.group_resource,
                name,
                rt.group,
                rt.plural,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _check_type(self, rt: ResourceType, body: Any, strict: bool = False) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request(
                "the object provided is unrecognized (must be of type " + rt.kind + "): couldn't get version/kind"
            )
        if not strict:
            # The decoder defaults a missing apiVersion/kind to the endpoint's, as kube's codec does.
            body.setdefault("apiVersion", rt.api_version)
            body.setdefault("kind", rt.kind)
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if api_version != rt.api_version or kind != rt.kind:
            group, _, version = (api_version or "").rpartition("/")
            raise errors.bad_request(f"invalid object type: {group}/{version}, Kind={kind or ''}")
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        return body

    def _schema_checks(self, rt: ResourceType, obj: dict[str, Any], req: Request, apply: bool = False) -> None:
        """Type errors are 400; unknown fields are pruned, and rejected under fieldValidation=Strict."""
        node = rt.schema
        if node is None:
            return
        msg = validation.typecheck(obj, node)
        if msg:
            raise errors.bad_request(validation.decode_error(obj, msg))
        unknown = validation.unknown_fields(obj, node)
        if not unknown:
            return
        if req.field_validation == "Strict":
            if apply:
                gvk = f"{rt.api_version if rt.group else '/' + rt.version}, Kind={rt.kind}"
                raise errors.bad_request(
                    f"failed to create typed patch object ({gvk}): {unknown[0]}: field not declared in schema"
                )
            listed = ", ".join(f'unknown field "{u.lstrip(".")}"' for u in unknown)
            raise errors.bad_request(validation.decode_error(obj, f"strict decoding error: {listed}"))
        if req.field_validation == "Warn":
            for u in unknown:
                req.warn(f'unknown field "{u.lstrip(".")}"')

    def _validate(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        causes = validation.validate(obj, old)
        if causes:
            name = obj.get("metadata", {}).get("name", "")
            message = validation.invalid_message(self._kind_group(rt), name, causes)
            raise errors.invalid(self._kind_group(rt), name, rt.group, rt.kind, causes, message)

    def _default(self, obj: dict[str, Any], old: dict[str, Any] | None, dry_run: bool) -> dict[str, Any]:
        """Server defaults (and Service IP/port allocation); allocation conflicts are 422."""
        try:
            defaulting.apply_defaults(obj, allocator=self.allocator, old=old, dry_run=dry_run)
        except defaulting.AllocationError as exc:
            rt = self.registry.by_gvk(obj.get("apiVersion", ""), obj.get("kind", ""))
            name = (obj.get("metadata") or {}).get("name", "")
            kind_group = self._kind_group(rt) if rt else obj.get("kind", "")
            message = validation.invalid_message(kind_group, name, exc.causes)
            raise errors.invalid(kind_group, name, rt.group if rt else "", obj.get("kind", ""), list(exc.causes), message) from None
        return obj

    def _bump_generation(self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
        if not (rt.crd or rt.kind in GENERATION_KINDS):
            return
        gen = int(old["metadata"].get("generation") or 1)
        if _spec_part(new) != _spec_part(old):
            gen += 1
        new["metadata"]["generation"] = gen

    def _keep_server_fields(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """Metadata the client cannot change on update."""
        meta = new.setdefault("metadata", {})
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
            else:
                meta.pop(k, None)
        meta.pop("selfLink", None)
        meta["name"] = old["metadata"]["name"]
        if "namespace" in old["metadata"]:
            meta["namespace"] = old["metadata"]["namespace"]

    def _output(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    # ----- reads -------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise self._not_found(rt, name)
        return obj

    def matcher(self, rt: ResourceType, namespace: str | None, label_selector: str, field_selector: str) -> Any:
        """A predicate for list/watch filtering by namespace and selectors (400 on bad selectors)."""
        try:
            lsel = selectors.parse_label_selector(label_selector) if label_selector else None
            fsel = (
                selectors.parse_field_selector(
                    field_selector, rt.kind, group=rt.group, custom=rt.crd, namespaced=rt.namespaced
                )
                if field_selector
                else None
            )
        except selectors.SelectorError as exc:
            # kubectl adds its own "Unable to find ..." prefix; the server sends the bare reason.
            raise errors.bad_request(str(exc)) from None

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            if namespace and meta.get("namespace") != namespace:
                return False
            if lsel is not None and not lsel.matches(meta.get("labels") or {}):
                return False
            return fsel is None or fsel.matches(obj)

        return matches

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        cont: str = "",
    ) -> dict[str, Any]:
        matches = self.matcher(rt, namespace, label_selector, field_selector)
        items = self.store.items(rt.key, namespace if rt.namespaced else None)
        start_after: tuple[str, str] | None = None
        list_rv = self.store.rv
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                start_after = (token["start"][0], token["start"][1])
                list_rv = int(token["rv"])
            except (ValueError, KeyError, TypeError, IndexError):
                raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
            if list_rv < self.store.history_floor(rt.key):
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the provided "
                    "token results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list."
                )
        out: list[dict[str, Any]] = []
        more = False
        remaining = 0
        for obj in items:
            meta = obj["metadata"]
            okey = (meta.get("namespace", ""), meta["name"])
            if start_after is not None and okey <= start_after:
                continue
            if not matches(obj):
                continue
            if limit and len(out) >= limit:
                more = True
                remaining += 1
                continue
            out.append(obj)
        meta_out: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if more and out:
            last = out[-1]["metadata"]
            token = {"v": "meta.k8s.io/v1", "rv": list_rv, "start": [last.get("namespace", ""), last["name"]]}
            meta_out["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
            if not label_selector and not field_selector:
                meta_out["remainingItemCount"] = remaining
        if rt.crd:
            listed = out
        else:
            listed = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in out]
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta_out, "items": listed}

    # ----- create --------------------------------------------------------------
    def create(
        self, rt: ResourceType, namespace: str, body: Any, req: Request, *, via_apply: bool = False
    ) -> tuple[int, dict[str, Any]]:
        obj = copy.deepcopy(self._check_type(rt, body))
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or body_ns or ""
            if not namespace:
                raise errors.bad_request("the server could not find the requested resource")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                causes = [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}]
                raise errors.invalid(self._kind_group(rt), "", rt.group, rt.kind, causes,
                                     f'{self._kind_group(rt)} "" is invalid: metadata.name: Required value: name or generateName is required')
            for _ in range(10):
                cand = prefix + "".join(self._rng.choice(NAME_CHARS) for _ in range(5))
                if self.store.get(rt.key, namespace, cand) is None:
                    break
            meta["name"] = cand
        name = meta["name"]
        self._check_namespace(rt, namespace, name, creating=True)
        if meta.get("uid") and via_apply:
            raise errors.conflict(
                rt.group_resource, name, rt.group, rt.plural,
                f"uid mismatch: the provided object specified uid {meta['uid']}, and no existing object was found",
            )
        incoming_mf = meta.get("managedFields") if "managedFields" in meta and not via_apply else None
        for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "selfLink", "managedFields"):
            meta.pop(k, None)
        if "status" in rt.subresources:
            obj.pop("status", None)
        if not via_apply:
            self._schema_checks(rt, obj, req)
        if incoming_mf is not None:
            meta["managedFields"] = incoming_mf
        meta["creationTimestamp"] = now_rfc3339()
        if rt.crd or rt.kind in GENERATION_KINDS:
            meta["generation"] = 1
        if not req.dry_run:
            meta["uid"] = str(uuid.uuid4())
        if not via_apply:
            self._default(obj, None, req.dry_run)
            self._validate(rt, obj, None)
            node = rt.schema
            if node is not None:
                obj = managedfields.update(
                    None, obj, manager=req.manager(), node=node, api_version=rt.api_version, now=now_rfc3339()
                )
        if self.store.get(rt.key, namespace, name) is not None:
            raise errors.already_exists(rt.group_resource, name, rt.group, rt.plural)
        if rt.kind == "Service" and not req.dry_run:
            self._allocate_service(obj)
        if req.dry_run:
            return 201, obj
        stored = self.store.put(rt.key, obj, created=True)
        self._after_write(rt, stored, None)
        return 201, stored

    def _allocate_service(self, obj: dict[str, Any]) -> None:
        # Defaulting already allocated through self.allocator; nothing else to do here.
        return

    # ----- update / patch / apply -------------------------------------------------
    def replace(
        self, rt: ResourceType, namespace: str, name: str, body: Any, req: Request, subresource: str = ""
    ) -> tuple[int, dict[str, Any]]:
        obj = self._check_type(rt, body)
        meta = obj.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        old = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if old is None:
            raise self._not_found(rt, name)
        if not meta.get("resourceVersion") and rt.crd:
            causes = [{"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an update", "field": "metadata.resourceVersion"}]
            raise errors.invalid(self._kind_group(rt), name, rt.group, rt.kind, causes,
                                 f'{self._kind_group(rt)} "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update')
        new = copy.deepcopy(obj)
        return self._update(rt, old, new, req, subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        req: Request,
        subresource: str = "",
    ) -> tuple[int, dict[str, Any]]:
        ctype = content_type.split(";", 1)[0].strip().lower()
        ptype = PATCH_TYPES.get(ctype)
        if ptype is None or ptype == "unsupported":
            raise errors.unsupported_media_type(ctype)
        if ptype == "apply":
            return self.apply(rt, namespace, name, decode_body(raw, ctype), req, subresource)
        if req.force is not None:
            causes = [{"reason": "FieldValueForbidden", "message": "Forbidden: may not be specified for non-apply patch", "field": "force"}]
            raise errors.ApiError(422, "Invalid",
                                  'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
                                  {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": causes})
        patch = decode_body(raw, "application/json")
        old = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if old is None:
            raise self._not_found(rt, name)
        try:
            if ptype == "json":
                if not isinstance(patch, list):
                    raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
                new = patching.json_patch(old, patch)
            elif ptype == "merge":
                if not isinstance(patch, dict):
                    raise errors.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                new = patching.merge_patch(old, patch)
            else:
                if rt.crd or rt.schema is None:
                    raise errors.unsupported_media_type(ctype)
                if not isinstance(patch, dict):
                    raise errors.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                new = patching.strategic_merge_patch(old, patch, rt.schema)
        except patching.PatchError as exc:
            raise _patch_error(exc) from None
        if not isinstance(new, dict):
            raise errors.bad_request("patch produced a non-object")
        new = copy.deepcopy(new)
        # A patch that does not mention resourceVersion carries the current one: no precondition.
        if (new.get("metadata") or {}).get("resourceVersion") == old["metadata"].get("resourceVersion"):
            new["metadata"].pop("resourceVersion", None)
        self._check_type(rt, new)
        return self._update(rt, old, new, req, subresource)

    def _update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        req: Request,
        subresource: str,
    ) -> tuple[int, dict[str, Any]]:
        name = old["metadata"]["name"]
        want_rv = (new.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt.group_resource, name, rt.group, rt.plural, errors.STALE)
        self._schema_checks(rt, new, req)
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            if rt.key == ("apps", "deployments"):
                # The Deployment status strategy resets only spec and labels: the controller
                # writes deployment.kubernetes.io/revision along with status.
                annotations = (new.get("metadata") or {}).get("annotations")
                if annotations:
                    merged["metadata"]["annotations"] = copy.deepcopy(annotations)
                else:
                    merged["metadata"].pop("annotations", None)
            new = merged
        elif "status" in rt.subresources:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self._keep_server_fields(new, old)
        self._default(new, old, req.dry_run)
        self._validate(rt, new, old)
        node = rt.schema
        if node is not None:
            new = managedfields.update(
                old, new, manager=req.manager(), node=node, api_version=rt.api_version,
                now=now_rfc3339(), subresource=subresource,
            )
        return self._commit(rt, old, new, req)

    def apply(
        self, rt: ResourceType, namespace: str, name: str, body: Any, req: Request, subresource: str = ""
    ) -> tuple[int, dict[str, Any]]:
        obj = self._check_type(rt, body, strict=True)
        meta = obj.get("metadata") or {}
        if not req.field_manager:
            causes = [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]
            raise errors.ApiError(422, "Invalid",
                                  'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                                  {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": causes})
        if "managedFields" in meta:
            raise errors.bad_request("metadata.managedFields must be nil")
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        node = rt.schema
        assert node is not None
        body2 = copy.deepcopy(obj)
        body2.setdefault("metadata", {})["name"] = name
        if rt.namespaced:
            body2["metadata"]["namespace"] = namespace
        else:
            body2["metadata"].pop("namespace", None)
        self._schema_checks(rt, body2, req, apply=True)
        if subresource == "" and "status" in rt.subresources:
            body2.pop("status", None)
        old = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        creating = old is None
        if creating:
            # Create through apply: validate the namespace and identity as a POST would.
            self._check_namespace(rt, namespace, name, creating=True)
            if (body2.get("metadata") or {}).get("uid"):
                raise errors.conflict(
                    rt.group_resource, name, rt.group, rt.plural,
                    f"uid mismatch: the provided object specified uid {body2['metadata']['uid']}, and no existing object was found",
                )
            base: dict[str, Any] | None = None
        else:
            base = old
            want_rv = (body2.get("metadata") or {}).get("resourceVersion")
            if want_rv and old is not None and want_rv != old["metadata"].get("resourceVersion"):
                raise errors.conflict(rt.group_resource, name, rt.group, rt.plural, errors.STALE)
        try:
            new = managedfields.apply(
                base, body2, manager=req.field_manager, node=node, api_version=rt.api_version,
                force=bool(req.force), now=now_rfc3339(), subresource=subresource, default=lambda o: self._default(o, old, req.dry_run),
            )
        except managedfields.ApplyConflict as exc:
            raise errors.ApiError(409, "Conflict", exc.message, {"causes": exc.causes()}) from None
        new = copy.deepcopy(new)
        if creating:
            nmeta = new.setdefault("metadata", {})
            for k in ("uid", "resourceVersion", "creationTimestamp", "generation"):
                nmeta.pop(k, None)
            nmeta["creationTimestamp"] = now_rfc3339()
            if rt.crd or rt.kind in GENERATION_KINDS:
                nmeta["generation"] = 1
            if not req.dry_run:
                nmeta["uid"] = str(uuid.uuid4())
            self._default(new, None, req.dry_run)
            self._validate(rt, new, None)
            if req.dry_run:
                return 201, new
            stored = self.store.put(rt.key, new, created=True)
            self._after_write(rt, stored, None)
            return 201, stored
        assert old is not None
        if subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status")
            merged["metadata"]["managedFields"] = new["metadata"].get("managedFields")
            new = merged
        elif "status" in rt.subresources:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self._keep_server_fields(new, old)
        new["metadata"].pop("resourceVersion", None)
        self._default(new, old, req.dry_run)
        self._validate(rt, new, old)
        return self._commit(rt, old, new, req)

    def _commit(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], req: Request
    ) -> tuple[int, dict[str, Any]]:
        """Persist an update unless it changes nothing; finish deletions whose finalizers are gone."""
        new.setdefault("metadata", {}).pop("resourceVersion", None)
        if not new["metadata"].get("managedFields"):
            new["metadata"].pop("managedFields", None)
        self._bump_generation(rt, new, old)
        if _strip_managed(new) == _strip_managed(old):
            return 200, old
        if req.dry_run:
            new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion", "")
            return 200, new
        ns = old["metadata"].get("namespace", "")
        # A Namespace also waits for spec.finalizers (emptied by the namespace controller's finalize).
        finalized = not (rt.key == ("", "namespaces") and (new.get("spec") or {}).get("finalizers"))
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") and finalized:
            gone = self.store.remove(rt.key, ns, old["metadata"]["name"])
            self._after_delete(rt, gone or new)
            return 200, gone or new
        stored = self.store.put(rt.key, new, created=False)
        if rt.key == ("", "services"):
            defaulting.release_allocations(old, self.allocator, keep=stored)
        self._after_write(rt, stored, old)
        return 200, stored

    # ----- delete ------------------------------------------------------------------
    def delete(
        self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any], req: Request
    ) -> tuple[int, dict[str, Any]]:
        ns = namespace if rt.namespaced else ""
        old = self.store.get(rt.key, ns, name)
        if old is None:
            raise self._not_found(rt, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
            raise errors.conflict(
                rt.group_resource, name, rt.group, rt.plural,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old['metadata'].get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"].get("resourceVersion"):
            raise errors.conflict(
                rt.group_resource, name, rt.group, rt.plural,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {old['metadata'].get('resourceVersion')}",
            )
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy is None:
            policy = "Orphan" if rt.key in ORPHAN_BY_DEFAULT else "Background"
        if policy not in ("Orphan", "Background", "Foreground"):
            causes = [{"reason": "FieldValueNotSupported", "message": f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"', "field": "propagationPolicy"}]
            raise errors.ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"',
                                  {"group": "meta.k8s.io", "kind": "DeleteOptions", "causes": causes})
        meta = old["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if rt.kind == "Namespace":
            if meta.get("deletionTimestamp"):
                return 200, old
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("spec", {})["finalizers"] = ["kubernetes"]
            new.setdefault("status", {})["phase"] = "Terminating"
            if req.dry_run:
                return 200, new
            stored = self.store.put(rt.key, new, created=False)
            return 200, stored
        add: list[str] = []
        has_dependents = bool(self.dependents_of(meta.get("uid", "")))
        if policy == "Foreground" and has_dependents and "foregroundDeletion" not in finalizers:
            add.append("foregroundDeletion")
        if policy == "Orphan" and has_dependents and "orphan" not in finalizers:
            add.append("orphan")
        if finalizers or add:
            if meta.get("deletionTimestamp") and not add:
                return 200, old
            new = copy.deepcopy(old)
            new["metadata"]["finalizers"] = finalizers + add
            new["metadata"].setdefault("deletionTimestamp", now_rfc3339())
            new["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            if req.dry_run:
                return 200, new
            stored = self.store.put(rt.key, new, created=False)
            self._after_write(rt, stored, old)
            return 200, stored
        if req.dry_run:
            return 200, self._delete_status(rt, old)
        gone = self.store.remove(rt.key, ns, name)
        assert gone is not None
        self._after_delete(rt, gone)
        if rt.crd:
            return 200, gone
        return 200, self._delete_status(rt, old)

    def _delete_status(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {"name": obj["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = obj["metadata"].get("uid", "")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, label_selector: str, field_selector: str,
        options: dict[str, Any], req: Request,
    ) -> tuple[int, dict[str, Any]]:
        listed = self.list(rt, namespace, label_selector, field_selector)
        items = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                _, out = self.delete(rt, meta.get("namespace", ""), meta["name"], options, req)
            except ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            items.append(out if out.get("kind") != "Status" else item)
        return 200, {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(self.store.rv)}, "items": items}

    # ----- hooks for dependents and CRDs --------------------------------------------
    _gc: Any = None  # set by the GC controller: an index of dependents by owner uid

    def dependents_of(self, uid: str) -> builtins.list[tuple[tuple[str, str], str, str]]:
        if self._gc is None or not uid:
            return []
        return list(self._gc.dependents(uid))

    def _after_write(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self.registry.set_crd(obj)

    def _after_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.key == ("", "services"):
            defaulting.release_allocations(obj, self.allocator)
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self.registry.remove_crd(obj)
            spec = obj.get("spec") or {}
            key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
            for item in self.store.items(key):
                self.store.remove(key, item["metadata"].get("namespace", ""), item["metadata"]["name"])

    # ----- scale subresource ---------------------------------------------------------
    def scale_of(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        sel = spec.get("selector") or {}
        selector = ""
        if isinstance(sel, dict):
            parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
            for expr in sel.get("matchExpressions") or []:
                op = expr.get("operator")
                vals = ",".join(expr.get("values") or [])
                if op == "In":
                    parts.append(f"{expr['key']} in ({vals})")
                elif op == "NotIn":
                    parts.append(f"{expr['key']} notin ({vals})")
                elif op == "Exists":
                    parts.append(expr["key"])
                elif op == "DoesNotExist":
                    parts.append("!" + expr["key"])
            selector = ",".join(parts)
        out_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": out_meta,
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": status.get("replicas", 0), "selector": selector},
        }

    def update_scale(
        self, rt: ResourceType, namespace: str, name: str, scale: dict[str, Any], req: Request
    ) -> tuple[int, dict[str, Any]]:
        old = self.get(rt, namespace, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            causes = [{"reason": "FieldValueInvalid", "message": f"Invalid value: {replicas}: must be greater than or equal to 0", "field": "spec.replicas"}]
            raise errors.invalid("Scale.autoscaling", name, "autoscaling", "Scale", causes,
                                 f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0')
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt.group_resource, name, rt.group, rt.plural, errors.STALE)
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["replicas"] = replicas
        new["metadata"].pop("resourceVersion", None)
        node = rt.schema
        if node is not None:
            new = managedfields.update(
                old, new, manager=req.manager(), node=node, api_version=rt.api_version,
                now=now_rfc3339(), subresource="scale",
            )
        code, obj = self._commit(rt, old, new, req)
        return code, self.scale_of(rt, obj)

    def patch_scale(
        self, rt: ResourceType, namespace: str, name: str, raw: bytes, content_type: str, req: Request
    ) -> tuple[int, dict[str, Any]]:
        old = self.get(rt, namespace, name)
        current = self.scale_of(rt, old)
        ctype = content_type.split(";", 1)[0].strip().lower()
        ptype = PATCH_TYPES.get(ctype)
        if ptype is None or ptype == "unsupported":
            raise errors.unsupported_media_type(ctype)
        body = decode_body(raw, ctype)
        try:
            if ptype == "json":
                patched = patching.json_patch(current, body)
            elif ptype in ("merge", "strategic"):
                patched = patching.merge_patch(current, body)
            else:
                patched = patching.merge_patch(current, body)
        except patching.PatchError as exc:
            raise _patch_error(exc) from None
        if (patched.get("metadata") or {}).get("resourceVersion") == old["metadata"].get("resourceVersion"):
            patched["metadata"].pop("resourceVersion", None)
        return self.update_scale(rt, namespace, name, patched, req)

    # ----- bootstrap -------------------------------------------------------------------
    def bootstrap(self) -> None:
        """Create the namespaces and the `kubernetes` Service a fresh cluster has."""
        ns_rt = self.registry.lookup("", "v1", "namespaces")
        svc_rt = self.registry.lookup("", "v1", "services")
        sa_rt = self.registry.lookup("", "v1", "serviceaccounts")
        assert ns_rt and svc_rt and sa_rt
        req = Request(field_manager="kube-apiserver")
        for ns in SYSTEM_NAMESPACES:
            if self.store.get(ns_rt.key, "", ns) is None:
                self.create(ns_rt, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, req)
        if self.store.get(svc_rt.key, "default", "kubernetes") is None:
            self.allocator.reserve("10.96.0.1")
            svc = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
            }
            self.create(svc_rt, "default", svc, req)
        for ns in SYSTEM_NAMESPACES:
            if self.store.get(sa_rt.key, ns, "default") is None:
                sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
                self.create(sa_rt, ns, sa, Request(field_manager="kube-controller-manager"))
