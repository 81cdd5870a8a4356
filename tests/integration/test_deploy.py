"""deploy/: the Kubernetes manifests apply to the sandbox over real HTTP (kubectl and the
official Python client) and read back as meant; the systemd unit runs the daemon with flags
our CLI accepts and gives the drain the time it needs."""

from __future__ import annotations

import configparser
import json
import shlex
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import utils as k8s_utils

from core.config import load_config
from core.daemon.runtime import DaemonOptions
from driftdeck.cli import build_parser
from driftdeck.commands.daemon import run_daemon
from tests.integration.clients import api_client, dynamic, eventually

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "kubernetes"
UNIT = ROOT / "deploy" / "systemd" / "driftdeck.service"
NARROW = K8S_DIR / "rbac-narrow-example.yaml"
NS = "driftdeck"

# Every object the kustomization creates, as `kubectl apply` names it.
EXPECTED = {
    "namespace/driftdeck",
    "serviceaccount/driftdeck",
    "clusterrole.rbac.authorization.k8s.io/driftdeck",
    "clusterrolebinding.rbac.authorization.k8s.io/driftdeck",
    "configmap/driftdeck-config",
    "persistentvolumeclaim/driftdeck-state",
    "deployment.apps/driftdeck",
    "service/driftdeck",
}


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    return data


