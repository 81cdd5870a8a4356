"""core.drift without a cluster: field sets, projections, ignore rules and attribution."""

from __future__ import annotations

import copy
from typing import Any

from core.drift import Drift, check, check_event, desired_fields, make_baseline, node_for, pointer_path
from core.kube.fieldpath import FieldSet, make_path, path_string
from core.model import IgnoreRule, ObjRef

Obj = dict[str, Any]
IMAGE = '.spec.template.spec.containers[name="web"].image'


def manifest(**spec: Any) -> Obj:
    out: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "args": ["-g", "daemon off;"],
                            "ports": [{"containerPort": 80}],
                        }
                    ]
                },
            },
        },
    }
    out["spec"].update(spec)
    return out


def entry(manager: str, *paths: tuple[Any, ...], operation: str = "Update") -> Obj:
    fs = FieldSet(make_path(*p) for p in paths)
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fs.to_fieldsv1(),
    }


def server_answer(sent: Obj, rv: str = "10") -> Obj:
    """What the apiserver would answer: defaults, canonical values, metadata, status."""
    out = copy.deepcopy(sent)
    out["metadata"].update(
        {"resourceVersion": rv, "uid": "u-1", "generation": 1, "creationTimestamp": "2025-01-01T00:00:00Z"}
    )
    out["metadata"]["managedFields"] = [entry("driftdeck", ("spec", "replicas"), operation="Apply")]
    spec = out["spec"]
    spec.setdefault("replicas", 1)
    spec.update({"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
    spec["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    pod = spec["template"]["spec"]
    pod.update({"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {}})
    for c in pod["containers"]:
        c.update(
            {
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "resources": {},
            }
        )
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")
    out["status"] = {"observedGeneration": 1, "replicas": spec["replicas"]}
    return out


def baseline(sent: Obj | None = None, answer: Obj | None = None) -> tuple[Any, Obj]:
    sent = sent or manifest()
    answer = answer or server_answer(sent)
    return make_baseline(sent, answer, node_for(answer)), answer


def with_image(live: Obj, image: str, manager: str = "kubectl-set") -> Obj:
    out = copy.deepcopy(live)
    out["spec"]["template"]["spec"]["containers"][0]["image"] = image
    out["metadata"]["resourceVersion"] = "11"
    out["metadata"]["managedFields"].append(
        entry(manager, ("spec", "template", "spec", "containers", {"name": "web"}, "image"))
    )
    return out


# --- F and E --------------------------------------------------------------------------------------


def test_desired_fields_leave_out_untracked_metadata_status_and_empties() -> None:
    sent = manifest()
    sent["metadata"].update(
        {
            "resourceVersion": "3",
            "uid": "x",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        }
    )
    sent["status"] = {"replicas": 3}
    sent["spec"]["template"]["metadata"]["creationTimestamp"] = None
    sent["spec"]["template"]["spec"]["containers"][0]["env"] = []
    sent["spec"]["template"]["spec"]["containers"][0]["resources"] = {}
    got = sorted(path_string(p) for p in desired_fields(sent, node_for(sent)))
    assert got == [
        ".metadata.labels.app",
        ".spec.selector",
        ".spec.template.metadata.labels.app",
        '.spec.template.spec.containers[name="web"]',
        '.spec.template.spec.containers[name="web"].args',
        IMAGE,
        '.spec.template.spec.containers[name="web"].name',
        '.spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]',
        '.spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"].containerPort',
    ]


def test_secret_string_data_is_tracked_as_data() -> None:
    sent = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"pw": "x"}}
    fs = desired_fields(sent, node_for(sent))
    assert sorted(path_string(p) for p in fs) == [".data.pw"]
    answer = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "ns"},
        "data": {"pw": "eA=="},
        "type": "Opaque",
    }
    b = make_baseline(sent, answer, node_for(answer))
    assert b.expected == {"data": {"pw": "eA=="}}
    assert b.ref == ObjRef("", "Secret", "ns", "db")


def test_expected_is_the_answer_projected_onto_f() -> None:
    b, _ = baseline()
    assert b.expected["spec"]["template"]["spec"]["containers"][0] == {
        "name": "web",
        "image": "nginx:1.27",
        "args": ["-g", "daemon off;"],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
    }
    assert "revisionHistoryLimit" not in b.expected["spec"]
    assert b.ref == ObjRef("apps", "Deployment", "shop", "web") and b.resource_version == "10"


# --- check ----------------------------------------------------------------------------------------


def test_server_defaults_and_status_are_not_drift() -> None:
    b, live = baseline()
    live = copy.deepcopy(live)
    live["status"] = {"availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    live["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    live["metadata"]["labels"]["extra"] = "added-by-someone"
    assert check(b, live) is None


def test_missing_and_deleted_event() -> None:
    b, live = baseline()
    assert check(b, None) == Drift(b.ref, missing=True)
    assert check_event(b, "DELETED", live) == Drift(b.ref, missing=True)
    assert check_event(b, "MODIFIED", live) is None


def test_changed_image_is_attributed_to_its_writer() -> None:
    b, live = baseline()
    d = check(b, with_image(live, "nginx:1.28"))
    assert d == Drift(b.ref, False, (IMAGE,), ("kubectl-set",))
    assert str(d) == f"Deployment.apps/shop/web: {IMAGE} (by kubectl-set)"


def test_our_own_manager_is_never_blamed_and_managers_are_sorted() -> None:
    b, live = baseline()
    drifted = with_image(live, "nginx:1.28", manager="zeta")
    drifted["metadata"]["managedFields"].append(
        entry("alpha", ("spec", "template", "spec", "containers", {"name": "web"}, "image"))
    )
    drifted["metadata"]["managedFields"].append(
        entry(
            "driftdeck",
            ("spec", "template", "spec", "containers", {"name": "web"}, "image"),
            operation="Apply",
        )
    )
    d = check(b, drifted)
    assert d is not None and d.managers == ("alpha", "zeta")


def test_removed_owned_label_and_added_container_fields() -> None:
    b, live = baseline()
    drifted = copy.deepcopy(live)
    del drifted["metadata"]["labels"]["app"]
    drifted["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 8080, "protocol": "TCP"}
    ]
    d = check(b, drifted)
    assert d is not None
    assert d.fields == (
        ".metadata.labels.app",
        '.spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]',
    )
    assert d.managers == ()


def test_atomic_list_change_is_one_leaf() -> None:
    b, live = baseline()
    drifted = copy.deepcopy(live)
    drifted["spec"]["template"]["spec"]["containers"][0]["args"] = ["-g", "daemon on;"]
    d = check(b, drifted)
    assert d is not None and d.fields == ('.spec.template.spec.containers[name="web"].args',)


def test_an_event_older_than_the_baseline_is_not_judged() -> None:
    b, live = baseline()
    stale = with_image(live, "nginx:1.0")
    stale["metadata"]["resourceVersion"] = "9"
    assert check(b, stale) is None


def test_webhook_injected_fields_in_the_answer_are_not_drift() -> None:
    sent = manifest()
    answer = server_answer(sent)
    answer["metadata"]["labels"]["injected"] = "true"
    answer["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1.30"})
    b, live = baseline(sent, answer)
    assert check(b, live) is None
    later = copy.deepcopy(live)
    later["spec"]["template"]["spec"]["containers"][1]["image"] = "envoy:1.31"
    assert check(b, later) is None


def test_replicas_omitted_is_not_owned() -> None:
    b, live = baseline()
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 7
    assert check(b, scaled) is None


# --- ignore rules ---------------------------------------------------------------------------------


def scaled_baseline() -> tuple[Any, Obj]:
    sent = manifest(replicas=2)
    b, live = baseline(sent)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled["metadata"]["managedFields"].append(entry("hpa-controller", ("spec", "replicas")))
    return b, scaled


def test_ignore_by_pointer() -> None:
    b, scaled = scaled_baseline()
    d = check(b, scaled)
    assert d == Drift(b.ref, False, (".spec.replicas",), ("hpa-controller",))
    assert check(b, scaled, [IgnoreRule(pointer="/spec/replicas")]) is None
    assert check(b, scaled, [IgnoreRule(kind="Deployment", group="apps", pointer="/spec/replicas")]) is None
    assert check(b, scaled, [IgnoreRule(kind="StatefulSet", pointer="/spec/replicas")]) == d
    assert check(b, scaled, [IgnoreRule(name="other", pointer="/spec/replicas")]) == d


def test_ignore_by_manager() -> None:
    b, scaled = scaled_baseline()
    assert check(b, scaled, [IgnoreRule(manager="hpa-controller")]) is None
    assert check(b, scaled, [IgnoreRule(manager="someone-else")]) is not None


def test_ignore_pointer_into_a_list_map_item() -> None:
    b, live = baseline()
    drifted = with_image(live, "nginx:1.28")
    assert check(b, drifted, [IgnoreRule(pointer="/spec/template/spec/containers/0/image")]) is None
    assert check(b, drifted, [IgnoreRule(pointer="/spec/template/spec/containers/0/args")]) is not None
    assert check(b, drifted, [IgnoreRule(pointer="/spec/template/spec/containers/9/image")]) is not None


def test_pointer_paths() -> None:
    obj = manifest()
    obj["metadata"]["annotations"] = {"example.com/a~b": "1"}
    node = node_for(obj)
    assert pointer_path("/metadata/annotations/example.com~1a~0b", obj, node) == make_path(
        "metadata", "annotations", "example.com/a~b"
    )
    # into an atomic list: the whole leaf
    assert pointer_path("/spec/template/spec/containers/0/args/1", obj, node) == make_path(
        "spec", "template", "spec", "containers", {"name": "web"}, "args"
    )
    assert pointer_path("/spec/template/spec/containers/x", obj, node) is None
    assert pointer_path("spec", obj, node) is None


# --- schema nodes ---------------------------------------------------------------------------------


def test_node_for_builtin_and_custom_kinds() -> None:
    assert node_for({"apiVersion": "apps/v1", "kind": "Deployment"}).name.endswith("apps.v1.Deployment")
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {"items": [1, 2], "m": {"k": "v"}},
    }
    node = node_for(cr)
    fs = desired_fields(cr, node)
    # keys of deduced objects are members themselves (SMD); lists are atomic leaves
    assert sorted(path_string(p) for p in fs) == [
        ".metadata.labels.a",
        ".spec",
        ".spec.items",
        ".spec.m",
        ".spec.m.k",
    ]
    typed = node_for(
        cr,
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"m": {"type": "object", "x-kubernetes-map-type": "atomic"}},
                }
            },
        },
    )
    assert sorted(path_string(p) for p in desired_fields({"spec": {"m": {"k": "v"}}}, typed)) == [".spec.m"]


