"""The built-in controllers, observed over HTTP with the official Python client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sandbox.server import Options, SandboxServer
from tests.integration.clients import deployment, eventually

Obj = dict[str, Any]
CM: Obj = {"apiVersion": "v1", "kind": "ConfigMap"}


class Cluster:
    """Typed API groups of the official client, returning raw server JSON."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.client = client.ApiClient(client.Configuration(host=server.url))
        # Typed as Any: the tests pass plain dict bodies, which the client accepts.
        self.core: Any = client.CoreV1Api(self.client)
        self.apps: Any = client.AppsV1Api(self.client)
        self.batch: Any = client.BatchV1Api(self.client)
        self.autoscaling: Any = client.AutoscalingV2Api(self.client)
        self.ext: Any = client.ApiextensionsV1Api(self.client)

    @staticmethod
    def raw(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        resp = fn(*args, _preload_content=False, **kwargs)
        out: Obj = json.loads(resp.data)
        return out

    def maybe(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj | None:
        """The object, or None on 404."""
        try:
            return self.raw(fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def items(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Obj]:
        items: list[Obj] = self.raw(fn, *args, **kwargs)["items"]
        return items

    def idle(self) -> bool:
        return bool(self.server.call(lambda: self.server.controllers.idle()))


def make_server(pods: bool = True) -> SandboxServer:
    return SandboxServer(Options(pace=0.05, bookmark_interval=0.5, pods=pods)).start_in_thread()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    server = make_server()
    c = Cluster(server)
    try:
        yield c
    finally:
        c.client.close()
        server.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def cond(obj: Obj | None, ctype: str) -> Obj | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return dict(c)
    return None


def has_cond(obj: Obj | None, ctype: str, status: str = "True", reason: str | None = None) -> bool:
    c = cond(obj, ctype)
    return c is not None and c["status"] == status and (reason is None or c.get("reason") == reason)


def available(c: Cluster, ns: str, name: str, replicas: int) -> Obj | None:
    d = c.maybe(c.apps.read_namespaced_deployment, name, ns)
    if d is None:
        return None
    st = d.get("status") or {}
    ok = (
        st.get("observedGeneration") == d["metadata"]["generation"]
        and st.get("availableReplicas", 0) == replicas
        and st.get("updatedReplicas", 0) == replicas
        and st.get("replicas", 0) == replicas
        and has_cond(d, "Available", "True", "MinimumReplicasAvailable")
        and has_cond(d, "Progressing", "True", "NewReplicaSetAvailable")
    )
    return d if ok else None


def owned(items: list[Obj], uid: str) -> list[Obj]:
    return [i for i in items if any(r["uid"] == uid for r in i["metadata"].get("ownerReferences") or ())]


# ----- Deployment / ReplicaSet / Pods ------------------------------------------------------------
def test_deployment_becomes_available_with_replicaset_and_ready_pods(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    d = eventually(lambda: available(c, ns, "web", 2), what="deployment available")
    assert d["status"]["readyReplicas"] == 2
    assert "unavailableReplicas" not in d["status"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    progressing = cond(d, "Progressing")
    assert progressing is not None
    rs_list = c.items(c.apps.list_namespaced_replica_set, ns)
    assert len(rs_list) == 1
    rs = rs_list[0]
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert progressing["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    assert progressing["lastUpdateTime"] and progressing["lastTransitionTime"]
    [ref] = rs["metadata"]["ownerReferences"]
    assert ref == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
                   "controller": True, "blockOwnerDeletion": True}
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["status"]["readyReplicas"] == 2 and rs["status"]["availableReplicas"] == 2
    assert rs["status"]["fullyLabeledReplicas"] == 2 and rs["status"]["observedGeneration"] == 1

    pods = c.items(c.core.list_namespaced_pod, ns)
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"web-{h}-") and len(pod["metadata"]["name"]) == len(f"web-{h}-") + 5
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["status"]["phase"] == "Running"
        assert has_cond(pod, "Ready") and has_cond(pod, "ContainersReady") and has_cond(pod, "PodScheduled")
        [cs] = pod["status"]["containerStatuses"]
        assert cs["ready"] is True and cs["started"] is True and "running" in cs["state"]
        assert cs["image"] == "docker.io/library/nginx:1.27"
        kubelet = [m for m in pod["metadata"]["managedFields"] if m["manager"] == "kubelet"]
        assert kubelet and kubelet[0]["subresource"] == "status"


def test_fail_image_reaches_progress_deadline_exceeded(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("broken", image="nginx:fail", replicas=2))

    def failed() -> Obj | None:
        d = c.maybe(c.apps.read_namespaced_deployment, "broken", ns)
        return d if has_cond(d, "Progressing", "False", "ProgressDeadlineExceeded") else None

    d = eventually(failed, what="ProgressDeadlineExceeded")
    assert has_cond(d, "Available", "False", "MinimumReplicasUnavailable")
    assert cond(d, "Progressing")["message"].endswith("has timed out progressing.")  # type: ignore[index]
    assert d["status"].get("availableReplicas", 0) == 0 and d["status"]["unavailableReplicas"] == 2

    def pulling() -> list[Obj] | None:
        pods = c.items(c.core.list_namespaced_pod, ns)
        reasons = {((p["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting", {}).get("reason")
                   for p in pods}
        return pods if len(pods) == 2 and reasons <= {"ErrImagePull", "ImagePullBackOff"} and None not in reasons else None

    pods = eventually(pulling, what="pods failing to pull")
    for pod in pods:
        assert pod["status"]["phase"] == "Pending" and has_cond(pod, "Ready", "False")


def test_template_change_creates_new_replicaset_and_bumps_revision(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("roll", replicas=2))
    eventually(lambda: available(c, ns, "roll", 2), what="first rollout")
    [first] = c.items(c.apps.list_namespaced_replica_set, ns)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}
    c.apps.patch_namespaced_deployment("roll", ns, patch)

    def rolled() -> Obj | None:
        d = available(c, ns, "roll", 2)
        if d is None or d["metadata"]["annotations"].get("deployment.kubernetes.io/revision") != "2":
            return None
        pods = c.items(c.core.list_namespaced_pod, ns)
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        return d if len(pods) == 2 and images == {"nginx:1.28"} else None

    d = eventually(rolled, what="second rollout")
    rs_list = {r["metadata"]["name"]: r for r in c.items(c.apps.list_namespaced_replica_set, ns)}
    assert len(rs_list) == 2
    old = rs_list.pop(first["metadata"]["name"])
    [new] = rs_list.values()
    assert old["spec"]["replicas"] == 0 and old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert new["spec"]["replicas"] == 2 and new["metadata"]["name"] != first["metadata"]["name"]
    assert cond(d, "Progressing")["message"] == f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.'  # type: ignore[index]
    assert d["metadata"]["generation"] == 2 and d["status"]["observedGeneration"] == 2


def test_scale_subresource_resizes_replicaset_and_status(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("scaled", replicas=1))
    eventually(lambda: available(c, ns, "scaled", 1), what="available at 1")
    c.apps.patch_namespaced_deployment_scale("scaled", ns, {"spec": {"replicas": 3}})

    def at(n: int) -> Obj | None:
        d = available(c, ns, "scaled", n)
        pods = c.items(c.core.list_namespaced_pod, ns)
        return d if d is not None and len(pods) == n else None

    d = eventually(lambda: at(3), what="scaled to 3")
    [rs] = c.items(c.apps.list_namespaced_replica_set, ns)
    assert rs["spec"]["replicas"] == 3 and rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    c.apps.patch_namespaced_deployment_scale("scaled", ns, {"spec": {"replicas": 1}})
    eventually(lambda: at(1), what="scaled down to 1")


def test_paused_deployment_does_not_roll_out(cluster: Cluster, ns: str) -> None:
    c = cluster
    body = deployment("held", replicas=1)
    body["spec"]["paused"] = True
    c.apps.create_namespaced_deployment(ns, body)

    def paused() -> Obj | None:
        d = c.maybe(c.apps.read_namespaced_deployment, "held", ns)
        return d if has_cond(d, "Progressing", "Unknown", "DeploymentPaused") else None

    d = eventually(paused, what="DeploymentPaused")
    assert d["status"]["observedGeneration"] == 1
    assert c.items(c.apps.list_namespaced_replica_set, ns) == []
    c.apps.patch_namespaced_deployment("held", ns, {"spec": {"paused": False}})
    eventually(lambda: available(c, ns, "held", 1), what="rollout after resume")


def test_controller_status_writes_are_kcm_updates_without_generation_bump(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("mf", replicas=1), field_manager="gitops")
    d = eventually(lambda: available(c, ns, "mf", 1), what="available")
    assert d["metadata"]["generation"] == 1
    entries = d["metadata"]["managedFields"]
    kcm = [e for e in entries if e["manager"] == "kube-controller-manager"]
    assert len(kcm) == 1
    [status_entry] = kcm
    assert status_entry["operation"] == "Update" and status_entry["subresource"] == "status"
    fields = status_entry["fieldsV1"]
    assert "f:status" in fields and "f:spec" not in fields
    assert "f:deployment.kubernetes.io/revision" in fields["f:metadata"]["f:annotations"]
    [mine] = [e for e in entries if e["manager"] == "gitops"]
    assert "f:status" not in mine["fieldsV1"] and "subresource" not in mine
    rs = c.items(c.apps.list_namespaced_replica_set, ns)[0]
    rs_kcm = {(e["operation"], e.get("subresource", "")) for e in rs["metadata"]["managedFields"]
              if e["manager"] == "kube-controller-manager"}
    assert rs_kcm == {("Update", ""), ("Update", "status")}


# ----- garbage collection ---------------------------------------------------------------------------
def test_background_deletion_removes_replicaset_and_pods(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("bg", replicas=2))
    eventually(lambda: available(c, ns, "bg", 2), what="available")
    c.apps.delete_namespaced_deployment("bg", ns, propagation_policy="Background")
    eventually(lambda: not c.items(c.apps.list_namespaced_replica_set, ns)
               and not c.items(c.core.list_namespaced_pod, ns), what="dependents collected")


def test_foreground_deletion_keeps_owner_until_dependents_are_gone(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("fg", replicas=1))
    eventually(lambda: available(c, ns, "fg", 1), what="available")
    [rs] = c.items(c.apps.list_namespaced_replica_set, ns)
    rs_name = rs["metadata"]["name"]
    c.apps.patch_namespaced_replica_set(rs_name, ns, {"metadata": {"finalizers": ["example.com/hold"]}})
    out = c.raw(c.apps.delete_namespaced_deployment, "fg", ns, propagation_policy="Foreground")
    assert out["metadata"]["deletionTimestamp"] and "foregroundDeletion" in out["metadata"]["finalizers"]

    def rs_terminating() -> Obj | None:
        got = c.maybe(c.apps.read_namespaced_replica_set, rs_name, ns)
        return got if got and got["metadata"].get("deletionTimestamp") else None

    eventually(rs_terminating, what="replicaset terminating")
    eventually(lambda: not c.items(c.core.list_namespaced_pod, ns), what="pods gone")
    d = c.maybe(c.apps.read_namespaced_deployment, "fg", ns)
    assert d is not None and "foregroundDeletion" in d["metadata"]["finalizers"], "owner must wait for its dependents"
    c.apps.patch_namespaced_replica_set(rs_name, ns, [{"op": "remove", "path": "/metadata/finalizers"}])
    eventually(lambda: c.maybe(c.apps.read_namespaced_deployment, "fg", ns) is None, what="owner removed")
    assert c.items(c.apps.list_namespaced_replica_set, ns) == []


def test_orphan_deletion_leaves_replicaset_without_owner(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("orph", replicas=1))
    eventually(lambda: available(c, ns, "orph", 1), what="available")
    c.apps.delete_namespaced_deployment("orph", ns, propagation_policy="Orphan")
    eventually(lambda: c.maybe(c.apps.read_namespaced_deployment, "orph", ns) is None, what="deployment removed")
    [rs] = c.items(c.apps.list_namespaced_replica_set, ns)
    assert "ownerReferences" not in rs["metadata"]
    pods = c.items(c.core.list_namespaced_pod, ns)
    assert len(pods) == 1 and pods[0]["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]


def test_dangling_owner_reference_is_collected(cluster: Cluster, ns: str) -> None:
    c = cluster
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    c.core.create_namespaced_config_map(ns, {**CM, "metadata": {"name": "child", "ownerReferences": [ref]}, "data": {}})
    eventually(lambda: c.maybe(c.core.read_namespaced_config_map, "child", ns) is None, what="orphaned child collected")


# ----- namespaces --------------------------------------------------------------------------------------
def test_namespace_deletion_empties_then_removes_the_namespace(cluster: Cluster) -> None:
    c = cluster
    name = f"t-{uuid.uuid4().hex[:8]}"
    c.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    c.apps.create_namespaced_deployment(name, deployment("app", replicas=1))
    c.core.create_namespaced_config_map(name, {**CM, "metadata": {"name": "plain"}, "data": {"a": "1"}})
    c.core.create_namespaced_config_map(name, {**CM, "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    eventually(lambda: available(c, name, "app", 1), what="available")
    c.core.delete_namespace(name)

    def lingering() -> Obj | None:
        ns_obj = c.maybe(c.core.read_namespace, name)
        left = [(i["metadata"]["name"]) for i in c.items(c.core.list_namespaced_config_map, name)]
        gone = not c.items(c.apps.list_namespaced_deployment, name) and not c.items(c.core.list_namespaced_pod, name)
        if ns_obj and gone and left == ["held"] and has_cond(ns_obj, "NamespaceFinalizersRemaining"):
            return ns_obj
        return None

    ns_obj = eventually(lingering, what="namespace emptied except the held object")
    assert ns_obj["status"]["phase"] == "Terminating" and ns_obj["spec"]["finalizers"] == ["kubernetes"]
    assert "example.com/hold in 1 resource instances" in cond(ns_obj, "NamespaceFinalizersRemaining")["message"]  # type: ignore[index]
    assert has_cond(ns_obj, "NamespaceContentRemaining", "True", "SomeResourcesRemain")
    held = c.raw(c.core.read_namespaced_config_map, "held", name)
    assert held["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as err:
        c.core.create_namespaced_config_map(name, {**CM, "metadata": {"name": "late"}})
    assert err.value.status == 403
    c.core.patch_namespaced_config_map("held", name, [{"op": "remove", "path": "/metadata/finalizers"}])
    eventually(lambda: c.maybe(c.core.read_namespace, name) is None, what="namespace removed")


# ----- other workloads and objects ---------------------------------------------------------------------
def _job(name: str, image: str) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": image}]}}}}


def test_job_completes_or_fails(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.batch.create_namespaced_job(ns, _job("ok", "busybox:1.36"))
    c.batch.create_namespaced_job(ns, _job("bad", "busybox:fail"))

    def done(name: str, ctype: str) -> Obj | None:
        job = c.maybe(c.batch.read_namespaced_job, name, ns)
        return job if has_cond(job, ctype) else None

    ok = eventually(lambda: done("ok", "Complete"), what="job complete")
    st = ok["status"]
    assert st["succeeded"] == 1 and st["startTime"] and st["completionTime"] and "active" not in st
    assert has_cond(ok, "SuccessCriteriaMet", "True", "CompletionsReached")
    assert [x["type"] for x in st["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    bad = eventually(lambda: done("bad", "Failed"), what="job failed")
    assert has_cond(bad, "Failed", "True", "BackoffLimitExceeded") and bad["status"]["failed"] == 3
    assert not has_cond(bad, "Complete")


def test_pvc_binds(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.core.create_namespaced_persistent_volume_claim(ns, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })

    def bound() -> Obj | None:
        pvc = c.maybe(c.core.read_namespaced_persistent_volume_claim, "data", ns)
        return pvc if pvc and (pvc.get("status") or {}).get("phase") == "Bound" else None

    pvc = eventually(bound, what="pvc bound")
    assert pvc["spec"]["volumeName"] == f"pvc-{pvc['metadata']['uid']}"
    assert pvc["status"]["capacity"] == {"storage": "1Gi"} and pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    kcm = {e.get("subresource", "") for e in pvc["metadata"]["managedFields"] if e["manager"] == "kube-controller-manager"}
    assert kcm == {"", "status"}


def test_statefulset_becomes_ready_with_pods_and_claims(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_stateful_set(ns, {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "postgres:16",
                                                  "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    })

    def ready() -> Obj | None:
        sts = c.maybe(c.apps.read_namespaced_stateful_set, "db", ns)
        st = (sts or {}).get("status") or {}
        ok = (st.get("readyReplicas") == 2 and st.get("currentReplicas") == 2 and st.get("updatedReplicas") == 2
              and st.get("availableReplicas") == 2 and st.get("observedGeneration") == 1
              and st.get("currentRevision") == st.get("updateRevision"))
        return sts if ok else None

    sts = eventually(ready, what="statefulset ready")
    assert sts["status"]["updateRevision"].startswith("db-")
    pods = {p["metadata"]["name"]: p for p in c.items(c.core.list_namespaced_pod, ns)}
    assert sorted(pods) == ["db-0", "db-1"]
    assert pods["db-1"]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert pods["db-0"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-db-0"
    eventually(lambda: sorted(p["metadata"]["name"] for p in c.items(c.core.list_namespaced_persistent_volume_claim, ns)
                              if (p.get("status") or {}).get("phase") == "Bound") == ["data-db-0", "data-db-1"],
               what="claims bound")


def test_daemonset_status(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_daemon_set(ns, {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "fluentd:v1"}]}}},
    })

    def ready() -> Obj | None:
        ds = c.maybe(c.apps.read_namespaced_daemon_set, "agent", ns)
        st = (ds or {}).get("status") or {}
        return ds if st.get("numberReady") == 1 and st.get("observedGeneration") == 1 else None

    ds = eventually(ready, what="daemonset ready")
    st = ds["status"]
    assert st["desiredNumberScheduled"] == st["currentNumberScheduled"] == st["updatedNumberScheduled"] == 1
    assert st["numberAvailable"] == 1 and "numberUnavailable" not in st


def test_hpa_keeps_target_within_bounds_and_reports_status(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("api", replicas=1))
    c.autoscaling.create_namespaced_horizontal_pod_autoscaler(ns, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                 "minReplicas": 2, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                              "target": {"type": "Utilization", "averageUtilization": 80}}}]},
    })

    def settled() -> Obj | None:
        hpa = c.maybe(c.autoscaling.read_namespaced_horizontal_pod_autoscaler, "api", ns)
        st = (hpa or {}).get("status") or {}
        ok = (st.get("currentReplicas") == 2 and st.get("desiredReplicas") == 2 and has_cond(hpa, "AbleToScale")
              and has_cond(hpa, "ScalingActive", "True", "ValidMetricFound")
              and has_cond(hpa, "ScalingLimited", "False", "DesiredWithinRange"))
        return hpa if ok else None

    hpa = eventually(settled, what="hpa settled")
    assert hpa["status"]["lastScaleTime"]
    d = eventually(lambda: available(c, ns, "api", 2), what="deployment scaled to minReplicas")
    scale_entries = [e for e in d["metadata"]["managedFields"] if e.get("subresource") == "scale"]
    assert [(e["manager"], e["operation"]) for e in scale_entries] == [("kube-controller-manager", "Update")]


def test_loadbalancer_service_gets_an_ingress_ip(cluster: Cluster, ns: str) -> None:
    c = cluster
    c.core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                                          "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 80}]}})

    def ingress() -> list[Obj] | None:
        svc = c.maybe(c.core.read_namespaced_service, "lb", ns)
        return (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress")

    [entry] = eventually(ingress, what="load balancer ingress")
    assert entry["ip"].startswith("172.18.255.")


def test_crd_is_established(cluster: Cluster) -> None:
    c = cluster
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    c.ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    })

    def established() -> Obj | None:
        crd = c.maybe(c.ext.read_custom_resource_definition, f"widgets.{group}")
        return crd if has_cond(crd, "Established") and has_cond(crd, "NamesAccepted") else None

    crd = eventually(established, what="crd established")
    assert crd["status"]["acceptedNames"]["kind"] == "Widget" and crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    assert crd["status"]["storedVersions"] == ["v1"]
    managers = {(e["manager"], e.get("subresource", "")) for e in crd["metadata"]["managedFields"]}
    assert ("kube-apiserver", "status") in managers


# ----- switches ------------------------------------------------------------------------------------------
def test_without_pods_deployments_still_become_available() -> None:
    server = make_server(pods=False)
    c = Cluster(server)
    try:
        c.apps.create_namespaced_deployment("default", deployment("light", replicas=3))
        eventually(lambda: available(c, "default", "light", 3), what="available without pods")
        assert len(c.items(c.apps.list_namespaced_replica_set, "default")) == 1
        assert c.items(c.core.list_namespaced_pod, "default") == []
    finally:
        c.client.close()
        server.stop()


# ----- idempotency (keep last: it re-reconciles everything the module created) --------------------------
def test_reconciling_everything_again_writes_nothing(cluster: Cluster, ns: str) -> None:
    """Runs last: a full resync over every object the other tests left must not write."""
    c = cluster
    c.apps.create_namespaced_deployment(ns, deployment("calm", replicas=2))
    eventually(lambda: available(c, ns, "calm", 2), what="available")
    eventually(c.idle, what="controllers idle")
    server = c.server
    before = server.call(lambda: server.store.rv)

    def resync_all() -> None:
        for ctl in server.controllers.controllers.values():
            ctl.resync()

    server.call(resync_all)
    eventually(c.idle, what="controllers idle after a full resync")
    assert server.call(lambda: server.store.rv) == before
