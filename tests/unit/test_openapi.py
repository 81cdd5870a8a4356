"""OpenAPI v3 documents: the shapes kubectl 1.32 relies on, caching and CRD kinds."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from sandbox import openapi
from sandbox.resources import Registry, ResourceType

CRD: dict[str, Any] = {
    "spec": {
        "group": "demo.driftdeck.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas"}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "A demo widget.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "description": "Widget size."}},
                            }
                        },
                    }
                },
            }
        ],
    }
}


def _gv_path(rt: ResourceType) -> str:
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def _supports_field_validation(doc: dict[str, Any], gvk: dict[str, str]) -> bool:
    """kubectl's queryParamVerifierV3: the first PATCH op of the GVK must list fieldValidation."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == "fieldValidation" for p in op.get("parameters", []))
    return False


def _schema_nodes(node: Any) -> list[dict[str, Any]]:
    """Every schema node below ``node`` (properties, items, additionalProperties, allOf, ...)."""
    out: list[dict[str, Any]] = []
    if not isinstance(node, dict):
        return out
    out.append(node)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            out += _schema_nodes(node[key])
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in node.get(key) or []:
            out += _schema_nodes(sub)
    for sub in (node.get("properties") or {}).values():
        out += _schema_nodes(sub)
    return out


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for v in node.values():
            found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        elif "allOf" in node and len(node["allOf"]) == 1 and "properties" not in node:
            node = node["allOf"][0]
        else:
            return node


def _explain(doc: dict[str, Any], gvk: dict[str, str], *fields: str) -> dict[str, Any]:
    """Follow a field path the way ``kubectl explain`` does."""
    [node] = [s for s in doc["components"]["schemas"].values() if gvk in s.get("x-kubernetes-group-version-kind", [])]
    for name in fields:
        node = _resolve(doc, node)
        if "items" in node:
            node = _resolve(doc, node["items"])
        node = node["properties"][name]
    return node


def test_index_lists_every_served_group_version() -> None:
    reg = Registry()
    index = openapi.openapi_index(reg)
    paths = index["paths"]
    assert list(paths) == sorted(paths)
    gvs = {_gv_path(rt) for rt in reg.types}
    assert gvs <= paths.keys()
    assert {"api", "apis", "version", "apis/apps"} <= paths.keys()
    for path, entry in paths.items():
        found = openapi.openapi_body(reg, path)
        assert found is not None
        body, digest = found
        assert entry == {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        assert digest == hashlib.sha512(body).hexdigest().upper()
        assert json.loads(body) == openapi.openapi_doc(reg, path)


@pytest.mark.parametrize("rt", Registry().types, ids=lambda rt: f"{rt.api_version}/{rt.kind}")
def test_patch_operation_is_what_kubectl_checks(rt: ResourceType) -> None:
    doc = openapi.openapi_doc(Registry(), _gv_path(rt))
    assert doc is not None
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    assert _supports_field_validation(doc, gvk)
    prefix = f"/{_gv_path(rt)}"
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    item = doc["paths"][f"{prefix}{ns}/{rt.plural}/{{name}}"]
    patch = item["patch"]
    assert {p["name"] for p in patch["parameters"]} == {"dryRun", "fieldManager", "fieldValidation", "force"}
    assert patch["x-kubernetes-action"] == "patch"
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]
    assert {p["name"] for p in item["parameters"]} == {"name", "pretty"} | ({"namespace"} if rt.namespaced else set())
    actions = {op["x-kubernetes-action"] for path in doc["paths"].values() for op in path.values() if "x-kubernetes-action" in op and op["x-kubernetes-group-version-kind"] == gvk}
    assert {"get", "list", "post", "put", "patch", "delete"} <= actions


def test_documents_are_self_contained_openapi3() -> None:
    reg = Registry()
    for path in openapi.openapi_index(reg)["paths"]:
        doc = openapi.openapi_doc(reg, path)
        assert doc is not None
        assert doc["openapi"] == "3.0.0"
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.rsplit("/", 1)[-1] in schemas, f"{path}: dangling {ref}"
        for name, comp in schemas.items():
            for node in _schema_nodes(comp):
                assert not isinstance(node.get("type"), list), f"{path} {name}: {node.get('type')}"
                if "$ref" in node:
                    assert len(node) == 1, f"{name}: $ref with siblings"
        op_ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m != "parameters"]
        assert len(op_ids) == len(set(op_ids)), path


