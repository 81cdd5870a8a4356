"""The field manager against the server-side-apply test matrix (server-side-apply-cases.md §3, §4)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from core.kube import schema
from core.kube.fieldpath import EMPTY
from core.kube.managedfields import (
    ApplyConflict,
    ManagerIdentity,
    apply,
    build_last_applied,
    decode_managed_fields,
    reset_fields,
    update,
)
from core.kube.schema import Node
from core.kube.structured import StructuredError


def node(api_version: str, kind: str) -> Node:
    n = schema.for_object(api_version, kind)
    assert n is not None
    return n


CM_NODE = node("v1", "ConfigMap")
DEP_NODE = node("apps/v1", "Deployment")
SVC_NODE = node("v1", "Service")
POD_NODE = node("v1", "Pod")


def t(n: int) -> str:
    return f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}Z"


def cm(
    data: dict[str, Any] | None = None, labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"},
    }
    if labels is not None:
        obj["metadata"]["labels"] = labels
    if data is not None:
        obj["data"] = data
    obj.update(extra)
    return obj


def dep(containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": containers
                    if containers is not None
                    else [{"name": "app", "image": "nginx:1"}]
                },
            },
            **spec,
        },
    }


DEP = dep()
P_DEP = (
    '{"f:spec":{"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},'
    '"f:spec":{"f:containers":{"k:{\\"name\\":\\"app\\"}":{".":{},"f:image":{},"f:name":{}}}}}}}'
)


def capply(
    live: dict[str, Any] | None,
    body: dict[str, Any],
    manager: str,
    now: int = 1,
    force: bool = False,
    **kw: Any,
) -> dict[str, Any]:
    return apply(live, body, manager=manager, node=CM_NODE, api_version="v1", force=force, now=t(now), **kw)


def dapply(
    live: dict[str, Any] | None,
    body: dict[str, Any],
    manager: str,
    now: int = 1,
    force: bool = False,
    **kw: Any,
) -> dict[str, Any]:
    return apply(
        live, body, manager=manager, node=DEP_NODE, api_version="apps/v1", force=force, now=t(now), **kw
    )


def cupdate(
    old: dict[str, Any] | None, new: dict[str, Any], manager: str, now: int = 1, **kw: Any
) -> dict[str, Any]:
    return update(old, new, manager=manager, node=CM_NODE, api_version="v1", now=t(now), **kw)


def dupdate(
    old: dict[str, Any] | None, new: dict[str, Any], manager: str, now: int = 1, **kw: Any
) -> dict[str, Any]:
    return update(old, new, manager=manager, node=DEP_NODE, api_version="apps/v1", now=t(now), **kw)


def mf(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj.get("metadata", {}).get("managedFields", [])
    return result


def ids(obj: dict[str, Any]) -> list[str]:
    """Entries as ``name/Operation[@version][/subresource]``."""
    out = []
    for e in mf(obj):
        s = f"{e['manager']}/{e['operation']}"
        if e["operation"] == "Update":
            s += "@" + e["apiVersion"]
        if e.get("subresource"):
            s += "/" + e["subresource"]
        out.append(s)
    return out


def entry(obj: dict[str, Any], manager: str, operation: str | None = None) -> dict[str, Any]:
    found = [
        e for e in mf(obj) if e["manager"] == manager and (operation is None or e["operation"] == operation)
    ]
    assert len(found) == 1, ids(obj)
    return found[0]


def fv1(obj: dict[str, Any], manager: str, operation: str | None = None) -> str:
    return json.dumps(entry(obj, manager, operation)["fieldsV1"], separators=(",", ":"))


def conflict(fn: Any, *args: Any, **kw: Any) -> ApplyConflict:
    with pytest.raises(ApplyConflict) as info:
        fn(*args, **kw)
    return info.value


def simple_defaults(obj: dict[str, Any]) -> None:
    """A tiny stand-in for the sandbox's defaulting (Deployments only)."""
    if obj.get("kind") != "Deployment":
        return
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("dnsPolicy", "ClusterFirst")
    for c in pod.get("containers") or []:
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")


def created(obj: dict[str, Any], rv: str = "1") -> dict[str, Any]:
    """What the sandbox adds on create."""
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="u-1", resourceVersion=rv, creationTimestamp=t(0))
    return out


# --- A. creation, no-ops ------------------------------------------------------------------------


def test_a1_apply_creates_and_owns_exactly_what_it_sent() -> None:
    body = cm({"color": "red"}, labels={"team": "a"})
    out = capply(None, body, "alice")
    assert {k: v for k, v in out.items() if k != "metadata"} == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {"color": "red"},
    }
    assert mf(out) == [
        {
            "manager": "alice",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": t(1),
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:color": {}}, "f:metadata": {"f:labels": {"f:team": {}}}},
        }
    ]
    assert list(mf(out)[0]) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
    assert fv1(out, "alice") == '{"f:data":{"f:color":{}},"f:metadata":{"f:labels":{"f:team":{}}}}'


def test_a2_defaults_filled_but_not_owned() -> None:
    out = dapply(None, DEP, "alice", default=simple_defaults)
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert fv1(out, "alice") == P_DEP


