"""core.pipelines.spec: pipeline declarations from the config and from repositories."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from core.config import load_config, pipeline_lines, read_yaml
from core.model import Location, Problem
from core.pipelines.spec import parse_pipelines, parse_repo_pipeline
from core.pipelines.types import (
    ActionSpec,
    ApprovalAction,
    Mode,
    PipelineSpec,
    PromoteAction,
    RunAction,
    StageSpec,
    SyncAction,
    Trigger,
)

# The configuration sketch of ARCHITECTURE.md, verbatim.
SKETCH = """\
clusters:
  local: {sandbox: true}            # the built-in sandbox (kubeconfig written by `driftdeck sandbox serve`)
  prod:  {context: prod-eu}         # a kubeconfig context
sources:
  config: {path: ./config-repo, branch: main}              # local: watched with watchfiles
  web-src: {url: git@example.org:acme/web.git, branch: main, interval: 1m}
apps:
  web:
    source: config
    path: apps/web
    cluster: local
    namespace: web
    sync: auto                      # auto | manual
    selfHeal: true
    prune: true
    interval: 5m
    dependsOn: [infra]
    ignore:
      - {kind: Deployment, pointer: /spec/replicas}
      - {manager: kube-controller-manager}
pipelines:
  web:
    source: web-src
    trigger: {branches: [main], paths: ["src/**"]}
    mode: superseded                # superseded | queued | parallel
    stages:
      - name: build
        actions:
          - {name: test, run: [pytest, -q]}
          - {name: image, run: [./build.sh], runOrder: 2}
      - name: release
        actions:
          - {name: approve, approval: {timeout: 24h}}
      - name: deploy
        onFailure: rollback
        actions:
          - name: promote
            promote: {source: config, file: apps/web/deployment.yaml,
                      set: {"spec.template.spec.containers[name=web].image": "registry.example.org/web:${REVISION_SHORT}"}}
          - {name: wait, sync: {app: web, wait: healthy, timeout: 5m}, runOrder: 2}
"""


def test_sketch_parses_to_the_expected_specs(tmp_path: Path) -> None:
    path = tmp_path / "driftdeck.yaml"
    path.write_text(SKETCH)
    config, _ = load_config(str(path))
    f = str(path)
    # the sketch's app web depends on an undefined app infra, so the config drops it: name it here
    specs, problems = parse_pipelines(
        config.pipelines, file=f, lines=pipeline_lines(f), sources=config.sources, apps={"web"}
    )
    assert problems == []
    image = "registry.example.org/web:${REVISION_SHORT}"
    assert specs == {
        "web": PipelineSpec(
            name="web",
            source="web-src",
            trigger=Trigger(branches=("main",), paths=("src/**",)),
            mode=Mode.SUPERSEDED,
            location=Location(f, 22),
            stages=(
                StageSpec(
                    name="build",
                    location=Location(f, 27),
                    actions=(
                        ActionSpec("test", "run", run=RunAction(("pytest", "-q")), location=Location(f, 29)),
                        ActionSpec(
                            "image",
                            "run",
                            run_order=2,
                            run=RunAction(("./build.sh",)),
                            location=Location(f, 30),
                        ),
                    ),
                ),
                StageSpec(
                    name="release",
                    location=Location(f, 31),
                    actions=(
                        ActionSpec(
                            "approve",
                            "approval",
                            timeout=86400.0,
                            approval=ApprovalAction(timeout=86400.0),
                            location=Location(f, 33),
                        ),
                    ),
                ),
                StageSpec(
                    name="deploy",
                    on_failure="rollback",
                    location=Location(f, 34),
                    actions=(
                        ActionSpec(
                            "promote",
                            "promote",
                            promote=PromoteAction(
                                source="config",
                                file="apps/web/deployment.yaml",
                                set=(("spec.template.spec.containers[name=web].image", image),),
                            ),
                            location=Location(f, 37),
                        ),
                        ActionSpec(
                            "wait",
                            "sync",
                            run_order=2,
                            sync=SyncAction(app="web", wait="healthy", timeout=300.0),
                            location=Location(f, 40),
                        ),
                    ),
                ),
            ),
        )
    }
    web = specs["web"]
    assert [[a.name for a in g] for g in web.stages[0].groups()] == [["test"], ["image"]]
    assert web.from_repo is False and web.variables == ()


def test_pipeline_lines_are_relative_to_the_section(tmp_path: Path) -> None:
    path = tmp_path / "driftdeck.yaml"
    path.write_text(SKETCH)
    lines = pipeline_lines(str(path))
    assert lines[()] == 21
    assert lines[("web",)] == 22
    assert lines[("web", "stages", 2, "actions", 1, "sync")] == 40
    assert pipeline_lines(str(tmp_path / "missing.yaml")) == {}


# ----- helpers ------------------------------------------------------------------------------

HEAD = """\
pipelines:
  web:
    source: src
