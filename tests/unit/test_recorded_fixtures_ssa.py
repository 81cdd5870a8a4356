"""Library-level conformance: server-side apply of the gitops-engine recorded-diff triples.

Each case applies ``*-config`` over ``*-live`` as ``argocd-controller`` with force
(what Argo CD's server-side diff dry-runs) and compares the result with
``*-predicted-live``. Some predicted files are hand-written or carry a simulated
mutating-webhook change (see the fixtures README); each test says what differs
from a faithful apply and why, and asserts everything else.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.kube import schema
from core.kube.managedfields import apply
from core.kube.structured import project, to_field_set

NOW = "2030-01-01T00:00:00Z"
MANAGER = "argocd-controller"


def fixtures_dir() -> Path | None:
    """``shared/fixtures`` beside the checkout (as CI lays it out), or None."""
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
    return candidate if (candidate / "recorded-diff").is_dir() else None


FIXTURES = fixtures_dir()
pytestmark = pytest.mark.skipif(
    FIXTURES is None,
    reason="shared/fixtures/recorded-diff not found beside the checkout (../shared/fixtures)",
)


def _defaulter() -> Callable[[dict[str, Any]], Any] | None:
    try:
        from sandbox.defaulting import apply_defaults
    except ImportError:
        return None
    return apply_defaults


DEFAULTS = _defaulter()
needs_defaults = pytest.mark.skipif(
    DEFAULTS is None, reason="sandbox.defaulting.apply_defaults is not importable yet"
)


def load(name: str) -> dict[str, Any]:
    assert FIXTURES is not None
    text = (FIXTURES / "recorded-diff" / name).read_text(encoding="utf-8")
    data = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def run(
    prefix: str, config: str | None = None, predicted: str | None = None, defaults: bool = False
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(live, config, predicted, ours) for one triple."""
    live = load(f"{prefix}-live.yaml")
    cfg = load(config or f"{prefix}-config.yaml")
    pred = load(predicted or f"{prefix}-predicted-live.json")
    node = schema.for_object(cfg["apiVersion"], cfg["kind"])
    assert node is not None
    snapshot = copy.deepcopy(live)
    ours = apply(
        live,
        cfg,
        manager=MANAGER,
        node=node,
        api_version=cfg["apiVersion"],
        force=True,
        now=NOW,
        default=DEFAULTS if defaults else None,
    )
    assert live == snapshot, "apply must not modify its input"
    return live, cfg, pred, ours