def test_a3_reapply_identical_is_noop() -> None:
    live = created(capply(None, cm({"color": "red"}, labels={"team": "a"}), "alice", now=1))
    again = capply(live, cm({"color": "red"}, labels={"team": "a"}), "alice", now=50)
    assert again == live
    body = cm({"color": "red"}, labels={"team": "a"})
    body["metadata"].update(creationTimestamp=None, resourceVersion=None)
    assert capply(live, body, "alice", now=60) == live


def test_a3_noop_when_defaulting_restores_the_live_object() -> None:
    def canonical(obj: dict[str, Any]) -> None:  # like quantity canonicalisation (0.5 -> 500m)
        obj["data"] = {k: v.upper() for k, v in obj.get("data", {}).items()}

    live = created(capply(None, cm({"color": "red"}), "alice", now=1, default=canonical))
    assert live["data"] == {"color": "RED"}
    out = capply(live, cm({"color": "red"}), "alice", now=9, default=canonical)
    assert out == live  # only the Apply time would have changed
    # Pruning changes the owned set, so that is a real write with a new time.
    d = created(dapply(None, dep(replicas=1), "alice", now=1, default=simple_defaults))
    pruned = dapply(d, DEP, "alice", now=9, default=simple_defaults)
    assert pruned["spec"]["replicas"] == 1
    assert (entry(pruned, "alice")["time"], fv1(pruned, "alice")) == (t(9), P_DEP)


def test_a4_identity_only_apply_records_nothing() -> None:
    out = capply(None, cm(), "alice")
    assert "managedFields" not in out["metadata"]
    again = capply(created(out), cm(), "alice", now=2)
    assert again == created(out)
    assert "managedFields" not in again["metadata"]


def test_a5_second_applier_with_identical_values_shares_without_time() -> None:
    live = created(capply(None, cm({"color": "red"}, labels={"team": "a"}), "alice", now=1))
    out = capply(live, cm({"color": "red"}, labels={"team": "a"}), "bob", now=5)
    assert out["data"] == {"color": "red"}
    assert ids(out) == ["bob/Apply", "alice/Apply"]
    assert "time" not in entry(out, "bob")
    assert entry(out, "alice")["time"] == t(1)
    assert fv1(out, "bob") == fv1(out, "alice")


def test_a10_resource_version_in_body_kept_not_owned() -> None:
    live = created(capply(None, cm({"color": "red"}), "alice"), rv="7")
    body = cm({"color": "blue"})
    body["metadata"]["resourceVersion"] = "5"
    out = capply(live, body, "alice", now=2)
    assert out["metadata"]["resourceVersion"] == "5"  # the caller compares it with the stored version
    assert fv1(out, "alice") == '{"f:data":{"f:color":{}}}'


# --- B. removing fields by omission ---------------------------------------------------------------


def test_b1_sole_owner_drops_field() -> None:
    live = capply(None, cm({"color": "red", "size": "L"}), "alice")
    out = capply(live, cm({"color": "red"}), "alice", now=2)
    assert out["data"] == {"color": "red"}
    assert fv1(out, "alice") == '{"f:data":{"f:color":{}}}'


def test_b1_deployment_drops_hostname_and_replicas() -> None:
    body = dep(replicas=3)
    body["spec"]["template"]["spec"]["hostname"] = "h"
    live = dapply(None, body, "alice", default=simple_defaults)
    assert (live["spec"]["replicas"], live["spec"]["template"]["spec"]["hostname"]) == (3, "h")
    out = dapply(live, DEP, "alice", now=3, default=simple_defaults)
    assert "hostname" not in out["spec"]["template"]["spec"]
    assert out["spec"]["replicas"] == 1  # reset to the default, owned by nobody
    assert fv1(out, "alice") == P_DEP


def test_b2_field_shared_with_another_applier_stays() -> None:
    live = capply(capply(None, cm({"color": "red"}), "alice", now=1), cm({"color": "red"}), "bob", now=2)
    out = capply(live, cm(), "alice", now=3)
    assert out["data"] == {"color": "red"}
    assert ids(out) == ["bob/Apply"]
    assert fv1(out, "bob") == '{"f:data":{"f:color":{}}}'


def test_b3_field_also_set_by_update_stays() -> None:
    posted = cupdate(None, cm({"color": "red"}), "ops", now=1)
    assert ids(posted) == ["ops/Update@v1"]
    assert fv1(posted, "ops") == '{"f:data":{".":{},"f:color":{}}}'
    shared = capply(posted, cm({"color": "red", "size": "L"}), "alice", now=2)
    assert fv1(shared, "alice") == '{"f:data":{"f:color":{},"f:size":{}}}'
    out = capply(shared, cm({"size": "L"}), "alice", now=3)
    assert out["data"] == {"color": "red", "size": "L"}
    assert fv1(out, "ops") == '{"f:data":{".":{},"f:color":{}}}'
    assert fv1(out, "alice") == '{"f:data":{"f:size":{}}}'


