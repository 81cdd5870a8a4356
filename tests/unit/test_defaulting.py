"""sandbox.defaulting and sandbox.allocator against real apiserver output."""

from __future__ import annotations

import base64
import copy
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.allocator import AllocationFailed, Allocator
from sandbox.defaulting import AllocationError, apply_defaults, normalize, release_allocations

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "recorded-diff"

SMD_DEPLOY_CONFIG = """
apiVersion: apps/v1
kind: Deployment
metadata:
  labels: {app: missing, applications.argoproj.io/app-name: nginx, something-else: bla}
  name: nginx-deployment
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx, applications.argoproj.io/app-name: nginx}
    spec:
      containers:
        - image: 'nginx:1.23.1'
          imagePullPolicy: Never
          livenessProbe:
            exec:
              command: [cat, non-existent-file]
            initialDelaySeconds: 5
            periodSeconds: 180
          name: nginx
          ports:
            - containerPort: 80
"""

# The spec of smd-deploy-live.yaml (a real apiserver's output for the config above).
SMD_DEPLOY_LIVE_SPEC = """
progressDeadlineSeconds: 600
replicas: 2
revisionHistoryLimit: 10
selector:
  matchLabels: {app: nginx}
strategy:
  rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  type: RollingUpdate
template:
  metadata:
    creationTimestamp: null
    labels: {app: nginx, applications.argoproj.io/app-name: nginx}
  spec:
    containers:
      - image: 'nginx:1.23.1'
        imagePullPolicy: Never
        livenessProbe:
          exec:
            command: [cat, non-existent-file]
          failureThreshold: 3
          initialDelaySeconds: 5
          periodSeconds: 180
          successThreshold: 1
          timeoutSeconds: 1
        name: nginx
        ports:
          - containerPort: 80
            protocol: TCP
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
    dnsPolicy: ClusterFirst
    restartPolicy: Always
    schedulerName: default-scheduler
    securityContext: {}
    terminationGracePeriodSeconds: 30
"""


def defaulted(obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    apply_defaults(out, **kwargs)
    return out


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }


def service(**spec: Any) -> dict[str, Any]:
    body = {"ports": [{"port": 80}], "selector": {"app": "web"}}
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "uid": "svc-1"},
        "spec": body,
    }


# --------------------------------------------------------------------------- workloads


def test_minimal_deployment_equals_recorded_live_spec() -> None:
    obj = defaulted(yaml.safe_load(SMD_DEPLOY_CONFIG))
    assert obj["spec"] == yaml.safe_load(SMD_DEPLOY_LIVE_SPEC)
    assert obj["status"] == {}
    assert obj["metadata"]["labels"]["something-else"] == "bla"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared/fixtures not beside the checkout")
def test_recorded_fixture_files_agree() -> None:
    config = yaml.safe_load((FIXTURES / "smd-deploy-config.yaml").read_text())
    live = yaml.safe_load((FIXTURES / "smd-deploy-live.yaml").read_text())
    assert defaulted(config)["spec"] == live["spec"]


