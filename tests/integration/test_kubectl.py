"""kubectl 1.32 against the sandbox behaves as against a real cluster."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.server import SandboxServer
from tests.integration.clients import eventually

pytestmark = pytest.mark.kubectl

MANIFESTS = {
    "00-namespace.yaml": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    "web.yaml": [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.27",
                                "ports": [{"containerPort": 80}],
                                "resources": {"requests": {"cpu": "0.5", "memory": "1000M"}},
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "shop"},
            "data": {"mode": "production"},
        },
    ],
}


def write_manifests(root: Path, manifests: dict[str, Any] = MANIFESTS) -> Path:
    d = root / "manifests"
    d.mkdir(exist_ok=True)
    for name, docs in manifests.items():
        docs = docs if isinstance(docs, list) else [docs]
        (d / name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return d


def test_apply_server_side_get_and_diff(kubectl: Any, tmp_path: Path) -> None:
    d = write_manifests(tmp_path)
    out = kubectl("apply", "--server-side", "-f", str(d))
    assert "namespace/shop serverside-applied" in out.stdout
    assert "deployment.apps/web serverside-applied" in out.stdout
    assert "service/web serverside-applied" in out.stdout

    got = yaml.safe_load(kubectl("get", "deployment", "web", "-n", "shop", "-o", "yaml", "--show-managed-fields").stdout)
    assert got["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "1G"}
    managers = {(m["manager"], m["operation"]) for m in got["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers

    svc = yaml.safe_load(kubectl("get", "svc", "web", "-n", "shop", "-o", "yaml").stdout)
    assert svc["spec"]["clusterIP"].startswith("10.") and svc["spec"]["ports"][0]["targetPort"] == 80

    same = kubectl("diff", "--server-side", "-f", str(d), check=False)
    assert same.returncode == 0, same.stdout + same.stderr

    changed = dict(MANIFESTS)
    web = json.loads(json.dumps(MANIFESTS["web.yaml"]))
    web[0]["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    changed["web.yaml"] = web
    (tmp_path / "v2").mkdir()
    d2 = write_manifests(tmp_path / "v2", changed)
    diff = kubectl("diff", "--server-side", "-f", str(d2), check=False)
    assert diff.returncode == 1, diff.stderr
    removed = [ln for ln in diff.stdout.splitlines() if ln.startswith("-") and "image:" in ln]
    added = [ln for ln in diff.stdout.splitlines() if ln.startswith("+") and "image:" in ln]
    assert [ln.split("image:")[1].strip() for ln in removed] == ["nginx:1.27"]
    assert [ln.split("image:")[1].strip() for ln in added] == ["nginx:1.28"]
    # A diff is a dry run: nothing changed.
    live = yaml.safe_load(kubectl("get", "deployment", "web", "-n", "shop", "-o", "yaml").stdout)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_get_table_columns(kubectl: Any, tmp_path: Path) -> None:
    kubectl("apply", "--server-side", "-f", str(write_manifests(tmp_path)))
    out = kubectl("get", "deploy,svc", "-n", "shop").stdout
    assert "READY" in out and "UP-TO-DATE" in out and "CLUSTER-IP" in out
    ns = kubectl("get", "ns").stdout
    assert "kube-system" in ns and "shop" in ns and "Active" in ns


def test_patch_scale_delete_wait(kubectl: Any, tmp_path: Path) -> None:
    kubectl("apply", "--server-side", "-f", str(write_manifests(tmp_path)))
    kubectl("patch", "configmap", "web-config", "-n", "shop", "-p", '{"data":{"mode":"debug"}}')
    cm = json.loads(kubectl("get", "cm", "web-config", "-n", "shop", "-o", "json", "--show-managed-fields").stdout)
    assert cm["data"]["mode"] == "debug"
    assert any(m["manager"] == "kubectl-patch" and m["operation"] == "Update" for m in cm["metadata"]["managedFields"])

    kubectl("patch", "deployment", "web", "-n", "shop", "--type", "json",
            "-p", '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.29"}]')
    kubectl("scale", "deployment", "web", "-n", "shop", "--replicas", "4")
    dep = json.loads(kubectl("get", "deploy", "web", "-n", "shop", "-o", "json", "--show-managed-fields").stdout)
    assert dep["spec"]["replicas"] == 4
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.29"
    scale_entries = [m for m in dep["metadata"]["managedFields"] if m.get("subresource") == "scale"]
    assert scale_entries and scale_entries[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    kubectl("delete", "configmap", "web-config", "-n", "shop")
    gone = kubectl("get", "cm", "web-config", "-n", "shop", check=False)
    assert gone.returncode == 1 and 'configmaps "web-config" not found' in gone.stderr

    out = kubectl("delete", "namespace", "shop", "--wait=true", "--timeout=60s")
    assert 'namespace "shop" deleted' in out.stdout
    assert kubectl("get", "ns", "shop", check=False).returncode == 1


def test_get_watch_streams_changes(kubectl: Any, sandbox: SandboxServer, tmp_path: Path) -> None:
    cm = tmp_path / "watched.yaml"
    cm.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"a": "1"}}))
    kubectl("create", "-f", str(cm))
    env = kubectl.env
    proc = subprocess.Popen(
        ["kubectl", "get", "configmap", "watched", "--watch", "-o", "json", "--request-timeout=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        eventually(lambda: sandbox.store.watcher_count() > 0, what="kubectl watch registered")
        kubectl("patch", "configmap", "watched", "-p", '{"data":{"a":"2"}}')
        time.sleep(0.3)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    decoder = json.JSONDecoder()
    docs, idx = [], 0
    text = out.strip()
    while idx < len(text):
        obj, end = decoder.raw_decode(text, idx)
        docs.append(obj)
        idx = end
        while idx < len(text) and text[idx].isspace():
            idx += 1
    values = [d["data"]["a"] for d in docs]
    assert values[0] == "1" and values[-1] == "2"


def test_bad_manifest_errors(kubectl: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
        "spec": {"selector": {"matchLabels": {"app": "blue"}},
                 "template": {"metadata": {"labels": {"app": "green"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    out = kubectl("apply", "--server-side", "-f", str(bad), check=False)
    assert out.returncode != 0
    assert "is invalid" in out.stderr and "`selector` does not match template `labels`" in out.stderr

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "dta": {"a": "b"}}))
    out = kubectl("apply", "--server-side", "-f", str(unknown), check=False)
    assert out.returncode != 0 and '.dta: field not declared in schema' in out.stderr
    out = kubectl("create", "-f", str(unknown), check=False)
    assert out.returncode != 0
    assert 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "dta"' in out.stderr


def _entries(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(m["manager"], m["operation"], m.get("subresource", "")): m for m in obj["metadata"]["managedFields"]}


def test_managed_fields_look_like_a_real_clusters(kubectl: Any, tmp_path: Path) -> None:
    """kubectl apply / edit / patch and the controller's status writes leave the same
    managedFields shapes as the recorded live objects in shared/fixtures/recorded-diff."""
    from tests.conftest import FIXTURES

    if not (FIXTURES / "recorded-diff").is_dir():
        pytest.skip("shared/fixtures not found beside the checkout")
    d = write_manifests(tmp_path)
    kubectl("apply", "--server-side", "-f", str(d))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/image: nginx:1.27/image: nginx:1.28/' \"$1\"\n")
    editor.chmod(0o755)
    env = dict(kubectl.env, KUBE_EDITOR=str(editor))
    subprocess.run(["kubectl", "edit", "deployment", "web", "-n", "shop"], env=env, check=True, capture_output=True, timeout=60)
    kubectl("patch", "deployment", "web", "-n", "shop", "-p", '{"metadata":{"labels":{"tier":"front"}}}')

    def settled() -> dict[str, Any] | None:
        dep = json.loads(kubectl("get", "deploy", "web", "-n", "shop", "-o", "json", "--show-managed-fields").stdout)
        conds = {c["type"]: c for c in (dep.get("status") or {}).get("conditions", [])}
        ok = conds.get("Progressing", {}).get("reason") == "NewReplicaSetAvailable"
        return dep if ok and dep["status"].get("observedGeneration") == dep["metadata"]["generation"] else None

    dep = eventually(settled, what="rollout finished")
    e = _entries(dep)
    assert set(e) == {
        ("kubectl", "Apply", ""),
        ("kubectl-edit", "Update", ""),
        ("kubectl-patch", "Update", ""),
        ("kube-controller-manager", "Update", "status"),
    }
    edit = e[("kubectl-edit", "Update", "")]
    assert edit["apiVersion"] == "apps/v1" and edit["fieldsType"] == "FieldsV1"
    assert edit["fieldsV1"] == {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}}
    assert e[("kubectl-patch", "Update", "")]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}
    # kubectl's Apply entry lost the image to kubectl-edit.
    applied = e[("kubectl", "Apply", "")]["fieldsV1"]
    assert "f:image" not in applied["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    # The controller's status entry has exactly the shape of the recorded one.
    recorded = yaml.safe_load((FIXTURES / "recorded-diff" / "ssd-deploy-with-manual-apply-live.yaml").read_text())
    rec = _entries(recorded)[("kube-controller-manager", "Update", "status")]
    ours = e[("kube-controller-manager", "Update", "status")]
    assert list(ours) == list(rec)  # key order: manager, operation, apiVersion, time, fieldsType, fieldsV1, subresource
    # Our Deployment had no annotations before the controller wrote the revision, so the
    # controller also created the map (".": {}); in the recording the map already existed.
    assert ours["fieldsV1"]["f:metadata"]["f:annotations"].pop(".") == {}
    assert ours["fieldsV1"] == rec["fieldsV1"]
