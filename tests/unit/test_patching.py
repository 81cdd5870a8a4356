"""JSON patch, merge patch and strategic merge patch as kube-apiserver applies them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.kube.schema import Node, for_object
from sandbox.patching import PatchError, json_patch, merge_patch, strategic_merge_patch

INVALID = "the server rejected our request due to an error in our request"


def _schema(api_version: str, kind: str) -> Node:
    node = for_object(api_version, kind)
    assert node is not None
    return node


DEPLOYMENT = _schema("apps/v1", "Deployment")
POD = _schema("v1", "Pod")
SERVICE = _schema("v1", "Service")


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "tier": "fe"},
            "finalizers": ["a.io/one", "b.io/two"],
        },
        "spec": {
            "replicas": 2,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "args": ["--x", "--y"],
                        },
                        {"name": "sidecar", "image": "envoy:1"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [i[key] for i in items]


def smp_containers(patch_containers: list[Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": patch_containers, **extra}
    return {"spec": {"template": {"spec": spec}}}


# ------------------------------------------------------------------------ JSON patch


class TestJsonPatch:
    def test_add_replace_remove(self) -> None:
        doc = deployment()
        out = json_patch(
            doc,
            [
                {"op": "replace", "path": "/spec/replicas", "value": 5},
                {"op": "add", "path": "/metadata/labels/env", "value": "prod"},
                {"op": "remove", "path": "/metadata/labels/tier"},
            ],
        )
        assert out["spec"]["replicas"] == 5
        assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}
        assert doc == deployment(), "input must not be mutated"

    def test_array_insert_append_and_negative_index(self) -> None:
        out = json_patch(
            deployment(),
            [
                {"op": "add", "path": "/metadata/finalizers/0", "value": "z.io/zero"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "y.io/last"},
                {"op": "remove", "path": "/metadata/finalizers/-1"},
            ],
        )
        assert out["metadata"]["finalizers"] == ["z.io/zero", "a.io/one", "b.io/two"]

    def test_escaped_pointer_tokens(self) -> None:
        doc = {"metadata": {"annotations": {"example.com/a~b": "x"}}}
        out = json_patch(
            doc, [{"op": "replace", "path": "/metadata/annotations/example.com~1a~0b", "value": "y"}]
        )
        assert out == {"metadata": {"annotations": {"example.com/a~b": "y"}}}

    def test_move_and_copy(self) -> None:
        doc = {"a": {"x": [1, {"k": "v"}]}, "b": {}}
        out = json_patch(
            doc,
            [
                {"op": "copy", "from": "/a/x/1", "path": "/b/copied"},
                {"op": "move", "from": "/a/x", "path": "/b/moved"},
            ],
        )
        assert out == {"a": {}, "b": {"copied": {"k": "v"}, "moved": [1, {"k": "v"}]}}
        out["b"]["copied"]["k"] = "changed"
        assert out["b"]["moved"][1] == {"k": "v"}, "copy must be deep"

    def test_test_op_passes_then_applies(self) -> None:
        out = json_patch(
            deployment(),
            [
                {"op": "test", "path": "/spec/replicas", "value": 2},
                {"op": "test", "path": "/metadata/labels/missing", "value": None},
                {"op": "replace", "path": "/spec/replicas", "value": 3},
            ],
        )
        assert out["spec"]["replicas"] == 3

    def test_failed_test_is_422_with_generic_message(self) -> None:
        with pytest.raises(PatchError) as ei:
            json_patch(deployment(), [{"op": "test", "path": "/spec/replicas", "value": 3}])
        err = ei.value
        assert err.code == 422
        assert err.detail == "testing value /spec/replicas failed: test failed"
        assert err.status() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": INVALID,
            "reason": "Invalid",
            "details": {},
            "code": 422,
        }

    def test_test_op_distinguishes_number_types(self) -> None:
        with pytest.raises(PatchError):
            json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
        with pytest.raises(PatchError):
            json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.5}])

    def test_missing_parent_path(self) -> None:
        with pytest.raises(PatchError) as ei:
            json_patch(deployment(), [{"op": "add", "path": "/spec/foo/bar", "value": 1}])
        assert ei.value.code == 422
        assert (
            ei.value.detail
            == 'add operation does not apply: doc is missing path: "/spec/foo/bar": missing value'
        )

    def test_remove_missing_key(self) -> None:
        with pytest.raises(PatchError) as ei:
            json_patch(deployment(), [{"op": "remove", "path": "/metadata/labels/nope"}])
        assert ei.value.code == 422
        assert ei.value.detail == (
            "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value"
        )

    def test_array_index_out_of_range(self) -> None:
        with pytest.raises(PatchError) as ei:
            json_patch(deployment(), [{"op": "add", "path": "/metadata/finalizers/5", "value": "x"}])
        assert "Unable to access invalid index: 5" in ei.value.detail

    def test_replace_of_missing_object_key_adds_it(self) -> None:
        # evanphx/json-patch v4 (used by kube-apiserver) does not reject this.
        out = json_patch(
            {"metadata": {"labels": {}}}, [{"op": "replace", "path": "/metadata/labels/new", "value": "v"}]
        )
        assert out == {"metadata": {"labels": {"new": "v"}}}

    def test_unknown_op(self) -> None:
        with pytest.raises(PatchError) as ei:
            json_patch({}, [{"op": "frobnicate", "path": "/a"}])
        assert (ei.value.code, ei.value.detail) == (422, "Unexpected kind: frobnicate")

    def test_a_failure_leaves_input_untouched(self) -> None:
        doc = deployment()
        with pytest.raises(PatchError):
            json_patch(
                doc, [{"op": "remove", "path": "/spec/replicas"}, {"op": "test", "path": "/x", "value": 1}]
            )
        assert doc == deployment()

    def test_body_must_be_a_list_of_objects(self) -> None:
        with pytest.raises(PatchError) as ei:
            json_patch({}, {"op": "add"})  # type: ignore[arg-type]
        assert (ei.value.code, ei.value.reason) == (400, "BadRequest")
        assert ei.value.message == "json: cannot unmarshal object into Go value of type jsonpatch.Patch"

    def test_too_many_operations(self) -> None:
        ops = [{"op": "test", "path": "/a", "value": 1}] * 10001
        with pytest.raises(PatchError) as ei:
            json_patch({"a": 1}, ops)
        assert ei.value.code == 413
        assert ei.value.message.endswith("The allowed maximum operations in a JSON patch is 10000, got 10001")


# ----------------------------------------------------------------------- merge patch


class TestMergePatch:
    def test_null_deletes_and_objects_merge(self) -> None:
        doc = deployment()
        out = merge_patch(
            doc, {"metadata": {"labels": {"tier": None, "env": "prod"}}, "spec": {"replicas": 4}}
        )
        assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}
        assert out["spec"]["replicas"] == 4
        assert out["spec"]["strategy"] == deployment()["spec"]["strategy"]
        assert doc == deployment()

    def test_lists_are_replaced(self) -> None:
        out = merge_patch(deployment(), {"spec": {"template": {"spec": {"containers": [{"name": "only"}]}}}})
        assert containers(out) == [{"name": "only"}]

    def test_nulls_inside_new_values_are_pruned(self) -> None:
        out = merge_patch({"a": 1}, {"b": {"c": None, "d": {"e": None, "f": 1}}})
        assert out == {"a": 1, "b": {"d": {"f": 1}}}

    def test_null_for_missing_key_is_a_no_op(self) -> None:
        assert merge_patch({"a": 1}, {"b": None}) == {"a": 1}

    def test_scalar_replaced_by_object(self) -> None:
        assert merge_patch({"a": "x"}, {"a": {"b": 1, "c": None}}) == {"a": {"b": 1}}

    def test_non_object_patch_is_bad_request(self) -> None:
        with pytest.raises(PatchError) as ei:
            merge_patch({}, None)  # type: ignore[arg-type]
        assert (ei.value.code, ei.value.message) == (400, "Invalid JSON Patch")


# ------------------------------------------------------------- strategic merge patch


class TestStrategicMergeLists:
    def test_patching_one_container_by_name_keeps_the_others(self) -> None:
        doc = deployment()
        out = strategic_merge_patch(
            doc, smp_containers([{"name": "sidecar", "image": "envoy:2"}]), DEPLOYMENT
        )
        assert containers(out) == [containers(deployment())[0], {"name": "sidecar", "image": "envoy:2"}]
        assert doc == deployment()

    def test_new_container_without_order_goes_first_like_kube(self) -> None:
        out = strategic_merge_patch(deployment(), smp_containers([{"name": "new", "image": "x"}]), DEPLOYMENT)
        assert names(containers(out)) == ["new", "app", "sidecar"]
        assert containers(out)[1] == containers(deployment())[0]

    def test_nested_merge_by_containerport_and_env_name(self) -> None:
        patch = smp_containers(
            [
                {
                    "name": "app",
                    "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                    "env": [{"name": "B", "value": "22"}],
                }
            ]
        )
        app = containers(strategic_merge_patch(deployment(), patch, DEPLOYMENT))[0]
        assert app["ports"] == [
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 443},
        ]
        assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "22"}]
        assert app["image"] == "nginx:1"

    def test_atomic_list_is_replaced(self) -> None:
        out = strategic_merge_patch(
            deployment(), smp_containers([{"name": "app", "args": ["--z"]}]), DEPLOYMENT
        )
        assert containers(out)[0]["args"] == ["--z"]

    def test_delete_directive_on_list_item(self) -> None:
        out = strategic_merge_patch(
            deployment(), smp_containers([{"name": "app", "$patch": "delete"}]), DEPLOYMENT
        )
        assert containers(out) == [{"name": "sidecar", "image": "envoy:1"}]

    def test_replace_directive_on_list(self) -> None:
        patch = smp_containers([{"$patch": "replace"}, {"name": "solo", "image": "s"}])
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert containers(out) == [{"name": "solo", "image": "s"}]

    def test_set_element_order(self) -> None:
        patch = smp_containers(
            [{"name": "new", "image": "x"}],
            **{"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "new"}, {"name": "app"}]},
        )
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert names(containers(out)) == ["sidecar", "new", "app"]
        assert "$setElementOrder/containers" not in out["spec"]["template"]["spec"]

    def test_set_element_order_alone_reorders(self) -> None:
        patch = {
            "spec": {
                "template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}
            }
        }
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert names(containers(out)) == ["sidecar", "app"]

    def test_set_element_order_must_cover_the_patch_list(self) -> None:
        patch = smp_containers([{"name": "new"}], **{"$setElementOrder/containers": [{"name": "app"}]})
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert ei.value.code == 500
        assert "doesn't match $setElementOrder list" in ei.value.message

    def test_missing_merge_key_is_reported_like_kube(self) -> None:
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch(deployment(), smp_containers([{"image": "x"}]), DEPLOYMENT)
        assert ei.value.status() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "map: map[image:x] does not contain declared merge key: name",
            "code": 500,
        }

    def test_unknown_list_directive(self) -> None:
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch(
                deployment(), smp_containers([{"name": "app", "$patch": "frob"}]), DEPLOYMENT
            )
        assert ei.value.message == "unknown patch type: frob in map: map[$patch:frob name:app]"

    def test_scalar_set_list_merges_without_duplicates(self) -> None:
        out = strategic_merge_patch(
            deployment(), {"metadata": {"finalizers": ["b.io/two", "c.io/three"]}}, DEPLOYMENT
        )
        assert out["metadata"]["finalizers"] == ["a.io/one", "b.io/two", "c.io/three"]

    def test_delete_from_primitive_list(self) -> None:
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/one"]}}
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert out["metadata"]["finalizers"] == ["b.io/two"]
        assert "$deleteFromPrimitiveList/finalizers" not in out["metadata"]

    def test_kubectl_style_three_way_patch_for_a_set(self) -> None:
        patch = {
            "metadata": {
                "$setElementOrder/finalizers": ["b.io/two", "c.io/three"],
                "$deleteFromPrimitiveList/finalizers": ["a.io/one"],
                "finalizers": ["c.io/three"],
            }
        }
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert out["metadata"]["finalizers"] == ["b.io/two", "c.io/three"]

    def test_kubectl_style_three_way_patch_for_containers(self) -> None:
        patch = smp_containers(
            [{"name": "init", "image": "i"}, {"$patch": "delete", "name": "app"}],
            **{"$setElementOrder/containers": [{"name": "init"}, {"name": "sidecar"}]},
        )
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert containers(out) == [{"name": "init", "image": "i"}, {"name": "sidecar", "image": "envoy:1"}]

    def test_bad_delete_from_primitive_list_key(self) -> None:
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch(
                deployment(), {"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}}, DEPLOYMENT
            )
        assert (ei.value.code, ei.value.message) == (400, "invalid patch format of primitive list")

    def test_service_ports_merge_by_port(self) -> None:
        svc = {
            "spec": {
                "ports": [
                    {"port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"port": 443, "protocol": "TCP"},
                ]
            }
        }
        out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, SERVICE)
        assert out["spec"]["ports"] == [
            {"port": 80, "targetPort": 9090, "protocol": "TCP"},
            {"port": 443, "protocol": "TCP"},
        ]

    def test_status_conditions_merge_by_type(self) -> None:
        pod = {
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]
            }
        }
        out = strategic_merge_patch(
            pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, POD
        )
        assert out["status"]["conditions"] == [
            {"type": "Ready", "status": "True"},
            {"type": "Scheduled", "status": "True"},
        ]

    def test_empty_patch_list_changes_nothing(self) -> None:
        out = strategic_merge_patch(deployment(), smp_containers([]), DEPLOYMENT)
        assert containers(out) == containers(deployment())

    def test_list_of_lists_is_422(self) -> None:
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch(
                {"metadata": {"finalizers": [["a"]]}}, {"metadata": {"finalizers": [["b"]]}}, DEPLOYMENT
            )
        assert (ei.value.code, ei.value.message, ei.value.detail) == (
            422,
            INVALID,
            "lists of lists are not supported",
        )

    def test_mixed_element_types_are_500(self) -> None:
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch(
                {"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [["b"]]}}, DEPLOYMENT
            )
        assert (ei.value.code, ei.value.message) == (500, "list element types are not identical: [[a] [[b]]]")


class TestStrategicMergeMaps:
    def test_null_deletes_map_keys(self) -> None:
        out = strategic_merge_patch(
            deployment(), {"metadata": {"labels": {"tier": None, "env": "prod"}}}, DEPLOYMENT
        )
        assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}

    def test_retain_keys_switching_to_recreate_drops_rolling_update(self) -> None:
        patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert out["spec"]["strategy"] == {"type": "Recreate"}

    def test_without_retain_keys_the_old_field_survives(self) -> None:
        out = strategic_merge_patch(deployment(), {"spec": {"strategy": {"type": "Recreate"}}}, DEPLOYMENT)
        assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}

    def test_retain_keys_must_list_every_patched_key(self) -> None:
        patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert (ei.value.code, ei.value.message) == (400, "invalid patch format of retainKeys")

    def test_retain_keys_on_volume_items(self) -> None:
        patch = smp_containers(
            [], volumes=[{"name": "data", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]
        )
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "configMap": {"name": "cm"}}]

    def test_replace_directive_in_map(self) -> None:
        patch = {"metadata": {"labels": {"$patch": "replace", "only": "me"}}}
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert out["metadata"]["labels"] == {"only": "me"}

    def test_delete_directive_in_map(self) -> None:
        out = strategic_merge_patch(deployment(), {"spec": {"strategy": {"$patch": "delete"}}}, DEPLOYMENT)
        assert out["spec"]["strategy"] == {}

    def test_unknown_fields_merge_like_merge_patch(self) -> None:
        doc = {"spec": {"custom": {"a": 1, "b": {"c": 2}}, "items": [1, 2]}}
        patch = {"spec": {"custom": {"b": {"d": 3}, "a": None}, "items": [3]}}
        out = strategic_merge_patch(doc, patch, DEPLOYMENT)
        assert out == {"spec": {"custom": {"b": {"c": 2, "d": 3}}, "items": [3]}}

    def test_new_values_lose_nulls_and_directives(self) -> None:
        patch = {"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd", "gone": None}}}}}
        out = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
        assert out["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}

    def test_no_schema_still_merges_maps(self) -> None:
        out = strategic_merge_patch({"a": {"b": 1}, "l": [1]}, {"a": {"c": 2}, "l": [2]}, None)
        assert out == {"a": {"b": 1, "c": 2}, "l": [2]}

    def test_result_shares_nothing_with_inputs(self) -> None:
        doc = deployment()
        patch = smp_containers([{"name": "new", "image": "x", "env": [{"name": "E", "value": "1"}]}])
        before = copy.deepcopy(patch)
        out = strategic_merge_patch(doc, patch, DEPLOYMENT)
        containers(out)[0]["env"][0]["value"] = "mutated"
        containers(out)[1]["image"] = "mutated"
        assert patch == before
        assert doc == deployment()

    def test_non_object_patch(self) -> None:
        with pytest.raises(PatchError) as ei:
            strategic_merge_patch({}, [1], DEPLOYMENT)  # type: ignore[arg-type]
        assert ei.value.code == 400
        assert (
            ei.value.message == "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )


def test_large_list_merge_is_fast() -> None:
    """Merging by key is hash-based: 20k items must not take quadratic time."""
    import time

    doc = {
        "spec": {
            "template": {"spec": {"containers": [{"name": f"c{i}", "image": "x"} for i in range(20000)]}}
        }
    }
    patch = smp_containers([{"name": f"c{i}", "image": "y"} for i in range(0, 20000, 2)])
    start = time.perf_counter()
    out = strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert time.perf_counter() - start < 5
    assert [c["image"] for c in containers(out)[:4]] == ["y", "x", "y", "x"]