def test_custom_resource_drift_on_a_deduced_schema() -> None:
    cr: Obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": {"size": 3, "tags": ["a"]},
    }
    answer = copy.deepcopy(cr)
    answer["metadata"]["resourceVersion"] = "4"
    b = make_baseline(cr, answer, node_for(answer))
    live = copy.deepcopy(answer)
    live["status"] = {"ready": True}
    live["spec"]["extra"] = 1
    assert check(b, live) is None
    live["spec"]["tags"] = ["a", "b"]
    d = check(b, live)
    assert d is not None and d.fields == (".spec.tags",)


# --- the fast path is sound -----------------------------------------------------------------------


def _variants(value: Any) -> Any:
    """Every single-point mutation of a JSON value: removals, replacements, type changes."""
    replacements: list[Any] = [None, {}, [], "x", 0, 1, True, {"name": "web"}, [{"name": "web"}]]
    if isinstance(value, dict):
        for k, v in value.items():
            yield {kk: vv for kk, vv in value.items() if kk != k}
            for r in replacements:
                if r != v:
                    yield {**value, k: r}
            for sub in _variants(v):
                yield {**value, k: sub}
        yield {**value, "zz-extra": "1"}
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield value[:i] + value[i + 1 :]
            yield [*value, v]  # a duplicate
            yield [v, *value[:i], *value[i + 1 :]]  # reordered
            for sub in _variants(v):
                yield [*value[:i], sub, *value[i + 1 :]]