def test_b4_updater_takes_field_before_applier_drops_it() -> None:
    live = dapply(None, dep(replicas=3), "alice")
    put = copy.deepcopy(live)
    put["spec"]["replicas"] = 4
    live = dupdate(live, put, "hpa", now=2)
    assert fv1(live, "hpa") == '{"f:spec":{"f:replicas":{}}}'
    out = dapply(live, DEP, "alice", now=3)
    assert out["spec"]["replicas"] == 4
    assert ids(out) == ["alice/Apply", "hpa/Update@apps/v1"]
    assert fv1(out, "alice") == P_DEP


def test_b5_empty_intent_removes_sole_owned_fields() -> None:
    live = capply(None, cm({"color": "red"}, labels={"team": "a"}), "alice", now=1)
    new = copy.deepcopy(live)
    new["data"]["size"] = "L"
    live = cupdate(live, new, "ops", now=2)
    out = capply(live, cm(), "alice", now=3)
    assert out["data"] == {"size": "L"}
    assert "labels" not in out["metadata"]
    assert ids(out) == ["ops/Update@v1"]


# --- C. conflicts and force -----------------------------------------------------------------------


def test_c1_any_sharer_changing_the_value_conflicts() -> None:
    live = capply(capply(None, cm({"color": "red"}), "alice", now=1), cm({"color": "red"}), "bob", now=2)
    exc = conflict(capply, live, cm({"color": "blue"}), "bob", now=3)
    assert exc.message == 'Apply failed with 1 conflict: conflict with "alice": .data.color'


def test_c2_single_conflict_message_and_causes() -> None:
    live = capply(None, cm({"color": "red"}), "alice")
    snapshot = copy.deepcopy(live)
    exc = conflict(capply, live, cm({"color": "blue"}), "bob", now=2)
    assert exc.message == 'Apply failed with 1 conflict: conflict with "alice": .data.color'
    assert exc.causes() == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.color"}
    ]
    assert exc.status()["code"] == 409 and exc.status()["reason"] == "Conflict"
    assert exc.status()["details"] == {"causes": exc.causes()}
    assert live == snapshot


def _c3_live() -> dict[str, Any]:
    live = capply(None, cm({"color": "red", "size": "L", "keep": "k"}, labels={"other": "o"}), "alice", now=1)
    new = copy.deepcopy(live)
    new["metadata"]["labels"]["tier"] = "fe"
    return cupdate(live, new, "ops", now=2)


def test_c3_several_conflicts_message() -> None:
    exc = conflict(
        capply, _c3_live(), cm({"color": "blue", "size": "S"}, labels={"tier": "be"}), "bob", now=3
    )
    assert exc.message == (
        'Apply failed with 3 conflicts: conflicts with "alice":\n'
        "- .data.color\n"
        "- .data.size\n"
        'conflicts with "ops" using v1:\n'
        "- .metadata.labels.tier"
    )
    assert Counter(json.dumps(c, sort_keys=True) for c in exc.causes()) == Counter(
        json.dumps(c, sort_keys=True)
        for c in [
            {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.color"},
            {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.size"},
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "ops" using v1',
                "field": ".metadata.labels.tier",
            },
        ]
    )
    assert [(i.manager, i.operation) for i, _ in exc.conflicts] == [
        ("alice", "Apply"),
        ("alice", "Apply"),
        ("ops", "Update"),
    ]


def test_c4_force_takes_ownership() -> None:
    out = capply(
        _c3_live(), cm({"color": "blue", "size": "S"}, labels={"tier": "be"}), "bob", now=3, force=True
    )
    assert out["data"] == {"color": "blue", "size": "S", "keep": "k"}
    assert out["metadata"]["labels"] == {"other": "o", "tier": "be"}
    assert ids(out) == ["alice/Apply", "bob/Apply"]
    assert fv1(out, "bob") == '{"f:data":{"f:color":{},"f:size":{}},"f:metadata":{"f:labels":{"f:tier":{}}}}'
    assert fv1(out, "alice") == '{"f:data":{"f:keep":{}},"f:metadata":{"f:labels":{"f:other":{}}}}'


def test_c5_apply_against_update_owner() -> None:
    posted = cupdate(None, cm({"color": "red"}), "kubectl-create", now=1)
    exc = conflict(capply, posted, cm({"color": "blue"}), "alice", now=2)
    assert exc.message == 'Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.color'
    shared = capply(posted, cm({"color": "red"}), "alice", now=2)
    assert ids(shared) == ["alice/Apply", "kubectl-create/Update@v1"]


def test_c6_update_silently_takes_ownership() -> None:
    live = dapply(None, dep(replicas=3), "alice", now=1)
    patched = copy.deepcopy(live)
    patched["spec"]["replicas"] = 5
    live = dupdate(live, patched, "kubectl-edit", now=2)
    assert live["spec"]["replicas"] == 5
    edit = entry(live, "kubectl-edit")
    assert (edit["operation"], edit["apiVersion"], edit["time"]) == ("Update", "apps/v1", t(2))
    assert fv1(live, "kubectl-edit") == '{"f:spec":{"f:replicas":{}}}'
    assert fv1(live, "alice") == P_DEP
    exc = conflict(dapply, live, dep(replicas=3), "alice", now=3)
    assert (
        exc.message
        == 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    )
    forced = dapply(live, dep(replicas=3), "alice", now=3, force=True)
    assert forced["spec"]["replicas"] == 3
    assert ids(forced) == ["alice/Apply"]


def test_c7_update_deletes_applier_field() -> None:
    live = capply(None, cm({"color": "red"}, labels={"team": "a"}), "alice", now=1)
    new = copy.deepcopy(live)
    del new["metadata"]["labels"]
    live = cupdate(live, new, "ops", now=2)
    assert "labels" not in live["metadata"]
    assert ids(live) == ["alice/Apply"]
    assert fv1(live, "alice") == '{"f:data":{"f:color":{}}}'
    back = capply(live, cm({"color": "red"}, labels={"team": "a"}), "alice", now=3)
    assert back["metadata"]["labels"] == {"team": "a"}


def test_c8_noop_update_creates_no_entry() -> None:
    live = created(capply(None, cm({"color": "red"}), "alice", now=1))
    out = cupdate(live, copy.deepcopy(live), "ops", now=2)
    assert out == live


def test_c9_handing_over_ownership() -> None:
    live = dapply(None, dep(replicas=3), "alice", now=1)
    handover = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3},
    }
    live = dapply(live, handover, "handover", now=2)
    assert fv1(live, "handover") == '{"f:spec":{"f:replicas":{}}}'
    live = dapply(live, DEP, "alice", now=3)
    assert live["spec"]["replicas"] == 3
    assert fv1(live, "alice") == P_DEP
    assert fv1(live, "handover") == '{"f:spec":{"f:replicas":{}}}'
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 6
    out = dupdate(live, scaled, "hpa", now=4)
    assert ids(out) == ["alice/Apply", "hpa/Update@apps/v1"]


