"""core.config: driftdeck.yaml loading with file:line problems."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.config import load_config, parse_duration, valid_json_pointer
from core.model import AppSpec, ClusterSpec, IgnoreRule, Location, SourceSpec

SKETCH = """\
clusters:
  local: {sandbox: true}
  prod:  {context: prod-eu}
sources:
  config: {path: ./config-repo, branch: main}
  web-src: {url: git@example.org:acme/web.git, branch: main, interval: 1m}
apps:
  web:
    source: config
    path: apps/web
    cluster: local
    namespace: web
    sync: auto
    selfHeal: true
    prune: true
    interval: 5m
    dependsOn: [infra]
    ignore:
      - {kind: Deployment, pointer: /spec/replicas}
      - {manager: kube-controller-manager}
  infra:
    source: config
    path: infra
    cluster: prod
    suspend: true
    timeout: 90s
pipelines:
  web:
    source: web-src
    trigger: {branches: [main], paths: ["src/**"]}
    mode: superseded
    stages:
      - name: build
        actions:
          - {name: test, run: [pytest, -q]}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "driftdeck.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    _, problems = load_config(path)
    return [str(p).replace(path, "cfg") for p in problems]


def test_the_architecture_sketch_loads_with_exact_values(tmp_path: Path) -> None:
    path = write(tmp_path, SKETCH)
    config, problems = load_config(path)
    assert problems == []
    assert config.path == path
    assert config.clusters == {
        "local": ClusterSpec("local", sandbox=True),
        "prod": ClusterSpec("prod", context="prod-eu"),
    }
    assert config.sources == {
        "config": SourceSpec("config", path=str(tmp_path / "config-repo"), branch="main", interval=60.0),
        "web-src": SourceSpec("web-src", url="git@example.org:acme/web.git", branch="main", interval=60.0),
    }
    assert config.apps["web"] == AppSpec(
        name="web",
        source="config",
        path="apps/web",
        cluster="local",
        namespace="web",
        sync="auto",
        self_heal=True,
        prune=True,
        interval=300.0,
        depends_on=("infra",),
        ignore=(
            IgnoreRule(pointer="/spec/replicas", kind="Deployment"),
            IgnoreRule(manager="kube-controller-manager"),
        ),
        suspend=False,
        timeout=300.0,
        location=Location(path, 8),
    )
    infra = config.apps["infra"]
    assert (infra.cluster, infra.suspend, infra.timeout, infra.sync, infra.depends_on) == (
        "prod",
        True,
        90.0,
        "manual",
        (),
    )
    assert config.pipelines["web"]["mode"] == "superseded"
    assert config.pipelines["web"]["stages"][0]["actions"][0] == {"name": "test", "run": ["pytest", "-q"]}


def test_yaml_syntax_error_has_the_line(tmp_path: Path) -> None:
    text = "clusters:\n  local: {sandbox: true}\napps:\n  web: {source: config\n  other: 1\n"
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith("cfg:5: YAML syntax error:")


def test_unknown_keys_and_wrong_types_name_line_and_key_path(tmp_path: Path) -> None:
    text = """\
clusters:
  local: {sandbox: "yes", contxt: x}
sources:
  config: {path: ., interval: 5x}
  repo: {path: ., branch: main}
apps:
  web:
    source: repo
    cluster: local
    selfheal: true
    prune: "true"
    sync: on
    interval: -1
    dependsOn: web-b
    namespace: Web_NS
extra: 1
"""
    assert problems_of(tmp_path, text) == [
        "cfg:2: clusters.local.contxt: unknown key 'contxt' (did you mean 'context'?)",
        "cfg:2: clusters.local.sandbox: must be true or false, got string 'yes'",
        "cfg:4: sources.config.interval: must be a duration like 30s, 5m or 1h, got string '5x'",
        "cfg:9: apps.web.cluster: cluster 'local' has errors",
        "cfg:10: apps.web.selfheal: unknown key 'selfheal' (did you mean 'selfHeal'?)",
        "cfg:11: apps.web.prune: must be true or false, got string 'true'",
        "cfg:12: apps.web.sync: must be auto or manual, got boolean true (YAML 1.1 reads on/off/yes/no as booleans)",
        "cfg:13: apps.web.interval: must be a duration like 30s, 5m or 1h, got number -1",
        "cfg:14: apps.web.dependsOn: must be a list of app names, got string 'web-b'",
        "cfg:15: apps.web.namespace: invalid namespace 'Web_NS': lowercase letters, digits and '-'",
        "cfg:16: extra: unknown key 'extra' (expected one of: clusters, sources, apps, pipelines)",
    ]


