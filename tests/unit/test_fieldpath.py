"""Field paths, field sets and the fieldsV1 encoding (server-side-apply-cases §1, §4.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.kube.fieldpath import (
    FieldSet,
    canonical_json,
    element_order,
    field,
    index,
    key,
    make_path,
    normalize_element,
    path_string,
    value,
)


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


P_DEP_JSON = (
    '{"f:spec":{"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},'
    '"f:spec":{"f:containers":{"k:{\\"name\\":\\"app\\"}":{".":{},"f:image":{},"f:name":{}}}}}}}'
)

C_APP = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"app"}')


def test_elements_are_fieldsv1_keys() -> None:
    assert field("app.kubernetes.io/name") == "f:app.kubernetes.io/name"
    assert key({"name": "app"}) == 'k:{"name":"app"}'
    assert key({"protocol": "TCP", "containerPort": 80}) == 'k:{"containerPort":80,"protocol":"TCP"}'
    assert key({"port": 8080.0, "protocol": "UDP"}) == 'k:{"port":8080,"protocol":"UDP"}'
    assert value("example.com/cleanup") == 'v:"example.com/cleanup"'
    assert value(80) == "v:80"
    assert value(True) == "v:true"
    assert index(3) == "i:3"


def test_key_json_go_escaping_and_raw_utf8() -> None:
    assert key({"name": "a<b>&c"}) == 'k:{"name":"a\\u003cb\\u003e\\u0026c"}'
    assert key({"name": "café"}) == 'k:{"name":"café"}'
    assert canonical_json({"b": 1, "a": [1.0, "x"]}) == '{"a":[1,"x"],"b":1}'


def test_normalize_element_accepts_any_spelling() -> None:
    assert (
        normalize_element('k:{ "protocol": "TCP", "containerPort": 80 }')
        == 'k:{"containerPort":80,"protocol":"TCP"}'
    )
    assert normalize_element("v: 80") == "v:80"
    assert normalize_element("f:a b") == "f:a b"
    with pytest.raises(ValueError):
        normalize_element("x:foo")
    with pytest.raises(ValueError):
        normalize_element("k:[1]")
    with pytest.raises(ValueError):
        normalize_element("nocolon")


def test_p_dep_roundtrip_exact_bytes() -> None:
    fs = FieldSet.from_fieldsv1(json.loads(P_DEP_JSON))
    assert len(fs) == 5
    assert ("f:spec", "f:selector") in fs
    assert C_APP in fs
    assert (*C_APP, "f:image") in fs
    assert ("f:spec",) not in fs  # a struct with owned children is not a member
    assert dumps(fs.to_fieldsv1()) == P_DEP_JSON
    assert fs.to_json() == P_DEP_JSON


def test_service_ports_order_is_normalized() -> None:
    expected = (
        '{"f:spec":{"f:ports":{"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}},'
        '"k:{\\"port\\":80,\\"protocol\\":\\"UDP\\"}":{".":{},"f:port":{},"f:protocol":{}},'
        '"k:{\\"port\\":443,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}}}}}'
    )
    shuffled: dict[str, Any] = {
        "f:spec": {
            "f:ports": {
                'k:{"protocol":"TCP","port":443}': {"f:port": {}, ".": {}},
                'k:{"port":80, "protocol":"UDP"}': {"f:protocol": {}, "f:port": {}, ".": {}},
                'k:{"port":80,"protocol":"TCP"}': {"f:port": {}, ".": {}},
            }
        }
    }
    assert dumps(FieldSet.from_fieldsv1(shuffled).to_fieldsv1()) == expected


def test_order_dot_fields_keys_values_indexes() -> None:
    fs = FieldSet(
        [
            ("f:x",),
            ("f:x", "i:10"),
            ("f:x", "i:2"),
            ("f:x", 'v:"b"'),
            ("f:x", "v:true"),
            ("f:x", "v:5"),
            ("f:x", 'k:{"a":"z"}'),
            ("f:x", 'k:{"a":1}'),
            ("f:x", "f:b"),
            ("f:x", "f:B"),
        ]
    )
    assert list(fs.to_fieldsv1()["f:x"]) == [
        ".",
        "f:B",
        "f:b",
        'k:{"a":1}',
        'k:{"a":"z"}',
        "v:5",
        'v:"b"',
        "v:true",
        "i:2",
        "i:10",
    ]


def test_key_order_compares_pairwise_and_numerically() -> None:
    ks = [
        key({"containerPort": 443, "protocol": "TCP"}),
        key({"containerPort": 80, "protocol": "UDP"}),
        key({"containerPort": 80, "protocol": "TCP"}),
    ]
    assert sorted(ks, key=element_order) == [
        'k:{"containerPort":80,"protocol":"TCP"}',
        'k:{"containerPort":80,"protocol":"UDP"}',
        'k:{"containerPort":443,"protocol":"TCP"}',
    ]


def test_set_item_encoding() -> None:
    fs = FieldSet([("f:metadata", "f:finalizers", value("example.com/a"))])
    assert dumps(fs.to_fieldsv1()) == '{"f:metadata":{"f:finalizers":{"v:\\"example.com/a\\"":{}}}}'


def test_member_with_children_gets_dot_and_leaf_is_empty() -> None:
    fs = FieldSet([("f:data",), ("f:data", "f:color"), ("f:spec", "f:x")])
    assert fs.to_fieldsv1() == {"f:data": {".": {}, "f:color": {}}, "f:spec": {"f:x": {}}}
    back = FieldSet.from_fieldsv1({"f:data": {".": {}, "f:color": {}}, "f:spec": {"f:x": {".": {}}}})
    assert back == FieldSet([("f:data",), ("f:data", "f:color"), ("f:spec", "f:x")])


def test_from_fieldsv1_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        FieldSet.from_fieldsv1({"f:a": 1})
    with pytest.raises(ValueError):
        FieldSet.from_fieldsv1({"bogus": {}})


def test_path_strings() -> None:
    assert path_string((*C_APP, "f:image")) == '.spec.template.spec.containers[name="app"].image'
    assert (
        path_string(("f:metadata", "f:labels", "f:app.kubernetes.io/name"))
        == ".metadata.labels.app.kubernetes.io/name"
    )
    assert (
        path_string(("f:ports", key({"protocol": "TCP", "containerPort": 80})))
        == '.ports[containerPort=80,protocol="TCP"]'
    )
    assert (
        path_string(("f:metadata", "f:finalizers", value("example.com/a")))
        == '.metadata.finalizers[="example.com/a"]'
    )
    assert path_string(("f:args", "i:3")) == ".args[3]"
    assert path_string(("f:x", key({"b": True, "a": 1.5}))) == ".x[a=1.5,b=true]"
    assert path_string(("f:x", key({"name": 'q"\n'}))) == '.x[name="q\\"\\n"]'
    env = (*C_APP, "f:env", key({"name": "JAVA_OPTS"}), "f:value")
    assert path_string(env) == '.spec.template.spec.containers[name="app"].env[name="JAVA_OPTS"].value'


def test_make_path() -> None:
    assert make_path("spec", "containers", {"name": "app"}, "image") == (
        "f:spec",
        "f:containers",
        'k:{"name":"app"}',
        "f:image",
    )
    assert make_path("args", 2) == ("f:args", "i:2")
    assert make_path("finalizers", value("x")) == ("f:finalizers", 'v:"x"')


def test_set_algebra() -> None:
    a = FieldSet([("f:a",), ("f:a", "f:b"), ("f:c",)])
    b = FieldSet([("f:a", "f:b"), ("f:d",)])
    assert (a | b).paths == {("f:a",), ("f:a", "f:b"), ("f:c",), ("f:d",)}
    assert (a - b).paths == {("f:a",), ("f:c",)}
    assert (a & b).paths == {("f:a", "f:b")}
    assert a.union(b) == b.union(a)
    assert ("f:c",) in a and ("f:d",) not in a
    assert FieldSet().is_empty() and not a.is_empty()
    assert sorted(a) == [("f:a",), ("f:a", "f:b"), ("f:c",)]
    assert len(a) == 3
    assert hash(a) == hash(FieldSet(list(a)))


def test_recursive_difference_prefix_and_leaves() -> None:
    s = FieldSet(
        [
            ("f:status",),
            ("f:status", "f:replicas"),
            ("f:spec", "f:replicas"),
            ("f:metadata", "f:labels", "f:a"),
        ]
    )
    assert s.recursive_difference(FieldSet([("f:status",)])).paths == {
        ("f:spec", "f:replicas"),
        ("f:metadata", "f:labels", "f:a"),
    }
    assert s.recursive_difference(FieldSet([("f:metadata", "f:labels")])).paths == {
        ("f:status",),
        ("f:status", "f:replicas"),
        ("f:spec", "f:replicas"),
    }
    assert s.leaves().paths == {
        ("f:status", "f:replicas"),
        ("f:spec", "f:replicas"),
        ("f:metadata", "f:labels", "f:a"),
    }
    assert s.with_prefix(("f:status",)).paths == {("f:replicas",)}
    assert s.has_prefix(("f:metadata", "f:labels"))
    assert not s.has_prefix(("f:metadata", "f:annotations"))


def test_iter_sorted_members_before_subtrees() -> None:
    s = FieldSet(
        [
            ("f:data", "f:size"),
            ("f:metadata", "f:labels", "f:tier"),
            ("f:data", "f:color"),
            ("f:apiVersion",),
        ]
    )
    assert [path_string(p) for p in s.iter_sorted()] == [
        ".apiVersion",
        ".data.color",
        ".data.size",
        ".metadata.labels.tier",
    ]