# --- D. lists, maps, structs ----------------------------------------------------------------------


def test_d1_two_appliers_add_different_containers() -> None:
    live = dapply(None, DEP, "alice", now=1)
    out = dapply(live, dep([{"name": "sidecar", "image": "envoy:1"}]), "bob", now=2)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["app", "sidecar"]
    assert fv1(out, "bob") == P_DEP.replace('\\"app\\"', '\\"sidecar\\"')


def test_d2_item_owned_only_by_applier_goes_with_updater_subfields() -> None:
    live = dapply(None, DEP, "alice", now=1)
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"][0]["workingDir"] = "/w"
    live = dupdate(live, new, "ops", now=2)
    assert (
        fv1(live, "ops")
        == '{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\\"name\\":\\"app\\"}":{"f:workingDir":{}}}}}}}'
    )
    out = dapply(live, dep([{"name": "other", "image": "x"}]), "alice", now=3)
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "other", "image": "x"}]
    assert ids(out) == ["alice/Apply"]


def test_d3_shared_item_stays_only_sole_owned_subfields_go() -> None:
    live = dapply(None, dep([{"name": "app", "workingDir": "/w"}]), "alice", now=1)
    live = dapply(live, dep([{"name": "app", "image": "nginx:1"}]), "bob", now=2)
    out = dapply(live, dep([{"name": "other", "image": "x"}]), "alice", now=3)
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "nginx:1"},
        {"name": "other", "image": "x"},
    ]


def test_d4_merge_order_and_reorder_gives_no_ownership() -> None:
    def cs(*names: str) -> list[dict[str, Any]]:
        return [{"name": n, "image": n} for n in names]

    live = dapply(None, dep(cs("a", "c")), "alice", now=1)
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"] = cs("a", "b", "c", "d")
    live = dupdate(live, new, "ops", now=2)
    out = dapply(live, dep(cs("a", "x", "c", "y")), "alice", now=3)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == [
        "a",
        "b",
        "x",
        "c",
        "d",
        "y",
    ]
    reordered = copy.deepcopy(out)
    reordered["spec"]["template"]["spec"]["containers"].reverse()
    after = dupdate(out, reordered, "shuffler", now=4)
    assert "shuffler" not in [e["manager"] for e in mf(after)]


def test_d5_atomic_list() -> None:
    body = dep([{"name": "app", "image": "nginx:1", "args": ["--a", "--b"]}])
    live = dapply(None, body, "alice", now=1)
    assert '"f:args":{}' in fv1(live, "alice")
    shared = dapply(live, body, "bob", now=2)
    assert ids(shared) == ["bob/Apply", "alice/Apply"]
    other = dep([{"name": "app", "image": "nginx:1", "args": ["--c"]}])
    exc = conflict(dapply, live, other, "bob", now=3)
    assert (
        exc.message
        == 'Apply failed with 1 conflict: conflict with "alice": .spec.template.spec.containers[name="app"].args'
    )
    forced = dapply(live, other, "bob", now=3, force=True)
    assert forced["spec"]["template"]["spec"]["containers"][0]["args"] == ["--c"]
    assert '"f:args"' not in fv1(forced, "alice")
    dropped = dapply(live, DEP, "alice", now=4)
    assert "args" not in dropped["spec"]["template"]["spec"]["containers"][0]


