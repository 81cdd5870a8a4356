"""core.render: safe YAML, document checks, scope, normalisation, schema validation, kustomize."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.model import Location, ObjRef
from core.render import (
    MAX_FILE_SIZE,
    SUPPORTED_KEYWORDS,
    Manifest,
    _validator,
    builtin_namespaced,
    normalize_manifest,
    render,
    validate_manifest,
)
from tests.conftest import FIXTURES

KUBECTL = shutil.which("kubectl")

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


def run(files: Mapping[str, str | bytes], path: str = "app", **kw: Any) -> tuple[list[Manifest], list[str]]:
    data = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    kw.setdefault("default_namespace", "dev")
    kw.setdefault("namespaced", builtin_namespaced)
    manifests, problems = render(data, path, **kw)
    return manifests, [str(p) for p in problems]


def by_name(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {m.ref.name: m for m in manifests}


# ----- files and documents ------------------------------------------------------------------


def test_recursive_sorted_multidoc_skips_hidden_and_other_files() -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {}}}\n"
    manifests, problems = run(
        {
            "app/b.yaml": cm.format("b1") + "---\n" + cm.format("b2"),
            "app/a/z.yml": cm.format("az"),
            "app/c.json": json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            "app/.github/ci.yaml": "name: ci\non: push\n",
            "app/README.md": "# not a manifest",
            "other/x.yaml": cm.format("outside"),
        }
    )
    assert problems == []
    assert [m.ref.name for m in manifests] == ["az", "b1", "b2", "c"]
    assert [str(m.location) for m in manifests] == [
        "app/a/z.yml:1",
        "app/b.yaml:1",
        "app/b.yaml:5",
        "app/c.json:1",
    ]


def test_empty_documents_are_skipped_and_list_kinds_expanded() -> None:
    text = """\
---
---
# only a comment
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: one}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: two}
"""
    manifests, problems = run({"app/list.yaml": text})
    assert problems == []
    assert [(m.ref.name, m.location.line) for m in manifests] == [("one", 8), ("two", 11)]


def test_malformed_yaml_reports_the_line_and_other_files_still_render() -> None:
    bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a, b\ndata: {}\n"
    manifests, problems = run({"app/bad.yaml": bad, "app/good.yaml": DEPLOYMENT})
    assert [m.ref.name for m in manifests] == ["web"]
    assert len(problems) == 1
    assert problems[0].startswith("app/bad.yaml:6: YAML syntax error:")


def test_missing_kind_or_name_names_the_field_and_line() -> None:
    text = """\
apiVersion: v1
metadata: {name: nokind}
---
apiVersion: v1
kind: ConfigMap
metadata: {labels: {a: b}}
---
kind: Secret
metadata: {generateName: gen-}
---
- just
- a list
"""
    manifests, problems = run({"app/x.yaml": text})
    assert manifests == []
    assert problems == [
        "app/x.yaml:1: <no kind>/nokind: missing kind",
        "app/x.yaml:4: ConfigMap/<no name>: missing metadata.name",
        "app/x.yaml:8: Secret/<no name>: missing apiVersion, metadata.name (generateName cannot be applied declaratively)",
        "app/x.yaml:11: document is a list, not a Kubernetes object (a mapping)",
    ]


def test_unknown_kind_is_a_problem_unless_a_crd_in_the_output_defines_it() -> None:
    crd = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
"""
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: ignored}\n"
    gadget = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n"
    manifests, problems = run({"app/crd.yaml": crd, "app/w.yaml": widget, "app/g.yaml": gadget})
    assert problems == [
        "app/g.yaml:1: Gadget/g: unknown kind Gadget (apiVersion example.com/v1): not a built-in kind, "
        "not served by the cluster and no CustomResourceDefinition for it in this app"
    ]
    w = by_name(manifests)["w"]
    assert w.ref == ObjRef("example.com", "Widget", "", "w")
    assert "namespace" not in w.obj["metadata"]


def test_cluster_discovery_answers_scope_first() -> None:
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    calls: list[tuple[str, str]] = []

    def namespaced(api_version: str, kind: str) -> bool | None:
        calls.append((api_version, kind))
        return True if kind == "Widget" else builtin_namespaced(api_version, kind)

    manifests, problems = run({"app/w.yaml": widget}, namespaced=namespaced)
    assert problems == []
    assert manifests[0].ref == ObjRef("example.com", "Widget", "dev", "w")
    assert calls == [("example.com/v1", "Widget")]


