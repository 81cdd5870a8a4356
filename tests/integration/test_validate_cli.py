"""`driftdeck validate` run as a real subprocess in temporary directories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

KUBECTL = shutil.which("kubectl")

CONFIG = """\
clusters:
  local: {sandbox: true}
sources:
  config: {path: ./repo}
apps:
  web: {source: config, path: apps/web, namespace: web}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{containerPort: 80}]
"""


def validate(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftdeck", "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def project(tmp_path: Path, files: Mapping[str, str | bytes], config: str = CONFIG) -> Path:
    (tmp_path / "driftdeck.yaml").write_text(config)
    for rel, content in files.items():
        path = tmp_path / "repo" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    (tmp_path / "repo").mkdir(exist_ok=True)
    return tmp_path


def test_clean_app_exits_zero(tmp_path: Path) -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n"
    project(tmp_path, {"apps/web/deploy.yaml": DEPLOYMENT, "apps/web/svc.yaml": service})
    proc = validate(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip() == "1 app(s) checked, 2 object(s), no problems"


def test_broken_manifests_are_listed_with_file_line_object_field(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "apps/web/a-syntax.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a\ndata: {}\n",
        "apps/web/b-nokind.yaml": "apiVersion: v1\nmetadata: {name: nokind}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        "apps/web/c-unknown.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
        "apps/web/d-deploy.yaml": DEPLOYMENT.replace(
            "image: nginx:1.27", "image: nginx:1.27\n          imagePullPolice: Always"
        ),
        "apps/web/e-dup.yaml": DEPLOYMENT,
        "apps/web/f-latin1.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: f}\ndata: {a: caf\xe9}\n",
        "apps/web/g-clusterrole.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r, namespace: web}\n",
        "apps/web/h-secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {port: 5432}\n",
    }
    project(tmp_path, files)
    proc = validate(tmp_path)
    assert proc.returncode == 2
    out = proc.stdout.splitlines()
    assert out[0].startswith(
        "repo/apps/web/a-syntax.yaml:6: YAML syntax error: while parsing a flow sequence"
    )
    assert out[1:] == [
        "repo/apps/web/b-nokind.yaml:1: <no kind>/nokind: missing kind",
        "repo/apps/web/b-nokind.yaml:4: ConfigMap/<no name>: missing metadata.name",
        "repo/apps/web/c-unknown.yaml:1: Widget/w: unknown kind Widget (apiVersion example.com/v1): not a built-in kind, "
        "not served by the cluster and no CustomResourceDefinition for it in this app",
        "repo/apps/web/d-deploy.yaml:1: Deployment.apps/web/web: duplicate object: also defined at apps/web/e-dup.yaml:1",
        "repo/apps/web/d-deploy.yaml:13: Deployment.apps/web/web: spec.template.spec.containers[0].imagePullPolice: unknown field",
        "repo/apps/web/e-dup.yaml:1: Deployment.apps/web/web: duplicate object: also defined at apps/web/d-deploy.yaml:1",
        "repo/apps/web/f-latin1.yaml:4: file is not valid UTF-8 (byte 0xe9 at offset 64)",
        "repo/apps/web/h-secret.yaml:4: Secret/web/s: stringData.port: expected string, got integer 5432 (quote the value)",
    ]
    assert (
        "note: repo/apps/web/g-clusterrole.yaml:1: ClusterRole.rbac.authorization.k8s.io/r: namespace 'web' dropped: ClusterRole is cluster-scoped"
        in proc.stderr
    )


def test_json_output(tmp_path: Path) -> None:
    bad = DEPLOYMENT.replace("image: nginx:1.27", "image: 5")
    project(tmp_path, {"apps/web/d.yaml": bad})
    proc = validate(tmp_path, "-o", "json")
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert out["ok"] is False
    assert out["problems"] == [
        {
            "file": "repo/apps/web/d.yaml",
            "line": 12,
            "object": "Deployment.apps/web/web",
            "field": "spec.template.spec.containers[0].image",
            "message": "expected string, got integer 5 (quote the value)",
            "app": "web",
        }
    ]
    assert out["apps"] == [
        {
            "name": "web",
            "source": "config",
            "path": "apps/web",
            "status": "problems",
            "manifests": 1,
            "notes": [],
            "problems": 1,
        }
    ]


def test_alias_bomb_and_huge_file_fail_fast(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]")
    bomb = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n"
        + "\n".join("  " + x for x in lines)
        + "\n"
    )
    project(
        tmp_path,
        {
            "apps/web/bomb.yaml": bomb,
            "apps/web/big.yaml": b"# pad\n" * (50 * 1024 * 1024 // 6),
            "apps/web/ok.yaml": DEPLOYMENT,
        },
    )
    started = time.perf_counter()
    proc = validate(tmp_path, timeout=60)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2
    assert elapsed < 15
    out = proc.stdout.splitlines()
    assert (
        out[0]
        == "repo/apps/web/big.yaml: file is 52428798 bytes (50.0 MiB), over the 10 MiB limit: not parsed"
    )
    assert out[1].startswith("repo/apps/web/bomb.yaml:")
    assert "YAML aliases expand to more than 250000 nodes (alias bomb?)" in out[1]
    assert len(out) == 2
    assert "1 object(s), 2 problem(s)" in proc.stderr


def test_broken_config_keys_have_line_numbers(tmp_path: Path) -> None:
    config = textwrap.dedent(
        """\
        clusters:
          local: {sandbox: true}
        sources:
          config: {path: ./repo, intervall: 1m}
        apps:
          web: {source: config, path: apps/web, sync: always}
          api: {source: missing, path: apps/api}
          a: {source: config, dependsOn: [b]}
          b: {source: config, dependsOn: [a]}
        """
    )
    project(tmp_path, {"apps/web/d.yaml": DEPLOYMENT}, config=config)
    proc = validate(tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [
        "driftdeck.yaml:4: sources.config.intervall: unknown key 'intervall' (did you mean 'interval'?)",
        "driftdeck.yaml:6: apps.web.source: source 'config' has errors",
        "driftdeck.yaml:6: apps.web.sync: must be auto or manual, got string 'always'",
        "driftdeck.yaml:7: apps.api.source: source 'missing' is not defined under sources",
        "driftdeck.yaml:8: apps.a.source: source 'config' has errors",
        "driftdeck.yaml:8: apps.a.dependsOn: dependsOn cycle: a -> b -> a",
        "driftdeck.yaml:9: apps.b.source: source 'config' has errors",
        "driftdeck.yaml:9: apps.b.dependsOn: dependsOn cycle: a -> b -> a",
    ]
    assert proc.stderr.strip() == "0 app(s) checked, 0 object(s), 8 problem(s)"


def test_config_option_missing_file_and_app_filter(tmp_path: Path) -> None:
    proc = validate(tmp_path, "-c", "nope.yaml")
    assert proc.returncode == 2
    assert proc.stdout.strip() == "nope.yaml: cannot read config: No such file or directory"
    config = CONFIG + "  other: {source: config, path: apps/other}\n"
    project(
        tmp_path,
        {"apps/web/d.yaml": DEPLOYMENT, "apps/other/x.yaml": "apiVersion: v1\nkind: Pod\n"},
        config=config,
    )
    (tmp_path / "driftdeck.yaml").rename(tmp_path / "custom.yaml")
    proc = validate(tmp_path, "-c", "custom.yaml", "--app", "web")
    assert proc.returncode == 0, proc.stdout
    proc = validate(tmp_path, "--config", "custom.yaml")
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == ["repo/apps/other/x.yaml:1: Pod/<no name>: missing metadata.name"]


def test_remote_sources_are_skipped_honestly(tmp_path: Path) -> None:
    config = CONFIG + "  remote: {source: far, path: apps/web}\n" + "sources2: {}\n"
    config = config.replace("sources2: {}\n", "").replace(
        "  config: {path: ./repo}\n", "  config: {path: ./repo}\n  far: {url: 'https://example.org/x.git'}\n"
    )
    project(tmp_path, {"apps/web/d.yaml": DEPLOYMENT}, config=config)
    proc = validate(tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert (
        "app remote: skipped: remote source 'far' (https://example.org/x.git) is not read offline"
        in proc.stderr
    )
    assert "1 app(s) checked, 1 object(s), 1 skipped, no problems" in proc.stderr


def test_symlink_leaving_the_repository_is_reported(tmp_path: Path) -> None:
    project(tmp_path, {"apps/web/d.yaml": DEPLOYMENT})
    outside = tmp_path / "secret.yaml"
    outside.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\n")
    (tmp_path / "repo" / "apps" / "web" / "link.yaml").symlink_to(outside)
    proc = validate(tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [
        "repo/apps/web/link.yaml: symlink leaves the repository; not followed"
    ]


@pytest.mark.kubectl
@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed (it provides `kubectl kustomize`)")
def test_kustomize_overlay(tmp_path: Path) -> None:
    config = CONFIG.replace("path: apps/web", "path: apps/web/overlays/prod")
    files = {
        "apps/web/base/kustomization.yaml": "resources: [deployment.yaml]\n",
        "apps/web/base/deployment.yaml": DEPLOYMENT,
        "apps/web/overlays/prod/kustomization.yaml": "resources: [../../base]\nnamePrefix: prod-\n",
    }
    project(tmp_path, files, config=config)
    proc = validate(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "1 app(s) checked, 1 object(s), no problems"
    (tmp_path / "repo/apps/web/base/deployment.yaml").write_text(
        DEPLOYMENT.replace("image: nginx:1.27", "image: 5")
    )
    proc = validate(tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [
        "repo/apps/web/base/deployment.yaml:1: Deployment.apps/web/prod-web: spec.template.spec.containers[0].image: "
        "expected string, got integer 5 (quote the value)"
    ]
    (tmp_path / "repo/apps/web/overlays/prod/kustomization.yaml").write_text("resources: [../../nope]\n")
    proc = validate(tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.startswith(
        "repo/apps/web/overlays/prod/kustomization.yaml: kubectl kustomize failed: "
    )


def test_validate_checks_pipelines_with_lines(tmp_path: Path) -> None:
    """Pipeline declarations are validated too: an unknown app in a sync action, with its line."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "driftdeck.yaml").write_text(
        "clusters:\n  local: {sandbox: true}\n"
        "sources:\n  config: {path: ./repo}\n"
        "pipelines:\n"
        "  web:\n"
        "    source: config\n"
        "    stages:\n"
        "      - name: deploy\n"
        "        actions:\n"
        "          - {name: wait, sync: {app: nope}}\n"
    )
    out = validate(tmp_path, "-c", str(tmp_path / "driftdeck.yaml"))
    assert out.returncode == 2
    assert "driftdeck.yaml:11" in out.stdout and "nope" in out.stdout, out.stdout