def test_d6_set_list_finalizers() -> None:
    body = cm()
    body["metadata"]["finalizers"] = ["example.com/a"]
    live = capply(None, body, "alice")
    assert fv1(live, "alice") == '{"f:metadata":{"f:finalizers":{"v:\\"example.com/a\\"":{}}}}'
    new = copy.deepcopy(live)
    new["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    live = cupdate(live, new, "ctrl", now=2)
    assert fv1(live, "ctrl") == '{"f:metadata":{"f:finalizers":{"v:\\"example.com/b\\"":{}}}}'
    for body in (
        cm(),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", "finalizers": []},
        },
    ):
        out = capply(live, body, "alice", now=3)
        assert out["metadata"]["finalizers"] == ["example.com/b"]
        assert ids(out) == ["ctrl/Update@v1"]


def test_d7_granular_map_keys_owned_separately() -> None:
    live = capply(None, cm(labels={"team": "a"}), "alice", now=1)
    out = capply(live, cm(labels={"env": "prod"}), "bob", now=2)
    assert out["metadata"]["labels"] == {"team": "a", "env": "prod"}
    assert fv1(out, "alice") == '{"f:metadata":{"f:labels":{"f:team":{}}}}'
    assert fv1(out, "bob") == '{"f:metadata":{"f:labels":{"f:env":{}}}}'


def svc(selector: dict[str, str], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": selector}
    if ports is not None:
        spec["ports"] = ports
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": spec,
    }


def sapply(
    live: dict[str, Any] | None, body: dict[str, Any], manager: str, now: int = 1, force: bool = False
) -> dict[str, Any]:
    return apply(live, body, manager=manager, node=SVC_NODE, api_version="v1", force=force, now=t(now))


def test_d8_atomic_map_service_selector() -> None:
    live = sapply(None, svc({"app": "web"}), "alice")
    assert fv1(live, "alice") == '{"f:spec":{"f:selector":{}}}'
    exc = conflict(sapply, live, svc({"app": "web", "tier": "fe"}), "bob", now=2)
    assert exc.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.selector'
    forced = sapply(live, svc({"app": "web", "tier": "fe"}), "bob", now=2, force=True)
    assert forced["spec"]["selector"] == {"app": "web", "tier": "fe"}
    assert ids(forced) == ["bob/Apply"]
    shared = sapply(live, svc({"app": "web"}), "bob", now=2)
    assert ids(shared) == ["bob/Apply", "alice/Apply"]


def test_d9_atomic_label_selector() -> None:
    live = dapply(None, DEP, "alice")
    assert '"f:selector":{}' in fv1(live, "alice")
    body = dep()
    body["spec"]["selector"] = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "a", "operator": "Exists"}],
    }
    exc = conflict(dapply, live, body, "bob", now=2)
    assert [c["field"] for c in exc.causes()] == [".spec.selector"]


