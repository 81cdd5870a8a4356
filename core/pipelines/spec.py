"""Parse pipeline declarations into :mod:`core.pipelines.types` specs.

Two places declare pipelines: the ``pipelines:`` section of ``driftdeck.yaml``
(:func:`parse_pipelines`, given the raw mapping and the line map from
:func:`core.config.pipeline_lines`) and ``.driftdeck/pipeline.yaml`` inside a
source repository, read at the triggering revision (:func:`parse_repo_pipeline`).

Nothing raises for bad input: every error is a :class:`~core.model.Problem` with
``file:line`` and the key path (``pipelines.web.stages[1].actions[0].run``). A
pipeline with any problem is left out; the others are kept.

Decisions beyond the key contract:

* ``runOrder`` is an integer 1..999 (CodePipeline's range); ``timeout`` a duration.
* An approval's timeout is its own (``approval.timeout``, default 24h, or the
  action's ``timeout`` when only that is given; not both). A sync action's
  ``timeout`` defaults to the larger of 1h and ``sync.timeout``; a smaller
  explicit one is an error (the health wait could never finish).
* ``onFailure: rollback`` is refused in ``mode: parallel`` (as in CodePipeline).
* ``run`` argv items and ``env``/``variables``/``promote.set`` values are strings;
  integers are taken as written, booleans and floats must be quoted (YAML 1.1
  reads ``on``/``yes`` as booleans and ``1.10`` as 1.1).
* Trigger patterns are checked with :func:`core.pipelines.triggers.glob_error`.
* A repository pipeline builds its own repository: ``source`` may be omitted or
  must name it.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Collection, Mapping
from typing import Any

from core.config import PathT, describe, parse_duration, read_yaml
from core.model import Location, Problem
from core.pipelines.triggers import glob_error
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
from core.render import format_path

__all__ = ["REPO_PIPELINE_FILE", "parse_pipelines", "parse_repo_pipeline"]

REPO_PIPELINE_FILE = ".driftdeck/pipeline.yaml"

PIPELINE_KEYS = ("source", "trigger", "mode", "variables", "stages")
TRIGGER_KEYS = ("branches", "tags", "paths", "exclude", "manual")
STAGE_KEYS = ("name", "onFailure", "actions")
ACTION_KINDS = ("run", "approval", "promote", "sync")
ACTION_KEYS = ("name", "runOrder", "timeout", *ACTION_KINDS, "env")
APPROVAL_KEYS = ("timeout", "message")
PROMOTE_KEYS = ("source", "file", "set", "message")
SYNC_KEYS = ("app", "wait", "timeout")
ON_FAILURE = ("fail", "rollback")
SYNC_WAIT = ("healthy", "none")
MAX_RUN_ORDER = 999
DEFAULT_ACTION_TIMEOUT = 3600.0

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SET_PATH = re.compile(r"^(?:[^.\[\]]+|\[[^\[\]]+\])(?:\.[^.\[\]]+|\[[^\[\]]+\])*$")




class _Parser:
    """Validates pipeline mappings, collecting problems with file:line and key paths."""

    def __init__(
        self,
        file: str,
        lines: Mapping[PathT, int],
        sources: Collection[str],
        apps: Collection[str],
    ) -> None:
        self.file = file
        self.lines = lines
        self.sources = sources
        self.apps = apps
        self.problems: list[Problem] = []

    # -- primitives --

    def line(self, path: PathT) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 0)

    def loc(self, path: PathT) -> Location:
        return Location(self.file, self.line(path))

    def report(self, path: PathT, message: str) -> None:
        self.problems.append(Problem(message, self.loc(path), field=format_path(path)))

    def keys(self, body: Mapping[str, Any], path: PathT, allowed: tuple[str, ...]) -> None:
        for key in body:
            if key not in allowed:
                near = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {near[0]!r}?" if near else "expected one of: " + ", ".join(allowed)
                self.report((*path, key), f"unknown key {key!r} ({hint})")

    def mapping(self, value: Any, path: PathT, what: str, *, null_ok: bool = True) -> dict[str, Any] | None:
        if value is None and null_ok:
            return {}
        if not isinstance(value, dict):
            self.report(path, f"{what} must be a mapping, got {describe(value)}")
            return None
        return value

    def string(self, value: Any, path: PathT, *, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                self.report(path, "is required")
                return None
            return ""
        if not isinstance(value, str):
            self.report(path, f"must be a string, got {describe(value)}")
            return None
        return value

    def text(self, value: Any, path: PathT) -> str | None:
        """A string value; integers as written; booleans, floats and null refused."""
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        hint = " (quote it)" if isinstance(value, bool | float) else ""
        self.report(path, f"must be a string, got {describe(value)}{hint}")
        return None

    def duration(self, value: Any, path: PathT, default: float) -> float | None:
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.report(path, f"must be a duration like 30s, 5m or 1h, got {describe(value)}")
            return None
        if seconds <= 0:
            self.report(path, "must be greater than zero")
            return None
        return seconds

    def name(self, value: Any, path: PathT, what: str) -> str | None:
        name = self.string(value, path, required=True)
        if not name:
            return None
        if not _NAME.match(name):
            self.report(
                path, f"invalid {what} name {name!r}: use letters, digits, '-', '_' or '.', at most 63"
            )
            return None
        return name

    def choice(self, value: Any, path: PathT, allowed: tuple[str, ...], default: str) -> str | None:
        if value is None:
            return default
        if value not in allowed:
            hint = " (YAML 1.1 reads on/off/yes/no as booleans)" if isinstance(value, bool) else ""
            self.report(path, f"must be one of {', '.join(allowed)}, got {describe(value)}{hint}")
            return None
        return str(value)

    def pairs(
        self, value: Any, path: PathT, what: str, *, env_names: bool
    ) -> tuple[tuple[str, str], ...] | None:
        body = self.mapping(value, path, what)
        if body is None:
            return None
        out: list[tuple[str, str]] = []
        ok = True
        for key, raw in body.items():
            if env_names and not _ENV_NAME.match(key):
                self.report((*path, key), f"invalid variable name {key!r}: use letters, digits and '_'")
                ok = False
            text = self.text(raw, (*path, key))
            if text is None:
                ok = False
            else:
                out.append((key, text))
        return tuple(out) if ok else None

    # -- pipelines --

    def pipeline(
        self,
        name: Any,
        raw: Any,
        path: PathT,
        *,
        name_path: PathT,
        repo_source: str | None = None,
        extra_keys: tuple[str, ...] = (),
    ) -> PipelineSpec | None:
        before = len(self.problems)
        valid_name = self.name(name, name_path, "pipeline")
        body = self.mapping(raw, path, "a pipeline", null_ok=False)
        if body is None:
            return None
        self.keys(body, path, (*extra_keys, *PIPELINE_KEYS))
        source = self.pipeline_source(body, path, repo_source)
        trigger = self.trigger(body.get("trigger"), (*path, "trigger"))
        mode_value = self.choice(body.get("mode"), (*path, "mode"), tuple(Mode), Mode.SUPERSEDED.value)
        mode = Mode(mode_value) if mode_value is not None else None
        variables = self.pairs(body.get("variables"), (*path, "variables"), "variables", env_names=True)
        stages = self.stages(body.get("stages"), (*path, "stages"), mode)
        if len(self.problems) != before:
            return None
        assert valid_name and source and trigger is not None and mode is not None
        assert variables is not None and stages is not None
        return PipelineSpec(
            name=valid_name,
            source=source,
            stages=stages,
            trigger=trigger,
            mode=mode,
            variables=variables,
            from_repo=repo_source is not None,
            location=self.loc(path),
        )

    def pipeline_source(self, body: Mapping[str, Any], path: PathT, repo_source: str | None) -> str | None:
        spath = (*path, "source")
        if repo_source is not None:
            given = self.string(body.get("source"), spath)
            if given and given != repo_source:
                self.report(
                    spath,
                    f"a pipeline in {REPO_PIPELINE_FILE} builds its own repository "
                    f"(source {repo_source!r}); remove source or set it to {repo_source!r}",
                )
                return None
            return repo_source
        source = self.string(body.get("source"), spath, required=True)
        if source and source not in self.sources:
            self.report(spath, f"source {source!r} is not defined under sources")
            return None
        return source

    def trigger(self, value: Any, path: PathT) -> Trigger | None:
        body = self.mapping(value, path, "trigger")
        if body is None:
            return None
        self.keys(body, path, TRIGGER_KEYS)
        lists = {key: self.patterns(body.get(key), (*path, key)) for key in TRIGGER_KEYS[:4]}
        manual = body.get("manual")
        if manual is not None and not isinstance(manual, bool):
            self.report((*path, "manual"), f"must be true or false, got {describe(manual)}")
            return None
        branches, tags, paths, exclude = (lists[k] for k in TRIGGER_KEYS[:4])
        if branches is None or tags is None or paths is None or exclude is None:
            return None
        return Trigger(branches, tags, paths, exclude, manual_only=bool(manual))

    def patterns(self, value: Any, path: PathT) -> tuple[str, ...] | None:
        if value is None:
            return ()
        if not isinstance(value, list):
            example = f"[{value}]" if isinstance(value, str) else "[main]"
            self.report(path, f"must be a list of patterns like {example}, got {describe(value)}")
            return None
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.report((*path, i), f"must be a pattern string, got {describe(item)}")
                continue
            error = glob_error(item)
            if error is not None:
                self.report((*path, i), f"invalid pattern {item!r}: {error}")
                continue
            out.append(item)
        return tuple(out) if len(out) == len(value) else None

    # -- stages and actions --

    def stages(self, value: Any, path: PathT, mode: Mode | None) -> tuple[StageSpec, ...] | None:
        if value is None or value == []:
            self.report(path, "a pipeline needs at least one stage")
            return None
        if not isinstance(value, list):
            self.report(path, f"must be a list of stages, got {describe(value)}")
            return None
        out: list[StageSpec] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(value):
            stage = self.stage(raw, (*path, i), mode)
            if stage is None:
                continue
            if stage.name in seen:
                first = seen[stage.name]
                self.report(
                    (*path, i, "name"),
                    f"duplicate stage name {stage.name!r} (also stages[{first}], line {self.line((*path, first))})",
                )
                continue
            seen[stage.name] = i
            out.append(stage)
        return tuple(out) if len(out) == len(value) else None

    def stage(self, raw: Any, path: PathT, mode: Mode | None) -> StageSpec | None:
        if not isinstance(raw, dict):
            self.report(
                path, f"a stage must be a mapping like {{name: build, actions: [...]}}, got {describe(raw)}"
            )
            return None
        before = len(self.problems)
        self.keys(raw, path, STAGE_KEYS)
        name = self.name(raw.get("name"), (*path, "name"), "stage")
        on_failure = self.choice(raw.get("onFailure"), (*path, "onFailure"), ON_FAILURE, "fail")
        if on_failure == "rollback" and mode is Mode.PARALLEL:
            self.report((*path, "onFailure"), "rollback is not available in mode: parallel (runs overlap)")
        actions = self.actions(raw.get("actions"), (*path, "actions"))
        if len(self.problems) != before or name is None or on_failure is None or actions is None:
            return None
        return StageSpec(name=name, actions=actions, on_failure=on_failure, location=self.loc(path))

    def actions(self, value: Any, path: PathT) -> tuple[ActionSpec, ...] | None:
        if value is None or value == []:
            self.report(path, "a stage needs at least one action")
            return None
        if not isinstance(value, list):
            self.report(path, f"must be a list of actions, got {describe(value)}")
            return None
        out: list[ActionSpec] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(value):
            action = self.action(raw, (*path, i))
            if action is None:
                continue
            if action.name in seen:
                first = seen[action.name]
                self.report(
                    (*path, i, "name"),
                    f"duplicate action name {action.name!r} in this stage "
                    f"(also actions[{first}], line {self.line((*path, first))})",
                )
                continue
            seen[action.name] = i
            out.append(action)
        return tuple(out) if len(out) == len(value) else None

    def action(self, raw: Any, path: PathT) -> ActionSpec | None:
        if not isinstance(raw, dict):
            self.report(
                path, f"an action must be a mapping like {{name: test, run: [make, test]}}, got {describe(raw)}"
            )
            return None
        before = len(self.problems)
        self.keys(raw, path, ACTION_KEYS)
        name = self.name(raw.get("name"), (*path, "name"), "action")
        run_order = self.run_order(raw.get("runOrder"), (*path, "runOrder"))
        timeout = self.duration(raw.get("timeout"), (*path, "timeout"), DEFAULT_ACTION_TIMEOUT)
        kinds = [k for k in ACTION_KINDS if k in raw]
        if not kinds:
            self.report(path, "an action needs exactly one of run, approval, promote or sync")
            return None
        if len(kinds) > 1:
            self.report((*path, kinds[1]), f"an action has exactly one kind; found {' and '.join(kinds)}")
            return None
        kind = kinds[0]
        if "env" in raw and kind != "run":
            self.report((*path, "env"), f"env is only for run actions, not {kind}")
        run = approval = promote = sync = None
        kpath = (*path, kind)
        if kind == "run":
            run = self.run(raw["run"], kpath, raw.get("env"), (*path, "env"))
        elif kind == "approval":
            given = (*path, "timeout") if raw.get("timeout") is not None else None
            approval = self.approval(raw["approval"], kpath, timeout, given)
            if approval is not None:
                timeout = approval.timeout
        elif kind == "promote":
            promote = self.promote(raw["promote"], kpath)
        else:
            sync = self.sync(raw["sync"], kpath)
            if sync is not None and timeout is not None:
                if raw.get("timeout") is None:
                    timeout = max(timeout, sync.timeout)
                elif sync.timeout > timeout:
                    self.report(
                        (*kpath, "timeout"),
                        f"the health wait ({sync.timeout:g}s) is longer than the action's timeout ({timeout:g}s)",
                    )
        if len(self.problems) != before:
            return None
        assert name is not None and run_order is not None and timeout is not None
        return ActionSpec(
            name=name,
            kind=kind,
            run_order=run_order,
            timeout=timeout,
            run=run,
            approval=approval,
            promote=promote,
            sync=sync,
            location=self.loc(path),
        )

    def run_order(self, value: Any, path: PathT) -> int | None:
        if value is None:
            return 1
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RUN_ORDER:
            self.report(path, f"must be a whole number from 1 to {MAX_RUN_ORDER}, got {describe(value)}")
            return None
        return value

    def run(self, value: Any, path: PathT, env_value: Any, env_path: PathT) -> RunAction | None:
        env = self.pairs(env_value, env_path, "env", env_names=True)
        command: tuple[str, ...] | str | None = None
        if isinstance(value, str):
            if value.strip():
                command = value
            else:
                self.report(path, "must not be empty")
        elif isinstance(value, list):
            argv = [self.text(item, (*path, i)) for i, item in enumerate(value)]
            if not value:
                self.report(path, "must not be empty (a list like [make, test])")
            elif all(a is not None for a in argv):
                if not argv[0]:
                    self.report((*path, 0), "the program must not be empty")
                else:
                    command = tuple(a for a in argv if a is not None)
        else:
            self.report(
                path, f"must be a command: a list like [pytest, -q] or a shell string, got {describe(value)}"
            )
        if command is None or env is None:
            return None
        return RunAction(command=command, env=env)

    def approval(
        self, value: Any, path: PathT, action_timeout: float | None, action_timeout_path: PathT | None
    ) -> ApprovalAction | None:
        """``action_timeout_path`` is set when the action gave its own ``timeout`` (parsed: ``action_timeout``)."""
        body = self.mapping(value, path, "approval")
        if body is None:
            return None
        self.keys(body, path, APPROVAL_KEYS)
        if action_timeout_path is None:
            timeout = self.duration(body.get("timeout"), (*path, "timeout"), ApprovalAction.timeout)
        elif body.get("timeout") is not None:
            self.report(action_timeout_path, "give an approval's timeout once, in approval.timeout")
            return None
        else:
            timeout = action_timeout
        message = self.string(body.get("message"), (*path, "message"))
        if timeout is None or message is None:
            return None
        return ApprovalAction(timeout=timeout, message=message)

    def promote(self, value: Any, path: PathT) -> PromoteAction | None:
        body = self.mapping(value, path, "promote", null_ok=False)
        if body is None:
            return None
        before = len(self.problems)
        self.keys(body, path, PROMOTE_KEYS)
        source = self.string(body.get("source"), (*path, "source"), required=True)
        if source and source not in self.sources:
            self.report((*path, "source"), f"source {source!r} is not defined under sources")
        file = self.repo_file(body.get("file"), (*path, "file"))
        changes = self.set_paths(body.get("set"), (*path, "set"))
        message = self.string(body.get("message"), (*path, "message"))
        if len(self.problems) != before:
            return None
        assert source and file and changes is not None and message is not None
        return PromoteAction(source=source, file=file, set=changes, message=message)

    def repo_file(self, value: Any, path: PathT) -> str | None:
        text = self.string(value, path, required=True)
        if not text:
            return None
        norm = posixpath.normpath(text.strip())
        if norm.startswith("/") or norm in (".", "..") or norm.startswith("../"):
            self.report(path, f"must be a file path inside the source repository, got {text!r}")
            return None
        return norm

    def set_paths(self, value: Any, path: PathT) -> tuple[tuple[str, str], ...] | None:
        if not value:
            self.report(path, 'needs at least one {"path.to.field": value} to set')
            return None
        changes = self.pairs(value, path, "set", env_names=False)
        if changes is None:
            return None
        for key, _ in changes:
            if not _SET_PATH.match(key):
                self.report(
                    (*path, key),
                    f"invalid field path {key!r} (e.g. spec.template.spec.containers[name=web].image)",
                )
                return None
        return changes

    def sync(self, value: Any, path: PathT) -> SyncAction | None:
        body = self.mapping(value, path, "sync", null_ok=False)
        if body is None:
            return None
        before = len(self.problems)
        self.keys(body, path, SYNC_KEYS)
        app = self.string(body.get("app"), (*path, "app"), required=True)
        if app and app not in self.apps:
            self.report((*path, "app"), f"app {app!r} is not defined under apps")
        wait = self.choice(body.get("wait"), (*path, "wait"), SYNC_WAIT, "healthy")
        timeout = self.duration(body.get("timeout"), (*path, "timeout"), SyncAction.timeout)
        if len(self.problems) != before:
            return None
        assert app and wait is not None and timeout is not None
        return SyncAction(app=app, wait=wait, timeout=timeout)


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.location.line if p.location else 0)


def parse_pipelines(
    raw: Mapping[str, Any],
    *,
    file: str,
    lines: Mapping[PathT, int] | None = None,
    sources: Collection[str] = (),
    apps: Collection[str] = (),
) -> tuple[dict[str, PipelineSpec], list[Problem]]:
    """Specs from the config's ``pipelines:`` mapping (``Config.pipelines``), and the problems.

    ``lines`` maps key paths relative to that mapping (``("web", "stages", 0)``) to 1-based
    lines, as :func:`core.config.pipeline_lines` returns; ``sources`` and ``apps`` are the
    names a pipeline may refer to.
    """
    full = {("pipelines", *key): line for key, line in (lines or {}).items()}
    p = _Parser(file, full, sources, apps)
    out: dict[str, PipelineSpec] = {}
    for name, body in raw.items():
        path: PathT = ("pipelines", name)
        spec = p.pipeline(name, body, path, name_path=path)
        if spec is not None:
            out[name] = spec
    return out, _by_line(p.problems)


def parse_repo_pipeline(
    text: bytes,
    *,
    file: str,
    source: str,
    sources: Collection[str] = (),
    apps: Collection[str] = (),
) -> tuple[list[PipelineSpec], list[Problem]]:
    """Specs from a repository's ``.driftdeck/pipeline.yaml`` (``text`` at the triggering revision).

    The file is one pipeline mapping with a ``name``, or ``{pipelines: {name: {...}}}``.
    ``source`` is the repository's own source (the default, and the only one allowed, for
    ``source:``); every spec has ``from_repo=True``.
    """
    data, lines, problems = read_yaml(text, file, what="pipeline")
    p = _Parser(file, lines, sources, apps)
    p.problems.extend(problems)
    out: list[PipelineSpec] = []
    if data is None:
        if not problems:
            p.report((), f"{REPO_PIPELINE_FILE} declares no pipeline")
        return out, _by_line(p.problems)
    if not isinstance(data, dict) or not ("pipelines" in data or "name" in data):
        p.report((), f"expected a pipeline with a name, or pipelines: {{name: {{...}}}}, got {describe(data)}")
        return out, _by_line(p.problems)
    if "pipelines" in data and "name" not in data:
        p.keys(data, (), ("pipelines",))
        section = p.mapping(data["pipelines"], ("pipelines",), "pipelines", null_ok=False)
        if section is not None and not section:
            p.report(("pipelines",), f"{REPO_PIPELINE_FILE} declares no pipeline")
        for name, body in (section or {}).items():
            path: PathT = ("pipelines", name)
            spec = p.pipeline(name, body, path, name_path=path, repo_source=source)
            if spec is not None:
                out.append(spec)
        return out, _by_line(p.problems)
    spec = p.pipeline(
        data.get("name"), data, (), name_path=("name",), repo_source=source, extra_keys=("name",)
    )
    if spec is not None:
        out.append(spec)
    return out, _by_line(p.problems)
