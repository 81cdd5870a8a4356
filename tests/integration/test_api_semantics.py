"""REST semantics a Kubernetes client relies on, over HTTP with the official client."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sandbox.server import SandboxServer
from tests.integration.clients import api_client, deployment, dynamic

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.demo.driftdeck.io"},
    "spec": {
        "group": "demo.driftdeck.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer"},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                        },
                    }
                },
            }
        ],
    },
}


def raw_lines(server: SandboxServer, path: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(server.url + path, timeout=15) as resp:
        return [json.loads(line) for line in resp if line.strip()]


def test_custom_resources_are_served_once_their_crd_exists(sandbox: SandboxServer, sandbox_kubeconfig: str, tmp_path: Path) -> None:
    dyn = dynamic(sandbox_kubeconfig, tmp_path)
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(body=CRD)
    # The client caches discovery; the new group is found by a fresh discovery.
    (tmp_path / "fresh").mkdir()
    dyn = dynamic(sandbox_kubeconfig, tmp_path / "fresh")
    widgets = dyn.resources.get(api_version="demo.driftdeck.io/v1", kind="Widget")
    made = widgets.create(body={"apiVersion": "demo.driftdeck.io/v1", "kind": "Widget", "metadata": {"name": "w1"},
                                "spec": {"size": 3}}, namespace="default")
    assert made.metadata.generation == 1
    listed = widgets.get(namespace="default")
    assert listed.items[0].kind == "Widget", "custom resource list items carry kind"
    patched = widgets.patch(name="w1", namespace="default", body={"spec": {"size": 4}},
                            content_type="application/merge-patch+json")
    assert patched.spec.size == 4 and patched.metadata.generation == 2
    with pytest.raises(ApiException) as err:
        widgets.patch(name="w1", namespace="default", body={"spec": {"size": 5}},
                      content_type="application/strategic-merge-patch+json")
    assert err.value.status == 415
    # Status goes through the subresource only.
    status = widgets.status.patch(name="w1", namespace="default", body={"status": {"ready": True}},
                                  content_type="application/merge-patch+json")
    assert status.status.ready is True and status.metadata.generation == 2
    # Deleting the CRD removes its resources and the endpoint.
    crds.delete(name="widgets.demo.driftdeck.io")
    with urllib.request.urlopen(sandbox.url + "/apis", timeout=5) as resp:
        groups = [g["name"] for g in json.loads(resp.read())["groups"]]
    assert "demo.driftdeck.io" not in groups


def test_list_paging_with_limit_and_continue(sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    for i in range(7):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"p{i}"}})
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map("default", limit=3, _continue=token)
        pages += 1
        names.extend(i.metadata.name for i in page.items)
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count is not None
    assert pages == 3
    assert [n for n in names if n.startswith("p")] == [f"p{i}" for i in range(7)]


def test_expired_continue_token_is_410(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    for i in range(4):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"e{i}"}})
    page = core.list_namespaced_config_map("default", limit=2)
    core.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
    urllib.request.urlopen(urllib.request.Request(sandbox.url + "/_sandbox/compact", method="POST", data=b""), timeout=5)
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("default", limit=2, _continue=page.metadata._continue)
    assert err.value.status == 410 and json.loads(err.value.body)["reason"] == "Expired"


def test_label_selector_watch_sees_objects_enter_and_leave(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "sel", "labels": {"team": "a"}}})
    core.patch_namespaced_config_map("sel", "default", {"metadata": {"labels": {"team": "b"}}})
    core.patch_namespaced_config_map("sel", "default", {"metadata": {"labels": {"team": "a"}}})
    events = raw_lines(sandbox, f"/api/v1/namespaces/default/configmaps?watch=1&labelSelector=team%3Da&resourceVersion={rv}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["labels"]["team"]) for e in events] == [
        ("ADDED", "a"), ("DELETED", "b"), ("ADDED", "a"),
    ]


def test_send_initial_events_ends_with_a_marked_bookmark(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    core.create_namespaced_config_map("default", {"metadata": {"name": "i1"}})
    events = raw_lines(sandbox, "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true"
                                "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
    names = [e["object"]["metadata"].get("name") for e in events if e["type"] == "ADDED"]
    assert "i1" in names
    marks = [e for e in events if e["type"] == "BOOKMARK"
             and e["object"]["metadata"].get("annotations", {}).get("k8s.io/initial-events-end") == "true"]
    assert len(marks) == 1
    assert events.index(marks[0]) == len(names), "the marked bookmark follows the initial state"


def test_immutable_fields_and_noop_update(sandbox_kubeconfig: str) -> None:
    apps = client.AppsV1Api(api_client(sandbox_kubeconfig))
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    apps.create_namespaced_deployment("default", deployment("imm"))
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("imm", "default", {"spec": {"selector": {"matchLabels": {"app": "other"}},
                                                                   "template": {"metadata": {"labels": {"app": "other"}}}}})
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert "field is immutable" in body["message"] and body["details"]["causes"][0]["field"] == "spec.selector"

    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "noop"}, "data": {"a": "1"}})
    same = core.replace_namespaced_config_map("noop", "default", cm)
    assert same.metadata.resource_version == cm.metadata.resource_version, "an update that changes nothing is not written"


def test_generate_name_and_namespace_mismatch(sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "gen-"}})
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == len("gen-") + 5
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "x", "namespace": "kube-system"}})
    assert err.value.status == 400
    assert "does not match the namespace" in json.loads(err.value.body)["message"]


def test_secret_string_data_is_merged_and_dropped(sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    s = core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert s.string_data is None and s.data == {"password": "aHVudGVyMg=="} and s.type == "Opaque"