def test_deployment_defaults() -> None:
    spec = defaulted(deployment())["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    container = spec["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"  # untagged means :latest
    assert spec["template"]["metadata"] == {"labels": {"app": "web"}, "creationTimestamp": None}


def test_explicit_values_are_kept() -> None:
    obj = deployment()
    obj["spec"].update(
        replicas=0,
        revisionHistoryLimit=0,
        strategy={"type": "Recreate"},
    )
    spec = defaulted(obj)["spec"]
    assert spec["replicas"] == 0  # a pointer: zero is a value
    assert spec["revisionHistoryLimit"] == 0
    assert spec["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v1", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
    assert defaulted(obj)["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_container_and_volume_defaults() -> None:
    obj = deployment()
    pod = obj["spec"]["template"]["spec"]
    pod["containers"][0].update(
        readinessProbe={"httpGet": {"port": 8080}, "timeoutSeconds": 0},
        startupProbe={"grpc": {"port": 9000}},
        lifecycle={"preStop": {"httpGet": {"port": 80, "path": "/quit"}}},
        env=[{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        resources={"limits": {"cpu": 0.5, "memory": "1.5Gi"}, "requests": {"cpu": "1.5m"}},
        ports=[{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 80}],
    )
    pod["volumes"] = [
        {"name": "scratch"},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
        {"name": "host", "hostPath": {"path": "/var/run"}},
        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
    ]
    pod_spec = defaulted(obj)["spec"]["template"]["spec"]
    c = pod_spec["containers"][0]
    assert c["readinessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["startupProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/quit", "scheme": "HTTP"}
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert c["resources"] == {"limits": {"cpu": "500m", "memory": "1536Mi"}, "requests": {"cpu": "2m"}}
    assert [p["protocol"] for p in c["ports"]] == ["UDP", "TCP"]
    vols = {v["name"]: v for v in pod_spec["volumes"]}
    assert vols["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert vols["cfg"]["configMap"]["defaultMode"] == 420
    assert vols["sec"]["secret"]["defaultMode"] == 256
    assert vols["host"]["hostPath"] == {"path": "/var/run", "type": ""}
    assert vols["token"]["projected"] == {
        "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}],
        "defaultMode": 420,
    }


def test_statefulset_defaults() -> None:
    obj = deployment()
    obj["kind"] = "StatefulSet"
    obj["spec"]["serviceName"] = "web"
    obj["spec"]["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}},
        }
    ]
    spec = defaulted(obj)["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["volumeClaimTemplates"] == [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "creationTimestamp": None},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "volumeMode": "Filesystem",
            },
            "status": {"phase": "Pending"},
        }
    ]
    assert defaulted(obj)["status"] == {"replicas": 0, "availableReplicas": 0}


def test_daemonset_and_replicaset_defaults() -> None:
    ds = deployment()
    ds["kind"] = "DaemonSet"
    out = defaulted(ds)
    assert out["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert out["spec"]["revisionHistoryLimit"] == 10
    assert out["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }
    rs = deployment()
    rs["kind"] = "ReplicaSet"
    out = defaulted(rs)
    assert out["spec"]["replicas"] == 1
    assert "strategy" not in out["spec"]
    assert out["status"] == {"replicas": 0}


def job(uid: str | None = "0b6e-uid") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "pi", "namespace": "default"}
    if uid:
        meta["uid"] = uid
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "pi", "image": "perl:5"}], "restartPolicy": "Never"}
            }
        },
    }


def test_job_defaults_and_generated_selector() -> None:
    out = defaulted(job())
    spec = out["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in spec
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "0b6e-uid"}}
    labels = {
        "batch.kubernetes.io/controller-uid": "0b6e-uid",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "0b6e-uid",
        "job-name": "pi",
    }
    assert spec["template"]["metadata"] == {"labels": labels, "creationTimestamp": None}
    assert out["metadata"]["labels"] == labels  # copied from the template when the Job has none


def test_job_without_uid_gets_no_selector() -> None:
    spec = defaulted(job(uid=None))["spec"]
    assert "selector" not in spec
    assert spec["template"]["metadata"] == {"creationTimestamp": None}


def test_job_parallelism_and_failure_policy() -> None:
    obj = job()
    obj["spec"].update(
        parallelism=3,
        podFailurePolicy={"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
    )
    spec = defaulted(obj)["spec"]
    assert "completions" not in spec
    assert spec["parallelism"] == 3
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_cronjob_defaults() -> None:
    obj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "c", "image": "busybox:1"}],
                            "restartPolicy": "OnFailure",
                        }
                    }
                }
            },
        },
    }
    spec = defaulted(obj)["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert spec["jobTemplate"]["metadata"] == {"creationTimestamp": None}
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec  # SetDefaults_Job applies to Jobs, not templates
    assert job_spec["template"]["metadata"] == {"creationTimestamp": None}
    assert job_spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30


# --------------------------------------------------------------------------- Pod


def pod(**container: Any) -> dict[str, Any]:
    c = {"name": "app", "image": "app:1"}
    c.update(container)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [c]},
    }