def test_d10_nested_list_map_ports() -> None:
    live = dapply(
        None,
        dep([{"name": "app", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
        "alice",
        now=1,
    )
    out = dapply(
        live, dep([{"name": "app", "ports": [{"containerPort": 9090, "name": "metrics"}]}]), "bob", now=2
    )
    ports = out["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 9090, "name": "metrics", "protocol": "TCP"},
    ]
    assert json.loads(fv1(out, "bob"))["f:spec"]["f:template"]["f:spec"]["f:containers"] == {
        'k:{"name":"app"}': {
            ".": {},
            "f:name": {},
            "f:ports": {
                'k:{"containerPort":9090,"protocol":"TCP"}': {".": {}, "f:containerPort": {}, "f:name": {}}
            },
        }
    }
    dropped = dapply(out, DEP, "alice", now=3)
    assert dropped["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}
    ]
    solo = dapply(live, DEP, "alice", now=3)
    assert "ports" not in solo["spec"]["template"]["spec"]["containers"][0]


def test_d11_defaulted_key_field() -> None:
    live = dapply(
        None,
        dep([{"name": "app", "image": "x", "ports": [{"containerPort": 80, "name": "foo"}]}]),
        "alice",
        now=1,
    )
    assert live["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "name": "foo", "protocol": "TCP"}
    ]
    item = json.loads(fv1(live, "alice"))["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"app"}'
    ]["f:ports"]
    assert item == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}, "f:name": {}}}
    exc = conflict(
        dapply,
        live,
        dep(
            [
                {
                    "name": "app",
                    "image": "x",
                    "ports": [{"containerPort": 80, "protocol": "TCP", "name": "bar"}],
                }
            ]
        ),
        "bob",
        now=2,
    )
    assert [c["field"] for c in exc.causes()] == [
        '.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"].name'
    ]
    dup = dep([{"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}])
    with pytest.raises(StructuredError):
        dapply(live, dup, "bob", now=3)


def test_d12_service_ports_same_number() -> None:
    out = sapply(None, svc({"a": "b"}, [{"port": 53, "protocol": "UDP"}, {"port": 53}]), "alice")
    assert out["spec"]["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert fv1(out, "alice") == (
        '{"f:spec":{"f:ports":{"k:{\\"port\\":53,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}},'
        '"k:{\\"port\\":53,\\"protocol\\":\\"UDP\\"}":{".":{},"f:port":{},"f:protocol":{}}},"f:selector":{}}}'
    )


def test_d13_empty_versus_omitted() -> None:
    live = capply(None, cm(labels={"team": "a"}), "ops", now=1)
    out = capply(live, cm(labels={}), "alice", now=2)
    assert out["metadata"]["labels"] == {"team": "a"}
    assert fv1(out, "alice") == '{"f:metadata":{"f:labels":{}}}'
    assert capply(created(out), cm(labels={}), "alice", now=3) == created(out)  # no change on re-apply
    d = dapply(None, dep([{"name": "app", "image": "x", "args": ["--a"]}]), "ops", now=1)
    emptied = dapply(d, dep([{"name": "app", "image": "x", "args": []}]), "alice", now=2, force=True)
    assert emptied["spec"]["template"]["spec"]["containers"][0]["args"] == []
    assert '"f:args":{}' in fv1(emptied, "alice")


def test_d14_null_in_body() -> None:
    live = capply(None, cm({"color": "red"}), "alice", now=1)
    live = capply(live, cm({"size": "L"}), "bob", now=2)
    body = cm()
    body["data"] = None
    out = capply(live, body, "alice", now=3)
    assert out["data"] == {"size": "L"}
    assert fv1(out, "alice") == '{"f:data":{}}'
    d = dapply(None, dep(replicas=3), "alice", now=1)
    nulled = dapply(d, dep(replicas=None), "alice", now=2, default=simple_defaults)
    assert nulled["spec"]["replicas"] == 1  # cleared, then re-defaulted
    assert '"f:replicas":{}' in fv1(nulled, "alice")
    assert "replicas" not in dapply(d, dep(replicas=None), "alice", now=2)["spec"]
    exc = conflict(dapply, d, dep(replicas=None), "bob", now=2)
    assert exc.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    # A template `creationTimestamp: null` (common in rendered manifests) is owned but never stored.
    body = dep()
    body["spec"]["template"]["metadata"]["creationTimestamp"] = None
    out = dapply(None, body, "alice", now=3)
    assert out["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}
    assert '"f:metadata":{"f:creationTimestamp":{},"f:labels"' in fv1(out, "alice")


def test_d15_crd_atomic_list_and_granular_map() -> None:
    crd = schema.from_openapi_v3(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"type": "string"}},
                        "config": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }
            },
        }
    )

    def body(**spec: Any) -> dict[str, Any]:
        return {"apiVersion": "ex.com/v1", "kind": "Thing", "metadata": {"name": "x"}, "spec": spec}

    def crapply(live: dict[str, Any] | None, b: dict[str, Any], manager: str, now: int) -> dict[str, Any]:
        return apply(live, b, manager=manager, node=crd, api_version="ex.com/v1", force=False, now=t(now))

    live = crapply(None, body(items=["a"], config={"x": "1"}), "alice", 1)
    exc = conflict(crapply, live, body(items=["b"]), "bob", 2)
    assert exc.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.items'
    out = crapply(live, body(config={"y": "2"}), "bob", 2)
    assert out["spec"]["config"] == {"x": "1", "y": "2"}
    assert fv1(out, "bob") == '{"f:spec":{"f:config":{"f:y":{}}}}'


# --- E. subresources and lifecycle ----------------------------------------------------------------


def test_e1_status_writes() -> None:
    live = dapply(None, DEP, "alice", now=1)
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    new["spec"]["replicas"] = 99  # a /status write cannot own spec (the strategy resets it)
    new["metadata"]["managedFields"] = [
        {
            "manager": "forged",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:x": {}},
        }
    ]
    out = dupdate(live, new, "kube-controller-manager", now=2, subresource="status")
    assert ids(out) == ["alice/Apply", "kube-controller-manager/Update@apps/v1/status"]
    assert fv1(out, "kube-controller-manager") == (
        '{"f:status":{"f:conditions":{".":{},"k:{\\"type\\":\\"Available\\"}":{".":{},"f:status":{},"f:type":{}}},"f:replicas":{}}}'
    )
    assert entry(out, "kube-controller-manager")["subresource"] == "status"
    out["spec"].pop("replicas")
    again = dapply(out, DEP, "alice", now=3)
    assert again["status"] == new["status"]
    with_status = dep()
    with_status["status"] = {"replicas": 5}
    applied = dapply(again, with_status, "alice", now=4)
    assert applied["status"] == new["status"]
    assert fv1(applied, "alice") == P_DEP


def test_e3_scale_subresource_conflict_message() -> None:
    live = dapply(None, dep(replicas=2), "alice", now=1)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 32
    live = dupdate(live, scaled, "hpa", now=2, subresource="scale")
    e = entry(live, "hpa")
    assert (e["operation"], e["apiVersion"], e["subresource"]) == ("Update", "apps/v1", "scale")
    assert fv1(live, "hpa") == '{"f:spec":{"f:replicas":{}}}'
    exc = conflict(dapply, live, dep(replicas=3), "alice", now=3)
    assert (
        exc.message
        == 'Apply failed with 1 conflict: conflict with "hpa" with subresource "scale" using apps/v1: .spec.replicas'
    )


