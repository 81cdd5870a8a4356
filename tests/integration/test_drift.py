"""Watch-time drift against the sandbox over HTTP: the false-positive traps stay quiet,
true drifts are reported from the one watch event that causes them (kubernetes-semantics (b))."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from core.cluster import Cluster, WatchLoop, WatchManager
from core.drift import Baseline, Drift, check, check_event, make_baseline, node_for
from core.model import IgnoreRule, ObjRef
from sandbox.server import SandboxServer
from tests.integration.clients import deployment, eventually

Obj = dict[str, Any]
IMAGE_PATH = '.spec.template.spec.containers[name="app"].image'


@dataclass
class Seen:
    """One watch event as the engine would judge it."""

    type: str
    obj: Obj
    drift: Drift | None
    judged: bool = True

    @property
    def rv(self) -> str:
        return str(self.obj["metadata"].get("resourceVersion", ""))


@dataclass
class Env:
    sandbox: SandboxServer
    cluster: Cluster
    watches: WatchManager
    kubectl: Callable[..., Any] | None = None
    baselines: dict[ObjRef, tuple[Baseline, Sequence[IgnoreRule]]] = field(default_factory=dict)
    seen: dict[ObjRef, list[Seen]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_event(self, event_type: str, obj: Obj) -> None:
        """The listener: judge every event of an object we have a baseline for (no API call).

        Events that arrive between the apply and the baseline's registration are kept
        and judged once the baseline exists.
        """
        ref = ObjRef.of(obj)
        with self.lock:
            if ref not in self.seen:
                return
            entry = self.baselines.get(ref)
            drift = check_event(entry[0], event_type, obj, entry[1]) if entry else None
            self.seen[ref].append(Seen(event_type, obj, drift, judged=entry is not None))

    def watch(self, api_version: str, kind: str) -> None:
        self.watches.ensure(api_version, kind)
        assert self.watches.wait_synced(api_version, kind, 10)

    def apply(self, manifest: Obj, ignore: Sequence[IgnoreRule] = ()) -> Baseline:
        """Apply, take the baseline from the response, and judge later events against it."""
        self.watch(manifest["apiVersion"], manifest["kind"])
        ref = ObjRef.of(self.cluster.scoped(manifest))
        with self.lock:
            self.baselines.pop(ref, None)
            self.seen[ref] = []
        answer = self.cluster.apply(manifest)
        b = make_baseline(manifest, answer, node_for(answer))
        assert b.ref == ref
        with self.lock:
            self.baselines[ref] = (b, tuple(ignore))
            for s in self.seen[ref]:
                if not s.judged:
                    s.drift, s.judged = check_event(b, s.type, s.obj, ignore), True
        return b

    def events(self, ref: ObjRef) -> list[Seen]:
        with self.lock:
            return list(self.seen.get(ref, []))

    def drifts(self, ref: ObjRef) -> list[Seen]:
        return [s for s in self.events(ref) if s.drift is not None]

    def settle(self) -> None:
        """Wait until the controllers are idle and every loop has caught up with the store."""
        eventually(
            lambda: self.sandbox.call(lambda: self.sandbox.controllers.idle()), what="controllers idle"
        )
        target = self.sandbox.store.rv
        for loop in self.watches.loops():
            eventually(partial(_caught_up, loop, target), what=f"{loop.kind} caught up")

    def wait_available(self, ref: ObjRef) -> Obj:
        def available() -> Obj | None:
            live = self.watches.cache.get(ref)
            conds = ((live or {}).get("status") or {}).get("conditions") or []
            ok = any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)
            return live if ok else None

        return eventually(available, what=f"{ref} Available")

    def assert_quiet(self, b: Baseline, min_events: int = 1) -> None:
        """No event of the object drifted; the cached and the fetched live object are in sync."""
        self.settle()
        assert self.drifts(b.ref) == [], [str(s.drift) for s in self.drifts(b.ref)]
        assert len(self.events(b.ref)) >= min_events
        ignore = self.baselines[b.ref][1]
        assert check(b, self.watches.cache.get(b.ref), ignore) is None
        live = self.cluster.get(
            f"{b.ref.group}/v1" if b.ref.group else "v1", b.ref.kind, b.ref.namespace, b.ref.name
        )
        assert check(b, live, ignore) is None

    def caused_by(self, ref: ObjRef, write: Callable[[], str]) -> Seen:
        """Run ``write`` (returning the new resourceVersion) and return the event it caused."""
        rv = write()
        return eventually(
            lambda: next((s for s in self.events(ref) if s.rv == rv), None), what=f"event at rv {rv}"
        )

    def patch(self, path: str, body: Obj, manager: str, patch_type: str = "merge") -> str:
        """A foreign non-apply write; the new resourceVersion."""
        out = self.cluster.request(
            "PATCH", path, [("fieldManager", manager)], body, f"application/{patch_type}-patch+json"
        )
        return str(out["metadata"]["resourceVersion"])


@pytest.fixture
def env(sandbox: SandboxServer, sandbox_kubeconfig: str) -> Iterator[Env]:
    cluster = Cluster(sandbox_kubeconfig, name="sandbox")
    watches = WatchManager(cluster, watch_timeout=30, backoff_base=0.05, backoff_cap=0.5)
    e = Env(sandbox, cluster, watches)
    watches.add_listener(e.on_event)
    try:
        yield e
    finally:
        watches.stop()
        cluster.close()


def _caught_up(loop: WatchLoop, target: int) -> bool:
    return int(loop.resource_version or 0) >= target


def _rv_of(kubectl_out: Any) -> str:
    return str(json.loads(kubectl_out.stdout)["metadata"]["resourceVersion"])


def _container(manifest: Obj) -> Obj:
    c: Obj = manifest["spec"]["template"]["spec"]["containers"][0]
    return c


DEPLOY_PATH = "/apis/apps/v1/namespaces/default/deployments/"


# --- traps: no drift ------------------------------------------------------------------------------


def test_minimal_deployment_defaults_are_not_drift(env: Env) -> None:
    b = env.apply(deployment("web"))
    live = env.wait_available(b.ref)
    assert live["spec"]["revisionHistoryLimit"] == 10  # server defaults are present live
    assert _container(live)["terminationMessagePath"] == "/dev/termination-log"
    env.assert_quiet(b, min_events=3)


def test_service_defaults_and_allocated_cluster_ip_are_not_drift(env: Env) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    b = env.apply(svc)
    live = eventually(lambda: env.watches.cache.get(b.ref), what="service cached")
    assert live["spec"]["clusterIP"] and live["spec"]["type"] == "ClusterIP"
    assert live["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    env.assert_quiet(b)


def test_container_port_without_protocol_applies_and_is_not_drift(env: Env) -> None:
    b = env.apply(deployment("web"))  # ports: [{containerPort: 80}]
    live = env.wait_available(b.ref)
    assert _container(live)["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    env.assert_quiet(b)


@pytest.mark.parametrize(
    ("resource", "value", "canonical"),
    [
        ("cpu", 0.5, "500m"),
        ("cpu", 1, "1"),
        ("cpu", "1000m", "1"),
        ("memory", "1000M", "1G"),
        ("memory", "1.5Gi", "1536Mi"),
        ("cpu", "1.5m", "2m"),
    ],
)
def test_quantity_canonicalisation_is_not_drift(env: Env, resource: str, value: Any, canonical: str) -> None:
    m = deployment("web")
    _container(m)["resources"] = {"requests": {resource: value}, "limits": {resource: value}}
    b = env.apply(m)
    live = env.wait_available(b.ref)
    assert _container(live)["resources"]["requests"][resource] == canonical
    env.assert_quiet(b)


def test_empty_annotations_are_not_drift_when_the_controller_adds_one(env: Env) -> None:
    m = deployment("web")
    m["metadata"]["annotations"] = {}
    b = env.apply(m)
    live = env.wait_available(b.ref)
    assert "deployment.kubernetes.io/revision" in live["metadata"]["annotations"]
    env.assert_quiet(b)


def test_empty_env_list_is_not_drift(env: Env) -> None:
    m = deployment("web")
    _container(m)["env"] = []
    b = env.apply(m)
    live = env.wait_available(b.ref)
    assert "env" not in _container(live)
    env.assert_quiet(b)


def test_empty_configmap_data_is_not_drift(env: Env) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {}}
    b = env.apply(cm)
    # A key someone else adds is outside F: not drift under SSA semantics.
    env.patch("/api/v1/namespaces/default/configmaps/cfg", {"data": {"extra": "1"}}, "kubectl-edit")
    env.assert_quiet(b)


def test_template_creation_timestamp_null_is_not_drift(env: Env) -> None:
    m = deployment("web")
    m["spec"]["template"]["metadata"]["creationTimestamp"] = None
    b = env.apply(m)
    env.wait_available(b.ref)
    env.assert_quiet(b)


def test_secret_string_data_is_not_drift_but_a_changed_value_is(env: Env) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": "s3cret"},
    }
    b = env.apply(secret)
    assert b.expected == {"data": {"password": base64.b64encode(b"s3cret").decode()}}
    env.assert_quiet(b)
    seen = env.caused_by(
        b.ref,
        lambda: env.patch(
            "/api/v1/namespaces/default/secrets/db", {"data": {"password": "b3RoZXI="}}, "kubectl-edit"
        ),
    )
    assert seen.drift == Drift(b.ref, False, (".data.password",), ("kubectl-edit",))


def test_controller_status_and_revision_annotation_are_not_drift(env: Env) -> None:
    m = deployment("web", replicas=2)
    m["metadata"]["annotations"] = {"team": "shop"}
    b = env.apply(m)
    live = env.wait_available(b.ref)
    assert live["status"]["availableReplicas"] == 2
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    env.assert_quiet(b, min_events=3)


def test_identical_reapply_bumps_nothing_and_emits_no_event(env: Env) -> None:
    m = deployment("web")
    b = env.apply(m)
    env.wait_available(b.ref)
    env.settle()
    before = len(env.events(b.ref))
    live_rv = env.watches.cache.get(b.ref)["metadata"]["resourceVersion"]  # type: ignore[index]
    again = env.cluster.apply(m)
    assert again["metadata"]["resourceVersion"] == live_rv
    env.settle()
    assert len(env.events(b.ref)) == before
    env.assert_quiet(b)


def test_foreign_sidecar_and_label_outside_the_manifest_are_not_drift(env: Env) -> None:
    """What a mutating webhook adds after admission: an extra container and label, owned by another manager."""
    b = env.apply(deployment("web"))
    env.wait_available(b.ref)
    patch = {
        "metadata": {"labels": {"injected": "true"}},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1.30"}]}}},
    }
    env.patch(DEPLOY_PATH + "web", patch, "sidecar-injector", "strategic-merge")

    def with_sidecar() -> Obj | None:
        o = env.watches.cache.get(b.ref)
        return o if o and len(o["spec"]["template"]["spec"]["containers"]) == 2 else None

    live = eventually(with_sidecar, what="sidecar in the cache")
    assert live["metadata"]["labels"]["injected"] == "true"
    env.wait_available(b.ref)
    env.assert_quiet(b)


@pytest.mark.kubectl
def test_rollout_restart_is_not_drift(env: Env, kubectl: Any) -> None:
    b = env.apply(deployment("web"))
    env.wait_available(b.ref)
    kubectl("rollout", "restart", "deployment/web")
    live = eventually(
        lambda: (
            (env.watches.cache.get(b.ref) or {})
            .get("spec", {})
            .get("template", {})
            .get("metadata", {})
            .get("annotations")
        ),
        what="restartedAt",
    )
    assert "kubectl.kubernetes.io/restartedAt" in live
    env.assert_quiet(b)


def test_label_added_by_kubectl_edit_is_not_drift(env: Env) -> None:
    b = env.apply(deployment("web"))
    env.wait_available(b.ref)
    env.patch(DEPLOY_PATH + "web", {"metadata": {"labels": {"owner": "ops"}}}, "kubectl-edit")
    eventually(
        lambda: (env.watches.cache.get(b.ref) or {})["metadata"].get("labels", {}).get("owner"), what="label"
    )
    env.assert_quiet(b)


def test_cluster_scoped_manifest_carrying_a_namespace(env: Env) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "namespace": "ignored"}}
    b = env.apply(ns)
    assert b.ref == ObjRef("", "Namespace", "", "shop")
    env.assert_quiet(b)


def test_namespaced_manifest_without_a_namespace_lands_in_the_context_namespace(env: Env) -> None:
    b = env.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert b.ref == ObjRef("", "ConfigMap", "default", "cfg")
    env.assert_quiet(b)


def test_custom_resource_with_deduced_schema(env: Env) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                            },
                        }
                    },
                }
            ],
        },
    }
    env.cluster.apply(crd)
    eventually(lambda: env.cluster.resource("example.com/v1", "Widget"), what="Widget served")
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3, "tags": ["a", "b"], "labels": {}},
    }
    b = env.apply(cr)
    env.assert_quiet(b)
    seen = env.caused_by(
        b.ref,
        lambda: env.patch(
            "/apis/example.com/v1/namespaces/default/widgets/w", {"spec": {"size": 4}}, "kubectl-patch"
        ),
    )
    assert seen.drift == Drift(b.ref, False, (".spec.size",), ("kubectl-patch",))


# --- true drifts, each caught from the event that causes it ---------------------------------------


@pytest.mark.kubectl
def test_image_changed_by_kubectl_set_image_is_drift(env: Env, kubectl: Any) -> None:
    b = env.apply(deployment("web"))
    env.wait_available(b.ref)
    env.settle()
    seen = env.caused_by(
        b.ref, lambda: _rv_of(kubectl("set", "image", "deployment/web", "app=nginx:1.28", "-o", "json"))
    )
    assert seen.type == "MODIFIED"
    assert seen.drift == Drift(b.ref, False, (IMAGE_PATH,), ("kubectl-set",))
    assert env.drifts(b.ref)[0] is seen  # the first drifted event is the write itself


@pytest.mark.kubectl
def test_image_changed_by_kubectl_patch_is_drift(env: Env, kubectl: Any) -> None:
    b = env.apply(deployment("web"))
    env.wait_available(b.ref)
    env.settle()
    body = json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.29"}]}}}}
    )
    seen = env.caused_by(b.ref, lambda: _rv_of(kubectl("patch", "deployment/web", "-p", body, "-o", "json")))
    assert seen.drift == Drift(b.ref, False, (IMAGE_PATH,), ("kubectl-patch",))
    assert env.drifts(b.ref)[0] is seen


@pytest.mark.kubectl
def test_kubectl_scale_with_replicas_in_the_manifest_is_drift(env: Env, kubectl: Any) -> None:
    b = env.apply(deployment("web", replicas=2))
    env.wait_available(b.ref)
    env.settle()
    kubectl("scale", "deployment/web", "--replicas=5")  # prints the object read before the write: no rv
    seen = eventually(
        lambda: next((s for s in env.events(b.ref) if s.obj["spec"]["replicas"] == 5), None),
        what="scaled event",
    )
    assert seen.drift is not None
    assert seen.drift.fields == (".spec.replicas",)
    assert seen.drift.managers and all(m.startswith("kubectl") for m in seen.drift.managers)
    assert env.drifts(b.ref)[0] is seen


@pytest.mark.kubectl
def test_kubectl_scale_with_replicas_omitted_is_not_drift(env: Env, kubectl: Any) -> None:
    b = env.apply(deployment("web"))
    env.wait_available(b.ref)
    kubectl("scale", "deployment/web", "--replicas=3")
    eventually(lambda: (env.watches.cache.get(b.ref) or {})["spec"]["replicas"] == 3, what="scaled")
    env.wait_available(b.ref)
    env.assert_quiet(b)


@pytest.mark.kubectl
@pytest.mark.parametrize(
    "rule",
    [IgnoreRule(kind="Deployment", pointer="/spec/replicas"), IgnoreRule(manager="kubectl")],
    ids=["pointer", "manager"],
)
def test_kubectl_scale_with_an_ignore_rule_is_not_drift(env: Env, kubectl: Any, rule: IgnoreRule) -> None:
    b = env.apply(deployment("web", replicas=2), ignore=[rule])
    env.wait_available(b.ref)
    kubectl("scale", "deployment/web", "--replicas=4")
    eventually(lambda: (env.watches.cache.get(b.ref) or {})["spec"]["replicas"] == 4, what="scaled")
    env.assert_quiet(b)
    assert check(b, env.watches.cache.get(b.ref)) is not None  # without the rule it is drift


def test_deleted_object_is_missing_from_its_deleted_event(env: Env) -> None:
    b = env.apply(deployment("web"))
    env.wait_available(b.ref)
    env.settle()
    assert env.cluster.delete("apps/v1", "Deployment", "default", "web")
    seen = eventually(
        lambda: next((s for s in env.events(b.ref) if s.type == "DELETED"), None), what="DELETED event"
    )
    assert seen.drift == Drift(b.ref, missing=True)
    assert env.watches.cache.get(b.ref) is None
    # Recreate: a fresh baseline, quiet again.
    b2 = env.apply(deployment("web"))
    env.wait_available(b2.ref)
    env.assert_quiet(b2)
