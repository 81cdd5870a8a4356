"""Load and validate ``driftdeck.yaml``.

``load_config(path)`` never raises for a broken file: it returns what it could
read plus :class:`~core.model.Problem` entries, each with ``file:line`` and the
offending key path (``apps.web.ignore[0].pointer``). An app (cluster, source,
pipeline) with a problem is left out of the :class:`~core.model.Config`; the
others stay. Apps that depend on a dropped app are dropped too.

Relative ``sources.*.path`` and ``clusters.*.kubeconfig`` are resolved against
the directory of the config file (``~`` is expanded).
"""

from __future__ import annotations

import difflib
import math
import os
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.model import AppSpec, ClusterSpec, Config, IgnoreRule, Location, Problem, SourceSpec
from core.render import YamlError, compose_documents, construct, format_path

__all__ = ["describe", "load_config", "parse_duration", "pipeline_lines", "read_yaml", "valid_json_pointer"]

MAX_CONFIG_SIZE = 4 * 1024 * 1024

TOP_KEYS = ("clusters", "sources", "apps", "pipelines")
CLUSTER_KEYS = ("context", "kubeconfig", "sandbox")
SOURCE_KEYS = ("path", "url", "branch", "interval")
APP_KEYS = (
    "source", "path", "cluster", "namespace", "sync", "selfHeal", "prune", "interval",
    "dependsOn", "ignore", "suspend", "timeout",
)  # fmt: skip
IGNORE_KEYS = ("kind", "group", "name", "namespace", "pointer", "manager")
SYNC_MODES = ("auto", "manual")
PIPELINE_MODES = ("superseded", "queued", "parallel")

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_NUMBER = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_GIT_URL = re.compile(r"^([a-z][a-z0-9+.-]*://\S+|[^@\s/:]+@[^\s:/]+:\S+|/\S+)$")

PathT = tuple[str | int, ...]


def parse_duration(s: str | int | float) -> float:
    """Seconds from ``30s``, ``1m``, ``1h30m``, ``500ms``, ``2d``, or a plain number of seconds.

    Raises ValueError for anything else (negative, empty, booleans, unknown units).
    """
    if isinstance(s, bool):
        raise ValueError(f"not a duration: {s!r}")
    if isinstance(s, int | float):
        if not math.isfinite(s) or s < 0:
            raise ValueError(f"not a duration: {s!r}")
        return float(s)
    if not isinstance(s, str):
        raise ValueError(f"not a duration: {s!r}")
    text = s.strip()
    if _NUMBER.match(text):
        return float(text)
    total, pos = 0.0, 0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or pos != len(text):
        raise ValueError(f"not a duration: {s!r} (use e.g. 30s, 5m, 1h30m)")
    return total


def valid_json_pointer(pointer: str) -> bool:
    """True for a non-empty RFC 6901 JSON pointer (``/spec/replicas``; ``~0``/``~1`` escapes only)."""
    if not pointer.startswith("/"):
        return False
    return re.search(r"~(?![01])", pointer) is None


# ----- YAML with lines ----------------------------------------------------------------------


