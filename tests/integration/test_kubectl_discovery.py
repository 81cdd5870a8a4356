"""kubectl 1.32 against a running sandbox: discovery and OpenAPI v3 documents it accepts."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.resources import Registry

KUBECTL = shutil.which("kubectl")

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(
        KUBECTL is None,
        reason="kubectl not installed: Debian's kubectl package provides 1.32; make test installs it",
    ),
]

Run = Callable[..., subprocess.CompletedProcess[str]]

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.driftdeck.io
spec:
  group: demo.driftdeck.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, description: How big the widget is.}
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: probe, namespace: default}
data: {k: v}
"""


@pytest.fixture
def run(sandbox_kubeconfig: str, tmp_path: Path) -> Run:
    """kubectl with the sandbox kubeconfig and a private discovery/HTTP cache."""
    assert KUBECTL is not None

    def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [KUBECTL, "--kubeconfig", sandbox_kubeconfig, "--cache-dir", str(tmp_path / "kcache"), *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)

    return _run


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_api_resources(run: Run) -> None:
    lines = _ok(run("api-resources")).splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert rows["customresourcedefinitions"][1:] == ["crd,crds", "apiextensions.k8s.io/v1", "false", "CustomResourceDefinition"]
    assert rows["secrets"] == ["secrets", "v1", "true", "Secret"]  # no short name
    assert {rt.plural for rt in Registry().types} <= rows.keys()
    assert not any("/" in name for name in rows)  # subresources are not listed


def test_api_versions(run: Run) -> None:
    versions = set(_ok(run("api-versions")).split())
    assert versions == {rt.api_version for rt in Registry().types}


def test_explain_uses_openapi_v3(run: Run) -> None:
    out = _ok(run("explain", "deployment.spec.replicas"))
    assert "GROUP:      apps" in out
    assert "KIND:       Deployment" in out
    assert "VERSION:    v1" in out
    assert "FIELD: replicas <integer>" in out
    assert "Number of desired pods." in out
    out = _ok(run("explain", "pods.spec.containers"))
    assert "FIELD: containers <[]Container>" in out
    assert "image\t<string>" in out


def test_server_side_apply_gets_past_openapi(run: Run) -> None:
    """kubectl verifies fieldValidation support in /openapi/v3 before it sends the apply PATCH."""
    proc = run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=CONFIGMAP)
    assert "failed to download openapi" not in proc.stderr
    assert "error validating" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "serverside-applied (server dry run)" in proc.stdout


def test_crd_kind_is_explained_once_registered(run: Run) -> None:
    _ok(run("create", "-f", "-", stdin=CRD))
    deadline = time.monotonic() + 10
    while True:
        proc = run("explain", "widgets.spec.size")
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    out = _ok(proc)
    assert "GROUP:      demo.driftdeck.io" in out
    assert "FIELD: size <integer>" in out
    assert "How big the widget is." in out
    assert "widgets" in _ok(run("api-resources", "--api-group=demo.driftdeck.io"))