def test_pod_defaults() -> None:
    out = defaulted(pod())
    spec = out["spec"]
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {
            "effect": "NoExecute",
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "tolerationSeconds": 300,
        },
        {
            "effect": "NoExecute",
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "tolerationSeconds": 300,
        },
    ]
    assert out["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert spec["containers"][0]["resources"] == {}


def test_pod_requests_default_from_limits() -> None:
    out = defaulted(
        pod(resources={"limits": {"cpu": "1000m", "memory": "1000M"}, "requests": {"cpu": "0.1"}})
    )
    res = out["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"cpu": "1", "memory": "1G"}, "requests": {"cpu": "100m", "memory": "1G"}}
    assert out["status"]["qosClass"] == "Burstable"
    guaranteed = defaulted(pod(resources={"limits": {"cpu": "1", "memory": "1Gi"}}))
    assert guaranteed["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert guaranteed["status"]["qosClass"] == "Guaranteed"


def test_templates_do_not_default_requests_from_limits() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2"}}
    res = defaulted(obj)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"cpu": "2"}}


def test_pod_existing_tolerations_and_service_account() -> None:
    obj = pod()
    obj["spec"]["tolerations"] = [{"operator": "Exists"}]
    obj["spec"]["serviceAccountName"] = "robot"
    obj["spec"]["priorityClassName"] = "system-node-critical"
    spec = defaulted(obj)["spec"]
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["serviceAccount"] == "robot"
    assert spec["priority"] == 2000001000


# --------------------------------------------------------------------------- Service


def test_service_defaults_without_allocator() -> None:
    spec = defaulted(service())["spec"]
    assert spec == {
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "selector": {"app": "web"},
        "sessionAffinity": "None",
        "type": "ClusterIP",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert defaulted(service())["status"] == {"loadBalancer": {}}


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared/fixtures not beside the checkout")
def test_service_matches_recorded_live_object() -> None:
    config = yaml.safe_load((FIXTURES / "smd-service-config.yaml").read_text())
    live = yaml.safe_load((FIXTURES / "smd-service-live.yaml").read_text())
    config["spec"]["ports"][1]["targetPort"] = 1935  # live was applied with this value
    live["spec"]["internalTrafficPolicy"] = "Cluster"  # recorded before this default (fixtures README)
    out = defaulted(config, allocator=Allocator())
    assert out["spec"]["clusterIP"] == "10.96.0.2"
    for spec in (out["spec"], live["spec"]):
        spec.pop("clusterIP")
        spec.pop("clusterIPs")
    assert out["spec"] == live["spec"]
    assert out["status"] == live["status"]


def test_service_allocation_is_sequential() -> None:
    alloc = Allocator()
    first = defaulted(service(), allocator=alloc)["spec"]
    second = defaulted(service(), allocator=alloc)["spec"]
    assert (first["clusterIP"], first["clusterIPs"]) == ("10.96.0.2", ["10.96.0.2"])
    assert second["clusterIP"] == "10.96.0.3"
    node_port = defaulted(
        service(type="NodePort", ports=[{"port": 80}, {"port": 443, "name": "https"}]), allocator=alloc
    )
    spec = node_port["spec"]
    assert [p["nodePort"] for p in spec["ports"]] == [30000, 30001]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["clusterIP"] == "10.96.0.4"
    lb = defaulted(service(type="LoadBalancer"), allocator=alloc)["spec"]
    assert lb["allocateLoadBalancerNodePorts"] is True
    assert lb["ports"][0]["nodePort"] == 30002


def test_service_dry_run_does_not_reserve() -> None:
    alloc = Allocator()
    assert defaulted(service(), allocator=alloc, dry_run=True)["spec"]["clusterIP"] == "10.96.0.2"
    assert defaulted(service(), allocator=alloc)["spec"]["clusterIP"] == "10.96.0.2"


def test_service_headless_and_external_name() -> None:
    alloc = Allocator()
    headless = defaulted(service(clusterIP="None"), allocator=alloc)["spec"]
    assert headless["clusterIPs"] == ["None"]
    assert headless["ipFamilyPolicy"] == "SingleStack"
    selectorless = service(clusterIP="None")
    del selectorless["spec"]["selector"]
    assert defaulted(selectorless)["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    ext = defaulted(service(type="ExternalName", externalName="db.example.com"), allocator=alloc)["spec"]
    assert "clusterIP" not in ext and "ipFamilies" not in ext and "internalTrafficPolicy" not in ext
    assert ext["sessionAffinity"] == "None"
    assert alloc.allocate_ip() == "10.96.0.2"  # neither consumed an address


def test_service_explicit_ip_conflict() -> None:
    alloc = Allocator()
    defaulted(service(clusterIP="10.96.0.50"), allocator=alloc)
    other = service(clusterIP="10.96.0.50")
    other["metadata"]["uid"] = "svc-2"
    with pytest.raises(AllocationError) as exc:
        apply_defaults(other, allocator=alloc)
    assert exc.value.causes == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: []string{"10.96.0.50"}: failed to allocate IP 10.96.0.50: '
            "provided IP is already allocated",
            "field": "spec.clusterIPs",
        }
    ]
    with pytest.raises(AllocationError) as exc:
        apply_defaults(service(clusterIP="10.0.0.1"), allocator=alloc)
    assert "The range of valid IPs is 10.96.0.0/12" in exc.value.causes[0]["message"]
    with pytest.raises(AllocationError) as exc:
        apply_defaults(service(type="NodePort", ports=[{"port": 80, "nodePort": 80}]), allocator=alloc)
    assert exc.value.causes[0]["field"] == "spec.ports[0].nodePort"
    assert exc.value.causes[0]["message"].startswith(
        "Invalid value: 80: provided port is not in the valid range"
    )
    # The failed call released what it had allocated before failing.
    assert not alloc.in_use("10.96.0.2")


def test_service_redefaulting_its_own_allocation_is_fine() -> None:
    alloc = Allocator()
    stored = defaulted(service(type="NodePort"), allocator=alloc)
    again = defaulted(stored, allocator=alloc)  # an update without `old`
    assert again["spec"]["clusterIP"] == stored["spec"]["clusterIP"]
    assert again["spec"]["ports"][0]["nodePort"] == stored["spec"]["ports"][0]["nodePort"]


def test_service_update_keeps_allocations_and_drops_type_fields() -> None:
    alloc = Allocator()
    old = defaulted(service(type="NodePort"), allocator=alloc)
    replacement = service(type="NodePort")  # a PUT that omits the allocated values
    kept = defaulted(replacement, allocator=alloc, old=old)["spec"]
    assert kept["clusterIP"] == old["spec"]["clusterIP"]
    assert kept["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
    to_cluster_ip = copy.deepcopy(old)
    del to_cluster_ip["spec"]["type"]
    apply_defaults(to_cluster_ip, allocator=alloc, old=old)
    spec = to_cluster_ip["spec"]
    assert spec["type"] == "ClusterIP"
    assert "nodePort" not in spec["ports"][0]
    assert "externalTrafficPolicy" not in spec
    assert spec["clusterIP"] == old["spec"]["clusterIP"]
    release_allocations(old, alloc, keep=to_cluster_ip)
    assert not alloc.in_use(old["spec"]["ports"][0]["nodePort"])
    assert alloc.in_use(old["spec"]["clusterIP"])
    release_allocations(old, alloc)
    assert not alloc.in_use(old["spec"]["clusterIP"])


def test_service_session_affinity_client_ip() -> None:
    spec = defaulted(service(sessionAffinity="ClientIP"))["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


# --------------------------------------------------------------------------- other kinds


def test_secret_string_data_is_merged() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": {"user": base64.b64encode(b"old").decode(), "keep": "eA=="},
        "stringData": {"user": "admin", "pass": "s3cr3t"},
    }
    out = defaulted(obj)
    assert out["type"] == "Opaque"
    assert "stringData" not in out
    assert out["data"] == {"user": "YWRtaW4=", "keep": "eA==", "pass": "czNjcjN0"}


def test_namespace_defaults() -> None:
    out = defaulted(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"x": "y"}}}
    )
    assert out["metadata"]["labels"] == {"x": "y", "kubernetes.io/metadata.name": "team-a"}
    assert out["spec"] == {"finalizers": ["kubernetes"]}
    assert out["status"] == {"phase": "Active"}
    # Updates keep the stored finalizers; a terminating namespace is left to the controller.
    update = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a"},
        "spec": {"finalizers": []},
    }
    assert defaulted(update, old=out)["spec"] == {"finalizers": ["kubernetes"]}
    finalizing = copy.deepcopy(out)
    finalizing["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    finalizing["spec"]["finalizers"] = []
    finalizing["status"]["phase"] = "Terminating"
    done = defaulted(finalizing)
    assert "finalizers" not in done["spec"]
    assert done["status"]["phase"] == "Terminating"


def test_pvc_defaults() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1.5Gi"}},
            "storageClassName": "",
        },
    }
    out = defaulted(obj)
    assert out["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1536Mi"}},
        "storageClassName": "",  # a pointer: "" means "no dynamic provisioning"
        "volumeMode": "Filesystem",
    }
    assert out["status"] == {"phase": "Pending"}