def test_a_broken_app_is_dropped_and_the_others_stay(tmp_path: Path) -> None:
    text = """\
clusters: {local: {sandbox: true}}
sources: {repo: {path: .}}
apps:
  good: {source: repo, path: apps/good}
  bad-source: {source: nope}
  bad-cluster: {source: repo, cluster: elsewhere}
  bad-path: {source: repo, path: ../outside}
"""
    path = write(tmp_path, text)
    config, problems = load_config(path)
    assert list(config.apps) == ["good"]
    assert config.apps["good"].cluster == "local"  # the only cluster is the default
    assert [(p.location.line if p.location else 0, p.field, p.app, p.message) for p in problems] == [
        (5, "apps.bad-source.source", "bad-source", "source 'nope' is not defined under sources"),
        (6, "apps.bad-cluster.cluster", "bad-cluster", "cluster 'elsewhere' is not defined under clusters"),
        (
            7,
            "apps.bad-path.path",
            "bad-path",
            "must be a path inside the source repository, got '../outside'",
        ),
    ]


def test_cluster_is_required_when_several_exist(tmp_path: Path) -> None:
    text = "clusters: {a: {sandbox: true}, b: {context: x}}\nsources: {r: {path: .}}\napps:\n  web: {source: r}\n"
    assert problems_of(tmp_path, text) == ["cfg:4: apps.web: cluster is required (2 clusters are defined)"]


def test_depends_on_cycle_unknown_app_and_cascade(tmp_path: Path) -> None:
    text = """\
clusters: {local: {sandbox: true}}
sources: {repo: {path: .}}
apps:
  a: {source: repo, dependsOn: [b]}
  b: {source: repo, dependsOn: [c]}
  c: {source: repo, dependsOn: [a]}
  self: {source: repo, dependsOn: [self]}
  waits: {source: repo, dependsOn: [a]}
  typo: {source: repo, dependsOn: [infra]}
  fine: {source: repo}
  after-fine: {source: repo, dependsOn: [fine]}
"""
    path = write(tmp_path, text)
    config, problems = load_config(path)
    assert sorted(config.apps) == ["after-fine", "fine"]
    assert config.apps["after-fine"].depends_on == ("fine",)
    assert [str(p).replace(path, "cfg") for p in problems] == [
        "cfg:4: apps.a.dependsOn: dependsOn cycle: a -> b -> c -> a",
        "cfg:5: apps.b.dependsOn: dependsOn cycle: a -> b -> c -> a",
        "cfg:6: apps.c.dependsOn: dependsOn cycle: a -> b -> c -> a",
        "cfg:7: apps.self.dependsOn: dependsOn cycle: self -> self",
        "cfg:8: apps.waits.dependsOn: depends on app 'a', which has errors",
        "cfg:9: apps.typo.dependsOn[0]: unknown app 'infra'",
    ]


def test_ignore_rules_need_valid_pointers(tmp_path: Path) -> None:
    text = """\
clusters: {local: {sandbox: true}}
sources: {repo: {path: .}}
apps:
  web:
    source: repo
    ignore:
      - {pointer: spec/replicas}
      - {pointer: "/metadata/annotations/a~2b"}
      - {kind: Deployment}
      - {pointer: /spec/x, colour: red}
      - just-a-string
  ok:
    source: repo
    ignore:
      - {group: apps, kind: Deployment, name: web, namespace: web, pointer: "/metadata/labels/app.kubernetes.io~1name"}
      - {group: "", manager: hpa}
"""
    path = write(tmp_path, text)
    config, problems = load_config(path)
    assert [str(p).replace(path, "cfg") for p in problems] == [
        "cfg:7: apps.web.ignore[0].pointer: not an RFC 6901 JSON pointer: 'spec/replicas' (e.g. /spec/replicas; ~1 for '/')",
        "cfg:8: apps.web.ignore[1].pointer: not an RFC 6901 JSON pointer: '/metadata/annotations/a~2b' "
        "(e.g. /spec/replicas; ~1 for '/')",
        "cfg:9: apps.web.ignore[2]: a rule needs a pointer and/or a manager",
        "cfg:10: apps.web.ignore[3].colour: unknown key 'colour' (expected one of: kind, group, name, namespace, pointer, manager)",
        "cfg:11: apps.web.ignore[4]: a rule must be a mapping like {pointer: /spec/replicas}, got string 'just-a-string'",
    ]
    assert list(config.apps) == ["ok"]
    assert config.apps["ok"].ignore == (
        IgnoreRule(
            pointer="/metadata/labels/app.kubernetes.io~1name",
            kind="Deployment",
            group="apps",
            name="web",
            namespace="web",
        ),
        IgnoreRule(manager="hpa", group=""),
    )