def test_e2_same_manager_on_main_resource_and_status_is_independent() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    live = apply(None, pod, manager="alice", node=POD_NODE, api_version="v1", force=False, now=t(1))
    status_body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    out = apply(
        live,
        status_body,
        manager="alice",
        node=POD_NODE,
        api_version="v1",
        force=False,
        now=t(2),
        subresource="status",
    )
    assert ids(out) == ["alice/Apply", "alice/Apply/status"]
    main, status = mf(out)
    assert "subresource" not in main and status["subresource"] == "status"
    assert json.loads(json.dumps(status["fieldsV1"])) == {
        "f:status": {"f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}}}
    }
    assert out["spec"] == pod["spec"] and out["metadata"]["labels"] == {
        "a": "b"
    }  # nothing pruned by the status apply


def test_e9_versions_in_identities() -> None:
    live = dapply(None, DEP, "alice", now=1)
    a = copy.deepcopy(live)
    a["spec"]["replicas"] = 2
    live = dupdate(live, a, "ops", now=2)
    b = copy.deepcopy(live)
    b["spec"]["paused"] = True
    live = update(live, b, manager="ops", node=DEP_NODE, api_version="apps/v1beta2", now=t(3))
    assert ids(live) == ["alice/Apply", "ops/Update@apps/v1", "ops/Update@apps/v1beta2"]
    again = apply(
        live,
        dep(replicas=2),
        manager="alice",
        node=DEP_NODE,
        api_version="apps/v1beta2",
        force=False,
        now=t(4),
    )
    assert [e["apiVersion"] for e in mf(again) if e["manager"] == "alice"] == ["apps/v1beta2"]


DEFAULTED_DEP = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "uid": "u",
        "creationTimestamp": t(0),
        "generation": 1,
    },
    "spec": {
        "replicas": 1,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1",
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
                "securityContext": {},
            },
        },
    },
}

E4_JSON = (
    '{"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},'
    '"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},'
    '"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\\"name\\":\\"app\\"}":'
    '{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},'
    '"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},'
    '"f:terminationGracePeriodSeconds":{}}}}}'
)


def test_e4_create_by_post_owns_defaults_with_zero_value_skeleton() -> None:
    live = dupdate(None, DEFAULTED_DEP, "kubectl-create", now=1)
    assert ids(live) == ["kubectl-create/Update@apps/v1"]
    assert fv1(live, "kubectl-create") == E4_JSON
    exc = conflict(dapply, live, dep([{"name": "app", "image": "nginx:2"}]), "alice", now=2)
    assert (
        exc.message
        == 'Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.template.spec.containers[name="app"].image'
    )
    shared = dapply(live, DEP, "alice", now=2)
    assert fv1(shared, "alice") == P_DEP
    assert fv1(shared, "kubectl-create") == E4_JSON
    narrowed = dep([{"name": "app", "image": "nginx:1"}])
    del narrowed["spec"]["selector"]
    kept = dapply(shared, narrowed, "alice", now=3)
    assert kept["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_e5_object_without_managed_fields_gets_before_first_apply() -> None:
    live = created(cm({"color": "red"}))
    exc = conflict(capply, live, cm({"color": "blue"}), "alice", now=2)
    assert (
        exc.message
        == 'Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.color'
    )
    out = capply(live, cm({"color": "red", "size": "L"}), "alice", now=2)
    assert ids(out) == ["alice/Apply", "before-first-apply/Update@v1"]
    assert fv1(out, "alice") == '{"f:data":{"f:color":{},"f:size":{}}}'
    assert fv1(out, "before-first-apply") == '{"f:data":{".":{},"f:color":{}}}'


def test_e6_clearing_managed_fields_and_no_restart_by_updates() -> None:
    live = created(capply(None, cm({"color": "red"}), "alice", now=1))
    resets: list[list[dict[str, Any]]] = [[{}], []]
    for reset in resets:
        new = copy.deepcopy(live)
        new["metadata"]["managedFields"] = reset
        new["data"]["size"] = "L"
        cleared = cupdate(live, new, "ops", now=2)
        assert "managedFields" not in cleared["metadata"]
        assert cleared["data"] == {"color": "red", "size": "L"}
    kept = copy.deepcopy(live)
    del kept["metadata"]["managedFields"]
    assert ids(cupdate(live, kept, "ops", now=2)) == ["alice/Apply"]  # omitted: live entries stay
    garbage = copy.deepcopy(live)
    garbage["metadata"]["managedFields"] = [{"manager": "x", "fieldsType": "FieldsV2"}]
    assert ids(cupdate(live, garbage, "ops", now=2)) == ["alice/Apply"]  # undecodable: live entries stay
    untracked = copy.deepcopy(cleared)
    untracked["data"]["more"] = "x"
    assert "managedFields" not in cupdate(cleared, untracked, "ops", now=3)["metadata"]
    restarted = capply(cleared, cm({"color": "red"}), "alice", now=4)
    assert ids(restarted) == ["alice/Apply", "before-first-apply/Update@v1"]


def test_e7_kubectl_client_side_upgrade() -> None:
    last = json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": dep(replicas=2)["spec"],
        }
    )
    obj = dep(replicas=2)
    obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": last}
    live = dupdate(None, obj, "kubectl-client-side-apply", now=1)
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 4
    live = dupdate(live, edited, "kubectl-edit", now=2)

    body = dep([{"name": "app", "image": "nginx:2"}], replicas=2)
    exc = conflict(dapply, live, body, "kubectl", now=3)
    assert (
        exc.message
        == 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    )
    other = conflict(dapply, live, body, "my-tool", now=3)
    assert [c["field"] for c in other.causes()] == [
        '.spec.template.spec.containers[name="app"].image',
        ".spec.replicas",
    ]

    body = dep([{"name": "app", "image": "nginx:2"}])
    out = dapply(live, body, "kubectl", now=3)
    assert out["spec"]["replicas"] == 4
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert out["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"
    ] == build_last_applied(body)
    assert build_last_applied(body).endswith("}\n") and '"replicas"' not in build_last_applied(body)


