"""sandbox.validation: 422 causes, 400 decode errors and pruning, with the apiserver's wording."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.kube import schema
from sandbox.defaulting import apply_defaults
from sandbox.validation import (
    decode_error,
    group_kind,
    invalid_message,
    typecheck,
    unknown_fields,
    validate,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def deployment(name: str = "web") -> dict[str, Any]:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "uid": "d-1"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]},
            },
        },
    }
    return obj


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    apply_defaults(out)
    return out


def message(obj: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    kind_group = group_kind(obj["apiVersion"], obj["kind"])
    return invalid_message(kind_group, obj["metadata"].get("name", ""), validate(obj, old))


def fields(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [c["field"] for c in validate(obj, old)]


# --------------------------------------------------------------------------- messages


def test_invalid_message_format() -> None:
    one = [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.a"}]
    assert (
        invalid_message("Deployment.apps", "web", one)
        == 'Deployment.apps "web" is invalid: spec.a: Required value'
    )
    two = [*one, {"reason": "FieldValueInvalid", "message": 'Invalid value: "x": bad', "field": "spec.b"}]
    assert (
        invalid_message("Service", "s", two + one)  # duplicates are reported once
        == 'Service "s" is invalid: [spec.a: Required value, spec.b: Invalid value: "x": bad]'
    )
    assert invalid_message("ConfigMap", "c", []) == 'ConfigMap "c" is invalid'
    assert group_kind("apps/v1", "Deployment") == "Deployment.apps"
    assert group_kind("v1", "Service") == "Service"


# --------------------------------------------------------------------------- Deployment


def test_valid_defaulted_deployment_has_no_causes() -> None:
    assert validate(defaulted(deployment())) == []


def test_missing_image() -> None:
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["image"]
    causes = validate(defaulted(obj))
    assert causes == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.template.spec.containers[0].image",
        }
    ]
    assert message(defaulted(obj)) == (
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value'
    )


def test_missing_selector_reports_both_errors() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    assert message(defaulted(obj)) == (
        'Deployment.apps "web" is invalid: [spec.selector: Required value, spec.template.metadata.labels: '
        'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`]'
    )


def test_selector_must_match_and_not_be_empty() -> None:
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other", "tier": "fe"}
    assert message(defaulted(obj)) == (
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"other", "tier":"fe"}: `selector` does not match template `labels`'
    )
    obj = deployment()
    obj["spec"]["selector"] = {}
    assert message(defaulted(obj)) == (
        'Deployment.apps "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
        "map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is "
        "invalid for deployment"
    )
    obj = deployment()
    obj["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]}
    assert validate(defaulted(obj)) == []


def test_replicas_strategy_and_template_rules() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = -1
    obj["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert validate(defaulted(obj)) == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: -1: must be greater than or equal to 0",
            "field": "spec.replicas",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Never": supported values: "Always"',
            "field": "spec.template.spec.restartPolicy",
        },
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            "field": "spec.strategy.rollingUpdate",
        },
    ]
    obj = deployment()
    obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    assert fields(defaulted(obj)) == ["spec.strategy.rollingUpdate.maxUnavailable"]
    obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": "x%"}}
    assert validate(defaulted(obj))[0]["message"] == (
        "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x%\"}: must be an integer or percentage (e.g '5%')"
    )


def test_selector_is_immutable() -> None:
    old = defaulted(deployment())
    new = deployment()
    new["spec"]["selector"]["matchLabels"]["app"] = "nginx2"
    new["spec"]["template"]["metadata"]["labels"]["app"] = "nginx2"
    assert message(defaulted(new), old) == (
        'Deployment.apps "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
        'map[string]string{"app":"nginx2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
        "field is immutable"
    )
    same = defaulted(deployment())
    same["spec"]["replicas"] = 5
    assert validate(same, old) == []


def test_metadata_name_change_is_immutable() -> None:
    old = defaulted(deployment("web"))
    new = defaulted(deployment("web2"))
    assert validate(new, old)[0] == {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "web2": field is immutable',
        "field": "metadata.name",
    }


# --------------------------------------------------------------------------- metadata


def test_names_per_kind() -> None:
    obj = defaulted(deployment("Web_1"))
    assert validate(obj)[0] == {
        "reason": "FieldValueInvalid",
        "message": f'Invalid value: "Web_1": {SUBDOMAIN_MSG}',
        "field": "metadata.name",
    }
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web", "namespace": "default"},
           "spec": {"ports": [{"port": 80}]}}  # fmt: skip
    assert validate(defaulted(svc))[0]["message"] == f'Invalid value: "1web": {DNS1035_MSG}'
    ns: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "123-abc"}}
    assert validate(defaulted(ns)) == []  # RFC 1123 labels may start with a digit
    ns["metadata"]["name"] = "a.b"
    assert "a lowercase RFC 1123 label" in validate(defaulted(ns))[0]["message"]
    long_name = "a" * 254
    assert validate(defaulted(deployment(long_name)))[0]["message"].endswith(
        "must be no more than 253 characters"
    )
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:admin/x"},
    }
    assert validate(role) == [
        {"reason": "FieldValueInvalid", "message": "Invalid value: \"system:admin/x\": may not contain '/'",
         "field": "metadata.name"}
    ]  # fmt: skip


def test_name_and_namespace_presence() -> None:
    obj = defaulted(deployment())
    del obj["metadata"]["name"]
    del obj["metadata"]["namespace"]
    assert validate(obj)[:2] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name",
        },
        {"reason": "FieldValueRequired", "message": "Required value", "field": "metadata.namespace"},
    ]
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "namespace": "default"}}
    assert validate(ns)[0] == {
        "reason": "FieldValueForbidden",
        "message": "Forbidden: not allowed on this type",
        "field": "metadata.namespace",
    }


def test_labels_and_annotations() -> None:
    obj = defaulted(deployment())
    obj["metadata"]["labels"] = {"ok": "fine", "bad value": "x y"}
    causes = validate(obj)
    assert [c["field"] for c in causes] == ["metadata.labels", "metadata.labels"]
    assert causes[0]["message"].startswith(
        'Invalid value: "bad value": name part must consist of alphanumeric'
    )
    assert causes[1]["message"] == f'Invalid value: "x y": {LABEL_VALUE_MSG}'
    obj["metadata"]["labels"] = {"example.com/": "v"}
    assert validate(obj)[0]["message"] == 'Invalid value: "example.com/": name part must be non-empty'
    obj["metadata"]["labels"] = {}
    obj["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    assert validate(obj) == [
        {"reason": "FieldValueTooLong", "message": "Too long: must have at most 262144 bytes", "field": "metadata.annotations"}
    ]  # fmt: skip


# --------------------------------------------------------------------------- pod spec


def test_container_rules() -> None:
    obj = deployment()
    pod = obj["spec"]["template"]["spec"]
    pod["containers"] = [
        {
            "name": "web",
            "image": "nginx",
            "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "HTTP"}],
        },
        {"name": "web", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"name": "Side_Car", "image": " padded"},
    ]
    causes = validate(defaulted(obj))
    by_field = {c["field"]: c["message"] for c in causes}
    assert by_field == {
        "spec.template.spec.containers[0].ports[0].containerPort": (
            "Invalid value: 70000: must be between 1 and 65535, inclusive"
        ),
        "spec.template.spec.containers[0].ports[1].protocol": (
            'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'
        ),
        "spec.template.spec.containers[1].name": 'Duplicate value: "web"',
        "spec.template.spec.containers[1].volumeMounts[0].name": 'Not found: "data"',
        "spec.template.spec.containers[2].name": by_field["spec.template.spec.containers[2].name"],
        "spec.template.spec.containers[2].image": (
            'Invalid value: " padded": must not have leading or trailing whitespace'
        ),
    }
    assert by_field["spec.template.spec.containers[2].name"].startswith(
        'Invalid value: "Side_Car": a lowercase RFC 1123 label must consist of'
    )
    obj["spec"]["template"]["spec"]["containers"] = []
    assert fields(defaulted(obj)) == ["spec.template.spec.containers"]


def test_resources_requests_within_limits() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [
                {"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}}
            ]
        },
    }
    assert validate(defaulted(pod)) == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "2": must be less than or equal to cpu limit of 1',
            "field": "spec.containers[0].resources.requests",
        }
    ]


def test_pod_update_may_only_change_images() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i:1"}]},
    }
    old = defaulted(pod)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "i:2"
    assert validate(new, old) == []
    new["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    cause = validate(new, old)[0]
    assert cause["field"] == "spec"
    assert cause["message"].startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    )


# --------------------------------------------------------------------------- other workloads


def job() -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "pi", "image": "perl:5"}], "restartPolicy": "Never"}
            }
        },
    }


def test_job_rules() -> None:
    assert validate(defaulted(job())) == []
    obj = job()
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    assert message(defaulted(obj)) == (
        'Job.batch "pi" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": '
        'supported values: "OnFailure", "Never"'
    )
    old = defaulted(job())
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:6"
    assert message(new, old) == (
        'Job.batch "pi" is invalid: spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable'
    )
    new = copy.deepcopy(old)
    new["spec"]["parallelism"] = 4  # mutable
    assert validate(new, old) == []


def test_job_without_uid_is_not_missing_its_generated_selector() -> None:
    obj = job()
    del obj["metadata"]["uid"]  # a dry-run create: the selector would be generated server-side
    assert validate(defaulted(obj)) == []


def test_cronjob_rules() -> None:
    obj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c" * 53, "namespace": "default"},
        "spec": {
            "schedule": "* * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
        },
    }
    assert validate(defaulted(obj)) == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "{"c" * 53}": must be no more than 52 characters',
            "field": "metadata.name",
        },
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]',
            "field": "spec.schedule",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Always": supported values: "OnFailure", "Never"',
            "field": "spec.jobTemplate.spec.template.spec.restartPolicy",
        },
    ]


def test_statefulset_update_restrictions() -> None:
    sts = deployment()
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "web"
    old = defaulted(sts)
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 3
    assert validate(scaled, old) == []
    renamed = copy.deepcopy(old)
    renamed["spec"]["serviceName"] = "other"
    assert message(renamed, old) == (
        'StatefulSet.apps "web" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
        "'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
        "'minReadySeconds' are forbidden"
    )


def test_statefulset_mounts_may_name_claim_templates() -> None:
    sts = deployment("db")
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "db"
    sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data"}
    ]
    sts["spec"]["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    ]
    assert validate(defaulted(sts)) == []
    sts["spec"]["template"]["metadata"]["labels"] = {"app": "db"}
    assert fields(defaulted(sts)) == ["spec.template.metadata.labels"]


def test_daemonset_without_selector() -> None:
    ds = deployment()
    ds["kind"] = "DaemonSet"
    del ds["spec"]["selector"]
    assert fields(defaulted(ds)) == ["spec.template.metadata.labels"]


# --------------------------------------------------------------------------- Service


def service(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"port": 80}]}
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": body,
    }


def test_service_rules() -> None:
    assert validate(defaulted(service())) == []
    assert fields(defaulted(service(ports=[]))) == ["spec.ports"]
    assert validate(defaulted(service(clusterIP="None", ports=[]))) == []
    causes = validate(
        defaulted(service(type="Balanced", ports=[{"port": 0, "targetPort": 70000}, {"port": 443}]))
    )
    assert causes == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.ports[0].name"},
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0: must be between 1 and 65535, inclusive",
            "field": "spec.ports[0].port",
        },
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 70000: must be between 1 and 65535, inclusive",
            "field": "spec.ports[0].targetPort",
        },
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.ports[1].name"},
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Balanced": supported values: "ClusterIP", "ExternalName", '
            '"LoadBalancer", "NodePort"',
            "field": "spec.type",
        },
    ]
    forbidden = validate(defaulted(service(ports=[{"port": 80, "nodePort": 30080}])))
    assert forbidden == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: may not be used when `type` is 'ClusterIP'",
            "field": "spec.ports[0].nodePort",
        }
    ]
    assert fields(defaulted(service(type="ExternalName", ports=[]))) == ["spec.externalName"]


def test_service_cluster_ip_is_immutable() -> None:
    old = defaulted(service(clusterIP="10.96.0.10"))
    new = defaulted(service(clusterIP="10.96.0.11"))
    assert message(new, old) == (
        'Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set'
    )
    assert validate(defaulted(service(clusterIP="10.96.0.10")), old) == []


# --------------------------------------------------------------------------- config and secrets


def test_secret_rules() -> None:
    tls = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t", "namespace": "default"},
           "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}  # fmt: skip
    assert validate(defaulted(tls)) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "data[tls.key]"}
    ]
    opaque = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
              "data": {"bad key!": "eA=="}, "immutable": True}  # fmt: skip
    causes = validate(defaulted(opaque))
    assert causes[0]["field"] == "data[bad key!]"
    assert causes[0]["message"].startswith(
        "Invalid value: \"bad key!\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    )
    old = defaulted({**opaque, "data": {"k": "eA=="}})
    new = copy.deepcopy(old)
    new["data"]["k"] = "eQ=="
    new["type"] = "example.com/custom"
    assert message(new, old) == (
        'Secret "s" is invalid: [type: Invalid value: "example.com/custom": field is immutable, '
        "data: Forbidden: field is immutable when `immutable` is set]"
    )
    new["type"] = "kubernetes.io/basic-auth"  # needs a username or a password
    assert fields(new, old)[-1] == "data[username]"


def test_configmap_immutable() -> None:
    old: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
           "data": {"a": "1"}, "immutable": True}  # fmt: skip
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    del new["immutable"]
    assert message(new, old) == (
        'ConfigMap "c" is invalid: [immutable: Forbidden: field is immutable when `immutable` is set, '
        "data: Forbidden: field is immutable when `immutable` is set]"
    )
    mutable = copy.deepcopy(old)
    del mutable["immutable"]
    changed = copy.deepcopy(mutable)
    changed["data"]["a"] = "2"
    assert validate(changed, mutable) == []


def test_pvc_spec_is_immutable_except_requests() -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    old = defaulted(pvc)
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert validate(grown, old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    assert message(changed, old) == (
        'PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except '
        "resources.requests and volumeAttributesClassName for bound claims"
    )
    bound = copy.deepcopy(old)
    bound["spec"].update(volumeName="pv-1", storageClassName="standard")  # binder and default class
    assert validate(bound, old) == []
    rebound = copy.deepcopy(bound)
    rebound["spec"]["volumeName"] = "pv-2"
    assert fields(rebound, bound) == ["spec"]
    missing = defaulted({**pvc, "spec": {"accessModes": ["ReadWriteOnce"]}})
    assert fields(missing) == ["spec.resources[storage]"]


def test_ingress_path_type_required() -> None:
    ing: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i", "namespace": "default"},
        "spec": {"rules": [{"host": "example.com", "http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    }  # fmt: skip
    assert message(defaulted(ing)) == (
        'Ingress.networking.k8s.io "i" is invalid: spec.rules[0].http.paths[0].pathType: Required value: '
        "pathType must be specified"
    )
    ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Prefix"
    assert validate(defaulted(ing)) == []


def test_rbac_rules() -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "default"},
        "roleRef": {"kind": "Role", "name": "reader"},
        "subjects": [{"kind": "User", "name": "jane"}],
    }
    old = defaulted(binding)
    assert validate(old) == []
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "writer"
    assert validate(new, old)[0]["message"] == (
        'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"writer"}: '
        "cannot change roleRef"
    )
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "d"},
            "rules": [{"resources": ["pods"]}]}  # fmt: skip
    assert [c["message"] for c in validate(role)] == [
        "Required value: verbs must contain at least one value",
        "Required value: resource rules must supply at least one api group",
    ]


# --------------------------------------------------------------------------- typecheck


DEPLOYMENT = schema.for_object("apps/v1", "Deployment")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda o: o["spec"].__setitem__("replicas", "3"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            lambda o: o["spec"].__setitem__("replicas", 1.5),
            "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            lambda o: o["spec"].__setitem__("replicas", 3_000_000_000),
            "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            lambda o: o["metadata"].__setitem__("labels", {"a": 5}),
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
        ),
        (
            lambda o: o["metadata"].__setitem__("labels", ["a"]),
            "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string",
        ),
        (
            lambda o: o["spec"]["template"]["spec"].__setitem__("containers", "nginx"),
            "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.containers "
            "of type []v1.Container",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__(
                "env", [{"name": "A", "value": 1}]
            ),
            "json: cannot unmarshal number into Go struct field EnvVar.spec.template.spec.containers.env.value "
            "of type string",
        ),
        (
            lambda o: o["spec"].__setitem__("selector", "app=web"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.selector of type v1.LabelSelector",
        ),
        (
            lambda o: o["spec"].__setitem__("paused", "true"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool",
        ),
        (
            lambda o: o["spec"]["template"]["spec"].__setitem__("restartPolicy", 1),
            "json: cannot unmarshal number into Go struct field PodSpec.spec.template.spec.restartPolicy "
            "of type v1.RestartPolicy",
        ),
        (
            lambda o: o["spec"].__setitem__("strategy", {"rollingUpdate": {"maxSurge": True}}),
            "json: cannot unmarshal bool into Go value of type int32",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__(
                "resources", {"limits": {"cpu": "1 core"}}
            ),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__(
                "resources", {"limits": "1"}
            ),
            "json: cannot unmarshal string into Go struct field ResourceRequirements.spec.template.spec.containers."
            "resources.limits of type v1.ResourceList",
        ),
        (
            lambda o: o["metadata"].__setitem__("creationTimestamp", "yesterday"),
            'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"',
        ),
        (
            lambda o: o.__setitem__("spec", []),
            "json: cannot unmarshal array into Go struct field Deployment.spec of type v1.DeploymentSpec",
        ),
    ],
)
def test_typecheck_messages(mutate: Any, expected: str) -> None:
    obj = deployment()
    mutate(obj)
    assert typecheck(obj, DEPLOYMENT) == expected


def test_typecheck_accepts_valid_values() -> None:
    obj = deployment()
    obj["spec"].update(replicas=None, strategy={"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}})
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 0.5, "memory": "1Gi"}}
    obj["metadata"]["creationTimestamp"] = "2024-01-02T03:04:05Z"
    obj["spec"]["unknownField"] = {"anything": [1, 2]}
    assert typecheck(obj, DEPLOYMENT) is None
    assert typecheck(obj, None) is None


def test_typecheck_secret_base64_and_decode_error() -> None:
    secret_schema = schema.for_object("v1", "Secret")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"ok": "aGk=", "bad": "a$b="},
    }
    assert typecheck(secret, secret_schema) == "illegal base64 data at input byte 1"
    secret["data"] = {"short": "abc"}
    assert typecheck(secret, secret_schema) == "illegal base64 data at input byte 0"
    secret["data"] = {"wrapped": "aGVs\nbG8="}
    assert typecheck(secret, secret_schema) is None
    assert decode_error(deployment(), "json: boom") == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: boom'
    )


# --------------------------------------------------------------------------- unknown fields


def test_unknown_fields_are_pruned_and_reported() -> None:
    obj = deployment()
    obj["spec"]["foo"] = 1
    obj["metadata"]["bogus"] = True
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    obj["spec"]["template"]["metadata"]["annotations"] = {"any.key/is": "fine"}
    assert unknown_fields(obj, DEPLOYMENT) == [
        ".metadata.bogus",
        ".spec.template.spec.containers[0].imagePullPolicyy",
        ".spec.foo",
    ]
    assert "foo" not in obj["spec"] and "bogus" not in obj["metadata"]
    assert obj["spec"]["template"]["metadata"]["annotations"] == {"any.key/is": "fine"}
    assert unknown_fields(obj, DEPLOYMENT) == []


def test_unknown_fields_respect_preserve_unknown() -> None:
    node = schema.from_openapi_v3(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "size": {"type": "integer"},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }
            },
        }
    )
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "colour": "red", "extra": {"free": {"form": 1}}},
    }
    assert typecheck({**cr, "spec": {"size": "big"}}, node) is None  # CRs are not Go-typed
    assert unknown_fields(cr, node) == [".spec.colour"]
    assert cr["spec"] == {"size": 1, "extra": {"free": {"form": 1}}}
