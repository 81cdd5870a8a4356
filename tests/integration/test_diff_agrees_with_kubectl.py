"""``driftdeck diff APP -o json`` and ``kubectl diff --server-side`` agree about WHICH objects differ.

Both run as subprocesses on the same manifests (the app's directory in a real git
repository) against the same sandbox, in several situations. kubectl's set is read
from the headers of its ``diff -u -N LIVE-.../<group.>version.Kind.namespace.name
MERGED-.../...`` output; driftdeck's from the create/configure items of its JSON plan
(kubectl diff does not report pruning). Exit codes: 0 no difference, 1 differences.

kubectl runs with ``--force-conflicts``: driftdeck plans and applies with force, and
without it kubectl's dry-run fails on every field driftdeck owns with another value
(shown by ``test_image_changed_in_git``). kubectl applies as its own field manager
("kubectl") the manifests as written; driftdeck applies as "driftdeck" and adds its
labels. Where that makes the answers differ by design, ``test_known_differences``
names the case and shows that kubectl agrees once it applies exactly what driftdeck
applies (same field manager, same labels).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.server import SandboxServer
from tests.conftest import KUBECTL
from tests.integration.gitrepo import commit, init_repo

pytestmark = pytest.mark.kubectl

ROOT = Path(__file__).resolve().parents[2]
APP = "shop"
NS = "shop"
APP_PATH = "apps/shop"
SECRET_OLD = "hunter2-old-Pa55word"
SECRET_NEW = "hunter2-new-Pa55word"
SECRET_VALUES = (SECRET_OLD, SECRET_NEW, *(base64.b64encode(s.encode()).decode() for s in (SECRET_OLD, SECRET_NEW)))
APP_LABELS = {"driftdeck.io/app": APP, "app.kubernetes.io/managed-by": "driftdeck"}

Key = tuple[str, str, str]  # kind, namespace, name

# <group.>version.Kind.namespace.name; the namespace is empty for cluster-scoped objects.
_HEADER = re.compile(r"^diff -u -N \S*/LIVE-[^/\s]+/(\S+) \S*/MERGED-[^/\s]+/(\S+)$")
_NAME = re.compile(
    r"^(?:(?P<group>[a-z0-9.-]+)\.)?(?P<version>v\d+(?:(?:alpha|beta)\d+)?)\."
    r"(?P<kind>[A-Z][A-Za-z0-9]*)\.(?P<ns>[a-z0-9-]*)\.(?P<name>.+)$"
)


# ----- manifests -----------------------------------------------------------------------------------------


def _deployment(name: str, image: str, tier: str, replicas: int, env: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name, "tier": tier}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": name, "image": image, "ports": [{"containerPort": 8080}],
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }]},
            },
        },
    }


def app_files(
    *,
    web_image: str = "nginx:1.27",
    web_ports: tuple[int, ...] = (80,),
    secret: str = SECRET_OLD,
    config: dict[str, str] | None = None,
    api_env: dict[str, str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The app's files: two Deployments, a Service, a ConfigMap and a Secret in namespace ``shop``."""
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": f"p{p}", "port": p, "targetPort": 8080} for p in web_ports]},
    }
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": NS},
                 "data": config if config is not None else {"mode": "production", "level": "3"}}
    secret_doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret", "namespace": NS},
                  "type": "Opaque", "stringData": {"password": secret}}
    return {
        "web.yaml": [_deployment("web", web_image, "frontend", 2, {"MODE": "prod"}), service],
        "api.yaml": [_deployment("api", "api:1.0", "backend", 1,
                                 api_env if api_env is not None else {"MODE": "prod", "DEBUG": "0"})],
        "config.yaml": [configmap, secret_doc],
    }


ALL: set[Key] = {("Deployment", NS, "web"), ("Service", NS, "web"), ("Deployment", NS, "api"),
                 ("ConfigMap", NS, "web-config"), ("Secret", NS, "web-secret")}


# ----- the world: repo, config, CLI, kubectl ------------------------------------------------------------------


@dataclass
class Result:
    code: int
    objects: set[Key]
    out: str
    items: list[dict[str, Any]] = field(default_factory=list)  # driftdeck's plan items