def test_e8_cap_on_update_entries() -> None:
    live = capply(None, cm({"color": "red"}), "alice", now=1)
    for i in range(11):
        new = copy.deepcopy(live)
        new.setdefault("metadata", {}).setdefault("labels", {})[f"l{i}"] = "x"
        live = cupdate(live, new, f"m{i:02d}", now=10 + i)
    assert len(mf(live)) == 11
    assert ids(live)[0] == "alice/Apply"
    assert ids(live)[1] == "ancient-changes/Update@v1"
    bucket = entry(live, "ancient-changes")
    assert bucket["time"] == t(11)
    assert json.loads(fv1(live, "ancient-changes")) == {
        "f:metadata": {"f:labels": {".": {}, "f:l0": {}, "f:l1": {}}}
    }
    assert [e["manager"] for e in mf(live)][2:] == [f"m{i:02d}" for i in range(2, 11)]
    for i in range(11, 20):
        new = copy.deepcopy(live)
        new["metadata"]["labels"][f"l{i}"] = "x"
        live = cupdate(live, new, f"m{i:02d}", now=10 + i)
    assert len(mf(live)) == 11
    assert mf(live)[1]["manager"] == "ancient-changes"
    assert set(json.loads(fv1(live, "ancient-changes"))["f:metadata"]["f:labels"]) == {
        ".",
        *(f"f:l{i}" for i in range(11)),
    }


# --- encoding details -----------------------------------------------------------------------------


def test_entry_sorting_and_duplicate_identities() -> None:
    raw = [
        {
            "manager": "b",
            "operation": "Update",
            "apiVersion": "v1",
            "time": t(5),
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:x": {}}},
        },
        {
            "manager": "a",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": t(9),
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:y": {}}},
        },
        {
            "manager": "b",
            "operation": "Update",
            "apiVersion": "v1",
            "time": t(6),
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:z": {}}},
        },
    ]
    managed = decode_managed_fields(raw)
    assert len(managed) == 2
    assert managed[ManagerIdentity("b", "Update", "v1")].fields.paths == {("f:data", "f:z")}
    live = cm({"x": "1", "y": "2", "z": "3"})
    live["metadata"]["managedFields"] = raw
    new = copy.deepcopy(live)
    new["data"]["w"] = "4"
    out = cupdate(live, new, "c", now=1)
    assert ids(out) == ["a/Apply", "c/Update@v1", "b/Update@v1"]
    assert [e.get("subresource") for e in mf(out)] == [None, None, None]


def test_identity_rendering() -> None:
    assert ManagerIdentity("x", "Apply").render() == '"x"'
    assert ManagerIdentity("x", "Apply", subresource="status").render() == '"x" with subresource "status"'
    assert ManagerIdentity("x", "Update", "v1").render() == '"x" using v1'
    assert (
        ManagerIdentity("x", "Update", "apps/v1", "scale").render()
        == '"x" with subresource "scale" using apps/v1'
    )
    assert ManagerIdentity.of("", "Update", "v1").manager == "unknown"


def test_status_reset_rules() -> None:
    crd = schema.from_openapi_v3(
        {
            "type": "object",
            "properties": {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }
    )
    body = {"apiVersion": "ex.com/v1", "kind": "Thing", "metadata": {"name": "x"}, "status": {"x": 1}}
    out = apply(None, body, manager="alice", node=crd, api_version="ex.com/v1", force=False, now=t(1))
    assert out["status"] == {"x": 1}  # a CR's status is an ordinary field unless the caller resets it
    assert fv1(out, "alice") == '{"f:status":{"f:x":{}}}'
    dropped = apply(
        None,
        body,
        manager="alice",
        node=crd,
        api_version="ex.com/v1",
        force=False,
        now=t(1),
        reset=reset_fields("ex.com/v1", "Thing"),
    )
    assert "status" not in dropped and "managedFields" not in dropped["metadata"]
    assert reset_fields("apps/v1", "Deployment", "status").paths == {("f:spec",), ("f:metadata", "f:labels")}
    assert reset_fields("v1", "Pod", "status").paths == {("f:spec",)}
    assert reset_fields("v1", "Pod").paths == {("f:status",)}
    cm_body = cm({"a": "b"})
    cm_body["status"] = {"x": 1}
    assert "f:status" in entry(capply(None, cm_body, "alice", reset=EMPTY), "alice")["fieldsV1"]


def test_pod_create_skeleton() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    out = update(None, pod, manager="m", node=POD_NODE, api_version="v1", now=t(1))
    assert json.loads(fv1(out, "m")) == {
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        "f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}}},
    }