def test_hpa_behavior_defaults() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
    }
    out = defaulted(obj)
    spec = out["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]
    assert spec["behavior"] == {
        "scaleUp": {
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
            "stabilizationWindowSeconds": 0,
        },
        "scaleDown": {
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            "stabilizationWindowSeconds": 60,
        },
    }
    assert out["status"] == {"desiredReplicas": 0, "currentMetrics": None}
    no_behavior = copy.deepcopy(obj)
    del no_behavior["spec"]["behavior"]
    assert "behavior" not in defaulted(no_behavior)["spec"]


def test_kinds_without_defaults_are_untouched() -> None:
    stored = {"creationTimestamp": "2030-01-01T00:00:00Z"}
    for obj in (
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "sa", "namespace": "default", **stored},
        },
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "l", "namespace": "default", **stored},
            "spec": {"holderIdentity": "me"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r", "namespace": "default", **stored},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"x": None}},
    ):
        assert defaulted(obj) == obj
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"}}
    assert defaulted(role)["rules"] is None  # Go writes the nil slice as null


def test_ingress_path_type_is_not_defaulted() -> None:
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i", "namespace": "default"},
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
                        ]
                    }
                }
            ]
        },
    }
    out = defaulted(obj)
    assert "pathType" not in out["spec"]["rules"][0]["http"]["paths"][0]
    assert out["status"] == {"loadBalancer": {}}