@dataclass
class World:
    tmp: Path
    repo: Path
    cfg: Path
    kubeconfig: str
    kubectl_env: dict[str, str]

    @property
    def app_dir(self) -> Path:
        return self.repo / APP_PATH

    def write(self, files: dict[str, list[dict[str, Any]]], message: str) -> None:
        for name, docs in files.items():
            (self.app_dir / name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
        commit(self.repo, message)

    def driftdeck(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_STATE_HOME=str(self.tmp / "state"),
                   XDG_CACHE_HOME=str(self.tmp / "cache"))
        return subprocess.run([sys.executable, "-m", "driftdeck", *args, "-c", str(self.cfg)], cwd=self.tmp,
                              capture_output=True, text=True, env=env, timeout=120)

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        return subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                              env=self.kubectl_env, timeout=120)

    def must(self, *args: str, input: str | None = None) -> str:
        proc = self.kubectl(*args, input=input)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    def sync(self) -> None:
        proc = self.driftdeck("sync", APP, "-o", "json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["ok"] is True
        self.settle()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the controllers are done with every Deployment (a status write between
        kubectl's GET and its dry-run would show up as a difference)."""
        deadline = time.monotonic() + timeout
        while True:
            items = json.loads(self.must("get", "deployments", "-n", NS, "-o", "json"))["items"]
            if all(_settled(d) for d in items):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"deployments did not settle: {[d.get('status') for d in items]}")
            time.sleep(0.1)

    def driftdeck_diff(self) -> Result:
        proc = self.driftdeck("diff", APP, "-o", "json")
        assert proc.returncode in (0, 1), f"driftdeck diff failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        plan = json.loads(proc.stdout)
        assert plan["problems"] == [], plan["problems"]
        objects = {(i["kind"], i["namespace"], i["name"]) for i in plan["items"]
                   if i["action"] in ("create", "configure")}
        return Result(proc.returncode, objects, proc.stdout + proc.stderr, plan["items"])

    def kubectl_diff(self, *extra: str, directory: Path | None = None) -> Result:
        proc = self.kubectl("diff", "--server-side", *extra, "-f", str(directory or self.app_dir))
        return Result(proc.returncode, kubectl_objects(proc.stdout), proc.stdout + proc.stderr)

    def compare(self) -> tuple[Result, Result]:
        self.settle()
        ours = self.driftdeck_diff()
        theirs = self.kubectl_diff("--force-conflicts")
        assert theirs.code in (0, 1), f"kubectl diff failed ({theirs.code}): {theirs.out}"
        return ours, theirs


def _settled(d: dict[str, Any]) -> bool:
    status = d.get("status") or {}
    want = (d.get("spec") or {}).get("replicas", 1)
    return bool(
        status.get("observedGeneration") == d["metadata"].get("generation")
        and status.get("replicas", 0) == want
        and status.get("updatedReplicas", 0) == want
        and status.get("availableReplicas", 0) == want
    )


def kubectl_objects(stdout: str) -> set[Key]:
    """The objects of kubectl diff's ``diff -u -N LIVE/x MERGED/x`` headers."""
    out: set[Key] = set()
    for line in stdout.splitlines():
        m = _HEADER.match(line)
        if m is None:
            continue
        assert m.group(1) == m.group(2), line
        n = _NAME.match(m.group(1))
        assert n is not None, f"unparsable kubectl diff name {m.group(1)!r}"
        out.add((n["kind"], n["ns"], n["name"]))
    return out


def test_kubectl_header_parsing() -> None:
    text = "\n".join([
        "diff -u -N /tmp/LIVE-2484866551/apps.v1.Deployment.shop.web /tmp/MERGED-125874696/apps.v1.Deployment.shop.web",
        "--- /tmp/LIVE-2484866551/apps.v1.Deployment.shop.web\t2025-01-01",
        "diff -u -N /x/LIVE-1/v1.ConfigMap.shop.a.b.c /x/MERGED-2/v1.ConfigMap.shop.a.b.c",
        "diff -u -N /x/LIVE-1/v1.Namespace..shop /x/MERGED-2/v1.Namespace..shop",
        "diff -u -N /x/LIVE-1/networking.k8s.io.v1beta1.Ingress.ns.web /x/MERGED-2/networking.k8s.io.v1beta1.Ingress.ns.web",
        "+    image: nginx:1.28",
    ])
    assert kubectl_objects(text) == {("Deployment", "shop", "web"), ("ConfigMap", "shop", "a.b.c"),
                                     ("Namespace", "", "shop"), ("Ingress", "ns", "web")}


@pytest.fixture
def world(sandbox: SandboxServer, sandbox_kubeconfig: str, tmp_path: Path) -> World:
    if KUBECTL is None:
        pytest.skip("kubectl not installed: kubectl diff is the reference here; `make test` installs Debian's kubectl")
    home = tmp_path / "kubectl-home"
    home.mkdir()
    env = dict(os.environ, KUBECONFIG=sandbox_kubeconfig, HOME=str(home), KUBECACHEDIR=str(home / "cache"))
    repo = init_repo(tmp_path / "config-repo")
    config = {
        "clusters": {"local": {"kubeconfig": sandbox_kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"}},
        "apps": {APP: {"source": "config", "path": APP_PATH, "cluster": "local", "namespace": NS,
                       "sync": "manual", "prune": True, "timeout": 60}},
    }
    cfg = tmp_path / "driftdeck.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    w = World(tmp_path, repo, cfg, sandbox_kubeconfig, env)
    (w.app_dir).mkdir(parents=True)
    w.write(app_files(), "initial app")
    # The namespace exists (kubectl cannot dry-run objects into a namespace that does not).
    w.must("apply", "--server-side", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n")
    return w


def assert_agree(ours: Result, theirs: Result, expected: set[Key]) -> None:
    assert ours.objects == theirs.objects, (
        f"driftdeck and kubectl disagree: only driftdeck {sorted(ours.objects - theirs.objects)}, "
        f"only kubectl {sorted(theirs.objects - ours.objects)}\n--- driftdeck\n{ours.out}\n--- kubectl\n{theirs.out}"
    )
    assert ours.objects == expected, f"both report {sorted(ours.objects)}, expected {sorted(expected)}"
    code = 1 if expected else 0
    assert (ours.code, theirs.code) == (code, code), f"exit codes driftdeck {ours.code}, kubectl {theirs.code}"


# ----- the situations -------------------------------------------------------------------------------------------


def test_nothing_applied_everything_is_created(world: World) -> None:
    ours, theirs = world.compare()
    assert_agree(ours, theirs, ALL)
    actions = {i["action"] for i in ours.items}
    assert actions == {"create"}


def test_applied_and_unchanged_both_exit_0(world: World) -> None:
    world.sync()
    ours, theirs = world.compare()
    assert_agree(ours, theirs, set())


def test_image_changed_in_git(world: World) -> None:
    world.sync()
    world.write(app_files(web_image="nginx:1.28"), "web: nginx 1.28")
    ours, theirs = world.compare()
    assert_agree(ours, theirs, {("Deployment", NS, "web")})
    assert "nginx:1.28" in theirs.out and "nginx:1.28" in ours.out
    # Without --force-conflicts kubectl cannot dry-run a value another applier (driftdeck) owns.
    plain = world.kubectl_diff()
    assert plain.code > 1 and "conflict" in plain.out.lower(), plain.out


def test_foreign_scale_and_label_changes_on_live(world: World) -> None:
    world.sync()
    world.must("-n", NS, "scale", "deployment", "web", "--replicas", "3")
    world.must("-n", NS, "label", "deployment", "api", "tier=hacked", "--overwrite")  # a label the manifest sets
    world.must("-n", NS, "label", "configmap", "web-config", "owner=someone")  # a label it does not set
    ours, theirs = world.compare()
    assert_agree(ours, theirs, {("Deployment", NS, "web"), ("Deployment", NS, "api")})


def test_service_port_added_in_git(world: World) -> None:
    world.sync()
    world.write(app_files(web_ports=(80, 443)), "web: port 443")
    ours, theirs = world.compare()
    assert_agree(ours, theirs, {("Service", NS, "web")})


def test_secret_data_changed_in_git_never_shows_the_value(world: World) -> None:
    world.sync()
    world.write(app_files(secret=SECRET_NEW), "rotate the password")
    ours, theirs = world.compare()
    assert_agree(ours, theirs, {("Secret", NS, "web-secret")})
    item = next(i for i in ours.items if i["kind"] == "Secret")
    assert item["action"] == "configure" and item.get("patch"), item
    text = world.driftdeck("diff", APP)
    assert text.returncode == 1, text.stdout + text.stderr
    for out in (ours.out, text.stdout + text.stderr):
        leaked = [v for v in SECRET_VALUES if v in out]
        assert not leaked, f"secret value in driftdeck's output: {leaked}\n{out}"


def test_known_differences(world: World) -> None:
    """Where the two answer differently by design, and why.

    1. A field removed from git (a ConfigMap key, an env var): driftdeck applies as
       "driftdeck", the field's only owner, so its apply removes the field; kubectl
       applies as "kubectl", which never owned it, so its dry-run keeps it and shows
       nothing. driftdeck is right about what its sync will do.
    2. driftdeck's own labels removed on live: kubectl's manifests do not carry them.
    With the same field manager and the labels driftdeck adds, kubectl agrees.
    """
    world.sync()
    world.write(app_files(config={"mode": "production"}, api_env={"MODE": "prod"}), "drop level and DEBUG")
    world.must("-n", NS, "label", "service", "web", "driftdeck.io/app-")
    ours, theirs = world.compare()
    removed = {("ConfigMap", NS, "web-config"), ("Deployment", NS, "api")}
    assert ours.objects == removed | {("Service", NS, "web")} and ours.code == 1, ours.out
    assert theirs.objects == set() and theirs.code == 0, theirs.out

    same = world.tmp / "as-driftdeck"
    same.mkdir()
    for f in world.app_dir.iterdir():
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        for d in docs:
            d["metadata"].setdefault("labels", {}).update(APP_LABELS)
        (same / f.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    as_driftdeck = world.kubectl_diff("--force-conflicts", "--field-manager", "driftdeck", directory=same)
    assert as_driftdeck.code == 1 and as_driftdeck.objects == ours.objects, as_driftdeck.out


def test_missing_namespace_kubectl_cannot_diff(world: World) -> None:
    """A Namespace created by the same app: driftdeck plans it and everything in it as
    create; kubectl's dry-run of the namespaced objects fails (NotFound), exit > 1."""
    files = app_files()
    for docs in files.values():
        for d in docs:
            d["metadata"]["namespace"] = "fresh"
    files["namespace.yaml"] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}]
    world.write(files, "move to namespace fresh")
    ours = world.driftdeck_diff()
    assert ours.code == 1
    assert ours.objects == {(k, "fresh", n) for k, _, n in ALL} | {("Namespace", "", "fresh")}
    theirs = world.kubectl_diff("--force-conflicts")
    assert theirs.code > 1 and 'namespaces "fresh" not found' in theirs.out, theirs.out


def _verdict(code: int, objects: set[Key], key: Key) -> str:
    if code > 1:
        return "error"
    return "differs" if key in objects else "same"


@pytest.mark.parametrize(
    "scalar",
    [
        "'12:30'",  # quoted: a string to both
        "on",  # a YAML 1.1 boolean to both: the apiserver (kubectl) and strict validation (driftdeck) reject it
        "010",  # octal 8 to both: rejected by both
        "12:30",  # no base-60 numbers in go-yaml v2: a string to both (render follows kubectl here)
        "y",  # a boolean to go-yaml v2, so to render too: rejected by both
    ],
)
def test_plain_yaml_scalars_mean_the_same_to_both(world: World, scalar: str) -> None:
    world.sync()
    world.write(app_files(config={"mode": "production", "window": "PLACEHOLDER"}), "placeholder")
    cfg = world.app_dir / "config.yaml"
    cfg.write_text(cfg.read_text().replace("PLACEHOLDER", scalar))
    commit(world.repo, f"window: {scalar}")
    world.settle()
    ours = world.driftdeck("diff", APP, "-o", "json")
    items = json.loads(ours.stdout)["items"] if ours.stdout.strip() else []
    our_objects = {(i["kind"], i["namespace"], i["name"]) for i in items if i["action"] in ("create", "configure")}
    theirs = world.kubectl_diff("--force-conflicts")
    key = ("ConfigMap", NS, "web-config")
    assert _verdict(ours.returncode, our_objects, key) == _verdict(theirs.code, theirs.objects, key), (
        f"driftdeck exit {ours.returncode} {sorted(our_objects)} {ours.stdout[-600:]}{ours.stderr}\n"
        f"kubectl exit {theirs.code} {sorted(theirs.objects)} {theirs.out[-600:]}"
    )
