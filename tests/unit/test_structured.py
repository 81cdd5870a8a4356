"""Schema-guided field sets, merge, compare, remove and project (server-side-apply-cases §1.5, §1.6, D4...)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from core.kube import schema
from core.kube.fieldpath import FieldSet, key, make_path, path_string, value
from core.kube.schema import Node
from core.kube.structured import (
    StructuredError,
    all_fields,
    compare,
    ensure_named_fields_are_members,
    merge,
    project,
    prune,
    remove,
    to_field_set,
)


def node(api_version: str, kind: str) -> Node:
    n = schema.for_object(api_version, kind)
    assert n is not None
    return n


DEP_NODE = node("apps/v1", "Deployment")
SVC_NODE = node("v1", "Service")
CM_NODE = node("v1", "ConfigMap")


def fv1(fs: FieldSet) -> str:
    return json.dumps(fs.to_fieldsv1(), separators=(",", ":"))


def dep(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
            **spec,
        },
    }


DEP = dep([{"name": "app", "image": "nginx:1"}])
C_APP = make_path("spec", "template", "spec", "containers", {"name": "app"})


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


# --- to_field_set ---------------------------------------------------------------------------------


def test_p_dep_owned_set_exact() -> None:
    fs = to_field_set(DEP, DEP_NODE).recursive_difference(
        FieldSet([("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:namespace")])
    )
    assert fv1(fs) == (
        '{"f:spec":{"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},'
        '"f:spec":{"f:containers":{"k:{\\"name\\":\\"app\\"}":{".":{},"f:image":{},"f:name":{}}}}}}}'
    )
    assert ("f:metadata",) not in to_field_set(DEP, DEP_NODE)


def test_defaulted_key_field_in_key_but_not_owned() -> None:
    body = dep([{"name": "app", "image": "x", "ports": [{"containerPort": 443, "name": "web"}]}])
    fs = to_field_set(body, DEP_NODE)
    port = (*C_APP, "f:ports", 'k:{"containerPort":443,"protocol":"TCP"}')
    assert port in fs
    assert (*port, "f:containerPort") in fs and (*port, "f:name") in fs
    assert (*port, "f:protocol") not in fs
    assert fs.to_fieldsv1()["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}'][
        "f:ports"
    ] == {'k:{"containerPort":443,"protocol":"TCP"}': {".": {}, "f:containerPort": {}, "f:name": {}}}


def test_d12_service_ports_same_number() -> None:
    body = {"spec": {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}}
    assert fv1(to_field_set(body, SVC_NODE)) == (
        '{"f:spec":{"f:ports":{"k:{\\"port\\":53,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}},'
        '"k:{\\"port\\":53,\\"protocol\\":\\"UDP\\"}":{".":{},"f:port":{},"f:protocol":{}}}}}'
    )


def test_key_field_missing_without_default_is_error() -> None:
    with pytest.raises(StructuredError, match="omits all key fields"):
        to_field_set(dep([{"image": "x"}]), DEP_NODE)


def test_d13_empty_versus_omitted_ownership() -> None:
    body = {
        "metadata": {"labels": {}, "finalizers": []},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "args": [], "ports": []}]}}},
    }
    fs = to_field_set(body, DEP_NODE)
    assert ("f:metadata", "f:labels") in fs  # {} is owned as a leaf
    assert not fs.has_prefix(("f:metadata", "f:finalizers"))  # [] of a granular list owns nothing
    c = make_path("spec", "template", "spec", "containers", {"name": "a"})
    assert (*c, "f:args") in fs  # atomic [] is owned
    assert not fs.has_prefix((*c, "f:ports"))


def test_d14_null_is_owned_member() -> None:
    fs = to_field_set({"data": None, "metadata": {"labels": {"a": None}}}, CM_NODE)
    assert fs.paths == {("f:data",), ("f:metadata", "f:labels", "f:a")}


def test_d6_set_items_and_d9_atomic_selector() -> None:
    fs = to_field_set(
        {"metadata": {"finalizers": ["example.com/a"]}, "spec": {"selector": {"matchLabels": {"a": "b"}}}},
        DEP_NODE,
    )
    assert (
        fv1(fs) == '{"f:metadata":{"f:finalizers":{"v:\\"example.com/a\\"":{}}},"f:spec":{"f:selector":{}}}'
    )


def test_d15_crd_atomic_lists_granular_maps_deduced_objects() -> None:
    crd = schema.from_openapi_v3(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "items": {"type": "array", "items": {"type": "string"}},
                        "config": {"type": "object", "additionalProperties": {"type": "string"}},
                        "rules": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["id"],
                            "items": {
                                "type": "object",
                                "properties": {"id": {"type": "integer"}, "v": {"type": "string"}},
                            },
                        },
                    },
                }
            },
        }
    )
    fs = to_field_set(
        {"spec": {"items": ["a"], "config": {"x": "1"}, "extra": {"a": 1}, "rules": [{"id": 7, "v": "q"}]}},
        crd,
    )
    assert fv1(fs) == (
        '{"f:spec":{"f:config":{"f:x":{}},"f:extra":{".":{},"f:a":{}},"f:items":{},'
        '"f:rules":{"k:{\\"id\\":7}":{".":{},"f:id":{},"f:v":{}}}}}'
    )


# --- merge ----------------------------------------------------------------------------------------


def names(items: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in items]


def cs(*ns: str) -> list[dict[str, Any]]:
    return [{"name": n, "image": n} for n in ns]


def test_d4_merge_order_interleaves_live_only_items() -> None:
    merged = merge(dep(cs("a", "b", "c", "d")), dep(cs("a", "x", "c", "y")), DEP_NODE)
    assert names(containers(merged)) == ["a", "b", "x", "c", "d", "y"]


def test_d4_shared_items_follow_applied_order() -> None:
    merged = merge(dep(cs("a", "d", "c", "b")), dep(cs("a", "b", "c", "d")), DEP_NODE)
    assert names(containers(merged)) == ["a", "b", "c", "d"]
    merged = merge(dep(cs("p80", "p8080", "p8081")), dep(cs("p8081", "p80")), DEP_NODE)
    assert names(containers(merged)) == ["p8080", "p8081", "p80"]


def test_merge_leaves_atomic_and_granular() -> None:
    live = dep(
        [{"name": "app", "image": "nginx:1", "args": ["--a", "--b"], "env": [{"name": "A", "value": "1"}]}],
        replicas=3,
    )
    live["metadata"]["labels"] = {"team": "a"}
    applied = dep(
        [{"name": "app", "image": "nginx:2", "args": ["--c"], "env": [{"name": "B", "value": "2"}]}]
    )
    applied["metadata"]["labels"] = {"env": "prod"}
    applied["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "fe"}}
    snapshot = copy.deepcopy(live)
    merged = merge(live, applied, DEP_NODE)
    c = containers(merged)[0]
    assert c["image"] == "nginx:2"
    assert c["args"] == ["--c"]  # atomic: replaced whole
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert merged["metadata"]["labels"] == {"team": "a", "env": "prod"}
    assert merged["spec"]["selector"] == {"matchLabels": {"app": "web", "tier": "fe"}}
    assert merged["spec"]["replicas"] == 3
    assert live == snapshot  # inputs untouched
    c["image"] = "mutated"
    assert containers(live)[0]["image"] == "nginx:1"  # output does not alias inputs


def test_merge_fills_key_defaults_and_matches_defaulted_live_items() -> None:
    live = dep([{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}])
    applied = dep([{"name": "app", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 90}]}])
    ports = containers(merge(live, applied, DEP_NODE))[0]["ports"]
    assert ports == [
        {"containerPort": 80, "protocol": "TCP", "name": "web"},
        {"containerPort": 90, "protocol": "TCP"},
    ]


def test_d14_null_struct_merges_like_empty_and_scalar_null_wins() -> None:
    merged = merge({"data": {"a": "1"}, "binaryData": None}, {"data": None, "binaryData": None}, CM_NODE)
    assert merged == {"data": {"a": "1"}, "binaryData": None}
    assert merge(dep(cs("a"), replicas=3), {"spec": {"replicas": None}}, DEP_NODE)["spec"]["replicas"] is None


def test_d13_empty_granular_list_keeps_live_items() -> None:
    merged = merge({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": []}}, DEP_NODE)
    assert merged["metadata"]["finalizers"] == ["a"]
    assert merge({}, {"metadata": {"labels": {}}}, DEP_NODE) == {"metadata": {"labels": {}}}


def test_merge_rejects_duplicate_keys_in_applied() -> None:
    body = dep([{"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}])
    with pytest.raises(StructuredError, match="duplicate entries"):
        merge({}, body, DEP_NODE)


def test_set_merge_keeps_both_sides() -> None:
    merged = merge(
        {"metadata": {"finalizers": ["a", "b"]}}, {"metadata": {"finalizers": ["c", "a"]}}, DEP_NODE
    )
    assert merged["metadata"]["finalizers"] == ["c", "a", "b"]


# --- compare --------------------------------------------------------------------------------------


def strs(fs: FieldSet) -> set[str]:
    return {path_string(p) for p in fs}


def test_compare_added_modified_removed() -> None:
    old = {"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "y"}}}
    new = {"data": {"a": "9", "c": "3"}, "metadata": {"annotations": {"n": "v"}, "labels": {"x": "y"}}}
    added, modified, removed = compare(old, new, CM_NODE)
    assert strs(added) == {".data.c", ".metadata.annotations", ".metadata.annotations.n"}
    assert strs(modified) == {".data.a"}
    assert strs(removed) == {".data.b"}


def test_compare_items_and_reorder() -> None:
    old = dep(cs("a", "b"))
    added, modified, removed = compare(old, dep(cs("b", "a")), DEP_NODE)
    assert added.is_empty() and modified.is_empty() and removed.is_empty()
    added, modified, removed = compare(
        old, dep([*cs("a"), {"name": "c", "image": "c", "ports": [{"containerPort": 1}]}]), DEP_NODE
    )
    base = '.spec.template.spec.containers[name="c"]'
    assert strs(added) == {
        base,
        base + ".name",
        base + ".image",
        base + ".ports",
        base + '.ports[containerPort=1,protocol="TCP"]',
        base + '.ports[containerPort=1,protocol="TCP"].containerPort',
    }
    assert strs(removed) == {
        '.spec.template.spec.containers[name="b"]',
        '.spec.template.spec.containers[name="b"].name',
        '.spec.template.spec.containers[name="b"].image',
    }


def test_compare_atomic_is_one_leaf_and_null_vs_empty() -> None:
    _, modified, _ = compare(dep(cs("a")), dep(cs("a"), selector={"matchLabels": {"x": "y"}}), DEP_NODE)
    assert strs(modified) == {".spec.selector"}
    _, modified, _ = compare({"data": {}}, {"data": None}, CM_NODE)
    assert strs(modified) == {".data"}
    _, modified, _ = compare({"data": {"a": 1}}, {"data": {"a": True}}, CM_NODE)
    assert strs(modified) == {".data.a"}


def test_all_fields_with_and_without_skeleton() -> None:
    obj = {"metadata": {"labels": {"a": "b"}}, "data": {"k": "v"}}
    assert (
        fv1(all_fields(obj, CM_NODE))
        == '{"f:data":{".":{},"f:k":{}},"f:metadata":{".":{},"f:labels":{".":{},"f:a":{}}}}'
    )
    assert (
        fv1(all_fields(obj, CM_NODE, before={"metadata": {}}))
        == '{"f:data":{".":{},"f:k":{}},"f:metadata":{"f:labels":{".":{},"f:a":{}}}}'
    )


# --- remove / project / prune ---------------------------------------------------------------------


def test_remove_items_subtrees_and_emptied_containers() -> None:
    obj = dep([{"name": "app", "image": "x", "workingDir": "/w"}, {"name": "b", "image": "y"}])
    obj["metadata"]["labels"] = {"only": "one"}
    snapshot = copy.deepcopy(obj)
    out = remove(
        obj,
        FieldSet(
            [
                C_APP,
                make_path("metadata", "labels", "only"),
                make_path("spec", "template", "spec", "containers", {"name": "b"}, "image"),
            ]
        ),
        DEP_NODE,
    )
    assert containers(out) == [{"name": "b"}]
    assert "labels" not in out["metadata"]
    assert obj == snapshot


def test_remove_set_item() -> None:
    out = remove(
        {"metadata": {"finalizers": ["a", "b"]}},
        FieldSet([("f:metadata", "f:finalizers", value("a"))]),
        DEP_NODE,
    )
    assert out == {"metadata": {"finalizers": ["b"]}}


def test_project_owned_part() -> None:
    live = dep(
        [
            {
                "name": "app",
                "image": "nginx:2",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            },
            {"name": "sidecar", "image": "envoy"},
        ],
        replicas=3,
        revisionHistoryLimit=10,
    )
    live["metadata"]["labels"] = {"app": "web", "other": "x"}
    fs = to_field_set(
        dep([{"name": "app", "image": "nginx:1", "ports": [{"containerPort": 80}]}], replicas=1), DEP_NODE
    )
    assert project(live, fs, DEP_NODE) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:2",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        }
                    ]
                },
            },
        },
    }
    member_only = FieldSet([("f:metadata", "f:labels"), (*C_APP,)])
    assert project(live, member_only, DEP_NODE) == {
        "metadata": {"labels": {}},
        "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}},
    }


def test_prune_removes_only_unowned_previous_paths() -> None:
    obj = {"data": {"color": "red", "size": "L", "extra": "x"}}
    last = FieldSet([("f:data", "f:color"), ("f:data", "f:size")])
    owned = FieldSet([("f:data", "f:color")])
    assert prune(obj, last, owned, CM_NODE)
    assert obj == {"data": {"color": "red", "extra": "x"}}


def test_prune_resets_defaulted_key_field_instead_of_dropping() -> None:
    obj = dep([{"name": "app", "ports": [{"containerPort": 80, "protocol": "UDP", "name": "a"}]}])
    port = (*C_APP, "f:ports", key({"containerPort": 80, "protocol": "UDP"}))
    last = FieldSet([C_APP, port, (*port, "f:protocol"), (*port, "f:name"), (*port, "f:containerPort")])
    owned = FieldSet([C_APP, port, (*port, "f:containerPort"), (*port, "f:name")])
    prune(obj, last, owned, DEP_NODE)
    assert containers(obj)[0]["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "a"}]


def test_ensure_named_fields_are_members() -> None:
    fs = FieldSet([(*C_APP, "f:image"), ("f:metadata", "f:labels", "f:a")])
    out = ensure_named_fields_are_members(fs, DEP_NODE)
    assert strs(out - fs) == {
        ".spec",
        ".spec.template",
        ".spec.template.spec",
        ".spec.template.spec.containers",
        ".metadata",
        ".metadata.labels",
    }