def test_duplicates_are_reported_at_both_locations_and_the_first_is_kept() -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same, namespace: dev}\ndata: {v: '%s'}\n"
    manifests, problems = run({"app/a.yaml": cm % "1", "app/b.yaml": "# comment\n" + cm % "2"})
    assert problems == [
        "app/a.yaml:1: ConfigMap/dev/same: duplicate object: also defined at app/b.yaml:2",
        "app/b.yaml:2: ConfigMap/dev/same: duplicate object: also defined at app/a.yaml:1",
    ]
    assert [m.obj["data"] for m in manifests] == [{"v": "1"}]


def test_defaulted_namespace_counts_for_duplicates() -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same%s}\n"
    manifests, problems = run({"app/a.yaml": cm % "", "app/b.yaml": cm % ", namespace: dev"})
    assert len(manifests) == 1
    assert len(problems) == 2


def test_cluster_scoped_object_loses_its_namespace_with_a_note() -> None:
    text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader, namespace: web}\nrules: []\n"
    manifests, problems = run({"app/cr.yaml": text})
    assert problems == []
    (m,) = manifests
    assert m.ref == ObjRef("rbac.authorization.k8s.io", "ClusterRole", "", "reader")
    assert m.obj["metadata"] == {"name": "reader"}
    assert m.notes == ("namespace 'web' dropped: ClusterRole is cluster-scoped",)


def test_namespaced_object_without_namespace_gets_the_default() -> None:
    manifests, problems = run({"app/d.yaml": DEPLOYMENT}, default_namespace="web")
    assert problems == []
    assert manifests[0].obj["metadata"]["namespace"] == "web"
    assert manifests[0].ref == ObjRef("apps", "Deployment", "web", "web")
    manifests, _ = run({"app/d.yaml": DEPLOYMENT}, default_namespace="")
    assert manifests[0].ref.namespace == "default"


def test_app_path_must_exist_and_stay_inside() -> None:
    assert run({"app/a.yaml": DEPLOYMENT}, path="nope") == ([], ["path 'nope' not found in the source"])
    _, problems = run({"app/a.yaml": DEPLOYMENT}, path="../etc")
    assert problems == ["app path '../etc' must be relative and stay inside the repository"]
    manifests, problems = run({"app/a.yaml": DEPLOYMENT}, path="./app/")
    assert len(manifests) == 1 and problems == []
    manifests, problems = run({"app/a.yaml": DEPLOYMENT}, path="app/a.yaml")
    assert len(manifests) == 1 and problems == []


# ----- safety --------------------------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n"
        + "\n".join("  " + x for x in lines)
        + "\n"
    )


def test_alias_bomb_fails_fast() -> None:
    started = time.perf_counter()
    manifests, problems = run({"app/bomb.yaml": billion_laughs(), "app/ok.yaml": DEPLOYMENT})
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert [m.ref.name for m in manifests] == ["web"]
    assert len(problems) == 1
    assert problems[0].startswith("app/bomb.yaml:")
    assert "aliases expand to more than 250000 nodes" in problems[0]


def test_merge_key_bomb_is_caught_too() -> None:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: m}", "x:"]
    lines.append("  l0: &l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}")
    for i in range(1, 9):
        lines.append(f"  l{i}: &l{i} {{<<: [{', '.join([f'*l{i - 1}'] * 10)}]}}")
    _, problems = run({"app/m.yaml": "\n".join(lines) + "\n"})
    assert len(problems) == 1 and "alias bomb" in problems[0]


def test_small_aliases_are_fine_and_expanded() -> None:
    text = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: anchors
  labels: &labels {app: web, tier: front}
  annotations: *labels
