"""core.health: one case per rule, with statuses shaped like the sandbox controllers and
kstatus' test cases write them, plus a live check against the sandbox's controllers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from core.health import assess
from core.model import Health
from sandbox.server import SandboxServer
from tests.integration.clients import deployment, eventually

Obj = dict[str, Any]
T0 = "2024-05-01T10:00:00Z"
T0_EPOCH = 1714557600.0


def cond(ctype: str, status: str, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": ctype, "status": status, "lastTransitionTime": T0}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def obj(api: str, kind: str, spec: Obj | None = None, status: Obj | None = None, generation: int = 1, **meta: Any) -> Obj:
    out: Obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns", "generation": generation, **meta}}
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


# ----- generic -------------------------------------------------------------------------------


def test_missing_and_deleting() -> None:
    assert assess(None) == (Health.MISSING, "not found in the cluster")
    h, why = assess(obj("v1", "ConfigMap", deletionTimestamp=T0))
    assert h is Health.PROGRESSING and "deleted" in why


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret", "ServiceAccount", "Role", "ClusterRoleBinding"])
def test_kinds_without_status_are_healthy(kind: str) -> None:
    api = "rbac.authorization.k8s.io/v1" if "Role" in kind else "v1"
    assert assess({"apiVersion": api, "kind": kind, "metadata": {"name": "x"}})[0] is Health.HEALTHY


# ----- Deployment (sandbox controller shapes) ------------------------------------------------

AVAILABLE = cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
UNAVAILABLE = cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
NEW_RS_AVAILABLE = cond("Progressing", "True", "NewReplicaSetAvailable", 'ReplicaSet "web-abc" has successfully progressed.')
RS_UPDATED = cond("Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "web-abc" is progressing.')


def dep(status: Obj | None, replicas: int = 3, generation: int = 1, **spec: Any) -> Obj:
    return obj("apps/v1", "Deployment", {"replicas": replicas, **spec}, status, generation)


def test_deployment_healthy_after_phase_two() -> None:
    st = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
          "availableReplicas": 3, "conditions": [AVAILABLE, NEW_RS_AVAILABLE]}
    assert assess(dep(st)) == (Health.HEALTHY, "3/3 replicas available")


def test_deployment_phase_one_is_progressing() -> None:
    # The sandbox omits zero counts, as the API server does for omitempty ints.
    st = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "unavailableReplicas": 3,
          "conditions": [UNAVAILABLE, RS_UPDATED]}
    assert assess(dep(st)) == (Health.PROGRESSING, "0/3 replicas available")


def test_deployment_partly_available() -> None:
    st = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2,
          "availableReplicas": 2, "conditions": [AVAILABLE, RS_UPDATED]}
    assert assess(dep(st)) == (Health.PROGRESSING, "2/3 replicas available")


def test_deployment_progress_deadline_exceeded_is_degraded() -> None:
    deadline = cond("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-abc" has timed out progressing.')
    st = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "unavailableReplicas": 3,
          "conditions": [UNAVAILABLE, deadline]}
    assert assess(dep(st)) == (Health.DEGRADED, 'ProgressDeadlineExceeded: ReplicaSet "web-abc" has timed out progressing')


def test_deployment_paused_is_suspended() -> None:
    paused = cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
    st = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "conditions": [AVAILABLE, paused]}
    assert assess(dep(st, generation=2, paused=True))[0] is Health.SUSPENDED


def test_deployment_stale_observed_generation() -> None:
    st = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
          "availableReplicas": 3, "conditions": [AVAILABLE, NEW_RS_AVAILABLE]}
    h, why = assess(dep(st, generation=2))
    assert h is Health.PROGRESSING and "generation 2" in why
    assert assess(dep(None))[0] is Health.PROGRESSING  # created, not yet seen by the controller


def test_deployment_replica_gaps() -> None:
    base = {"observedGeneration": 1, "conditions": [AVAILABLE, RS_UPDATED]}
    assert assess(dep({**base, "replicas": 3, "updatedReplicas": 1}))[1] == "1/3 replicas updated"
    old = {**base, "replicas": 4, "updatedReplicas": 3, "readyReplicas": 4, "availableReplicas": 4}
    assert assess(dep(old)) == (Health.PROGRESSING, "1 old replicas pending termination")


def test_deployment_needs_new_replicaset_available() -> None:
    # kstatus: counts complete but Progressing still ReplicaSetUpdated -> InProgress.
    st = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
          "availableReplicas": 3, "conditions": [AVAILABLE, RS_UPDATED]}
    assert assess(dep(st))[0] is Health.PROGRESSING
    # progressDeadlineSeconds disabled: no Progressing condition, Available alone suffices.
    st["conditions"] = [AVAILABLE]
    assert assess(dep(st))[0] is Health.HEALTHY


def test_deployment_scaled_to_zero_is_healthy() -> None:
    st = {"observedGeneration": 1, "conditions": [AVAILABLE, NEW_RS_AVAILABLE]}
    assert assess(dep(st, replicas=0)) == (Health.HEALTHY, "0/0 replicas available")


# ----- StatefulSet / DaemonSet / ReplicaSet --------------------------------------------------


def sts(status: Obj, replicas: int = 2, **spec: Any) -> Obj:
    return obj("apps/v1", "StatefulSet", {"replicas": replicas, **spec}, status)


STS_DONE = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 2,
            "currentRevision": "db-7f9c", "updateRevision": "db-7f9c", "collisionCount": 0, "availableReplicas": 2}


def test_statefulset_rolled_out() -> None:
    assert assess(sts(STS_DONE)) == (Health.HEALTHY, "2/2 replicas ready")


def test_statefulset_ready_gap() -> None:
    st = {**STS_DONE, "readyReplicas": 1, "availableReplicas": 1}
    assert assess(sts(st)) == (Health.PROGRESSING, "1/2 replicas ready")
    assert assess(sts({**STS_DONE, "replicas": 1}))[1] == "1/2 replicas created"


def test_statefulset_revision_mismatch_is_progressing() -> None:
    st = {**STS_DONE, "updateRevision": "db-8a1d"}
    h, why = assess(sts(st))
    assert h is Health.PROGRESSING and "db-8a1d" in why
    assert assess(sts({**STS_DONE, "currentReplicas": 1}))[0] is Health.PROGRESSING


def test_statefulset_on_delete_is_healthy_once_ready() -> None:
    st = {**STS_DONE, "updateRevision": "db-8a1d", "updatedReplicas": 0}
    assert assess(sts(st, updateStrategy={"type": "OnDelete"}))[0] is Health.HEALTHY


def test_statefulset_partition() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    st = {**STS_DONE, "replicas": 4, "readyReplicas": 4, "updatedReplicas": 1, "currentReplicas": 3,
          "updateRevision": "db-8a1d"}
    assert assess(sts(st, replicas=4, updateStrategy=strategy))[0] is Health.PROGRESSING
    st["updatedReplicas"] = 2
    assert assess(sts(st, replicas=4, updateStrategy=strategy))[0] is Health.HEALTHY


def test_daemonset() -> None:
    ready = {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1, "numberReady": 1,
             "observedGeneration": 1, "updatedNumberScheduled": 1, "numberAvailable": 1}
    assert assess(obj("apps/v1", "DaemonSet", {}, ready))[0] is Health.HEALTHY
    rolling = {**ready, "numberReady": 0, "numberUnavailable": 1}
    del rolling["numberAvailable"]
    assert assess(obj("apps/v1", "DaemonSet", {}, rolling)) == (Health.PROGRESSING, "0/1 pods available")
    assert assess(obj("apps/v1", "DaemonSet", {}, {k: v for k, v in ready.items() if k != "observedGeneration"}))[0] \
        is Health.PROGRESSING
    assert assess(obj("apps/v1", "DaemonSet", {}, {**ready, "observedGeneration": 1}, generation=2))[0] \
        is Health.PROGRESSING


def test_replicaset() -> None:
    st = {"observedGeneration": 1, "replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
    assert assess(obj("apps/v1", "ReplicaSet", {"replicas": 2}, st))[0] is Health.HEALTHY
    assert assess(obj("apps/v1", "ReplicaSet", {"replicas": 2}, {**st, "availableReplicas": 1}))[0] is Health.PROGRESSING
    failure = cond("ReplicaFailure", "True", "FailedCreate", 'pods "web-abc-" is forbidden: exceeded quota')
    assert assess(obj("apps/v1", "ReplicaSet", {"replicas": 2}, {**st, "conditions": [failure]}))[0] is Health.DEGRADED


# ----- Job / CronJob -------------------------------------------------------------------------


def job(status: Obj, **spec: Any) -> Obj:
    return obj("batch/v1", "Job", {"backoffLimit": 2, **spec}, status)


def test_job_complete() -> None:
    done = "Reached expected number of succeeded pods"
    st = {"conditions": [cond("SuccessCriteriaMet", "True", "CompletionsReached", done),
                         cond("Complete", "True", "CompletionsReached", done)],
          "startTime": T0, "completionTime": T0, "succeeded": 1, "terminating": 0, "ready": 0}
    assert assess(job(st)) == (Health.HEALTHY, f"CompletionsReached: {done}")


def test_job_failed() -> None:
    backoff = "Job has reached the specified backoff limit"
    st = {"conditions": [cond("FailureTarget", "True", "BackoffLimitExceeded", backoff),
                         cond("Failed", "True", "BackoffLimitExceeded", backoff)], "startTime": T0, "failed": 3}
    assert assess(job(st)) == (Health.DEGRADED, f"BackoffLimitExceeded: {backoff}")


def test_job_suspended_and_running() -> None:
    suspended = {"conditions": [cond("Suspended", "True", "JobSuspended", "Job suspended")], "ready": 0}
    assert assess(job(suspended, suspend=True))[0] is Health.SUSPENDED
    running = {"startTime": T0, "active": 1, "terminating": 0, "ready": 0}
    assert assess(job(running)) == (Health.PROGRESSING, "job is running (1 active, 0 succeeded)")
    assert assess(job({}))[1] == "job has not started"


def test_cronjob() -> None:
    assert assess(obj("batch/v1", "CronJob", {"schedule": "* * * * *", "suspend": True}))[0] is Health.SUSPENDED
    assert assess(obj("batch/v1", "CronJob", {"schedule": "* * * * *"}))[0] is Health.HEALTHY


# ----- Pod -----------------------------------------------------------------------------------


def pod(status: Obj, **spec: Any) -> Obj:
    return obj("v1", "Pod", {"containers": [{"name": "web", "image": "nginx"}], **spec}, status)


def waiting(reason: str, message: str = "") -> Obj:
    w: Obj = {"reason": reason}
    if message:
        w["message"] = message
    return {"name": "web", "ready": False, "restartCount": 0, "started": False, "state": {"waiting": w}}


def test_pod_running_and_ready() -> None:
    st = {"phase": "Running", "conditions": [cond("Ready", "True"), cond("ContainersReady", "True")],
          "containerStatuses": [{"name": "web", "ready": True, "state": {"running": {"startedAt": T0}}}]}
    assert assess(pod(st)) == (Health.HEALTHY, "running, 1/1 containers ready")


def test_pod_running_not_ready_is_progressing() -> None:
    st = {"phase": "Running", "conditions": [cond("Ready", "False", "ContainersNotReady", "containers with unready status: [web]")]}
    assert assess(pod(st))[0] is Health.PROGRESSING


def test_pod_succeeded_and_failed() -> None:
    assert assess(pod({"phase": "Succeeded"}))[0] is Health.HEALTHY
    h, why = assess(pod({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}))
    assert h is Health.DEGRADED and why.startswith("Evicted")


def test_pod_pending_container_creating_is_progressing() -> None:
    st = {"phase": "Pending", "conditions": [cond("PodScheduled", "True")], "containerStatuses": [waiting("ContainerCreating")]}
    assert assess(pod(st)) == (Health.PROGRESSING, "pending: ContainerCreating")


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "CreateContainerConfigError",
                                    "InvalidImageName" + "Error"])
def test_pod_waiting_error_reasons_are_degraded(reason: str) -> None:
    st = {"phase": "Pending", "containerStatuses": [waiting(reason, 'Back-off pulling image "nginx:fail"')]}
    assert assess(pod(st)) == (Health.DEGRADED, f'{reason}: Back-off pulling image "nginx:fail"')


def test_pod_crashloop_while_running_is_degraded() -> None:
    st = {"phase": "Running", "conditions": [cond("Ready", "False", "ContainersNotReady")],
          "containerStatuses": [waiting("CrashLoopBackOff")]}
    assert assess(pod(st))[0] is Health.DEGRADED


def test_pod_init_container_error_is_degraded() -> None:
    st = {"phase": "Pending", "initContainerStatuses": [waiting("ImagePullBackOff")]}
    assert assess(pod(st))[0] is Health.DEGRADED


def test_pod_unschedulable_after_grace() -> None:
    sched = cond("PodScheduled", "False", "Unschedulable", "0/1 nodes are available: 1 Insufficient cpu.")
    st = {"phase": "Pending", "conditions": [sched]}
    assert assess(pod(st), now=T0_EPOCH + 5)[0] is Health.PROGRESSING
    assert assess(pod(st), now=T0_EPOCH + 16) == (Health.DEGRADED, "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu")


def test_pod_pending_without_status() -> None:
    assert assess(pod({}))[0] is Health.PROGRESSING


# ----- PVC / Service / Ingress / HPA / Namespace / CRD ---------------------------------------


@pytest.mark.parametrize(("phase", "health"), [("Bound", Health.HEALTHY), ("Pending", Health.PROGRESSING),
                                               ("Lost", Health.DEGRADED)])
def test_pvc(phase: str, health: Health) -> None:
    assert assess(obj("v1", "PersistentVolumeClaim", {}, {"phase": phase}))[0] is health


def test_service() -> None:
    assert assess(obj("v1", "Service", {"type": "ClusterIP", "clusterIP": "10.96.0.10"}, {"loadBalancer": {}}))[0] \
        is Health.HEALTHY
    lb = {"type": "LoadBalancer", "clusterIP": "10.96.0.11"}
    assert assess(obj("v1", "Service", lb, {"loadBalancer": {}}))[0] is Health.PROGRESSING
    ready = {"loadBalancer": {"ingress": [{"ip": "172.18.255.200", "ipMode": "VIP"}]}}
    assert assess(obj("v1", "Service", lb, ready)) == (Health.HEALTHY, "load balancer 172.18.255.200")


def test_ingress() -> None:
    assert assess(obj("networking.k8s.io/v1", "Ingress", {}, {"loadBalancer": {}}))[0] is Health.PROGRESSING
    st = {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}
    assert assess(obj("networking.k8s.io/v1", "Ingress", {}, st))[0] is Health.HEALTHY


def hpa(*conds: Obj) -> Obj:
    return obj("autoscaling/v2", "HorizontalPodAutoscaler", {"maxReplicas": 5},
               {"currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": None, "conditions": list(conds)})


def test_hpa() -> None:
    able = cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
    active = cond("ScalingActive", "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count")
    assert assess(hpa(able, active)) == (Health.HEALTHY, "2 current, 2 desired replicas")
    unable = cond("AbleToScale", "False", "FailedGetScale",
                  'the HPA controller was unable to get the target\'s current scale: deployments.apps "api" not found')
    assert assess(hpa(unable))[0] is Health.DEGRADED
    metrics = cond("ScalingActive", "False", "FailedGetResourceMetric", "unable to get metrics for resource cpu")
    assert assess(hpa(able, metrics))[0] is Health.DEGRADED
    disabled = cond("ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
    assert assess(hpa(able, disabled))[0] is Health.HEALTHY
    assert assess(hpa())[0] is Health.PROGRESSING


def test_namespace() -> None:
    assert assess(obj("v1", "Namespace", {}, {"phase": "Active"}))[0] is Health.HEALTHY
    assert assess(obj("v1", "Namespace", {}, {"phase": "Terminating"}))[0] is Health.PROGRESSING


def test_crd() -> None:
    api = "apiextensions.k8s.io/v1"
    ok = {"conditions": [cond("NamesAccepted", "True", "NoConflicts"), cond("Established", "True", "InitialNamesAccepted")]}
    assert assess(obj(api, "CustomResourceDefinition", {}, ok))[0] is Health.HEALTHY
    clash = {"conditions": [cond("NamesAccepted", "False", "ListKindConflict", '"WidgetList" is already in use')]}
    assert assess(obj(api, "CustomResourceDefinition", {}, clash))[0] is Health.DEGRADED


# ----- custom resources (kstatus generic cases) ----------------------------------------------


def cr(status: Obj | None, generation: int = 1, **spec: Any) -> Obj:
    return obj("example.com/v1", "Widget", dict(spec), status, generation)


def test_generic_ready_true() -> None:
    assert assess(cr({"observedGeneration": 1, "conditions": [cond("Ready", "True", "Succeeded", "done")]}))[0] \
        is Health.HEALTHY


def test_generic_ready_false() -> None:
    failed = cond("Ready", "False", "ReconciliationFailed", "kustomize build failed")
    assert assess(cr({"conditions": [failed]})) == (Health.DEGRADED, "ReconciliationFailed: kustomize build failed")
    waiting_dep = cond("Ready", "False", "DependencyNotReady", "dependency 'infra' is not ready")
    assert assess(cr({"conditions": [waiting_dep]}))[0] is Health.PROGRESSING
    assert assess(cr({"conditions": [cond("Ready", "Unknown", "Progressing")]}))[0] is Health.PROGRESSING


def test_generic_stalled_and_reconciling() -> None:
    stalled = [cond("Stalled", "True", "InvalidSpec", "bad"), cond("Ready", "False", "InvalidSpec")]
    assert assess(cr({"conditions": stalled}))[0] is Health.DEGRADED
    reconciling = [cond("Reconciling", "True", "Progressing", "applying"), cond("Ready", "Unknown")]
    assert assess(cr({"conditions": reconciling}))[0] is Health.PROGRESSING


def test_generic_observed_generation_and_no_conditions() -> None:
    assert assess(cr({"observedGeneration": 1}, generation=2))[0] is Health.PROGRESSING
    assert assess(cr(None)) == (Health.HEALTHY, "no conditions reported")
    assert assess(cr({"phase": "Whatever"}))[0] is Health.HEALTHY
    assert assess(cr({"conditions": [cond("Ready", "True")]}, suspend=True))[0] is Health.SUSPENDED


# ----- against the sandbox's controllers -----------------------------------------------------


def test_sandbox_objects_reach_expected_health(sandbox: SandboxServer) -> None:
    api = client.ApiClient(client.Configuration(host=sandbox.url))
    # Typed as Any: the tests pass plain dict bodies, which the client accepts.
    core: Any = client.CoreV1Api(api)
    apps: Any = client.AppsV1Api(api)
    batch: Any = client.BatchV1Api(api)
    autoscaling: Any = client.AutoscalingV2Api(api)
    ns = "health"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    apps.create_namespaced_deployment(ns, deployment("broken", image="nginx:fail", replicas=1))
    batch.create_namespaced_job(ns, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                                     "spec": {"template": {"spec": {"restartPolicy": "Never",
                                              "containers": [{"name": "m", "image": "busybox:1.36"}]}}}})
    core.create_namespaced_service(ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                                        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    core.create_namespaced_persistent_volume_claim(ns, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})

    template = {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}
    apps.create_namespaced_stateful_set(ns, {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                                             "spec": {"replicas": 2, "serviceName": "db", "template": template,
                                                      "selector": {"matchLabels": {"app": "db"}}}})
    apps.create_namespaced_daemon_set(ns, {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                                           "spec": {"selector": {"matchLabels": {"app": "db"}}, "template": template}})
    autoscaling.create_namespaced_horizontal_pod_autoscaler(ns, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 3}})
    autoscaling.create_namespaced_horizontal_pod_autoscaler(ns, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "orphan"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nope"}, "maxReplicas": 3}})

    def read(fn: Any, name: str) -> Obj | None:
        try:
            out: Obj = json.loads(fn(name, ns, _preload_content=False).data)
            return out
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    expected = [
        (apps.read_namespaced_deployment, "web", Health.HEALTHY),
        (apps.read_namespaced_deployment, "broken", Health.DEGRADED),
        (batch.read_namespaced_job, "once", Health.HEALTHY),
        (core.read_namespaced_service, "lb", Health.HEALTHY),
        (core.read_namespaced_persistent_volume_claim, "data", Health.HEALTHY),
        (apps.read_namespaced_stateful_set, "db", Health.HEALTHY),
        (apps.read_namespaced_daemon_set, "agent", Health.HEALTHY),
        (autoscaling.read_namespaced_horizontal_pod_autoscaler, "web", Health.HEALTHY),
        (autoscaling.read_namespaced_horizontal_pod_autoscaler, "orphan", Health.DEGRADED),
    ]
    try:
        for fn, name, want in expected:
            eventually(lambda fn=fn, name=name, want=want: assess(read(fn, name))[0] is want,  # type: ignore[misc]
                       what=f"{name} {want}")

        def pod_health() -> dict[str, Health]:
            pods = json.loads(core.list_namespaced_pod(ns, _preload_content=False).data)["items"]
            # Built-in list items carry no kind/apiVersion: the caller knows what it listed.
            return {p["metadata"]["name"].split("-")[0]: assess({**p, "apiVersion": "v1", "kind": "Pod"})[0]
                    for p in pods}

        eventually(lambda: pod_health() == {"web": Health.HEALTHY, "broken": Health.DEGRADED, "db": Health.HEALTHY},
                   what="pod health")
        assert assess(read(apps.read_namespaced_deployment, "gone")) == (Health.MISSING, "not found in the cluster")
    finally:
        api.close()