def test_fast_path_agrees_with_the_projection_on_every_mutation() -> None:
    from core.drift import _same_map
    from core.kube.structured import project

    sent = manifest(replicas=2)
    sent["spec"]["template"]["spec"]["containers"].append(
        {
            "name": "side",
            "image": "envoy",
            "env": [{"name": "A", "value": "1"}],
            "ports": [{"containerPort": 9000, "protocol": "UDP"}],
        }
    )
    b, live = baseline(sent)
    assert _same_map(live, b.expected, b.plan, ())
    checked = agreed = 0
    for variant in _variants(live):
        try:
            exact = project(variant, b.fields, b.node) == b.expected
        except ValueError:  # malformed lists: check() reports them through the slow path
            exact = False
        fast = _same_map(variant, b.expected, b.plan, ())
        assert not fast or exact, "fast path said in sync, the projection disagrees"
        checked += 1
        agreed += fast == exact
    assert checked > 500
    assert agreed / checked > 0.98, agreed / checked  # rarely falls back to the slow path


def test_a_removed_container_is_reported_once_at_its_item() -> None:
    sent = manifest()
    sent["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "envoy"})
    b, live = baseline(sent)
    drifted = copy.deepcopy(live)
    drifted["spec"]["template"]["spec"]["containers"].pop()
    d = check(b, drifted)
    assert d is not None and d.fields == ('.spec.template.spec.containers[name="side"]',)