class _Data:
    """Plain data built from YAML nodes, remembering the line of every key and list item."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        self.lines: dict[PathT, int] = {}

    def build(self, node: Node, path: PathT) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            try:
                return construct(node)
            except YamlError as exc:
                self.problems.append(
                    Problem(exc.message, Location(self.file, exc.line), field=format_path(path))
                )
                return None
        if isinstance(node, SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        if not isinstance(node, MappingNode):
            return None
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in reversed(sources):
                    value = self.build(src, path)
                    if isinstance(value, dict):
                        merged.update(value)
                    else:
                        self.problems.append(
                            Problem(
                                "a merge key (<<) needs a mapping", self.loc(src), field=format_path(path)
                            )
                        )
                continue
            try:
                key = construct(key_node) if isinstance(key_node, ScalarNode) else None
            except YamlError:
                key = None
            if not isinstance(key, str):
                if key is None and not isinstance(key_node, ScalarNode):
                    self.problems.append(
                        Problem("keys must be plain strings", self.loc(key_node), field=format_path(path))
                    )
                    continue
                key = str(key_node.value)
            if key in out:
                self.problems.append(
                    Problem(
                        f"duplicate key {key!r} (line {self.lines[(*path, key)]}); the last one wins",
                        self.loc(key_node),
                        field=format_path((*path, key)),
                    )
                )
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
        if merged:
            merged.update(out)
            return merged
        return out

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1)


# ----- validation ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, file: str, lines: Mapping[PathT, int], problems: list[Problem]) -> None:
        self.file = file
        self.lines = lines
        self.problems = problems

    def line(self, path: PathT) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def report(self, path: PathT, message: str, app: str = "") -> None:
        self.problems.append(
            Problem(message, Location(self.file, self.line(path)), field=format_path(path), app=app)
        )

    def keys(self, value: Mapping[str, Any], path: PathT, allowed: tuple[str, ...], app: str = "") -> bool:
        ok = True
        for key in value:
            if key not in allowed:
                near = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {near[0]!r}?" if near else "expected one of: " + ", ".join(allowed)
                self.report((*path, key), f"unknown key {key!r} ({hint})", app)
                ok = False
        return ok

    def mapping(self, value: Any, path: PathT, what: str, app: str = "") -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(path, f"{what} must be a mapping, got {describe(value)}", app)
            return None
        return value

    def string(self, value: Any, path: PathT, app: str = "", *, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                self.report(path, "is required", app)
                return None
            return ""
        if not isinstance(value, str):
            self.report(path, f"must be a string, got {describe(value)}", app)
            return None
        return value

    def boolean(self, value: Any, path: PathT, default: bool, app: str = "") -> bool | None:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.report(path, f"must be true or false, got {describe(value)}", app)
            return None
        return value

    def duration(self, value: Any, path: PathT, default: float, app: str = "") -> float | None:
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.report(path, f"must be a duration like 30s, 5m or 1h, got {describe(value)}", app)
            return None
        if seconds <= 0:
            self.report(path, "must be greater than zero", app)
            return None
        return seconds

    def name(self, name: str, path: PathT, what: str) -> bool:
        if not _NAME.match(name):
            self.report(
                path, f"invalid {what} name {name!r}: use letters, digits, '-', '_' or '.', at most 63"
            )
            return False
        return True


def describe(value: Any) -> str:
    """How a value reads in an error message: `boolean true`, `string 'x'`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _resolve_path(base_dir: str, value: str) -> str:
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


def _clusters(c: _Checker, section: dict[str, Any], base_dir: str) -> tuple[dict[str, ClusterSpec], set[str]]:
    out: dict[str, ClusterSpec] = {}
    broken: set[str] = set()
    for name, raw in section.items():
        path: PathT = ("clusters", name)
        before = len(c.problems)
        c.name(name, path, "cluster")
        body = c.mapping(raw, path, "a cluster")
        if body is not None:
            c.keys(body, path, CLUSTER_KEYS)
            context = c.string(body.get("context"), (*path, "context"))
            kubeconfig = c.string(body.get("kubeconfig"), (*path, "kubeconfig"))
            sandbox = c.boolean(body.get("sandbox"), (*path, "sandbox"), False)
            if sandbox and (context or kubeconfig):
                c.report((*path, "sandbox"), "sandbox: true cannot be combined with context or kubeconfig")
            if (
                len(c.problems) == before
                and context is not None
                and kubeconfig is not None
                and sandbox is not None
            ):
                resolved = _resolve_path(base_dir, kubeconfig) if kubeconfig else ""
                out[name] = ClusterSpec(name, context=context, kubeconfig=resolved, sandbox=sandbox)
                continue
        broken.add(name)
    return out, broken