"""
    manifests, problems = run({"app/a.yaml": text})
    assert problems == []
    meta = manifests[0].obj["metadata"]
    assert meta["labels"] == meta["annotations"] == {"app": "web", "tier": "front"}
    assert meta["labels"] is not meta["annotations"]


def test_recursive_alias_is_a_problem() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: r}\ndata: &d\n  self: *d\n"
    _, problems = run({"app/r.yaml": text})
    assert len(problems) == 1 and "recursive YAML alias" in problems[0]


def test_a_50_mb_file_is_reported_and_never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.render as render_mod

    def boom(text: str) -> Iterator[Any]:
        raise AssertionError("the parser must not see an oversized file")

    big = b"# padding\n" * (5 * 1024 * 1024)  # 52,428,800 bytes
    monkeypatch.setattr(render_mod, "compose_documents", boom)
    manifests, problems = run({"app/big.yaml": big})
    assert manifests == []
    assert problems == ["app/big.yaml: file is 52428800 bytes (50.0 MiB), over the 10 MiB limit: not parsed"]
    assert len(big) > MAX_FILE_SIZE


def test_non_utf8_file_names_the_line() -> None:
    data = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: caf\xe9}\n"
    manifests, problems = run({"app/latin1.yaml": data, "app/ok.yaml": DEPLOYMENT})
    assert [m.ref.name for m in manifests] == ["web"]
    assert problems == ["app/latin1.yaml:4: file is not valid UTF-8 (byte 0xe9 at offset 64)"]


def test_utf8_bom_is_accepted() -> None:
    manifests, problems = run({"app/bom.yaml": b"\xef\xbb\xbf" + DEPLOYMENT.encode()})
    assert problems == [] and manifests[0].ref.name == "web"


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "[" * 5000 + "]" * 5000 + "\n"
    manifests, problems = run({"app/deep.yaml": text})
    assert manifests == []
    assert len(problems) == 1 and problems[0].startswith("app/deep.yaml:")


# ----- YAML 1.1 reading ---------------------------------------------------------------------


def test_yaml11_scalars_read_like_kubectl() -> None:
    text = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: pitfalls
  annotations: {date: 2024-01-02, when: 2024-01-02T03:04:05Z}
data:
  on: "x"
  80: "port"
  octal: "010"
"""
    manifests, problems = run({"app/p.yaml": text})
    assert problems == []
    obj = manifests[0].obj
    assert obj["data"] == {"true": "x", "80": "port", "octal": "010"}
    assert obj["metadata"]["annotations"] == {"date": "2024-01-02", "when": "2024-01-02T03:04:05Z"}


def test_unquoted_yes_on_and_octal_are_flagged_by_the_schema() -> None:
    text = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: flags}
data:
  enabled: yes
  mode: 010
"""
    _, problems = run({"app/f.yaml": text}, validate=True)
    assert problems == [
        "app/f.yaml:5: ConfigMap/dev/flags: data.enabled: expected string, got boolean true "
        "(YAML 1.1 reads y/n/yes/no/on/off/true/false as booleans: quote the value)",
        "app/f.yaml:6: ConfigMap/dev/flags: data.mode: expected string, got integer 8 (quote the value)",
    ]


def test_duplicate_keys_and_unknown_tags_are_problems() -> None:
    dup = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata:\n  a: '1'\n  a: '2'\n"
    tag = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndata:\n  a: !!python/name:os.system ''\n"
    manifests, problems = run({"app/dup.yaml": dup, "app/tag.yaml": tag})
    assert manifests == []
    assert problems == [
        "app/dup.yaml:6: duplicate key 'a'",
        "app/tag.yaml:5: unsupported YAML tag tag:yaml.org,2002:python/name:os.system",
    ]


# ----- normalisation ------------------------------------------------------------------------


def test_secret_string_data_becomes_base64_data() -> None:
    text = """\
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {user: YWRtaW4=, password: b2xk}
stringData: {password: "s3cr\u00e9t", token: abc}
"""
    manifests, problems = run({"app/s.yaml": text}, validate=True)
    assert problems == []
    obj = manifests[0].obj
    assert "stringData" not in obj
    assert obj["data"] == {
        "user": "YWRtaW4=",
        "password": base64.b64encode("s3cr\u00e9t".encode()).decode(),
        "token": "YWJj",
    }


def test_secret_string_data_non_strings_stay_for_the_schema_check() -> None:
    text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {port: 5432, host: db}\n"
    manifests, problems = run({"app/s.yaml": text}, validate=True)
    assert manifests[0].obj["data"] == {"host": "ZGI="}
    assert manifests[0].obj["stringData"] == {"port": 5432}
    assert problems == [
        "app/s.yaml:4: Secret/dev/s: stringData.port: expected string, got integer 5432 (quote the value)"
    ]


def test_normalize_drops_server_fields_and_defaults_port_protocols() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "c",
            "uid": "1",
            "resourceVersion": "9",
            "generation": 2,
            "creationTimestamp": None,
            "selfLink": "/x",
            "managedFields": [],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "initContainers": [{"name": "i", "ports": [{"containerPort": 1}]}],
                            "containers": [
                                {
                                    "name": "c",
                                    "ports": [{"containerPort": 2, "protocol": "UDP"}, {"containerPort": 3}],
                                }
                            ],
                        }
                    }
                }
            },
        },
        "status": {"active": []},
    }
    normalize_manifest(obj)
    assert obj["metadata"] == {"name": "c"}
    assert "status" not in obj
    pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["ports"] == [{"containerPort": 1, "protocol": "TCP"}]
    assert pod["containers"][0]["ports"] == [
        {"containerPort": 2, "protocol": "UDP"},
        {"containerPort": 3, "protocol": "TCP"},
    ]
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]},
    }
    normalize_manifest(svc)
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    other: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 1}]},
    }
    normalize_manifest(other)
    assert other["spec"]["ports"] == [{"port": 1}]


# ----- schema validation --------------------------------------------------------------------


def test_schema_errors_carry_field_paths_and_their_lines() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {tier: 3}
spec:
  replicas: "2"
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: 5
          imagePullPolice: Always
          ports:
            - containerPort: 80
              targetPort: http
        - image: sidecar
"""
    manifests, problems = run({"app/d.yaml": text}, validate=True)
    assert len(manifests) == 1  # schema problems are reported; the object still renders
    assert problems == [
        "app/d.yaml:5: Deployment.apps/dev/web: metadata.labels.tier: expected string, got integer 3 (quote the value)",
        'app/d.yaml:7: Deployment.apps/dev/web: spec.replicas: expected integer, got string "2"',
        "app/d.yaml:14: Deployment.apps/dev/web: spec.template.spec.containers[0].image: expected string, got integer 5 (quote the value)",
        "app/d.yaml:15: Deployment.apps/dev/web: spec.template.spec.containers[0].imagePullPolice: unknown field",
        "app/d.yaml:18: Deployment.apps/dev/web: spec.template.spec.containers[0].ports[0].targetPort: unknown field",
        "app/d.yaml:19: Deployment.apps/dev/web: spec.template.spec.containers[1].name: required field is missing",
    ]