# --------------------------------------------------------------------------- normalize


def test_normalize_drops_what_omitempty_drops() -> None:
    obj = deployment()
    obj["metadata"].update(annotations={}, labels={}, finalizers=[], generation=0, uid=None)
    obj["spec"].update(minReadySeconds=0, paused=False, replicas=0, revisionHistoryLimit=None)
    c = obj["spec"]["template"]["spec"]["containers"][0]
    c.update(env=[{"name": "EMPTY", "value": ""}], args=[], workingDir="", stdin=False, resources=None)
    obj["spec"]["template"]["spec"]["securityContext"] = {}
    obj["spec"]["template"]["spec"]["nodeSelector"] = {}
    normalize(obj)
    assert obj["metadata"] == {"name": "web", "namespace": "default", "creationTimestamp": None}
    spec = obj["spec"]
    assert "minReadySeconds" not in spec and "paused" not in spec and "revisionHistoryLimit" not in spec
    assert spec["replicas"] == 0
    assert spec["strategy"] == {}
    pod_spec = spec["template"]["spec"]
    assert pod_spec["securityContext"] == {}
    assert "nodeSelector" not in pod_spec
    assert pod_spec["containers"][0] == {
        "name": "web",
        "image": "nginx",
        "env": [{"name": "EMPTY"}],
        "resources": {},
    }
    assert obj["status"] == {}