def manifests() -> list[dict[str, Any]]:
    """The documents of every file the kustomization lists, in its order."""
    docs: list[dict[str, Any]] = []
    for name in kustomization()["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S_DIR / name).read_text()) if d)
    return docs


def find(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def daemon_args(argv: list[str]) -> Any:
    """Parse ``driftdeck daemon ...`` (binary removed) with our CLI parser; an unknown flag fails the test."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"driftdeck's parser rejects: {shlex.join(argv)}") from None
    assert args.func is run_daemon, argv
    return args


def default_drain() -> float:
    """The daemon's drain timeout when no flag sets it (the CLI's default and the runtime's agree)."""
    parsed = float(daemon_args(["daemon"]).drain_timeout)
    assert parsed == next(f.default for f in fields(DaemonOptions) if f.name == "drain_timeout")
    return parsed


# ----- the files themselves ------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml", NARROW.name}
    assert listed == present
    kinds = [d["kind"] for d in manifests()]
    assert sorted(kinds) == sorted(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                    "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"])
    for doc in manifests():  # namespaced objects name their namespace: `kubectl apply -f FILE` works alone
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NS, doc["metadata"]


def test_the_deployment_runs_the_daemon_with_flags_the_cli_accepts() -> None:
    docs = manifests()
    dep = find(docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"  # one SQLite writer
    c = container(dep)
    argv = [*c["command"][1:], *c["args"]]
    assert c["command"][0] == "driftdeck" and argv[0] == "daemon"
    args = daemon_args(argv)
    assert args.config == "/etc/driftdeck/driftdeck.yaml" and args.socket == "/run/driftdeck/daemon.sock"
    assert args.listen == "0.0.0.0:7420" and args.allow_remote and args.token_file == "/etc/driftdeck-token/tokens"
    assert args.metrics == "0.0.0.0:9464" and args.log_format == "json"
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= default_drain()
    assert pod["serviceAccountName"] == find(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    # Every path the daemon writes is a volume: the root file system is read-only.
    env = {e["name"]: e["value"] for e in c["env"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert f"{env['XDG_STATE_HOME']}/driftdeck" in mounts and f"{env['XDG_CACHE_HOME']}/driftdeck" in mounts
    assert volumes[mounts[f"{env['XDG_STATE_HOME']}/driftdeck"]]["persistentVolumeClaim"]["claimName"] == \
        find(docs, "PersistentVolumeClaim")["metadata"]["name"]
    assert "/run/driftdeck" in mounts and "/tmp" in mounts
    assert Path(args.config).parent.as_posix() in mounts and Path(args.token_file).parent.as_posix() in mounts
    # Probes and the Service reach the ports the daemon listens on.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"api": 7420, "metrics": 9464}
    assert c["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    svc = find(docs, "Service")
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == set(ports)
    assert svc["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()


def test_the_sample_config_loads_and_its_kubeconfig_uses_the_pod_token(tmp_path: Path) -> None:
    data = find(manifests(), "ConfigMap")["data"]
    cfg = tmp_path / "driftdeck.yaml"
    cfg.write_text(data["driftdeck.yaml"])
    config, problems = load_config(str(cfg))
    assert problems == [] and set(config.apps) == {"web"}
    cluster = config.clusters[config.apps["web"].cluster]
    assert cluster.kubeconfig == "/etc/driftdeck/kubeconfig"  # the ConfigMap's key, mounted at /etc/driftdeck
    # The kubeconfig with the service-account directory moved here: the official client (the one
    # the engine uses) reads the token file and the CA from it.
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("pod-token")
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(data["kubeconfig"].replace("/var/run/secrets/kubernetes.io/serviceaccount", str(sa)))
    api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
    assert api.configuration.host == "https://kubernetes.default.svc"
    assert api.configuration.api_key == {"BearerToken": "Bearer pod-token"}
    assert api.configuration.ssl_ca_cert == str(sa / "ca.crt")


# ----- the systemd unit ----------------------------------------------------------------------


def read_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text())
    return unit


def seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    for suffix, factor in units.items():
        if value.endswith(suffix) and value[: -len(suffix)].strip().isdigit():
            return float(value[: -len(suffix)]) * factor
    return float(value)


def test_the_systemd_unit_runs_the_daemon_and_leaves_time_to_drain() -> None:
    unit = read_unit()
    svc = unit["Service"]
    argv = shlex.split(svc["ExecStart"])
    assert argv[0] == "/usr/local/bin/driftdeck" and argv[1] == "daemon"
    args = daemon_args(argv[1:])
    assert args.socket == "/run/driftdeck/daemon.sock" and args.config == "/etc/driftdeck/driftdeck.yaml"
    assert args.socket_group == "driftdeck" and args.operator_group == "driftdeck-ops"
    assert args.log_format == "json" and args.metrics == "127.0.0.1:9464"
    assert Path(args.socket).parent == Path("/run") / svc["RuntimeDirectory"]
    reload = shlex.split(svc["ExecReload"])
    assert reload[0].endswith("kill") and "-HUP" in reload and "$MAINPID" in reload
    assert svc["KillSignal"] == "SIGTERM" and svc["Type"] == "simple"
    assert seconds(svc["TimeoutStopSec"]) >= default_drain()
    env = dict(kv.split("=", 1) for kv in shlex.split(svc["Environment"]))
    assert Path(env["XDG_STATE_HOME"]) / "driftdeck" == Path("/var/lib") / svc["StateDirectory"]
    assert Path(env["XDG_CACHE_HOME"]) / "driftdeck" == Path("/var/cache") / svc["CacheDirectory"]
    assert svc["User"] == "driftdeck" and svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (package systemd)")
def test_systemd_accepts_every_line_of_the_unit(tmp_path: Path) -> None:
    # verify also checks that ExecStart's binary exists: point it at one that does.
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/driftdeck ", "/bin/true "))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "", proc.stdout + proc.stderr


# ----- against the sandbox ---------------------------------------------------------------------


def check_live(get: Any) -> None:
    """The objects read back: ``get(kind, name, namespace)`` returns one as a dict."""
    dep = get("deployment", "driftdeck", NS)
    c = container(dep)
    want = find(manifests(), "Deployment")
    assert c["args"] == container(want)["args"] and c["command"] == ["driftdeck"]
    assert dep["spec"]["strategy"]["type"] == "Recreate" and dep["spec"]["replicas"] == 1
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "driftdeck"
    assert get("serviceaccount", "driftdeck", NS)["metadata"]["name"] == "driftdeck"
    crb = get("clusterrolebinding", "driftdeck", None)
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "driftdeck"}
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "driftdeck", "namespace": NS}]
    role = get("clusterrole", "driftdeck", None)
    assert role["rules"][0]["verbs"] == ["get", "list", "watch", "create", "patch", "update", "delete"]
    pvc = get("persistentvolumeclaim", "driftdeck-state", NS)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    svc = get("service", "driftdeck", NS)
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"api": 7420, "metrics": 9464}
    cm = get("configmap", "driftdeck-config", NS)
    assert set(cm["data"]) == {"driftdeck.yaml", "kubeconfig"}


def settled(get: Any) -> bool:
    """The sandbox's controllers are done with the objects (PVC bound, rollout complete): from now
    on a resourceVersion changes only when an apply writes something."""
    dep = get("deployment", "driftdeck", NS)
    status = dep.get("status") or {}
    conditions = {c["type"]: c.get("reason") for c in status.get("conditions") or []}
    rolled_out = (status.get("observedGeneration") == dep["metadata"]["generation"]
                  and status.get("availableReplicas") == 1
                  and conditions.get("Progressing") == "NewReplicaSetAvailable")
    bound = (get("persistentvolumeclaim", "driftdeck-state", NS).get("status") or {}).get("phase") == "Bound"
    return rolled_out and bound


@pytest.mark.kubectl
def test_kubectl_applies_the_kustomization_and_a_second_apply_changes_nothing(kubectl: Any) -> None:
    out = kubectl("apply", "--server-side", "-k", str(K8S_DIR)).stdout
    applied = {line.split()[0] for line in out.splitlines() if line.endswith("serverside-applied")}
    assert applied == EXPECTED, out

    def get(kind: str, name: str, namespace: str | None) -> dict[str, Any]:
        ns = ["-n", namespace] if namespace else []
        got: dict[str, Any] = json.loads(kubectl("get", kind, name, *ns, "-o", "json").stdout)
        return got

    check_live(get)
    eventually(lambda: settled(get), what="the controllers to settle")
    versions = {o: get(*o)["metadata"]["resourceVersion"] for o in (
        ("deployment", "driftdeck", NS), ("clusterrolebinding", "driftdeck", None), ("configmap", "driftdeck-config", NS))}
    dry = kubectl("apply", "--server-side", "--dry-run=server", "-k", str(K8S_DIR)).stdout
    assert {line.split()[0] for line in dry.splitlines() if "(server dry run)" in line} == EXPECTED
    same = kubectl("diff", "--server-side", "-k", str(K8S_DIR), check=False)
    assert same.returncode == 0 and same.stdout == "", same.stdout + same.stderr
    kubectl("apply", "--server-side", "-k", str(K8S_DIR))
    assert {o: get(*o)["metadata"]["resourceVersion"] for o in versions} == versions  # nothing was written
    # Each file also applies on its own (`kubectl apply -f FILE`), and so does the narrower RBAC example.
    for name in kustomization()["resources"]:
        kubectl("apply", "--server-side", "--dry-run=server", "-f", str(K8S_DIR / name))
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}))
    narrow = kubectl("apply", "--server-side", "-f", str(NARROW)).stdout
    assert "role.rbac.authorization.k8s.io/driftdeck-apply serverside-applied" in narrow
    binding = get("rolebinding", "driftdeck-apply", "web")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "driftdeck", "namespace": NS}]