def test_validate_manifest_standalone() -> None:
    obj = yaml.safe_load(DEPLOYMENT)
    assert validate_manifest(obj) == []
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = ["nginx"]
    obj["metadata"]["annotations"] = {"example.org/x": "1"}
    obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": True}}
    problems = validate_manifest(obj, Location("d.yaml", 1))
    assert [(p.field, p.message) for p in problems] == [
        ("spec.template.spec.containers[0].image", "expected string, got a list"),
        (
            "spec.strategy.rollingUpdate.maxSurge",
            "expected string or integer, got boolean true "
            "(YAML 1.1 reads y/n/yes/no/on/off/true/false as booleans: quote the value)",
        ),
    ]
    assert {(str(p.location), p.obj) for p in problems} == {("d.yaml:1", "Deployment.apps/web")}


def test_null_int_or_string_is_accepted_as_absent() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": None}]},
    }
    assert validate_manifest(svc) == []


def test_custom_resources_are_not_schema_checked() -> None:
    assert (
        validate_manifest(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "x": 1}
        )
        == []
    )


def test_schemas_use_only_supported_keywords() -> None:
    """A kubernetes-validate upgrade that brings new assertion keywords must fail here, not pass silently."""
    annotations = {"description", "format", "default", "example", "x-kubernetes-group-version-kind"}
    seen: set[str] = set()

    def walk(s: Any) -> None:
        if isinstance(s, dict):
            for key, value in s.items():
                if key.startswith("x-kubernetes-"):
                    continue
                seen.add(key)
                if key == "properties":
                    for sub in value.values():
                        walk(sub)
                elif key in ("items", "additionalProperties"):
                    walk(value)
                elif key in ("oneOf", "anyOf", "allOf"):
                    for sub in value:
                        walk(sub)

    for definition in _validator().defs.values():
        walk(definition)
    assert seen - SUPPORTED_KEYWORDS - annotations == set()