def test_schemas_follow_kube_conventions() -> None:
    doc = openapi.openapi_gv(Registry(), "apps", "v1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    deploy = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deploy["type"] == "object"
    assert deploy["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deploy["properties"]["apiVersion"] == {
        "description": deploy["properties"]["apiVersion"]["description"],
        "type": "string",
    }
    assert deploy["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    }
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas
    gvk = {"group": "apps", "kind": "Deployment", "version": "v1"}
    replicas = _explain(doc, gvk, "spec", "replicas")
    assert replicas["type"] == "integer"
    assert replicas["description"].startswith("Number of desired pods.")
    assert _explain(doc, gvk, "spec", "template", "spec", "containers", "image")["type"] == "string"


def test_subresource_paths() -> None:
    doc = openapi.openapi_gv(Registry(), "apps", "v1")
    assert doc is not None
    base = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    scale, status = doc["paths"][f"{base}/scale"], doc["paths"][f"{base}/status"]
    assert set(scale) == set(status) == {"get", "put", "patch", "parameters"}
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert scale["get"]["operationId"] == "readAppsV1NamespacedDeploymentScale"
    assert status["patch"]["operationId"] == "patchAppsV1NamespacedDeploymentStatus"
    assert {p["name"] for p in status["patch"]["parameters"]} >= {"fieldValidation", "force"}
    listing = doc["paths"]["/apis/apps/v1/deployments"]
    assert listing["get"]["operationId"] == "listAppsV1DeploymentForAllNamespaces"
    assert {p["name"] for p in listing["parameters"]} >= {"watch", "labelSelector", "limit", "continue"}
    core = openapi.openapi_gv(Registry(), "", "v1")
    assert core is not None
    ns_paths = core["paths"]["/api/v1/namespaces"]
    assert set(ns_paths) >= {"get", "post"} and "delete" not in ns_paths  # Namespace has no deletecollection
    assert ns_paths["post"]["operationId"] == "createCoreV1Namespace"
    rbac = openapi.openapi_gv(Registry(), "rbac.authorization.k8s.io", "v1")
    assert rbac is not None
    coll = rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]
    assert coll["delete"]["operationId"] == "deleteRbacAuthorizationV1CollectionClusterRole"
    assert coll["get"]["tags"] == ["rbacAuthorization_v1"]


def test_crd_kinds_appear_and_hashes_track_changes() -> None:
    reg = Registry()
    before = openapi.openapi_index(reg)["paths"]
    assert openapi.openapi_gv(reg, "demo.driftdeck.io", "v1") is None
    reg.set_crd(CRD)
    after = openapi.openapi_index(reg)["paths"]
    assert "apis/demo.driftdeck.io/v1" in after and "apis/demo.driftdeck.io" in after
    assert {k: v for k, v in after.items() if "demo.driftdeck.io" not in k and k != "apis"} == {
        k: v for k, v in before.items() if k != "apis"
    }
    doc = openapi.openapi_gv(reg, "demo.driftdeck.io", "v1")
    assert doc is not None
    gvk = {"group": "demo.driftdeck.io", "kind": "Widget", "version": "v1"}
    assert _supports_field_validation(doc, gvk)
    widget = doc["components"]["schemas"]["io.driftdeck.demo.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [gvk]
    assert widget["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    assert "io.driftdeck.demo.v1.WidgetList" in doc["components"]["schemas"]
    assert _explain(doc, gvk, "spec", "size") == {"type": "integer", "description": "Widget size."}
    patch = doc["paths"]["/apis/demo.driftdeck.io/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    scale = doc["paths"]["/apis/demo.driftdeck.io/v1/namespaces/{namespace}/widgets/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"

    changed = copy.deepcopy(CRD)
    props = changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["colour"] = {"type": "string"}
    reg.set_crd(changed)
    again = openapi.openapi_index(reg)["paths"]
    assert again["apis/demo.driftdeck.io/v1"] != after["apis/demo.driftdeck.io/v1"]
    assert again["apis/apps/v1"] == after["apis/apps/v1"]
    reg.set_crd(changed)  # same content again: new types, same document and hash
    assert openapi.openapi_index(reg)["paths"]["apis/demo.driftdeck.io/v1"] == again["apis/demo.driftdeck.io/v1"]
    reg.remove_crd(changed)
    assert openapi.openapi_gv(reg, "demo.driftdeck.io", "v1") is None
    assert "apis/demo.driftdeck.io/v1" not in openapi.openapi_index(reg)["paths"]


def test_documents_are_cached() -> None:
    reg = Registry()
    first = openapi.openapi_gv(reg, "apps", "v1")
    assert openapi.openapi_gv(reg, "apps", "v1") is first
    assert openapi.openapi_gv_body(reg, "apps", "v1") is openapi.openapi_gv_body(reg, "apps", "v1")
    reg.set_crd(CRD)  # another group changes: apps/v1 is kept
    assert openapi.openapi_gv(reg, "apps", "v1") is first
    assert openapi.openapi_gv(Registry(), "apps", "v1") is not first  # caches are per registry
    assert openapi.openapi_doc(reg, "/apis/apps/v1/") is first
    assert openapi.openapi_doc(reg, "apis/nope/v1") is None


def test_small_documents() -> None:
    reg = Registry()
    version = openapi.openapi_doc(reg, "version")
    assert version is not None
    assert version["paths"]["/version/"]["get"]["operationId"] == "getCodeVersion"
    assert "io.k8s.apimachinery.pkg.version.Info" in version["components"]["schemas"]
    group = openapi.openapi_doc(reg, "apis/rbac.authorization.k8s.io")
    assert group is not None
    assert group["paths"]["/apis/rbac.authorization.k8s.io/"]["get"]["operationId"] == "getRbacAuthorizationAPIGroup"