def test_normalize_canonicalises_quantities_and_times() -> None:
    obj = pod(resources={"limits": {"cpu": 0.25, "memory": "1024Mi"}})
    obj["metadata"]["creationTimestamp"] = "2024-05-01T12:30:45.123+02:00"
    obj["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1.5m"}}]
    obj["spec"]["containers"][0]["env"] = [
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
    ]
    normalize(obj)
    assert obj["metadata"]["creationTimestamp"] == "2024-05-01T10:30:45Z"
    assert obj["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "250m", "memory": "1Gi"}}
    assert obj["spec"]["volumes"][0]["emptyDir"] == {
        "sizeLimit": "1500u"
    }  # no milli rounding outside ResourceLists
    assert obj["spec"]["containers"][0]["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"


def test_normalize_null_map_values_decode_to_zero_values() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default", "labels": {"a": None}},
        "data": {"empty": None},
    }
    normalize(obj)
    assert obj["metadata"]["labels"] == {"a": ""}
    assert obj["data"] == {"empty": None}  # a nil []byte is written as null


def test_normalize_and_defaulting_commute() -> None:
    a = yaml.safe_load(SMD_DEPLOY_CONFIG)
    b = copy.deepcopy(a)
    normalize(a)
    apply_defaults(a, round_trip=False)
    apply_defaults(b)
    assert a == b


# --------------------------------------------------------------------------- allocator


def test_allocator_ranges_and_reservations() -> None:
    alloc = Allocator()
    assert alloc.allocate_ip() == "10.96.0.2"
    alloc.reserve("10.96.0.3")
    assert alloc.allocate_ip() == "10.96.0.4"
    with pytest.raises(AllocationFailed, match="provided IP is already allocated"):
        alloc.reserve("10.96.0.3")
    with pytest.raises(AllocationFailed, match="not in the valid range"):
        alloc.reserve("10.112.0.1")
    with pytest.raises(AllocationFailed, match="The range of valid ports is 30000-32767"):
        alloc.reserve(32768)
    alloc.reserve("10.96.0.1")  # the kubernetes Service's address
    alloc.reserve("10.96.0.1")  # idempotent for it
    alloc.release("10.96.0.2")
    assert alloc.allocate_ip() == "10.96.0.5"  # next-fit: no immediate reuse
    assert alloc.allocate_node_port() == 30000
    alloc.reserve(30001, owner="a")
    alloc.reserve(30001, owner="a")
    with pytest.raises(AllocationFailed, match="provided port is already allocated"):
        alloc.reserve(30001, owner="b")


def test_allocator_wraps_around_and_fills_up() -> None:
    alloc = Allocator(cidr="10.0.0.0/29", node_ports=(30000, 30002))
    ips = [alloc.allocate_ip() for _ in range(5)]  # .1-.6 usable, .1 kept for `kubernetes`
    assert ips == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(AllocationFailed):
        alloc.allocate_ip()
    alloc.release("10.0.0.3")
    assert alloc.allocate_ip() == "10.0.0.3"
    assert [alloc.allocate_node_port() for _ in range(3)] == [30000, 30001, 30002]


def test_allocator_is_thread_safe() -> None:
    alloc = Allocator()
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        got = [alloc.allocate_ip() for _ in range(200)]
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(set(results)) == 1600