def test_the_python_client_applies_every_manifest(sandbox_kubeconfig: str, tmp_path: Path) -> None:
    dyn = dynamic(sandbox_kubeconfig, tmp_path)

    def apply(doc: dict[str, Any], **kw: Any) -> Any:
        res = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        return res.server_side_apply(body=doc, namespace=doc["metadata"].get("namespace"),
                                     field_manager="deploy-test", **kw)

    applied = {(d["kind"], d["metadata"]["name"]) for d in manifests() if apply(d)}
    assert len(applied) == len(EXPECTED)

    def get(kind: str, name: str, namespace: str | None) -> dict[str, Any]:
        kinds = {"deployment": ("apps/v1", "Deployment"), "serviceaccount": ("v1", "ServiceAccount"),
                 "clusterrolebinding": ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
                 "clusterrole": ("rbac.authorization.k8s.io/v1", "ClusterRole"),
                 "persistentvolumeclaim": ("v1", "PersistentVolumeClaim"), "service": ("v1", "Service"),
                 "configmap": ("v1", "ConfigMap"), "namespace": ("v1", "Namespace")}
        api_version, k = kinds[kind]
        got: dict[str, Any] = dyn.resources.get(api_version=api_version, kind=k).get(
            name=name, namespace=namespace).to_dict()
        return got

    check_live(get)
    eventually(lambda: settled(get), what="the controllers to settle")
    first = {(d["kind"], d["metadata"]["name"]): get(d["kind"].lower(), d["metadata"]["name"],
                                                     d["metadata"].get("namespace"))["metadata"]["resourceVersion"]
             for d in manifests()}
    # Applying again, as a dry run and for real, changes nothing: the same resourceVersions.
    dry = {(d["kind"], d["metadata"]["name"]): apply(d, dry_run="All").metadata.resourceVersion
           for d in manifests()}
    again = {(d["kind"], d["metadata"]["name"]): apply(d).metadata.resourceVersion
             for d in manifests()}
    assert dry == first and again == first
    # The typed models of kubernetes.utils accept the narrower RBAC example too.
    api = api_client(sandbox_kubeconfig)
    k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="web")))
    created = k8s_utils.create_from_yaml(api, str(NARROW))
    kinds = sorted(type(o).__name__ for group in created for o in group)
    assert kinds == ["V1ClusterRole", "V1ClusterRoleBinding", "V1Role", "V1RoleBinding"]
    binding = k8s.RbacAuthorizationV1Api(api).read_namespaced_role_binding("driftdeck-apply", "web")
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects or []] == [("ServiceAccount", "driftdeck", NS)]
