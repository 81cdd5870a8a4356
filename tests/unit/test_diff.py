"""core.diff: masking, stripping, field changes, YAML diffs and JSON patches."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.diff import (
    LAST_APPLIED,
    MASK,
    MASK_AFTER,
    MASK_BEFORE,
    FieldChange,
    field_changes,
    mask_pair,
    mask_secret,
    side_by_side,
    strip_for_diff,
    to_json_patch,
    to_yaml,
    unified,
)
from sandbox.patching import json_patch

Obj = dict[str, Any]
RECORDED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "recorded-diff"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def deployment(**over: Any) -> Obj:
    obj: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "0d7c", "resourceVersion": "41", "generation": 3,
            "creationTimestamp": "2024-05-01T10:00:00Z", "selfLink": "/apis/apps/v1/namespaces/shop/deployments/web",
            "labels": {"app.kubernetes.io/name": "web", "tier": "front"},
            "annotations": {"deployment.kubernetes.io/revision": "3", LAST_APPLIED: "{}", "team": "shop"},
            "managedFields": [{"manager": "driftdeck", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.26", "args": ["--port", "80"],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "TCP"},
                                   {"containerPort": 53, "protocol": "UDP"}],
                         "env": [{"name": "MODE", "value": "prod"}],
                         "volumeMounts": [{"name": "cfg", "mountPath": "/etc/a", "subPath": "a"},
                                          {"name": "cfg", "mountPath": "/etc/b", "subPath": "b"}]},
                        {"name": "log", "image": "busybox:1.36"},
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "web"}}],
                },
            },
        },
        "status": {"observedGeneration": 3, "replicas": 2,
                   "conditions": [{"type": "Available", "status": "True"}]},
    }
    for path, value in over.items():
        node = obj
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return obj


def containers(obj: Obj) -> list[Obj]:
    out: list[Obj] = obj["spec"]["template"]["spec"]["containers"]
    return out


# ----- masking -----------------------------------------------------------------------------

PLAIN = "hunter2-correct-horse"
PLAIN2 = "tr0ub4dor-and-3"


def secret(data: dict[str, str] | None = None, string_data: dict[str, str] | None = None, **meta: Any) -> Obj:
    obj: Obj = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "db", "namespace": "shop", **meta}}
    if data is not None:
        obj["data"] = data
    if string_data is not None:
        obj["stringData"] = string_data
    return obj


def test_mask_secret_keeps_keys_and_drops_last_applied() -> None:
    applied = json.dumps({"stringData": {"password": PLAIN}})
    live = secret({"password": b64(PLAIN), "user": b64("admin")}, {"token": PLAIN2},
                  annotations={LAST_APPLIED: applied, "owner": "db-team"})
    masked = mask_secret(live)
    assert masked["data"] == {"password": MASK, "user": MASK}
    assert masked["stringData"] == {"token": MASK}
    assert masked["metadata"]["annotations"] == {"owner": "db-team"}
    assert live["data"]["password"] == b64(PLAIN)  # input untouched
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"password": PLAIN}}
    assert mask_secret(cm) is cm


def test_mask_pair_marks_changed_keys_flux_style() -> None:
    desired = secret({"same": b64("x"), "changed": b64(PLAIN2), "added": b64("n")})
    live = secret({"same": b64("x"), "changed": b64(PLAIN), "removed": b64("o")})
    new, old = mask_pair(desired, live)
    assert new is not None and old is not None
    assert new["data"] == {"same": MASK, "changed": MASK_AFTER, "added": MASK}
    assert old["data"] == {"same": MASK, "changed": MASK_BEFORE, "removed": MASK}


def test_mask_pair_folds_string_data_into_data() -> None:
    new, old = mask_pair(secret(string_data={"password": PLAIN}), secret({"password": b64(PLAIN)}))
    assert new is not None and old is not None
    assert "stringData" not in new and new["data"] == old["data"] == {"password": MASK}
    new, old = mask_pair(secret(string_data={"password": PLAIN2}), secret({"password": b64(PLAIN)}))
    assert new is not None and old is not None
    assert (new["data"], old["data"]) == ({"password": MASK_AFTER}, {"password": MASK_BEFORE})


def test_mask_pair_one_sided_and_non_secrets() -> None:
    new, old = mask_pair(secret({"k": b64(PLAIN)}), None)
    assert old is None and new is not None and new["data"] == {"k": MASK}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}
    assert mask_pair(cm, cm) == (cm, cm)


def _every_output(desired: Obj | None, live: Obj | None) -> str:
    parts = [
        repr(field_changes(desired, live)),
        "\n".join(str(c) for c in field_changes(desired, live)),
        unified(desired, live),
        repr(side_by_side(desired, live, 20)),
        json.dumps(to_json_patch(desired, live)),
        json.dumps(to_json_patch(desired, live, strip=False)),
    ]
    return "\n".join(parts)


@pytest.mark.parametrize("case", ["changed", "same", "created", "pruned", "string-data", "key-renamed"])
def test_secret_values_never_leak(case: str) -> None:
    applied = json.dumps({"apiVersion": "v1", "kind": "Secret", "stringData": {"password": PLAIN}})
    live = secret({"password": b64(PLAIN)}, annotations={LAST_APPLIED: applied},
                  managedFields=[{"manager": "kubectl", "fieldsV1": {"f:data": {"f:password": {}}}}])
    desired = {
        "changed": secret({"password": b64(PLAIN2)}),
        "same": secret({"password": b64(PLAIN)}, labels={"x": "y"}),
        "created": secret({"password": b64(PLAIN2)}),
        "pruned": None,
        "string-data": secret(string_data={"password": PLAIN2, "extra": PLAIN}),
        "key-renamed": secret({"pass": b64(PLAIN)}),
    }[case]
    live_side = None if case == "created" else live
    text = _every_output(desired, live_side)
    for plain in (PLAIN, PLAIN2):
        assert plain not in text
        assert b64(plain) not in text
        assert b64(plain).rstrip("=") not in text
    if case == "changed":
        assert MASK_BEFORE in text and MASK_AFTER in text
        assert field_changes(desired, live_side) == [FieldChange("data.password", "change", MASK_BEFORE, MASK_AFTER)]
    if case == "same":
        assert [c.path for c in field_changes(desired, live_side)] == ["metadata.labels"]


# ----- stripping ---------------------------------------------------------------------------


def test_strip_for_diff_drops_server_owned_fields() -> None:
    live = deployment()
    before = copy.deepcopy(live)
    out = strip_for_diff(live)
    assert live == before  # not mutated
    assert "status" not in out
    meta = out["metadata"]
    for field in ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"):
        assert field not in meta
    assert meta["annotations"] == {"team": "shop"}
    assert meta["labels"] == live["metadata"]["labels"]
    assert out["spec"] == live["spec"] and out["spec"] is not live["spec"]  # a copy


def test_strip_for_diff_drops_emptied_annotations() -> None:
    live = deployment(metadata__annotations={"deployment.kubernetes.io/revision": "1"})
    assert "annotations" not in strip_for_diff(live)["metadata"]


# ----- field changes -----------------------------------------------------------------------


def test_equal_objects_have_no_changes() -> None:
    live = deployment()
    desired = strip_for_diff(deployment())
    assert field_changes(desired, live) == []
    assert unified(desired, live) == ""
    assert to_json_patch(desired, live) == []
    assert {m for _, _, m in side_by_side(desired, live, 80)} == {" "}


def test_list_map_items_are_addressed_by_key() -> None:
    live = deployment()
    desired = deployment()
    web, log = containers(desired)
    web["image"] = "nginx:1.27"
    web["env"].append({"name": "DEBUG", "value": "1"})
    web["ports"][2]["hostPort"] = 5353
    web["volumeMounts"][1]["readOnly"] = True
    log["image"] = "busybox:1.37"
    changes = field_changes(desired, live)
    assert [(c.path, c.op, c.before, c.after) for c in changes] == [
        ("spec.template.spec.containers[name=web].image", "change", "nginx:1.26", "nginx:1.27"),
        ("spec.template.spec.containers[name=web].ports[containerPort=53,protocol=UDP].hostPort", "add", None, 5353),
        ("spec.template.spec.containers[name=web].env[name=DEBUG]", "add", None, {"name": "DEBUG", "value": "1"}),
        ("spec.template.spec.containers[name=web].volumeMounts[mountPath=/etc/b].readOnly", "add", None, True),
        ("spec.template.spec.containers[name=log].image", "change", "busybox:1.36", "busybox:1.37"),
    ]


def test_unkeyed_lists_by_index_and_removals() -> None:
    live = deployment()
    desired = deployment()
    web = containers(desired)[0]
    web["args"] = ["--port", "8080", "--verbose"]
    del containers(desired)[1]
    web["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    changes = {c.path: c for c in field_changes(desired, live)}
    assert changes["spec.template.spec.containers[name=web].args[1]"] == FieldChange(
        "spec.template.spec.containers[name=web].args[1]", "change", "80", "8080")
    assert changes["spec.template.spec.containers[name=web].args[2]"].op == "add"
    assert changes["spec.template.spec.containers[name=log]"] == FieldChange(
        "spec.template.spec.containers[name=log]", "remove", {"name": "log", "image": "busybox:1.36"}, None)
    removed_ports = sorted(p for p, c in changes.items() if ".ports[" in p and c.op == "remove")
    assert removed_ports == ["spec.template.spec.containers[name=web].ports[containerPort=53,protocol=TCP]",
                             "spec.template.spec.containers[name=web].ports[containerPort=53,protocol=UDP]"]


def test_single_key_ports_conditions_and_quoted_map_keys() -> None:
    svc_live: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"app.kubernetes.io/part-of": "a"}},
                "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "s"}}}
    svc = copy.deepcopy(svc_live)
    svc["spec"]["ports"][0]["targetPort"] = 9090
    svc["metadata"]["labels"]["app.kubernetes.io/part-of"] = "b"
    paths = [c.path for c in field_changes(svc, svc_live)]
    assert paths == ['metadata.labels["app.kubernetes.io/part-of"]', "spec.ports[port=80].targetPort"]
    cr_live = {"kind": "X", "spec": {"conditions": [{"type": "Ready", "status": "False"}]}}
    cr = {"kind": "X", "spec": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert field_changes(cr, cr_live)[0].path == "spec.conditions[type=Ready].status"


def test_keyed_reorder_is_not_a_field_change_but_patch_reorders() -> None:
    live = deployment()
    desired = deployment()
    containers(desired).reverse()
    assert field_changes(desired, live) == []
    ops = to_json_patch(desired, live)
    assert ops and json_patch(strip_for_diff(live), ops) == strip_for_diff(desired)


def test_created_and_pruned_objects() -> None:
    desired = deployment()
    created = field_changes(desired, None)
    assert {c.path for c in created} == {"apiVersion", "kind", "metadata", "spec"}
    assert all(c.op == "add" for c in created)
    assert "status" not in {c.path for c in created}
    assert all(c.op == "remove" for c in field_changes(None, deployment()))


def test_field_change_str() -> None:
    assert str(FieldChange("spec.replicas", "change", 2, 3)) == "~ spec.replicas: 2 -> 3"
    assert str(FieldChange("a", "add", None, {"b": 1})) == '+ a: {"b":1}'


# ----- unified / side by side --------------------------------------------------------------


def test_unified_is_kubectl_like() -> None:
    live = deployment()
    desired = deployment(spec__replicas=3)
    containers(desired)[0]["image"] = "nginx:1.27"
    text = unified(desired, live)
    lines = text.splitlines()
    assert lines[:2] == ["--- live", "+++ desired"]
    assert "-  replicas: 2" in lines and "+  replicas: 3" in lines
    assert "-        image: nginx:1.26" in lines and "+        image: nginx:1.27" in lines
    for hidden in ("managedFields", "resourceVersion", "uid:", "status:", "observedGeneration", "deployment.kubernetes.io/revision"):
        assert hidden not in text
    assert sum(1 for line in lines if line.startswith("@@")) == 2
    assert text.endswith("\n")
    wide = unified(desired, live, context=100, from_label="cluster", to_label="git")
    assert wide.startswith("--- cluster\n+++ git\n") and wide.count("\n@@ ") == 1  # one hunk
    assert unified(desired, live, context=0).count("\n ") == 0


def test_unified_key_order_is_canonical() -> None:
    live = deployment()
    desired = strip_for_diff(deployment())
    desired["spec"] = dict(reversed(list(desired["spec"].items())))
    desired = dict(reversed(list(desired.items())))
    assert unified(desired, live) == ""
    text = to_yaml(strip_for_diff(live))
    assert text.splitlines()[:4] == ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: web"]


def test_unified_created_object_and_multiline_strings() -> None:
    cm: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"nginx.conf": "a\nb\n"}}
    text = unified(cm, None)
    assert unified(cm, {}) == text
    assert "@@ -0,0 +1," in text and "+  nginx.conf: |" in text and "+    a" in text
    changed = copy.deepcopy(cm)
    changed["data"]["nginx.conf"] = "a\nc\n"
    assert "-    b\n+    c\n" in unified(changed, cm)


def test_side_by_side_markers_and_wrapping() -> None:
    live = deployment()
    desired = deployment(spec__replicas=3)
    desired["metadata"]["labels"]["new"] = "yes"
    del containers(desired)[1]
    rows = side_by_side(desired, live, 40)
    markers = {m for _, _, m in rows}
    assert markers == {" ", "~", "+", "-"}
    assert ("  replicas: 2", "  replicas: 3", "~") in rows
    assert ("", "    new: 'yes'", "+") in rows
    assert ("      - name: log", "", "-") in rows
    assert all(len(a) <= 40 and len(b) <= 40 for a, b, _ in rows)
    long_desired = deployment()
    long_desired["metadata"]["annotations"]["note"] = "x" * 100
    long_rows = side_by_side(long_desired, deployment(), 30)
    added = [r for r in long_rows if r[2] == "+"]
    assert len(added) > 1 and "".join(r[1].strip() for r in added) == "note: " + "x" * 100


# ----- JSON patch --------------------------------------------------------------------------


def test_json_patch_turns_live_into_desired() -> None:
    live = deployment()
    desired = deployment(spec__replicas=3)
    desired["metadata"]["labels"]["a/b~c"] = "escaped"
    del desired["metadata"]["labels"]["tier"]
    web = containers(desired)[0]
    web["args"] = ["--port"]
    web["env"].insert(0, {"name": "FIRST", "value": "1"})
    containers(desired).insert(0, {"name": "init", "image": "alpine"})
    desired["spec"]["template"]["spec"]["volumes"] = []
    ops = to_json_patch(desired, live)
    assert {"op": "add", "path": "/metadata/labels/a~1b~0c", "value": "escaped"} in ops
    assert {"op": "remove", "path": "/metadata/labels/tier"} in ops
    assert {"op": "replace", "path": "/spec/replicas", "value": 3} in ops
    assert json_patch(strip_for_diff(live), ops) == strip_for_diff(desired)
    full = to_json_patch(desired, live, strip=False)
    assert json_patch(live, full) == desired


def test_json_patch_for_secrets_is_masked() -> None:
    live = secret({"password": b64(PLAIN), "user": b64("u")})
    desired = secret({"password": b64(PLAIN2), "user": b64("u")})
    ops = to_json_patch(desired, live)
    assert ops == [{"op": "replace", "path": "/data/password", "value": MASK_AFTER}]
    new, old = mask_pair(desired, live)
    assert new is not None and old is not None
    assert json_patch(old, ops) == new


@pytest.mark.parametrize("name", ["smd-deploy", "smd-deploy2", "ssd-deploy-nested", "ssd-deploy-composite-key",
                                  "ssd-deploy-with-manual-apply", "smd-service", "ssd-service", "deployment",
                                  "endpoints", "aggr-clusterrole"])
def test_json_patch_on_recorded_objects(name: str) -> None:
    def load(suffix: str) -> Obj:
        for ext in ("yaml", "json"):
            path = RECORDED / f"{name}-{suffix}.{ext}"
            if path.exists():
                doc: Obj = yaml.safe_load(path.read_text())
                return doc
        raise FileNotFoundError(name)

    if not RECORDED.exists():
        pytest.skip("recorded fixtures not present")
    live, desired = load("live"), load("config")
    ops = to_json_patch(desired, live)
    assert json_patch(strip_for_diff(live), ops) == strip_for_diff(desired)
    assert json_patch(live, to_json_patch(desired, live, strip=False)) == desired
    assert (field_changes(desired, live) == []) == (ops == [])


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", "", "a/b", "~x"]))
_keys = st.sampled_from(["a", "b", "c", "d/e", "f~g", "spec"])
_named = st.fixed_dictionaries({"name": st.sampled_from(["x", "y", "z", "w"])}, optional={"v": _scalars})


def _json(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(_keys, inner, max_size=4),
            st.lists(_named, max_size=4),
        ),
        max_leaves=12,
    )


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json(_scalars), max_size=5), st.dictionaries(_keys, _json(_scalars), max_size=5))
def test_json_patch_roundtrip_property(live: Obj, desired: Obj) -> None:
    ops = to_json_patch(desired, live, strip=False)
    assert json_patch(live, ops) == desired
    if live == desired:
        assert ops == [] and field_changes(desired, live) == []