def _mutations(obj: Any) -> Iterator[Any]:
    """Copies of ``obj`` with one leaf given a wrong type or one unknown key added."""
    paths: list[tuple[Any, ...]] = []

    def collect(v: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(v, dict):
            for k, x in v.items():
                collect(x, (*path, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                collect(x, (*path, i))

    collect(obj, ())
    for path in paths[1:]:
        for replacement in (7, "seven", True, {"x": 1}, [1], 1.5):
            clone = copy.deepcopy(obj)
            target = clone
            for seg in path[:-1]:
                target = target[seg]
            target[path[-1]] = replacement
            yield clone
        clone = copy.deepcopy(obj)
        target = clone
        for seg in path:
            target = target[seg]
        if isinstance(target, dict):
            target["unexpectedField"] = 1
            yield clone


def _fixture_objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted((FIXTURES / "recorded-diff").iterdir()):
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        elif path.suffix == ".yaml":
            data = yaml.safe_load(path.read_text())
        else:
            continue
        if (
            isinstance(data, dict)
            and builtin_namespaced(data.get("apiVersion", ""), data.get("kind", "")) is not None
        ):
            out.append(data)
    return out


needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "recorded-diff").is_dir(), reason="shared/fixtures not found beside the checkout"
)


@needs_fixtures
def test_fast_validator_agrees_with_jsonschema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    v = _validator()
    objects = _fixture_objects()
    assert len(objects) >= 10
    checked = invalid = 0
    disagreements: list[Any] = []
    for obj in objects:
        group, _, version = obj["apiVersion"].rpartition("/")
        name = v.gvk[(group, version, obj["kind"])]
        reference = jsonschema.Draft202012Validator({"$defs": v.defs, "$ref": f"#/$defs/{name}"})
        candidates = [obj, *_mutations(obj)][:150]
        for candidate in candidates:
            checked += 1
            ours = v.check_object(candidate) == []
            theirs = reference.is_valid(candidate)
            invalid += not theirs
            if ours != theirs:
                disagreements.append(candidate)
    assert checked > 1000
    assert invalid > 500  # the mutations really do break objects
    assert disagreements == []


@needs_fixtures
def test_builtin_scope_matches_real_discovery() -> None:
    checked = 0
    for path in sorted((FIXTURES / "k8s-discovery").glob("ap*__*.json")):
        doc = json.loads(path.read_text())
        for res in doc.get("resources", []):
            if "/" in res["name"]:
                continue
            scope = builtin_namespaced(doc["groupVersion"], res["kind"])
            if scope is None:
                continue  # served then, gone from the 1.32 schemas
            assert scope == res["namespaced"], (doc["groupVersion"], res["kind"])
            checked += 1
    assert checked >= 30
    assert builtin_namespaced("example.com/v1", "Widget") is None


# ----- kustomize ----------------------------------------------------------------------------

BASE_KUSTOMIZATION = "resources: [deployment.yaml, service.yaml]\n"
SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n"


@pytest.mark.kubectl
@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed (it provides `kubectl kustomize`)")
def test_kustomize_overlay_renders_with_source_locations() -> None:
    files = {
        "apps/base/kustomization.yaml": BASE_KUSTOMIZATION,
        "apps/base/deployment.yaml": "# the base\n" + DEPLOYMENT,
        "apps/base/service.yaml": SERVICE,
        "apps/prod/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\nnamespace: prod\n",
        "unrelated/huge.yaml": "x" * 100,
    }
    manifests, problems = run(files, path="apps/prod", validate=True)
    assert problems == []
    got = {m.ref: m for m in manifests}
    assert set(got) == {
        ObjRef("apps", "Deployment", "prod", "prod-web"),
        ObjRef("", "Service", "prod", "prod-web"),
    }
    dep = got[ObjRef("apps", "Deployment", "prod", "prod-web")]
    assert dep.location == Location("apps/base/deployment.yaml", 2)
    assert "annotations" not in dep.obj["metadata"]  # the origin annotation we asked for is removed
    assert dep.obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]


@pytest.mark.kubectl
@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed (it provides `kubectl kustomize`)")
def test_kustomize_failure_is_a_problem_with_stderr() -> None:
    files = {"app/kustomization.yaml": "resources: [missing.yaml]\n", "app/x.yaml": DEPLOYMENT}
    manifests, problems = run(files)
    assert manifests == []
    assert len(problems) == 1
    assert problems[0].startswith("app/kustomization.yaml: kubectl kustomize failed: ")
    assert "missing.yaml" in problems[0]


def test_kustomize_without_kubectl_is_a_clear_problem(tmp_path: Path) -> None:
    files = {"app/kustomization.yaml": BASE_KUSTOMIZATION}
    manifests, problems = run(files, kubectl=str(tmp_path / "no-kubectl"))
    assert manifests == []
    assert problems == [
        f"app/kustomization.yaml: app/kustomization.yaml needs kustomize, but kubectl was not found at "
        f"{tmp_path / 'no-kubectl'}: install kubectl (it includes kustomize)"
    ]


def test_scalars_read_as_kubectl_reads_them() -> None:
    """go-yaml v2 (kubectl) has no base-60 numbers and reads y/n as booleans; so do we."""
    files = {"a/x.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {t: 12:30, u: y}\n"}
    manifests, problems = render(files, "a", default_namespace="d", namespaced=lambda a, k: True, validate=True)
    assert manifests == [] or manifests[0].obj["data"]["t"] == "12:30"
    assert [p.field for p in problems] == ["data.u"] and "got boolean true" in problems[0].message
    ok = {"a/x.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {t: 12:30}\n"}
    manifests, problems = render(ok, "a", default_namespace="d", namespaced=lambda a, k: True, validate=True)
    assert problems == [] and manifests[0].obj["data"] == {"t": "12:30"}