def test_sources_need_exactly_one_of_path_or_url(tmp_path: Path) -> None:
    text = """\
sources:
  both: {path: ., url: "https://example.org/r.git"}
  none: {branch: main}
  bad-url: {url: "not a url"}
  ok: {url: "https://example.org/r.git", interval: 30}
"""
    path = write(tmp_path, text)
    config, problems = load_config(path)
    assert [str(p).replace(path, "cfg") for p in problems] == [
        "cfg:2: sources.both.url: give either path (a local repository) or url (a remote one), not both",
        "cfg:3: sources.none: needs a path (a local repository) or a url (a remote one)",
        "cfg:4: sources.bad-url.url: not a git URL: 'not a url' (e.g. https://host/repo.git, git@host:org/repo.git)",
    ]
    assert config.sources == {"ok": SourceSpec("ok", url="https://example.org/r.git", interval=30.0)}


def test_pipelines_are_kept_raw_but_type_checked(tmp_path: Path) -> None:
    text = """\
sources: {src: {url: "https://example.org/r.git"}}
pipelines:
  good: {source: src, mode: queued, stages: []}
  bad-mode: {source: src, mode: sometimes}
  bad-source: {source: other}
  not-a-map: [1, 2]
"""
    path = write(tmp_path, text)
    config, problems = load_config(path)
    assert config.pipelines == {"good": {"source": "src", "mode": "queued", "stages": []}}
    assert [str(p).replace(path, "cfg") for p in problems] == [
        "cfg:4: pipelines.bad-mode.mode: must be one of superseded, queued, parallel, got string 'sometimes'",
        "cfg:5: pipelines.bad-source.source: source 'other' is not a valid source",
        "cfg:6: pipelines.not-a-map: a pipeline must be a mapping, got a list",
    ]


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    text = "sources:\n  r: {path: .}\n  r: {path: ./other}\n"
    path = write(tmp_path, text)
    config, problems = load_config(path)
    assert [str(p).replace(path, "cfg") for p in problems] == [
        "cfg:3: sources.r: duplicate key 'r' (line 2); the last one wins"
    ]
    assert config.sources["r"].path == str(tmp_path / "other")


def test_merge_keys_share_app_defaults(tmp_path: Path) -> None:
    text = """\
clusters: {local: {sandbox: true}}
sources: {repo: {path: .}}
apps:
  web: &defaults {source: repo, sync: auto, prune: true, path: apps/web}
  api: {<<: *defaults, path: apps/api}
"""
    config, problems = load_config(write(tmp_path, text))
    assert problems == []
    api = config.apps["api"]
    assert (api.path, api.sync, api.prune) == ("apps/api", "auto", True)


def test_broken_files_never_raise(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    config, problems = load_config(missing)
    assert config.apps == {} and [p.message for p in problems] == [
        "cannot read config: No such file or directory"
    ]
    assert load_config(write(tmp_path, ""))[1] == []
    assert problems_of(tmp_path, "- a\n- b\n") == [
        "cfg:1: the config must be a mapping with clusters, sources, apps, pipelines, got a list"
    ]
    assert problems_of(tmp_path, "apps: [web]\n") == ["cfg:1: apps: apps must be a mapping, got a list"]
    bad = write(tmp_path, b"sources:\n  r: {path: caf\xe9}\n", "latin1.yaml")
    assert [str(p).replace(bad, "cfg") for p in load_config(bad)[1]] == [
        "cfg:2: config file is not valid UTF-8"
    ]
    assert (
        problems_of(tmp_path, "a: 1\n---\nb: 2\n")[-1]
        == "cfg:3: only one YAML document is allowed in the config"
    )


def test_alias_bomb_in_config_fails_fast(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]")
    text = "pipelines:\n  p:\n" + "\n".join("    " + x for x in lines) + "\n"
    started = time.perf_counter()
    problems = problems_of(tmp_path, text)
    assert time.perf_counter() - started < 2.0
    assert len(problems) == 1 and "alias bomb" in problems[0]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5m", 90.0),
        ("2d", 172800.0),
        ("45", 45.0),
        (" 10s ", 10.0),
        (15, 15.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "1m 30s", "-1s", "1s2", True, -3, float("inf")])
def test_parse_duration_rejects(text: str | int | float) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_json_pointer_rules() -> None:
    assert valid_json_pointer("/spec/replicas")
    assert valid_json_pointer("/metadata/annotations/a~1b~0c")
    assert valid_json_pointer("/spec/containers/0/image")
    assert not valid_json_pointer("")
    assert not valid_json_pointer("spec")
    assert not valid_json_pointer("/a~2")
    assert not valid_json_pointer("/a~")