"""


def parse(text: str, **kw: Any) -> tuple[dict[str, PipelineSpec], list[Problem]]:
    data, lines, problems = read_yaml(dedent(text).encode(), "cfg")
    assert problems == []
    rel = {key[1:]: line for key, line in lines.items() if key[:1] == ("pipelines",)}
    kw.setdefault("sources", ("src", "config"))
    kw.setdefault("apps", ("web",))
    return parse_pipelines(data["pipelines"], file="cfg", lines=rel, **kw)


def errors(text: str) -> list[str]:
    specs, problems = parse(text)
    assert problems, "expected problems"
    assert "web" not in specs
    return [str(p) for p in problems]


def one_action(action: str, *, extra: str = "") -> str:
    """A pipeline with one stage whose only action is ``action`` (line 7 of the text)."""
    return HEAD + extra + "    stages:\n      - name: s\n        actions:\n          - " + action + "\n"


# ----- defaults and full forms --------------------------------------------------------------


def test_defaults_and_every_key() -> None:
    specs, problems = parse(
        """\
        pipelines:
          minimal:
            source: src
            stages: [{name: s, actions: [{name: a, run: make}]}]
          full:
            source: src
            trigger:
              branches: [main, "release/*"]
              tags: ["v*"]
              paths: ["src/**"]
              exclude: ["src/**/*.md"]
              manual: true
            mode: queued
            variables: {REGISTRY: registry.example.org, REPLICAS: 3}
            stages:
              - name: s
                onFailure: fail
                actions:
                  - name: a
                    run: "make test | tee out.log"
                    env: {GOFLAGS: -mod=mod, N: 2}
                    timeout: 90s
                    runOrder: 3
                  - name: gate
                    approval: {message: ship it?}
                    timeout: 2h
                  - name: up
                    sync: {app: web, wait: none, timeout: 2h}
                  - name: bump
                    promote: {source: config, file: ./apps/../apps/web.yaml, set: {"a.b[0]": 1}, message: bump}
        """
    )
    assert problems == []
    minimal = specs["minimal"]
    assert minimal.trigger == Trigger()
    assert minimal.mode is Mode.SUPERSEDED
    action = minimal.stages[0].actions[0]
    assert (action.kind, action.run_order, action.timeout, action.run) == (
        "run",
        1,
        3600.0,
        RunAction("make"),
    )
    assert minimal.stages[0].on_failure == "fail"

    full = specs["full"]
    assert full.trigger == Trigger(
        branches=("main", "release/*"),
        tags=("v*",),
        paths=("src/**",),
        exclude=("src/**/*.md",),
        manual_only=True,
    )
    assert full.mode is Mode.QUEUED
    assert full.variables == (("REGISTRY", "registry.example.org"), ("REPLICAS", "3"))
    run, gate, up, bump = full.stages[0].actions
    assert run.run == RunAction("make test | tee out.log", env=(("GOFLAGS", "-mod=mod"), ("N", "2")))
    assert (run.timeout, run.run_order) == (90.0, 3)
    # an action-level timeout on an approval is the approval's timeout
    assert gate.approval == ApprovalAction(timeout=7200.0, message="ship it?") and gate.timeout == 7200.0
    # the action's default timeout grows to cover the health wait
    assert up.sync == SyncAction(app="web", wait="none", timeout=7200.0) and up.timeout == 7200.0
    assert bump.promote == PromoteAction(
        source="config", file="apps/web.yaml", set=(("a.b[0]", "1"),), message="bump"
    )
    assert [[a.name for a in g] for g in full.stages[0].groups()] == [["gate", "up", "bump"], ["a"]]


def test_a_broken_pipeline_is_left_out_and_the_others_kept() -> None:
    specs, problems = parse(
        """\
        pipelines:
          good:
            source: src
            stages: [{name: s, actions: [{name: a, run: [make]}]}]
          bad:
            source: src
            stages: [{name: s, actions: [{name: a, run: []}]}]
        """
    )
    assert list(specs) == ["good"]
    assert [str(p) for p in problems] == [
        "cfg:7: pipelines.bad.stages[0].actions[0].run: must not be empty (a list like [make, test])"
    ]


# ----- errors, each with its line and key path ------------------------------------------------


ERROR_CASES = [
    pytest.param(
        "pipelines:\n  web:\n    source: nope\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:3: pipelines.web.source: source 'nope' is not defined under sources"],
        id="unknown-source",
    ),
    pytest.param(
        "pipelines:\n  web:\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:2: pipelines.web.source: is required"],
        id="missing-source",
    ),
    pytest.param(
        "pipelines:\n  web: [a]\n",
        ["cfg:2: pipelines.web: a pipeline must be a mapping, got a list"],
        id="pipeline-not-mapping",
    ),
    pytest.param(
        "pipelines:\n  web!:\n    source: src\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        [
            "cfg:2: pipelines.web!: invalid pipeline name 'web!': use letters, digits, '-', '_' or '.', at most 63"
        ],
        id="bad-pipeline-name",
    ),
    pytest.param(
        HEAD + "    mode: sometimes\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:4: pipelines.web.mode: must be one of superseded, queued, parallel, got string 'sometimes'"],
        id="bad-mode",
    ),
    pytest.param(
        HEAD + "    stage: []\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:4: pipelines.web.stage: unknown key 'stage' (did you mean 'stages'?)"],
        id="unknown-key",
    ),
    pytest.param(
        HEAD + "    trigger: [main]\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:4: pipelines.web.trigger: trigger must be a mapping, got a list"],
        id="trigger-not-mapping",
    ),
    pytest.param(
        HEAD + "    trigger:\n      branches: main\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:5: pipelines.web.trigger.branches: must be a list of patterns like [main], got string 'main'"],
        id="branches-not-list",
    ),
    pytest.param(
        HEAD + "    trigger:\n      paths:\n        - src/**\n        - '[z-a]'\n"
        "    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        [
            "cfg:7: pipelines.web.trigger.paths[1]: invalid pattern '[z-a]': "
            "bad character class in '[z-a]': bad character range z-a"
        ],
        id="bad-glob",
    ),
    pytest.param(
        HEAD + "    trigger: {tags: [1]}\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:4: pipelines.web.trigger.tags[0]: must be a pattern string, got number 1"],
        id="tag-not-string",
    ),
    pytest.param(
        HEAD
        + "    trigger:\n      manual: yes please\n    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        ["cfg:5: pipelines.web.trigger.manual: must be true or false, got string 'yes please'"],
        id="manual-not-bool",
    ),
    pytest.param(
        HEAD + "    variables:\n      bad-name: x\n      FLAG: on\n"
        "    stages: [{name: s, actions: [{name: a, run: x}]}]\n",
        [
            "cfg:5: pipelines.web.variables.bad-name: invalid variable name 'bad-name': use letters, digits and '_'",
            "cfg:6: pipelines.web.variables.FLAG: must be a string, got boolean true (quote it)",
        ],
        id="bad-variables",
    ),
    pytest.param(HEAD, ["cfg:2: pipelines.web.stages: a pipeline needs at least one stage"], id="no-stages"),
    pytest.param(
        HEAD + "    stages: {build: {}}\n",
        ["cfg:4: pipelines.web.stages: must be a list of stages, got a mapping"],
        id="stages-not-list",
    ),
    pytest.param(
        HEAD + "    stages:\n      - build\n",
        [
            "cfg:5: pipelines.web.stages[0]: a stage must be a mapping like {name: build, actions: [...]}, got string 'build'"
        ],
        id="stage-not-mapping",
    ),
    pytest.param(
        HEAD + "    stages:\n      - actions: [{name: a, run: x}]\n",
        ["cfg:5: pipelines.web.stages[0].name: is required"],
        id="stage-without-name",
    ),
    pytest.param(
        HEAD + "    stages:\n"
        "      - name: build\n        actions: [{name: a, run: x}]\n"
        "      - name: build\n        actions: [{name: a, run: x}]\n",
        ["cfg:7: pipelines.web.stages[1].name: duplicate stage name 'build' (also stages[0], line 5)"],
        id="duplicate-stage",
    ),
    pytest.param(
        HEAD
        + "    stages:\n      - name: s\n        onFailure: retry\n        actions: [{name: a, run: x}]\n",
        ["cfg:6: pipelines.web.stages[0].onFailure: must be one of fail, rollback, got string 'retry'"],
        id="bad-on-failure",
    ),
    pytest.param(
        HEAD + "    mode: parallel\n    stages:\n      - name: s\n        onFailure: rollback\n"
        "        actions: [{name: a, run: x}]\n",
        [
            "cfg:7: pipelines.web.stages[0].onFailure: rollback is not available in mode: parallel (runs overlap)"
        ],
        id="rollback-in-parallel",
    ),
    pytest.param(
        HEAD + "    stages:\n      - name: s\n        actions: []\n",
        ["cfg:6: pipelines.web.stages[0].actions: a stage needs at least one action"],
        id="no-actions",
    ),
    pytest.param(
        HEAD + "    stages:\n      - name: s\n        actions:\n          - {name: a, run: x}\n"
        "          - {name: b, run: y}\n          - {name: a, run: z}\n",
        [
            "cfg:9: pipelines.web.stages[0].actions[2].name: duplicate action name 'a' in this stage "
            "(also actions[0], line 7)"
        ],
        id="duplicate-action",
    ),
    pytest.param(
        one_action("{name: a}"),
        [
            "cfg:7: pipelines.web.stages[0].actions[0]: an action needs exactly one of run, approval, promote or sync"
        ],
        id="no-kind",
    ),
    pytest.param(
        one_action("name: a\n            run: x\n            approval: {}"),
        [
            "cfg:9: pipelines.web.stages[0].actions[0].approval: an action has exactly one kind; found run and approval"
        ],
        id="two-kinds",
    ),
    pytest.param(
        one_action("name: a\n            sync: {app: web}\n            env: {A: b}"),
        ["cfg:9: pipelines.web.stages[0].actions[0].env: env is only for run actions, not sync"],
        id="env-without-run",
    ),
    pytest.param(
        one_action("{name: a, run: x, runOrder: 0}"),
        [
            "cfg:7: pipelines.web.stages[0].actions[0].runOrder: must be a whole number from 1 to 999, got number 0"
        ],
        id="run-order-zero",
    ),
    pytest.param(
        one_action("name: a\n            run: x\n            runOrder: '2'"),
        [
            "cfg:9: pipelines.web.stages[0].actions[0].runOrder: "
            "must be a whole number from 1 to 999, got string '2'"
        ],
        id="run-order-string",
    ),
    pytest.param(
        one_action("name: a\n            run: x\n            timeout: soon"),
        [
            "cfg:9: pipelines.web.stages[0].actions[0].timeout: must be a duration like 30s, 5m or 1h, got string 'soon'"
        ],
        id="bad-timeout",
    ),
    pytest.param(
        one_action("name: a\n            run:\n              - echo\n              - yes"),
        ["cfg:10: pipelines.web.stages[0].actions[0].run[1]: must be a string, got boolean true (quote it)"],
        id="run-item-bool",
    ),
    pytest.param(
        one_action("name: a\n            run: {cmd: make}"),
        [
            "cfg:8: pipelines.web.stages[0].actions[0].run: "
            "must be a command: a list like [pytest, -q] or a shell string, got a mapping"
        ],
        id="run-mapping",
    ),
    pytest.param(
        one_action("name: a\n            run: ['', x]"),
        ["cfg:8: pipelines.web.stages[0].actions[0].run[0]: the program must not be empty"],
        id="run-empty-program",
    ),
    pytest.param(
        one_action("name: a\n            run: x\n            env:\n              A-B: c"),
        [
            "cfg:10: pipelines.web.stages[0].actions[0].env.A-B: invalid variable name 'A-B': use letters, digits and '_'"
        ],
        id="bad-env-name",
    ),
    pytest.param(
        one_action("name: a\n            approval: {timeout: 1h}\n            timeout: 2h"),
        [
            "cfg:9: pipelines.web.stages[0].actions[0].timeout: give an approval's timeout once, in approval.timeout"
        ],
        id="approval-timeout-twice",
    ),
    pytest.param(
        one_action("name: a\n            approval:\n              timeout: -1h"),
        [
            "cfg:9: pipelines.web.stages[0].actions[0].approval.timeout: "
            "must be a duration like 30s, 5m or 1h, got string '-1h'"
        ],
        id="approval-bad-timeout",
    ),
    pytest.param(
        one_action(
            "name: a\n            promote:\n              source: other\n              file: /etc/passwd\n"
            "              set: {x: y}"
        ),
        [
            "cfg:9: pipelines.web.stages[0].actions[0].promote.source: source 'other' is not defined under sources",
            "cfg:10: pipelines.web.stages[0].actions[0].promote.file: "
            "must be a file path inside the source repository, got '/etc/passwd'",
        ],
        id="promote-source-and-file",
    ),
    pytest.param(
        one_action("name: a\n            promote: {source: config, file: ../x.yaml, set: {x: y}}"),
        [
            "cfg:8: pipelines.web.stages[0].actions[0].promote.file: "
            "must be a file path inside the source repository, got '../x.yaml'"
        ],
        id="promote-file-escapes",
    ),
    pytest.param(
        one_action("name: a\n            promote:\n              source: config\n              file: a.yaml"),
        [
            'cfg:8: pipelines.web.stages[0].actions[0].promote.set: needs at least one {"path.to.field": value} to set'
        ],
        id="promote-nothing-to-set",
    ),
    pytest.param(
        one_action(
            "name: a\n            promote:\n              source: config\n              file: a.yaml\n"
            "              set:\n                spec..image: x"
        ),
        [
            "cfg:12: pipelines.web.stages[0].actions[0].promote.set[spec..image]: "
            "invalid field path 'spec..image' (e.g. spec.template.spec.containers[name=web].image)"
        ],
        id="promote-bad-set-path",
    ),
    pytest.param(
        one_action("name: a\n            promote: config"),
        ["cfg:8: pipelines.web.stages[0].actions[0].promote: promote must be a mapping, got string 'config'"],
        id="promote-not-mapping",
    ),
    pytest.param(
        one_action("name: a\n            sync:\n              app: api\n              wait: ready"),
        [
            "cfg:9: pipelines.web.stages[0].actions[0].sync.app: app 'api' is not defined under apps",
            "cfg:10: pipelines.web.stages[0].actions[0].sync.wait: must be one of healthy, none, got string 'ready'",
        ],
        id="sync-unknown-app-and-wait",
    ),
    pytest.param(
        one_action("name: a\n            sync: {app: web, timeout: 2h}\n            timeout: 1h"),
        [
            "cfg:8: pipelines.web.stages[0].actions[0].sync.timeout: "
            "the health wait (7200s) is longer than the action's timeout (3600s)"
        ],
        id="sync-wait-longer-than-action",
    ),
    pytest.param(
        one_action("name: a\n            sync: {app: web, tiemout: 2h}"),
        [
            "cfg:8: pipelines.web.stages[0].actions[0].sync.tiemout: unknown key 'tiemout' (did you mean 'timeout'?)"
        ],
        id="sync-typo",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_errors_carry_line_and_key_path(text: str, expected: list[str]) -> None:
    assert errors(text) == expected


def test_problems_keep_field_and_location() -> None:
    _, problems = parse(one_action("{name: a, run: x, runOrder: 0}"))
    assert problems == [
        Problem(
            "must be a whole number from 1 to 999, got number 0",
            Location("cfg", 7),
            field="pipelines.web.stages[0].actions[0].runOrder",
        )
    ]


def test_without_lines_problems_have_the_file_only() -> None:
    specs, problems = parse_pipelines({"web": {"source": "x", "stages": []}}, file="cfg", sources=("x",))
    assert specs == {}
    assert [str(p) for p in problems] == ["cfg: pipelines.web.stages: a pipeline needs at least one stage"]


def test_unknown_sources_and_apps_by_default() -> None:
    raw = {"web": {"source": "src", "stages": [{"name": "s", "actions": [{"name": "a", "run": "x"}]}]}}
    specs, problems = parse_pipelines(raw, file="cfg")
    assert specs == {}
    assert [p.message for p in problems] == ["source 'src' is not defined under sources"]


# ----- .driftdeck/pipeline.yaml -------------------------------------------------------------


def repo(text: str, **kw: Any) -> tuple[list[PipelineSpec], list[str]]:
    kw.setdefault("apps", ("web",))
    specs, problems = parse_repo_pipeline(
        dedent(text).encode(), file="web/.driftdeck/pipeline.yaml", source="web-src", **kw
    )
    return specs, [str(p) for p in problems]


def test_repo_single_pipeline_defaults_to_its_own_source() -> None:
    specs, problems = repo(
        """\
        name: ci
        trigger: {branches: [main]}
        stages:
          - name: test
            actions: [{name: unit, run: [make, test]}]
        """
    )
    assert problems == []
    assert specs == [
        PipelineSpec(
            name="ci",
            source="web-src",
            trigger=Trigger(branches=("main",)),
            from_repo=True,
            location=Location("web/.driftdeck/pipeline.yaml", 1),
            stages=(
                StageSpec(
                    "test",
                    (
                        ActionSpec(
                            "unit",
                            "run",
                            run=RunAction(("make", "test")),
                            location=Location("web/.driftdeck/pipeline.yaml", 5),
                        ),
                    ),
                    location=Location("web/.driftdeck/pipeline.yaml", 4),
                ),
            ),
        )
    ]


def test_repo_pipelines_mapping_keeps_good_ones() -> None:
    specs, problems = repo(
        """\
        pipelines:
          ci:
            stages: [{name: s, actions: [{name: a, run: make}]}]
          deploy:
            source: web-src
            stages: [{name: s, actions: [{name: w, sync: {app: web}}]}]
          broken:
            source: config
            stages: [{name: s, actions: [{name: a, run: make}]}]
        """,
        sources=("web-src", "config"),
    )
    assert [(s.name, s.source, s.from_repo) for s in specs] == [
        ("ci", "web-src", True),
        ("deploy", "web-src", True),
    ]
    assert problems == [
        "web/.driftdeck/pipeline.yaml:8: pipelines.broken.source: a pipeline in .driftdeck/pipeline.yaml "
        "builds its own repository (source 'web-src'); remove source or set it to 'web-src'"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "", ["web/.driftdeck/pipeline.yaml: .driftdeck/pipeline.yaml declares no pipeline"], id="empty"
        ),
        pytest.param(
            "[a, b]\n",
            [
                "web/.driftdeck/pipeline.yaml:1: expected a pipeline with a name, or pipelines: {name: {...}}, got a list"
            ],
            id="list",
        ),
        pytest.param(
            "stages: []\n",
            [
                "web/.driftdeck/pipeline.yaml:1: expected a pipeline with a name, "
                "or pipelines: {name: {...}}, got a mapping"
            ],
            id="no-name",
        ),
        pytest.param(
            "name: ci\nstages:\n  - name: s\n    actions: [{name: a, run: x}]\nsourc: web-src\n",
            ["web/.driftdeck/pipeline.yaml:5: sourc: unknown key 'sourc' (did you mean 'source'?)"],
            id="single-typo",
        ),
        pytest.param(
            "name: 'c i'\nstages: [{name: s, actions: [{name: a, run: x}]}]\n",
            [
                "web/.driftdeck/pipeline.yaml:1: name: invalid pipeline name 'c i': "
                "use letters, digits, '-', '_' or '.', at most 63"
            ],
            id="bad-name",
        ),
        pytest.param(
            "pipelines: {}\n",
            ["web/.driftdeck/pipeline.yaml:1: pipelines: .driftdeck/pipeline.yaml declares no pipeline"],
            id="no-pipelines",
        ),
    ],
)
def test_repo_file_errors(text: str, expected: list[str]) -> None:
    specs, problems = repo(text)
    assert specs == []
    assert problems == expected


def test_repo_syntax_error_has_its_line() -> None:
    specs, problems = repo("name: ci\nstages:\n  - name: s\n    actions: [\n")
    assert specs == []
    assert len(problems) == 1
    # the wording after the prefix is libyaml's or PyYAML's, whichever loader is installed
    assert problems[0].startswith("web/.driftdeck/pipeline.yaml:5: YAML syntax error: ")


def test_repo_second_document_is_reported_and_the_first_used() -> None:
    specs, problems = repo("name: ci\nstages: [{name: s, actions: [{name: a, run: x}]}]\n---\nname: cd\n")
    assert [s.name for s in specs] == ["ci"]
    assert problems == ["web/.driftdeck/pipeline.yaml:4: only one YAML document is allowed in the pipeline"]


def test_repo_file_is_read_safely() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    specs, problems = parse_repo_pipeline(bomb.encode(), file="p.yaml", source="s")
    assert specs == []
    assert len(problems) == 1 and "alias bomb" in problems[0].message

    specs, problems = parse_repo_pipeline(b"name: \xff\n", file="p.yaml", source="s")
    assert [str(p) for p in problems] == ["p.yaml:1: pipeline file is not valid UTF-8"]

    specs, problems = parse_repo_pipeline(b"#" * (4 * 1024 * 1024 + 1), file="p.yaml", source="s")
    assert [str(p) for p in problems] == ["p.yaml: pipeline file is larger than 4 MiB"]
