"""The official Python client, unmodified, against the sandbox over HTTP."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from sandbox.server import SandboxServer
from tests.integration.clients import api_client, deployment, dynamic, eventually


def test_dynamic_discovery_and_crud(sandbox_kubeconfig: str, tmp_path: Path) -> None:
    dyn = dynamic(sandbox_kubeconfig, tmp_path)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    assert cms.namespaced and cms.name == "configmaps"
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert "deploy" in deps.short_names

    created = cms.create(body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "1"}}, namespace="default")
    assert created.metadata.uid and created.metadata.resourceVersion
    got = cms.get(name="c1", namespace="default")
    assert got.data.a == "1"
    listed = cms.get(namespace="default")
    assert [i.metadata.name for i in listed.items] == ["c1"]
    assert listed.kind == "ConfigMapList"

    patched = cms.patch(name="c1", namespace="default", body={"data": {"b": "2"}}, content_type="application/merge-patch+json")
    assert dict(patched.data) == {"a": "1", "b": "2"}
    assert int(patched.metadata.resourceVersion) > int(created.metadata.resourceVersion)

    status = cms.delete(name="c1", namespace="default")
    assert status.status == "Success" and status.details.kind == "configmaps"
    with pytest.raises(ApiException) as err:
        cms.get(name="c1", namespace="default")
    assert err.value.status == 404
    body = json.loads(err.value.body)
    assert body["reason"] == "NotFound" and body["message"] == 'configmaps "c1" not found'


def test_server_side_apply_and_dry_run(sandbox_kubeconfig: str, tmp_path: Path) -> None:
    dyn = dynamic(sandbox_kubeconfig, tmp_path)
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment("web", replicas=2)

    dry = deps.server_side_apply(body=body, namespace="default", field_manager="gitops", dry_run="All")
    assert dry.spec.replicas == 2 and dry.spec.revisionHistoryLimit == 10  # defaulted
    with pytest.raises(ApiException) as err:
        deps.get(name="web", namespace="default")
    assert err.value.status == 404, "a dry-run apply must persist nothing"

    live = deps.server_side_apply(body=body, namespace="default", field_manager="gitops")
    entries = [m.to_dict() if hasattr(m, "to_dict") else m for m in live.metadata.managedFields]
    mine = [e for e in entries if e["manager"] == "gitops"]
    assert len(mine) == 1 and mine[0]["operation"] == "Apply"
    fields = mine[0]["fieldsV1"]
    assert "f:replicas" in fields["f:spec"] and "f:revisionHistoryLimit" not in fields["f:spec"]

    # An identical re-apply changes nothing: no new resourceVersion (a ConfigMap: no controller touches it).
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"a": "1"}}
    first = cms.server_side_apply(body=cm, namespace="default", field_manager="gitops")
    again = cms.server_side_apply(body=cm, namespace="default", field_manager="gitops")
    assert again.metadata.resourceVersion == first.metadata.resourceVersion

    changed = dict(body)
    changed["spec"] = dict(body["spec"], replicas=3)
    dry2 = deps.server_side_apply(body=changed, namespace="default", field_manager="gitops", dry_run="All")
    assert dry2.spec.replicas == 3
    assert deps.get(name="web", namespace="default").spec.replicas == 2


def test_ssa_conflict_message(sandbox_kubeconfig: str, tmp_path: Path) -> None:
    dyn = dynamic(sandbox_kubeconfig, tmp_path)
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deps.server_side_apply(body=deployment("web", replicas=2), namespace="default", field_manager="gitops")
    deps.patch(name="web", namespace="default", body={"spec": {"replicas": 5}},
               content_type="application/merge-patch+json", field_manager="kubectl-edit")
    with pytest.raises(ApiException) as err:
        deps.server_side_apply(body=deployment("web", replicas=2), namespace="default", field_manager="gitops")
    assert err.value.status == 409
    status = json.loads(err.value.body)
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-edit" using apps/v1', "field": ".spec.replicas"}
    ]
    forced = deps.server_side_apply(body=deployment("web", replicas=2), namespace="default", field_manager="gitops", force_conflicts=True)
    assert forced.spec.replicas == 2


def test_watch_from_resource_version(sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    start_rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}, "data": {"k": "v"}})
    core.patch_namespaced_config_map("after", "default", {"data": {"k": "w"}})
    core.delete_namespaced_config_map("after", "default")

    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=start_rv, timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]


def test_watch_sees_live_writes_and_bookmarks(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    events: list[dict[str, Any]] = []

    def consume() -> None:
        resp = core.list_namespaced_config_map(
            "default", watch=True, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=3,
            _preload_content=False,
        )
        for line in resp:
            events.append(json.loads(line))

    t = threading.Thread(target=consume)
    t.start()
    eventually(lambda: sandbox.store.watcher_count() > 0, what="watch registered")
    core.create_namespaced_config_map("default", {"metadata": {"name": "live"}})
    t.join(10)
    types = [e["type"] for e in events]
    assert types[0] == "ADDED" and events[0]["object"]["metadata"]["name"] == "live"
    assert "BOOKMARK" in types
    bookmark = next(e for e in events if e["type"] == "BOOKMARK")
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(events[0]["object"]["metadata"]["resourceVersion"])


def test_typed_client_errors(sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    apps = client.AppsV1Api(api_client(sandbox_kubeconfig))
    core.create_namespaced_config_map("default", {"metadata": {"name": "dup"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "dup"}})
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"

    cm = core.read_namespaced_config_map("dup", "default")
    core.patch_namespaced_config_map("dup", "default", {"data": {"x": "1"}})
    cm.data = {"y": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("dup", "default", cm)
    assert err.value.status == 409
    assert "the object has been modified" in json.loads(err.value.body)["message"]

    bad = deployment("bad")
    bad["spec"]["template"]["spec"]["containers"][0].pop("image")
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", bad)
    assert err.value.status == 422
    status = json.loads(err.value.body)
    assert status["reason"] == "Invalid"
    assert any(c["field"] == "spec.template.spec.containers[0].image" for c in status["details"]["causes"])

    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("nope", {"metadata": {"name": "x"}})
    assert err.value.status == 404 and json.loads(err.value.body)["message"] == 'namespaces "nope" not found'