def _sources(c: _Checker, section: dict[str, Any], base_dir: str) -> tuple[dict[str, SourceSpec], set[str]]:
    out: dict[str, SourceSpec] = {}
    broken: set[str] = set()
    for name, raw in section.items():
        path: PathT = ("sources", name)
        before = len(c.problems)
        c.name(name, path, "source")
        body = c.mapping(raw, path, "a source")
        if body is not None:
            c.keys(body, path, SOURCE_KEYS)
            local = c.string(body.get("path"), (*path, "path"))
            url = c.string(body.get("url"), (*path, "url"))
            if local and url:
                c.report(
                    (*path, "url"), "give either path (a local repository) or url (a remote one), not both"
                )
            elif local == "" and url == "":
                c.report(path, "needs a path (a local repository) or a url (a remote one)")
            if url and not _GIT_URL.match(url):
                c.report(
                    (*path, "url"),
                    f"not a git URL: {url!r} (e.g. https://host/repo.git, git@host:org/repo.git)",
                )
            branch = c.string(body.get("branch"), (*path, "branch"))
            if branch and (branch.startswith("-") or ".." in branch or any(ch.isspace() for ch in branch)):
                c.report((*path, "branch"), f"invalid branch name {branch!r}")
            interval = c.duration(body.get("interval"), (*path, "interval"), 60.0)
            if len(c.problems) == before and local is not None and url is not None and branch is not None:
                assert interval is not None
                out[name] = SourceSpec(
                    name,
                    path=_resolve_path(base_dir, local) if local else "",
                    url=url,
                    branch=branch or "main",
                    interval=interval,
                )
                continue
        broken.add(name)
    return out, broken