def without(obj: dict[str, Any], *paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy without ``metadata.managedFields`` and the given key paths."""
    out = copy.deepcopy(obj)
    for path in (("metadata", "managedFields"), *paths):
        *parents, last = path
        cur: Any = out
        for p in parents:
            cur = cur.get(p, {}) if isinstance(cur, dict) else {}
        if isinstance(cur, dict):
            cur.pop(last, None)
    return out


def entries(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (e["manager"], e["operation"], e.get("subresource", "")): e
        for e in obj["metadata"].get("managedFields", [])
    }


def fields_v1(obj: dict[str, Any], manager: str = MANAGER, operation: str = "Apply") -> dict[str, Any]:
    result: dict[str, Any] = entries(obj)[(manager, operation, "")]["fieldsV1"]
    return result


def compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# --- ssd-svc-label: an exact recording -------------------------------------------------------------


def test_ssd_svc_label_removed_label_matches_exactly() -> None:
    # No hand edits: the label `delete-me`, owned only by argocd-controller and absent
    # from the config, is pruned. Only the Apply time differs (the recording's clock).
    _, _, pred, ours = run(
        "ssd-svc-label", "ssd-svc-no-label-config.yaml", "ssd-svc-no-label-predicted-live.json"
    )
    assert without(ours) == without(pred)
    assert fields_v1(ours) == fields_v1(pred)
    assert [e["manager"] for e in ours["metadata"]["managedFields"]] == ["argocd-controller"]
    assert entries(ours)[(MANAGER, "Apply", "")]["time"] == NOW


# --- ssd-service: webhook-mutated prediction -------------------------------------------------------


def test_ssd_service_webhook_label_differs_rest_matches() -> None:
    # The predicted object carries the label `event: FROM-MUTATION-WEBHOOK` in place of
    # the applied `app.kubernetes.io/instance` label, and its Apply entry lost
    # `f:metadata` with it: a stand-in for a mutating webhook, which the field manager
    # does not model. The config equals live otherwise, so our apply is a no-op.
    live, cfg, pred, ours = run("ssd-service")
    assert pred["metadata"]["labels"] == {"event": "FROM-MUTATION-WEBHOOK"}
    assert ours["metadata"]["labels"] == cfg["metadata"]["labels"]
    assert without(ours, ("metadata", "labels")) == without(pred, ("metadata", "labels"))
    expected = copy.deepcopy(fields_v1(pred))
    expected["f:metadata"] = {"f:labels": {"f:app.kubernetes.io/instance": {}}}
    assert fields_v1(ours) == expected
    assert ours == live  # nothing changed: same object, same managedFields time
    # Ports without protocol are keyed with the TCP default; the defaulted targetPort of 333 stays.
    assert [p.get("targetPort") for p in ours["spec"]["ports"]] == [80, 333]


# --- ssd-deploy-with-manual-apply: webhook label, annotation missing from live --------------------


def test_ssd_deploy_with_manual_apply() -> None:
    # Differences that are not the field manager's doing:
    # * label `mutation-test: FROM-MUTATION-WEBHOOK` (simulated webhook);
    # * the last-applied annotation exists only in the prediction: live's
    #   kubectl-client-side-apply entry owns it but the recorded live object lacks it;
    # * generation 4 -> 5 is bumped by the registry on a spec change, not by SSA.
    live, _, pred, ours = run("ssd-deploy-with-manual-apply")
    assert pred["metadata"]["labels"].pop("mutation-test") == "FROM-MUTATION-WEBHOOK"
    assert "kubectl.kubernetes.io/last-applied-configuration" in pred["metadata"]["annotations"]
    assert (
        ours["metadata"]["generation"] == live["metadata"]["generation"] == 4
        and pred["metadata"]["generation"] == 5
    )
    skip = (
        ("metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"),
        ("metadata", "generation"),
    )
    assert without(ours, *skip) == without(pred, *skip)
    ports = ours["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 40, "name": "https", "protocol": "TCP"},
    ]
    # Every entry matches the prediction: the new Apply set exactly, and the Update
    # entries (argocd-controller, kubectl-client-side-apply, kube-controller-manager)
    # are untouched because port 40 conflicts with nobody.
    ours_e, pred_e = entries(ours), entries(pred)
    assert list(ours_e) == list(pred_e)
    for ident, e in pred_e.items():
        assert ours_e[ident]["fieldsV1"] == e["fieldsV1"], ident
        if ident[1] == "Update":
            assert ours_e[ident]["time"] == e["time"]


# --- ssd-deploy-nested: hand-written -----------------------------------------------------------------


NESTED_APPLY = {
    "f:metadata": {"f:labels": {"f:app": {}, "f:applications.argoproj.io/app-name": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:automountServiceAccountToken": {},
                "f:containers": {
                    'k:{"name":"main-container"}': {
                        ".": {},
                        "f:env": {
                            'k:{"name":"ENV_VAR1"}': {".": {}, "f:name": {}, "f:value": {}},
                            'k:{"name":"ENV_VAR2"}': {".": {}, "f:name": {}, "f:value": {}},
                        },
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {
                            'k:{"containerPort":80,"protocol":"TCP"}': {
                                ".": {},
                                "f:containerPort": {},
                                "f:name": {},
                                "f:protocol": {},
                            },
                            'k:{"containerPort":443,"protocol":"TCP"}': {
                                ".": {},
                                "f:containerPort": {},
                                "f:name": {},
                            },
                        },
                        "f:resources": {"f:limits": {"f:memory": {}}},
                    }
                },
            },
        },
    },
}


def test_ssd_deploy_nested_hand_written() -> None:
    # Hand-written files without server defaults, so we apply without defaulting.
    # Differences: the revision annotation "2" is the Deployment controller's later
    # bump; the predicted Apply entry is hand-made (it misses automountServiceAccountToken
    # and resources.limits.memory, which the config sends, and has "." on ports/env and
    # f:protocol on port 443, which an Apply never records). We assert the real set.
    _, _, pred, ours = run("ssd-deploy-nested")
    assert pred["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "2"}
    assert ours["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert without(ours, ("metadata", "annotations")) == without(pred, ("metadata", "annotations"))
    assert compact(fields_v1(ours)) == compact(NESTED_APPLY)
    pred_fields = fields_v1(pred)["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"main-container"}'
    ]
    assert (
        "f:protocol" in pred_fields["f:ports"]['k:{"containerPort":443,"protocol":"TCP"}']
    )  # the hand-made part


# --- ssd-deploy-composite-key: prediction from another object, mutation-webhook entry -----------


COMPOSITE_PORTS = [
    [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 443, "name": "https", "protocol": "TCP"},
        {"containerPort": 8080, "name": "metrics", "protocol": "TCP"},
    ],
    [{"containerPort": 9090, "name": "sidecar-port", "protocol": "TCP"}],
]


def test_ssd_deploy_composite_key_apply_entry_and_ports() -> None:
    # The prediction comes from a different object (uid, resourceVersion, generation,
    # creationTimestamp, revision annotation, status) and has a `mutation-webhook` Apply
    # entry that owns `protocol`: neither comes from this apply. The config drops
    # `protocol`, which live's Apply entry owned: the prune resets the defaulted key
    # field to TCP (as the server's defaulting does) and the new set omits f:protocol.
    live, _, pred, ours = run("ssd-deploy-composite-key")
    assert fields_v1(ours) == fields_v1(pred)
    assert [e["manager"] for e in ours["metadata"]["managedFields"]] == [MANAGER]
    assert {e["manager"] for e in pred["metadata"]["managedFields"]} == {
        MANAGER,
        "mutation-webhook",
        "kube-controller-manager",
    }
    assert [c["ports"] for c in ours["spec"]["template"]["spec"]["containers"]] == COMPOSITE_PORTS
    assert [c["ports"] for c in pred["spec"]["template"]["spec"]["containers"]] == COMPOSITE_PORTS
    assert ours["metadata"]["uid"] == live["metadata"]["uid"] != pred["metadata"]["uid"]
    assert ours["metadata"]["labels"] == pred["metadata"]["labels"]


@needs_defaults
def test_ssd_deploy_composite_key_spec_with_server_defaults() -> None:
    # With the sandbox defaulting (containers gain `resources: {}`), the spec equals the
    # prediction's except `template.metadata.creationTimestamp: null`, which is how Go
    # serializes a zero time and is not part of the apply.
    _, _, pred, ours = run("ssd-deploy-composite-key", defaults=True)
    pred_spec = copy.deepcopy(pred["spec"])
    assert pred_spec["template"]["metadata"].pop("creationTimestamp") is None
    ours_spec = copy.deepcopy(ours["spec"])
    ours_spec["template"]["metadata"].pop("creationTimestamp", None)
    assert ours_spec == pred_spec


# --- smd-deploy2: hand-written prediction ---------------------------------------------------------


SMD_DEPLOY2_APPLY = (
    '{"f:metadata":{"f:labels":{"f:app":{},"f:applications.argoproj.io/app-name":{},"f:something-else":{}}},'
    '"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{},'
    '"f:applications.argoproj.io/app-name":{}}},"f:spec":{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":{},'
    '"f:image":{},"f:imagePullPolicy":{},"f:livenessProbe":{"f:exec":{"f:command":{}},"f:initialDelaySeconds":{},'
    '"f:periodSeconds":{}},"f:name":{},"f:ports":{"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},'
    '"f:containerPort":{},"f:protocol":{}},"k:{\\"containerPort\\":8081,\\"protocol\\":\\"UDP\\"}":{".":{},'
    '"f:containerPort":{},"f:protocol":{}}}}}}}}}'
)


def test_smd_deploy2_hand_written_prediction() -> None:
    # The prediction is hand-edited: no server-populated metadata, defaults or status,
    # an Apply entry identical to live's, port 8080 gone and resources.requests kept.
    # A faithful apply differs on purpose:
    # * port 8080/TCP stays: live's Apply entry owns only port 80, so nobody owns 8080
    #   and SSA never prunes unowned items; SMD's merge order puts it first;
    # * resources.requests go: argocd-controller owned them alone and the config omits them;
    # * our Apply entry is the config's set (with 8081/UDP, without resources).
    # What the config owns agrees with the prediction exactly.
    live, cfg, pred, ours = run("smd-deploy2")
    node = schema.for_object("apps/v1", "Deployment")
    assert node is not None
    owned = to_field_set(cfg, node)
    assert project(ours, owned, node) == project(pred, owned, node)
    container = ours["spec"]["template"]["spec"]["containers"][0]
    assert [(p["containerPort"], p["protocol"]) for p in container["ports"]] == [
        (8080, "TCP"),
        (8081, "UDP"),
        (80, "TCP"),
    ]
    assert [
        (p["containerPort"], p["protocol"])
        for p in pred["spec"]["template"]["spec"]["containers"][0]["ports"]
    ] == [(8081, "UDP"), (80, "TCP")]
    assert "resources" not in container
    assert "requests" in pred["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert compact(fields_v1(ours)) == SMD_DEPLOY2_APPLY
    assert fields_v1(pred) == fields_v1(live)  # the stale, hand-copied entry
    kcm = ("kube-controller-manager", "Update", "status")
    assert entries(ours)[kcm] == entries(live)[kcm]
    assert ours["status"] == live["status"]


@needs_defaults
def test_smd_deploy2_with_server_defaults() -> None:
    # With defaulting, the pruned `resources` comes back as `{}` (a non-pointer Go struct).
    _, _, _, ours = run("smd-deploy2", defaults=True)
    container = ours["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {}
    assert container["livenessProbe"]["timeoutSeconds"] == 1