def _ignore_rules(c: _Checker, value: Any, path: PathT, app: str) -> tuple[IgnoreRule, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.report(path, f"must be a list of rules, got {describe(value)}", app)
        return None
    rules: list[IgnoreRule] = []
    ok = True
    for i, raw in enumerate(value):
        rpath = (*path, i)
        if not isinstance(raw, dict):
            c.report(
                rpath, f"a rule must be a mapping like {{pointer: /spec/replicas}}, got {describe(raw)}", app
            )
            ok = False
            continue
        before = len(c.problems)
        c.keys(raw, rpath, IGNORE_KEYS, app)
        fields = {
            k: c.string(raw.get(k), (*rpath, k), app)
            for k in ("kind", "name", "namespace", "pointer", "manager")
        }
        group_raw = raw.get("group")
        group = c.string(group_raw, (*rpath, "group"), app) if group_raw not in (None, "") else group_raw
        pointer = fields["pointer"]
        if pointer and not valid_json_pointer(pointer):
            c.report(
                (*rpath, "pointer"),
                f"not an RFC 6901 JSON pointer: {pointer!r} (e.g. /spec/replicas; ~1 for '/')",
                app,
            )
        if "pointer" in raw and pointer == "":
            c.report((*rpath, "pointer"), "must not be empty (e.g. /spec/replicas)", app)
        if not fields["pointer"] and not fields["manager"] and len(c.problems) == before:
            c.report(rpath, "a rule needs a pointer and/or a manager", app)
        if len(c.problems) != before or any(v is None for v in fields.values()):
            ok = False
            continue
        rules.append(
            IgnoreRule(
                pointer=fields["pointer"] or "",
                manager=fields["manager"] or "",
                kind=fields["kind"] or "",
                group=group if isinstance(group, str) else None,
                name=fields["name"] or "",
                namespace=fields["namespace"] or "",
            )
        )
    return tuple(rules) if ok else None


def _app_path(c: _Checker, value: Any, path: PathT, app: str) -> str | None:
    text = c.string(value, path, app)
    if text is None:
        return None
    norm = posixpath.normpath(text.strip() or ".")
    if norm.startswith("/") or norm == ".." or norm.startswith("../"):
        c.report(path, f"must be a path inside the source repository, got {text!r}", app)
        return None
    return norm


def _apps(
    c: _Checker,
    section: dict[str, Any],
    clusters: dict[str, ClusterSpec],
    broken_clusters: set[str],
    sources: dict[str, SourceSpec],
    broken_sources: set[str],
) -> dict[str, AppSpec]:
    candidates: dict[str, AppSpec] = {}
    dropped: set[str] = set()
    graph: dict[str, tuple[str, ...]] = {}  # every app's valid dependsOn, broken apps included
    for name, raw in section.items():
        path: PathT = ("apps", name)
        before = len(c.problems)
        c.name(name, path, "app")
        body = c.mapping(raw, path, "an app", name)
        if body is None:
            dropped.add(name)
            continue
        c.keys(body, path, APP_KEYS, name)
        source = c.string(body.get("source"), (*path, "source"), name, required=True)
        if source and source not in sources:
            why = "has errors" if source in broken_sources else "is not defined under sources"
            c.report((*path, "source"), f"source {source!r} {why}", name)
        cluster = c.string(body.get("cluster"), (*path, "cluster"), name)
        if cluster == "" and "cluster" not in body:
            if len(clusters) + len(broken_clusters) == 1 and clusters:
                cluster = next(iter(clusters))
            else:
                n = len(clusters) + len(broken_clusters)
                c.report(
                    path,
                    f"cluster is required ({n} clusters are defined)"
                    if n
                    else "cluster is required, and no clusters are defined",
                    name,
                )
        elif cluster and cluster not in clusters:
            why = "has errors" if cluster in broken_clusters else "is not defined under clusters"
            c.report((*path, "cluster"), f"cluster {cluster!r} {why}", name)
        elif cluster == "":
            c.report((*path, "cluster"), "must not be empty", name)
        app_path = _app_path(c, body.get("path"), (*path, "path"), name)
        namespace = c.string(body.get("namespace"), (*path, "namespace"), name)
        if namespace and not _DNS_LABEL.match(namespace):
            c.report(
                (*path, "namespace"),
                f"invalid namespace {namespace!r}: lowercase letters, digits and '-'",
                name,
            )
        sync = body.get("sync") if body.get("sync") is not None else "manual"
        if sync not in SYNC_MODES:
            hint = " (YAML 1.1 reads on/off/yes/no as booleans)" if isinstance(sync, bool) else ""
            c.report((*path, "sync"), f"must be auto or manual, got {describe(sync)}{hint}", name)
        self_heal = c.boolean(body.get("selfHeal"), (*path, "selfHeal"), False, name)
        prune = c.boolean(body.get("prune"), (*path, "prune"), False, name)
        suspend = c.boolean(body.get("suspend"), (*path, "suspend"), False, name)
        interval = c.duration(body.get("interval"), (*path, "interval"), 300.0, name)
        timeout = c.duration(body.get("timeout"), (*path, "timeout"), 300.0, name)
        depends = body.get("dependsOn")
        depends_on: list[str] = []
        if depends is not None and not isinstance(depends, list):
            c.report((*path, "dependsOn"), f"must be a list of app names, got {describe(depends)}", name)
        for i, dep in enumerate(depends if isinstance(depends, list) else []):
            if not isinstance(dep, str) or not dep:
                c.report((*path, "dependsOn", i), f"must be an app name, got {describe(dep)}", name)
            elif dep not in section:
                c.report((*path, "dependsOn", i), f"unknown app {dep!r}", name)
            else:
                depends_on.append(dep)
        graph[name] = tuple(dict.fromkeys(depends_on))
        ignore = _ignore_rules(c, body.get("ignore"), (*path, "ignore"), name)
        if len(c.problems) != before:
            dropped.add(name)
            continue
        assert source and cluster is not None and app_path is not None and namespace is not None
        assert None not in (self_heal, prune, suspend, interval, timeout, ignore)
        candidates[name] = AppSpec(
            name=name,
            source=source,
            path=app_path,
            cluster=cluster,
            namespace=namespace,
            sync=str(sync),
            self_heal=bool(self_heal),
            prune=bool(prune),
            interval=float(interval or 0),
            depends_on=tuple(dict.fromkeys(depends_on)),
            ignore=ignore or (),
            suspend=bool(suspend),
            timeout=float(timeout or 0),
            location=Location(c.file, c.line(path)),
        )
    for cycle in _cycles(graph):
        text = " -> ".join([*cycle, cycle[0]])
        for name in cycle:
            c.report(("apps", name, "dependsOn"), f"dependsOn cycle: {text}", name)
            dropped.add(name)
            candidates.pop(name, None)
    changed = True
    while changed:  # apps that wait for a dropped app can never start
        changed = False
        for name, app in list(candidates.items()):
            bad = [d for d in app.depends_on if d in dropped]
            if bad:
                c.report(("apps", name, "dependsOn"), f"depends on app {bad[0]!r}, which has errors", name)
                dropped.add(name)
                del candidates[name]
                changed = True
    return candidates


def _cycles(graph: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Strongly connected components that form cycles (Tarjan), each in dependency order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(_cycle_order(comp, graph))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycle_order(comp: list[str], graph: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Walk the component from its smallest name along dependsOn edges to show one cycle."""
    members = set(comp)
    start = min(comp)
    order = [start]
    current = start
    while True:
        nxt = next((w for w in graph.get(current, ()) if w in members), None)
        if nxt is None or nxt == start or nxt in order:
            return order
        order.append(nxt)
        current = nxt


def _pipelines(
    c: _Checker, section: dict[str, Any], sources: dict[str, SourceSpec]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, raw in section.items():
        path: PathT = ("pipelines", name)
        before = len(c.problems)
        c.name(name, path, "pipeline")
        body = c.mapping(raw, path, "a pipeline")
        if body is None:
            continue
        source = body.get("source")
        if source is not None and (not isinstance(source, str) or source not in sources):
            c.report((*path, "source"), f"source {source!r} is not a valid source")
        mode = body.get("mode")
        if mode is not None and mode not in PIPELINE_MODES:
            c.report((*path, "mode"), f"must be one of {', '.join(PIPELINE_MODES)}, got {describe(mode)}")
        if "trigger" in body:
            c.mapping(body["trigger"], (*path, "trigger"), "trigger")
        stages = body.get("stages")
        if stages is not None and not isinstance(stages, list):
            c.report((*path, "stages"), f"must be a list of stages, got {describe(stages)}")
        if len(c.problems) == before:
            out[name] = body
    return out


def read_yaml(data: bytes, file: str, *, what: str = "config") -> tuple[Any, dict[PathT, int], list[Problem]]:
    """One YAML document from ``data``, read safely (size limit, UTF-8, bounded aliases, nesting).

    Returns the plain data (None when unreadable), the 1-based line of every key path and
    list item (``("apps", "web", "ignore", 0)``) and the problems, worded with ``what``.
    """
    if len(data) > MAX_CONFIG_SIZE:
        too_big = f"{what} file is larger than {MAX_CONFIG_SIZE // 1048576} MiB"
        return None, {}, [Problem(too_big, Location(file))]
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, {}, [Problem(f"{what} file is not valid UTF-8", Location(file, line))]
    problems: list[Problem] = []
    builder = _Data(file, problems)
    root: Any = None
    try:
        for i, node in enumerate(compose_documents(text, manifest=False)):
            if i == 0:
                root = builder.build(node, ())
            else:
                extra = f"only one YAML document is allowed in the {what}"
                problems.append(Problem(extra, builder.loc(node)))
                break
    except YamlError as exc:
        problems.append(Problem(exc.message, Location(file, exc.line)))
        return None, builder.lines, problems
    except RecursionError:
        problems.append(Problem(f"{what} is nested too deeply", Location(file)))
        return None, builder.lines, problems
    return root, builder.lines, problems


def pipeline_lines(path: str) -> dict[PathT, int]:
    """Lines of the ``pipelines:`` subtree of the config at ``path``, keyed relative to it.

    ``("web", "stages", 0)`` -> line; for ``core.pipelines.spec.parse_pipelines``. Empty if unreadable.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_SIZE + 1)
    except OSError:
        return {}
    _, lines, _ = read_yaml(data, path)
    return {key[1:]: line for key, line in lines.items() if key[:1] == ("pipelines",)}


def load_config(path: str) -> tuple[Config, list[Problem]]:
    """Read ``driftdeck.yaml`` at ``path``: the valid parts as a Config, and every problem found."""
    config = Config(path=path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_SIZE + 1)
    except OSError as exc:
        return config, [Problem(f"cannot read config: {exc.strerror or exc}", Location(path))]
    root, lines, problems = read_yaml(data, path)
    if root is None:
        return config, problems
    c = _Checker(path, lines, problems)
    if not isinstance(root, dict):
        c.report((), f"the config must be a mapping with {', '.join(TOP_KEYS)}, got {describe(root)}")
        return config, problems
    c.keys(root, (), TOP_KEYS)
    base_dir = os.path.dirname(os.path.abspath(path))
    sections: dict[str, dict[str, Any]] = {}
    for key in TOP_KEYS:
        sections[key] = c.mapping(root.get(key), (key,), key) or {}
    clusters, broken_clusters = _clusters(c, sections["clusters"], base_dir)
    sources, broken_sources = _sources(c, sections["sources"], base_dir)
    apps = _apps(c, sections["apps"], clusters, broken_clusters, sources, broken_sources)
    pipelines = _pipelines(c, sections["pipelines"], sources)
    problems.sort(key=lambda p: p.location.line if p.location else 0)
    return Config(path=path, clusters=clusters, sources=sources, apps=apps, pipelines=pipelines), problems
