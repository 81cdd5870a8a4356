"""Render an app's desired state: plain YAML/JSON directories or kustomize.

``render()`` turns a snapshot of a repository (path -> bytes) into normalised
:class:`Manifest` objects plus :class:`~core.model.Problem` entries. It never
raises for bad input: a bad file or document becomes a Problem and the rest is
still rendered. Callers must not prune when problems were reported (a document
that failed to render is missing from the output, not deleted from Git).

YAML is read safely and as kubectl reads it (YAML 1.1, like go-yaml v2):

* plain ``y``/``n``/``yes``/``no``/``on``/``off``/``true``/``false`` are
  booleans and ``010`` is octal 8, as go-yaml v2 reads them; unlike PyYAML,
  ``1:20`` stays a string (go-yaml v2 has no base-60 numbers). The strict schema
  check then flags a boolean or number where a string is expected
  (``value: on`` -> "quote it"). driftdeck's own files (config, pipelines) keep
  ``y``/``n`` as strings (``compose_documents(manifest=False)``).
  Note that kustomize (kyaml, YAML 1.2) keeps ``on``/``yes`` as strings, so the
  same file can mean different things in a plain directory and under kustomize.
* unquoted timestamps stay strings (kubectl does not turn them into dates);
  ``!!binary`` keeps its base64 text; other non-standard tags are a Problem.
* non-string keys become strings as in kubectl (``true``, ``80``, ``null``);
  duplicate keys are a Problem (kubectl rejects them too).
* the libyaml C loader is used when present; alias expansion is bounded
  (billion-laughs documents fail fast), files over 10 MiB are never parsed,
  files must be UTF-8, recursive anchors and absurd nesting are Problems.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import gc
import json
import posixpath
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.kube import schema
from core.model import Location, ObjRef, Problem

__all__ = [
    "KUSTOMIZE_TIMEOUT",
    "MAX_ALIAS_EXPANSION",
    "MAX_FILE_SIZE",
    "Manifest",
    "YamlError",
    "builtin_namespaced",
    "compose_documents",
    "construct",
    "normalize_manifest",
    "render",
    "validate_manifest",
]

MAX_FILE_SIZE = 10 * 1024 * 1024
"""Files larger than this (bytes) are reported and never parsed."""

MAX_ALIAS_EXPANSION = 250_000
"""Nodes a document may gain through aliases (expanded minus distinct nodes)."""

MAX_KUSTOMIZE_OUTPUT = 64 * 1024 * 1024
KUSTOMIZE_TIMEOUT = 60.0
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
SCHEMA_STRICT_DIR = schema.SCHEMA_VERSION + "-strict"


@dataclass
class Manifest:
    """One rendered, normalised object and where its document starts."""

    obj: dict[str, Any]
    ref: ObjRef
    location: Location
    notes: tuple[str, ...] = ()  # informational, e.g. a namespace dropped from a cluster-scoped object


# ----- safe YAML ----------------------------------------------------------------------------


class YamlError(Exception):
    """A YAML document could not be read; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BINARY = "tag:yaml.org,2002:binary"
_VALUE = "tag:yaml.org,2002:value"

# PyYAML's YAML 1.1 implicit resolvers (bool, int, float, null, timestamp, merge, value), by first character.
_IMPLICIT: dict[Any, list[tuple[str, Any]]] = {
    k: list(v) for k, v in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_WILDCARD = _IMPLICIT.pop(None, [])

_BaseLoader: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
LIBYAML = _BaseLoader is not yaml.SafeLoader


# Where go-yaml v2 (kubectl, the apiserver) and PyYAML's YAML 1.1 disagree, read as kubectl does:
# base-60 numbers (`12:30`) are strings, and `y`/`n` are booleans.
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_GO_BOOLS = {"y": True, "Y": True, "n": False, "N": False}


class _Loader(_BaseLoader):
    """SafeLoader (C when available) with a faster tag resolver: same rules, no path resolvers."""

    go_bools = True  # manifests: y/n are booleans, as kubectl reads them

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                if self.go_bools and value in _GO_BOOLS:
                    return _BOOL
                if ":" in value and _SEXAGESIMAL.match(value):
                    return _STR
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
                for tag, regexp in _WILDCARD:
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


def _mark_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return int(mark.line) + 1 if mark is not None else 0


def _yaml_message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"YAML syntax error: {context + ', ' if context else ''}{problem}"
    return f"YAML syntax error: {str(exc).splitlines()[0]}"


def _check_expansion(root: Node) -> None:
    """Raise YamlError when aliases expand ``root`` by more than MAX_ALIAS_EXPANSION nodes, or recurse."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            visiting.discard(nid)
            total = 1
            if isinstance(node, MappingNode):
                for k, v in node.value:
                    total += sizes[id(k)] + sizes[id(v)]
            elif isinstance(node, SequenceNode):
                for v in node.value:
                    total += sizes[id(v)]
            sizes[nid] = total
            if total - len(sizes) > MAX_ALIAS_EXPANSION:
                raise YamlError(
                    f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes (alias bomb?): refusing to load",
                    node.start_mark.line + 1,
                )
            continue
        if nid in sizes:
            continue
        if nid in visiting:
            raise YamlError("recursive YAML alias (an anchor refers to itself)", node.start_mark.line + 1)
        visiting.add(nid)
        stack.append((node, True))
        if isinstance(node, MappingNode):
            for k, v in node.value:
                stack.append((k, False))
                stack.append((v, False))
        elif isinstance(node, SequenceNode):
            for v in node.value:
                stack.append((v, False))


class _OwnLoader(_Loader):
    """For driftdeck's own files (config, pipelines): ``y``/``n`` stay strings."""

    go_bools = False


def compose_documents(text: str, *, manifest: bool = True) -> Iterator[Node]:
    """Yield the root node of each YAML document in ``text`` (aliases checked when present).

    ``manifest``: read scalars as kubectl does (``y``/``n`` are booleans); False for our own files.
    Raises :class:`YamlError` (with the line) on a syntax error or an alias bomb.
    """
    check_aliases = "&" in text and "*" in text
    loader = (_Loader if manifest else _OwnLoader)(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.YAMLError as exc:
                raise YamlError(_yaml_message(exc), _mark_line(exc)) from None
            if node is None:
                continue
            if check_aliases:
                _check_expansion(node)
            yield node
    finally:
        loader.dispose()


def _yaml11_int(text: str) -> int:
    s = text.replace("_", "")
    sign = 1
    if s[:1] in "+-":
        if s[0] == "-":
            sign = -1
        s = s[1:]
    if s == "0":
        return 0
    if s.startswith("0b"):
        return sign * int(s[2:], 2)
    if s.startswith("0x"):
        return sign * int(s[2:], 16)
    if s.startswith("0"):
        return sign * int(s, 8)
    if ":" in s:
        value = 0
        for part in s.split(":"):
            value = value * 60 + int(part)
        return sign * value
    return sign * int(s)


def _yaml11_float(text: str) -> float:
    s = text.replace("_", "").lower()
    sign = 1.0
    if s[:1] in "+-":
        if s[0] == "-":
            sign = -1.0
        s = s[1:]
    if s == ".inf":
        return sign * float("inf")
    if s == ".nan":
        return float("nan")
    if ":" in s:
        value = 0.0
        for part in s.split(":"):
            value = value * 60 + float(part)
        return sign * value
    return sign * float(s)


def _yaml11_bool(text: str) -> bool:
    low = text.lower()
    if low in ("yes", "true", "on", "y"):
        return True
    if low in ("no", "false", "off", "n"):
        return False
    raise ValueError(text)


def _binary(text: str) -> str:
    compact = "".join(text.split())
    base64.b64decode(compact, validate=True)
    return compact


_SCALARS: dict[str, Callable[[str], Any]] = {
    _INT: _yaml11_int,
    _FLOAT: _yaml11_float,
    _BOOL: _yaml11_bool,
    _NULL: lambda _text: None,
    _TIMESTAMP: str,  # kubectl keeps unquoted dates as strings
    _BINARY: _binary,
    _VALUE: str,
}


def _key(node: Node) -> str:
    if not isinstance(node, ScalarNode):
        raise YamlError("mapping keys must be scalars", node.start_mark.line + 1)
    value = _scalar(node)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _scalar(node: ScalarNode) -> Any:
    tag = node.tag
    if tag == _STR:
        return node.value
    fn = _SCALARS.get(tag)
    if fn is None:
        raise YamlError(f"unsupported YAML tag {tag}", node.start_mark.line + 1)
    try:
        return fn(node.value)
    except (ValueError, binascii.Error):
        raise YamlError(f"invalid value {node.value!r} for tag {tag}", node.start_mark.line + 1) from None


def construct(node: Node) -> Any:
    """Build plain JSON-like Python data from a composed node (see module doc for the rules).

    Aliases are expanded (bounded by :func:`compose_documents`). Raises YamlError.
    """
    tp = type(node)
    if tp is ScalarNode:
        return _scalar(node)  # type: ignore[arg-type]
    if tp is SequenceNode:
        if node.tag != _SEQ:
            raise YamlError(f"unsupported YAML tag {node.tag}", node.start_mark.line + 1)
        return [construct(child) for child in node.value]
    if node.tag != _MAP:
        raise YamlError(f"unsupported YAML tag {node.tag}", node.start_mark.line + 1)
    out: dict[str, Any] = {}
    merges: list[Node] | None = None
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            merges = [*(merges or []), value_node]
            continue
        key = _key(key_node)
        if key in out:
            raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
        out[key] = construct(value_node)
    if merges:
        merged: dict[str, Any] = {}
        for value_node in merges:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for src in reversed(sources):  # earlier mappings win
                if not isinstance(src, MappingNode):
                    raise YamlError(
                        "a merge key (<<) needs a mapping or a list of mappings", src.start_mark.line + 1
                    )
                merged.update(construct(src))
        merged.update(out)
        out = merged
    return out


def _line_at(node: Node, path: tuple[str | int, ...]) -> int:
    """1-based line of the deepest node along ``path`` that exists."""
    line = node.start_mark.line + 1
    for seg in path:
        if isinstance(node, MappingNode) and isinstance(seg, str):
            for k, v in node.value:
                if isinstance(k, ScalarNode) and k.value == seg:
                    line = k.start_mark.line + 1
                    node = v
                    break
            else:
                return line
        elif isinstance(node, SequenceNode) and isinstance(seg, int) and 0 <= seg < len(node.value):
            node = node.value[seg]
            line = node.start_mark.line + 1
        else:
            return line
    return line


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many small containers (no cycles are created)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ----- normalisation ------------------------------------------------------------------------

_DROP_META = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink")
_POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("", "PodTemplate"): ("template", "spec"),
    ("", "ReplicationController"): ("spec", "template", "spec"),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for seg in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(seg)
    return obj


def _default_protocol(ports: Any) -> None:
    if isinstance(ports, list):
        for port in ports:
            if isinstance(port, dict) and port.get("protocol") is None:
                port["protocol"] = "TCP"


def normalize_manifest(obj: dict[str, Any]) -> None:
    """Prepare a desired object for apply, in place (kubernetes-semantics (b).1).

    Drops ``status``, server-owned metadata and the kubectl last-applied
    annotation; folds Secret ``stringData`` into base64 ``data`` (string values
    only: others stay for the schema check to report); defaults container and
    Service port ``protocol`` to TCP. Namespace scope is handled by render().
    """
    obj.pop("status", None)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in _DROP_META:
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            del annotations[LAST_APPLIED]
            if not annotations:
                del meta["annotations"]
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return
    group = api_version.rpartition("/")[0]
    if group == "" and kind == "Secret":
        string_data = obj.get("stringData")
        if isinstance(string_data, dict):
            data = obj.get("data")
            if not isinstance(data, dict):
                data = {} if data is None else data
            if isinstance(data, dict):
                rest = {}
                for key, value in string_data.items():
                    if isinstance(value, str):
                        data[key] = base64.b64encode(value.encode("utf-8")).decode("ascii")
                    else:
                        rest[key] = value
                obj["data"] = data
                if rest:
                    obj["stringData"] = rest
                else:
                    del obj["stringData"]
    elif group == "" and kind == "Service":
        _default_protocol(_dig(obj, ("spec", "ports")))
    pod_path = _POD_SPEC_PATHS.get((group, kind))
    if pod_path is not None:
        pod_spec = _dig(obj, pod_path)
        if isinstance(pod_spec, dict):
            for key in ("containers", "initContainers"):
                containers = pod_spec.get(key)
                if isinstance(containers, list):
                    for container in containers:
                        if isinstance(container, dict):
                            _default_protocol(container.get("ports"))


# ----- schema validation --------------------------------------------------------------------

_ANNOTATION_KEYWORDS = frozenset(
    {
        "description",
        "format",
        "default",
        "example",
        "examples",
        "title",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$defs",
        "$comment",
    }
)
SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "oneOf",
        "anyOf",
        "allOf",
        "$ref",
    }
)
"""JSON-schema assertion keywords the validator implements; everything else must be an annotation."""

_PYTYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "array": (list,),
    "boolean": (bool,),
    "null": (type(None),),
    "integer": (int,),
    "number": (int, float),
}

Check = Callable[[Any], bool]
Path_ = tuple[str | int, ...]


def _json_equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return bool(a == b)


def _types_of(s: Mapping[str, Any]) -> list[str] | None:
    t = s.get("type")
    if t is None:
        return None
    return [t] if isinstance(t, str) else list(t)


def _type_check(types: list[str]) -> Check:
    accepted = frozenset(py for name in types for py in _PYTYPES.get(name, ()))
    if "integer" in types and "number" not in types:
        return lambda v: type(v) in accepted or (type(v) is float and v.is_integer())
    return lambda v: type(v) in accepted


def _combine(key: str, subs: list[Check]) -> Check:
    if key == "oneOf":
        # null matching several branches (IntOrString, Quantity) means "absent" to the apiserver: accept it.
        return lambda v: (v is None and any(c(v) for c in subs)) or sum(1 for c in subs if c(v)) == 1
    if key == "anyOf":
        return lambda v: any(c(v) for c in subs)
    return lambda v: all(c(v) for c in subs)


def _type_ok(v: Any, types: list[str]) -> bool:
    return _type_check(types)(v)


class _Validator:
    """JSON-schema (2020-12 subset used by the Kubernetes schemas) compiled to closures.

    Same verdicts as jsonschema's Draft202012Validator (``format`` is an
    annotation there too), except that null is accepted by a ``oneOf`` whose
    branches all allow it (IntOrString, Quantity): the apiserver reads null as
    "absent".

    ``ok(v)`` is the fast yes/no verdict; ``explain`` walks the raw schema to
    describe what is wrong (only run for objects that failed).
    """

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.gvk: dict[tuple[str, str, str], str] = {}
        for name, d in defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind") or []:
                self.gvk[(gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))] = name
        self._compiled: dict[str, Check] = {}
        self._building: dict[str, Check] = {}
        self._lock = threading.RLock()

    # -- fast verdict

    def ref(self, ref: str) -> Check:
        name = ref.rsplit("/", 1)[-1]
        hit = self._compiled.get(name)
        if hit is not None:
            return hit
        with self._lock:  # render() runs in worker threads; publish only fully built checks
            hit = self._compiled.get(name) or self._building.get(name)
            if hit is not None:
                return hit
            outer = not self._building
            cell: list[Check] = []
            self._building[name] = lambda v: cell[0](v)  # forwarder for recursive definitions
            try:
                check = self.compile(self.defs[name])
                cell.append(check)
                self._building[name] = check
                if outer:
                    self._compiled.update(self._building)
            finally:
                if outer:
                    self._building.clear()
            return check

    def compile(self, s: Mapping[str, Any]) -> Check:
        checks: list[Check] = []
        ref = s.get("$ref")
        if isinstance(ref, str):
            checks.append(self.ref(ref))
        types = _types_of(s)
        props_raw = s.get("properties")
        addl_raw = s.get("additionalProperties")
        required = tuple(s.get("required") or ())
        if props_raw is not None or addl_raw is not None or required:
            checks.append(self._object(types, props_raw or {}, addl_raw, required))
        elif types is not None:
            checks.append(_type_check(types))
        if "items" in s:
            item = self.compile(s["items"])
            checks.append(lambda v: type(v) is not list or all(item(x) for x in v))
        if "enum" in s:
            options = list(s["enum"])
            checks.append(lambda v: any(_json_equal(v, o) for o in options))
        if "const" in s:
            const = s["const"]
            checks.append(lambda v: _json_equal(v, const))
        for key in ("oneOf", "anyOf", "allOf"):
            if key in s:
                checks.append(_combine(key, [self.compile(x) for x in s[key]]))
        if not checks:
            return lambda v: True
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)

    def _object(
        self, types: list[str] | None, props_raw: Mapping[str, Any], addl_raw: Any, required: tuple[str, ...]
    ) -> Check:
        props = {k: self.compile(v) for k, v in props_raw.items()}
        closed = addl_raw is False
        addl: Check | None = self.compile(addl_raw) if isinstance(addl_raw, dict) else None
        other: Check = _type_check(types) if types is not None else (lambda v: True)
        dict_ok = types is None or "object" in types

        def check(v: Any) -> bool:
            if type(v) is not dict:
                return other(v)
            if not dict_ok:
                return False
            for k, x in v.items():
                c = props.get(k)
                if c is None:
                    if closed:
                        return False
                    if addl is not None and not addl(x):
                        return False
                elif not c(x):
                    return False
            return all(r in v for r in required)

        return check

    # -- explanation

    def explain(self, s: Mapping[str, Any], v: Any, path: Path_, out: list[tuple[Path_, str]]) -> None:
        ref = s.get("$ref")
        if isinstance(ref, str):
            self.explain(self.defs[ref.rsplit("/", 1)[-1]], v, path, out)
        types = _types_of(s)
        if types is not None and not _type_ok(v, types):
            out.append((path, _type_message(types, v)))
            return
        if "enum" in s and not any(_json_equal(v, o) for o in s["enum"]):
            shown = ", ".join(json.dumps(o) for o in s["enum"][:10])
            out.append((path, f"{_describe(v)} is not one of: {shown}"))
        if "const" in s and not _json_equal(v, s["const"]):
            out.append((path, f"must be {json.dumps(s['const'])}"))
        if isinstance(v, dict):
            props = s.get("properties") or {}
            addl = s.get("additionalProperties")
            for k, x in v.items():
                if k in props:
                    self.explain(props[k], x, (*path, k), out)
                elif addl is False:
                    out.append(((*path, k), "unknown field"))
                elif isinstance(addl, dict):
                    self.explain(addl, x, (*path, k), out)
            for r in s.get("required") or ():
                if r not in v:
                    out.append(((*path, r), "required field is missing"))
        if isinstance(v, list) and isinstance(s.get("items"), dict):
            for i, x in enumerate(v):
                self.explain(s["items"], x, (*path, i), out)
        for key in ("oneOf", "anyOf", "allOf"):
            subs = s.get(key)
            if not subs:
                continue
            matches = [self.compile(x)(v) for x in subs]
            bad = (
                (key == "oneOf" and matches.count(True) != 1 and not (v is None and any(matches)))
                or (key == "anyOf" and not any(matches))
                or (key == "allOf" and not all(matches))
            )
            if not bad:
                continue
            alt_types = [t for x in subs for t in (_types_of(x) or []) if t != "null"]
            if key == "oneOf" and matches.count(True) > 1:
                out.append((path, f"{_describe(v)} is ambiguous here (matches more than one allowed form)"))
            elif alt_types and all(set(x) <= {"type"} for x in subs):
                out.append((path, _type_message(alt_types, v)))
            else:
                out.append((path, f"{_describe(v)} does not match the allowed forms"))

    # -- entry point

    def check_object(self, obj: Mapping[str, Any]) -> list[tuple[Path_, str]] | None:
        """Errors for ``obj`` (empty when valid); None when no schema knows its kind."""
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return None
        group, _, version = api_version.rpartition("/")
        name = self.gvk.get((group, version, kind))
        if name is None:
            return None
        if self.ref(name)(obj):
            return []
        out: list[tuple[Path_, str]] = []
        self.explain(self.defs[name], obj, (), out)
        seen: set[tuple[Path_, str]] = set()
        unique = []
        for item in out:
            if item not in seen:
                seen.add(item)
                unique.append(item)
        return unique


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {'true' if v else 'false'}"
    if isinstance(v, int):
        return f"integer {v}"
    if isinstance(v, float):
        return f"number {v!r}"
    if isinstance(v, str):
        shown = v if len(v) <= 40 else v[:37] + "..."
        return f"string {json.dumps(shown)}"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


_TYPE_WORDS = {"object": "an object", "array": "a list"}


def _type_message(types: list[str], v: Any) -> str:
    wanted = [t for t in dict.fromkeys(types) if t != "null"] or ["null"]
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
    message = f"expected {words}, got {_describe(v)}"
    if "string" in wanted and isinstance(v, bool):
        message += " (YAML 1.1 reads y/n/yes/no/on/off/true/false as booleans: quote the value)"
    elif "string" in wanted and isinstance(v, int | float):
        message += " (quote the value)"
    return message


@functools.cache
def _validator() -> _Validator:
    path = schema.schema_dir().parent / SCHEMA_STRICT_DIR / "_definitions.json"
    with open(path, encoding="utf-8") as fh:
        return _Validator(json.load(fh)["$defs"])


def format_path(path: Path_) -> str:
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``; odd keys go in brackets."""
    out = ""
    for seg in path:
        if isinstance(seg, int) or "." in seg or "/" in seg or not seg:
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else seg
    return out


def _obj_label(obj: Mapping[str, Any]) -> str:
    try:
        return str(ObjRef.of(dict(obj)))
    except (AttributeError, TypeError):
        return ""


def validate_manifest(obj: Mapping[str, Any], location: Location | None = None) -> list[Problem]:
    """Strict schema check of a built-in object against the Kubernetes 1.32 JSON schemas.

    Unknown fields are errors. Kinds the schemas do not know (custom resources)
    give no problems here: render() reports kinds nobody knows. Every problem
    carries ``location`` and the field path (``spec.template.spec.containers[0].image``).
    """
    errors = _validator().check_object(obj)
    if not errors:
        return []
    label = _obj_label(obj)
    return [Problem(message, location, label, format_path(path)) for path, message in errors]


# ----- scope --------------------------------------------------------------------------------

_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("authentication.k8s.io", "TokenReview"),
        ("authentication.k8s.io", "SelfSubjectReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectRulesReview"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("internal.apiserver.k8s.io", "StorageVersion"),
        ("storagemigration.k8s.io", "StorageVersionMigration"),
    }
)


def builtin_namespaced(api_version: str, kind: str) -> bool | None:
    """Scope of a built-in kind from the bundled 1.32 schemas (no cluster needed); None if not built in."""
    group, _, version = api_version.rpartition("/")
    if (group, version, kind) not in _validator().gvk:
        return None
    return (group, kind) not in _CLUSTER_SCOPED


def _crd_scopes(obj: Mapping[str, Any]) -> dict[tuple[str, str], bool]:
    """``(apiVersion, kind) -> namespaced`` for the versions a CustomResourceDefinition serves."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return {}
    group = spec.get("group")
    names = spec.get("names")
    kind = names.get("kind") if isinstance(names, dict) else None
    if not isinstance(group, str) or not isinstance(kind, str):
        return {}
    namespaced = spec.get("scope", "Namespaced") != "Cluster"
    versions = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)]
    if isinstance(spec.get("version"), str):
        versions.append(spec["version"])
    return {(f"{group}/{v}", kind): namespaced for v in versions if isinstance(v, str)}


# ----- render -------------------------------------------------------------------------------


@dataclass
class _Doc:
    obj: dict[str, Any]
    location: Location
    schema_errors: list[tuple[str, str, int]] = field(default_factory=list)  # field, message, line


def _norm_dir(app_path: str) -> str | None:
    p = posixpath.normpath(app_path.replace("\\", "/").strip() or ".")
    if p.startswith("/") or p == ".." or p.startswith("../"):
        return None
    return "" if p == "." else p


def _under(path: str, directory: str) -> bool:
    return not directory or path.startswith(directory + "/")


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def _decode(data: bytes, file: str, limit: int = MAX_FILE_SIZE) -> tuple[str | None, Problem | None]:
    if len(data) > limit:
        return None, Problem(
            f"file is {len(data)} bytes ({len(data) / 1048576:.1f} MiB), over the {limit / 1048576:g} MiB limit: not parsed",
            Location(file),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, Problem(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            Location(file, line),
        )
    return text.removeprefix("\ufeff"), None


class _Parser:
    """Turns files into _Doc entries, collecting problems."""

    def __init__(self, validate: bool) -> None:
        self.validate = validate
        self.docs: list[_Doc] = []
        self.problems: list[Problem] = []

    def add_file(
        self,
        file: str,
        data: bytes,
        location_of: Callable[[dict[str, Any], int], Location] | None = None,
        limit: int = MAX_FILE_SIZE,
    ) -> None:
        text, problem = _decode(data, file, limit)
        if problem is not None or text is None:
            self.problems.append(problem or Problem("unreadable", Location(file)))
            return
        if file.endswith(".json"):
            self._add_json(file, text)
            return
        docs: list[_Doc] = []
        problems: list[Problem] = []
        try:
            for node in compose_documents(text):
                line = node.start_mark.line + 1
                try:
                    value = construct(node)
                except YamlError as exc:
                    problems.append(Problem(exc.message, Location(file, exc.line or line)))
                    continue
                except RecursionError:
                    problems.append(Problem("document is nested too deeply", Location(file, line)))
                    continue
                self._add_value(value, node, Location(file, line), docs, problems, location_of)
        except YamlError as exc:
            # A syntax error spoils the whole file: contribute nothing from it.
            self.problems.append(Problem(exc.message, Location(file, exc.line)))
            return
        self.docs.extend(docs)
        self.problems.extend(problems)

    def _add_json(self, file: str, text: str) -> None:
        if not text.strip():
            return  # an empty file, like an empty YAML document
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            self.problems.append(Problem(f"JSON syntax error: {exc.msg}", Location(file, exc.lineno)))
            return
        except RecursionError:
            self.problems.append(Problem("document is nested too deeply", Location(file, 1)))
            return
        values = value if isinstance(value, list) else [value]
        for item in values:
            self._add_value(item, None, Location(file, 1), self.docs, self.problems, None)

    def _add_value(
        self,
        value: Any,
        node: Node | None,
        location: Location,
        docs: list[_Doc],
        problems: list[Problem],
        location_of: Callable[[dict[str, Any], int], Location] | None,
    ) -> None:
        if value is None:
            return  # empty document
        if not isinstance(value, dict):
            problems.append(
                Problem(f"document is {_describe(value)}, not a Kubernetes object (a mapping)", location)
            )
            return
        kind = value.get("kind")
        items = value.get("items")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            items_node = _child(node, "items")
            for i, item in enumerate(items):
                item_node = (
                    items_node.value[i]
                    if isinstance(items_node, SequenceNode) and i < len(items_node.value)
                    else None
                )
                item_loc = (
                    Location(location.file, item_node.start_mark.line + 1)
                    if item_node is not None
                    else location
                )
                self._add_value(item, item_node, item_loc, docs, problems, location_of)
            return
        if location_of is not None:
            location = location_of(value, location.line)
        missing = _missing_fields(value)
        if missing:
            problems.append(Problem(missing, location, _partial_label(value)))
            return
        normalize_manifest(value)
        doc = _Doc(value, location)
        if self.validate:
            errors = _validator().check_object(value)
            for path, message in errors or ():
                line = _line_at(node, path) if node is not None and location_of is None else location.line
                doc.schema_errors.append((format_path(path), message, line))
        docs.append(doc)


def _child(node: Node | None, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return v
    return None


def _partial_label(obj: Mapping[str, Any]) -> str:
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "<no kind>"
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{kind}/{name if isinstance(name, str) and name else '<no name>'}"


def _missing_fields(obj: Mapping[str, Any]) -> str:
    missing = []
    for key in ("apiVersion", "kind"):
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            missing.append(key)
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        missing.append("metadata.name")
    else:
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            hint = " (generateName cannot be applied declaratively)" if meta.get("generateName") else ""
            missing.append("metadata.name" + hint)
        elif meta.get("namespace") is not None and not isinstance(meta.get("namespace"), str):
            return "metadata.namespace must be a string"
    if not missing:
        return ""
    return "missing " + ", ".join(missing)


def render(
    files: Mapping[str, bytes],
    app_path: str,
    *,
    default_namespace: str,
    namespaced: Callable[[str, str], bool | None],
    validate: bool = False,
    kubectl: str | None = None,
    timeout: float = KUSTOMIZE_TIMEOUT,
) -> tuple[list[Manifest], list[Problem]]:
    """Render ``app_path`` of a repository snapshot into normalised manifests.

    ``files`` maps repo-relative POSIX paths to contents. Plain directories: every
    ``*.yaml``/``*.yml``/``*.json`` below ``app_path`` (recursively, sorted by
    path, hidden files and directories skipped), multi-document, ``*List``
    kinds expanded. A kustomization file at ``app_path`` renders through
    ``kubectl kustomize`` instead. ``namespaced(apiVersion, kind)`` answers the
    scope from discovery (None when unknown; CRDs in the output then count).
    With ``validate`` every built-in object is also checked against the strict
    1.32 schemas, with the line of the offending field.
    """
    directory = _norm_dir(app_path)
    if directory is None:
        return [], [Problem(f"app path {app_path!r} must be relative and stay inside the repository")]
    default_namespace = default_namespace or "default"
    parser = _Parser(validate)
    kustomization = next(
        (
            posixpath.join(directory, n) if directory else n
            for n in KUSTOMIZATION_FILES
            if (posixpath.join(directory, n) if directory else n) in files
        ),
        None,
    )
    with _no_gc():
        if kustomization is not None:
            _render_kustomize(files, directory, kustomization, parser, kubectl, timeout)
        else:
            paths = sorted(p for p in files if _under(p, directory))
            if not paths and directory not in files:
                return [], [Problem(f"path {directory or '.'!r} not found in the source")]
            if directory in files:  # app_path names a single file
                paths = [directory]
            for path in paths:
                rel = path[len(directory) + 1 :] if directory and path != directory else path
                if path != directory and (_hidden(rel) or not path.endswith(MANIFEST_SUFFIXES)):
                    continue
                parser.add_file(path, files[path])
        manifests, problems = _finish(parser, default_namespace, namespaced)
    order = {path: i for i, path in enumerate(sorted(files))}
    everything = parser.problems + problems
    everything.sort(
        key=lambda p: (order.get(p.location.file, -1), p.location.line) if p.location else (-1, 0)
    )
    return manifests, everything


def _finish(
    parser: _Parser, default_namespace: str, namespaced: Callable[[str, str], bool | None]
) -> tuple[list[Manifest], list[Problem]]:
    crds: dict[tuple[str, str], bool] = {}
    for doc in parser.docs:
        if doc.obj.get("kind") == "CustomResourceDefinition" and str(
            doc.obj.get("apiVersion", "")
        ).startswith("apiextensions.k8s.io/"):
            crds.update(_crd_scopes(doc.obj))
    problems: list[Problem] = []
    manifests: list[Manifest] = []
    seen: dict[ObjRef, Manifest] = {}
    for doc in parser.docs:
        obj = doc.obj
        api_version, kind = obj["apiVersion"], obj["kind"]
        scope = namespaced(api_version, kind)
        if scope is None:
            scope = crds.get((api_version, kind))
        if scope is None:
            problems.append(
                Problem(
                    f"unknown kind {kind} (apiVersion {api_version}): not a built-in kind, not served by the "
                    "cluster and no CustomResourceDefinition for it in this app",
                    doc.location,
                    _partial_label(obj),
                )
            )
            continue
        meta = obj["metadata"]
        notes: tuple[str, ...] = ()
        if scope:
            if not meta.get("namespace"):
                meta["namespace"] = default_namespace
        elif "namespace" in meta:
            dropped = meta.pop("namespace")
            if dropped:
                notes = (f"namespace {dropped!r} dropped: {kind} is cluster-scoped",)
        ref = ObjRef.of(obj)
        label = str(ref)
        for fld, message, line in doc.schema_errors:
            problems.append(Problem(message, Location(doc.location.file, line), label, fld))
        first = seen.get(ref)
        if first is not None:
            problems.append(
                Problem(f"duplicate object: also defined at {first.location}", doc.location, label)
            )
            problems.append(
                Problem(f"duplicate object: also defined at {doc.location}", first.location, label)
            )
            continue  # the first definition stays
        manifest = Manifest(obj, ref, doc.location, notes)
        seen[ref] = manifest
        manifests.append(manifest)
    return manifests, problems


# ----- kustomize ----------------------------------------------------------------------------

_KUSTOMIZE_LIST_FIELDS = (
    "resources",
    "bases",
    "components",
    "crds",
    "patchesStrategicMerge",
    "configurations",
    "generators",
    "transformers",
    "validators",
)


def _looks_remote(ref: str) -> bool:
    return (
        "://" in ref
        or ref.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/"))
        or "?ref=" in ref
    )


def _kustomize_refs(data: Mapping[str, Any]) -> Iterator[str]:
    """Local paths a kustomization refers to (best effort: used to pick which files to copy)."""
    for key in _KUSTOMIZE_LIST_FIELDS:
        for item in data.get(key) or ():
            if isinstance(item, str) and "\n" not in item:
                yield item
    for key in ("patches", "patchesJson6902", "replacements"):
        for item in data.get(key) or ():
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                yield item["path"]
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in data.get(key) or ():
            if not isinstance(gen, dict):
                continue
            for entry in [*(gen.get("files") or ()), *(gen.get("envs") or ()), gen.get("env")]:
                if isinstance(entry, str):
                    yield entry.split("=", 1)[-1]
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield openapi["path"]


def _load_small_yaml(data: bytes) -> Any:
    text, problem = _decode(data, "")
    if problem is not None or text is None:
        return None
    try:
        for node in compose_documents(text):
            return construct(node)
    except (YamlError, RecursionError):
        return None
    return None


def _kustomize_root(files: Mapping[str, bytes], directory: str) -> tuple[str, list[Problem]]:
    """The common ancestor of ``directory`` and every local path its kustomizations reach."""
    dirs = {posixpath.dirname(p) for p in files}
    all_dirs = set(dirs)
    for d in dirs:
        while d:
            d = posixpath.dirname(d)
            all_dirs.add(d)
    root = directory
    problems: list[Problem] = []
    stack, visited = [directory], set()
    while stack:
        d = stack.pop()
        if d in visited:
            continue
        visited.add(d)
        kfile = next(
            (
                posixpath.join(d, n) if d else n
                for n in KUSTOMIZATION_FILES
                if (posixpath.join(d, n) if d else n) in files
            ),
            None,
        )
        if kfile is None:
            continue
        data = _load_small_yaml(files[kfile])
        if not isinstance(data, dict):
            continue
        for ref in _kustomize_refs(data):
            if _looks_remote(ref):
                continue
            target = posixpath.normpath(posixpath.join(d, ref))
            if target == ".." or target.startswith(("../", "/")):
                problems.append(
                    Problem(f"kustomization refers to {ref!r}, outside the repository", Location(kfile))
                )
                continue
            target = "" if target == "." else target
            is_dir = target in all_dirs
            base = target if is_dir else posixpath.dirname(target)
            root = posixpath.commonpath([root, base]) if root and base else ""
            if is_dir:
                stack.append(target)
    return root, problems


def _origin_locator(
    files: Mapping[str, bytes], directory: str, kfile: str
) -> Callable[[dict[str, Any], int], Location]:
    """Map a kustomize output object to its source file (origin annotation) and document line."""
    cache: dict[str, list[tuple[str, str, int]]] = {}

    def docs_of(path: str) -> list[tuple[str, str, int]]:
        if path not in cache:
            found: list[tuple[str, str, int]] = []
            text, problem = _decode(files[path], path) if path in files else (None, None)
            if text is not None and problem is None:
                with contextlib.suppress(YamlError, RecursionError):
                    for node in compose_documents(text):
                        kind_node, meta_node = _child(node, "kind"), _child(node, "metadata")
                        name_node = _child(meta_node, "name")
                        kind = kind_node.value if isinstance(kind_node, ScalarNode) else ""
                        name = name_node.value if isinstance(name_node, ScalarNode) else ""
                        found.append((kind, name, node.start_mark.line + 1))
            cache[path] = found
        return cache[path]

    def locate(obj: dict[str, Any], line: int) -> Location:
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        annotations = meta.get("annotations")
        origin_text = annotations.get(ORIGIN_ANNOTATION) if isinstance(annotations, dict) else None
        origin = _load_small_yaml(origin_text.encode()) if isinstance(origin_text, str) else None
        if isinstance(origin, dict) and isinstance(origin.get("path"), str) and "repo" not in origin:
            path = posixpath.normpath(posixpath.join(directory, origin["path"]))
            kind, name = obj.get("kind"), meta.get("name") or ""
            candidates = [(k, n, ln) for k, n, ln in docs_of(path) if k == kind]
            exact = [ln for k, n, ln in candidates if n == name]
            fuzzy = [ln for k, n, ln in candidates if n and n in name]
            pick = (exact or fuzzy or [0])[0]
            return Location(path, pick)
        if isinstance(origin, dict) and isinstance(origin.get("configuredIn"), str):
            return Location(posixpath.normpath(posixpath.join(directory, origin["configuredIn"])))
        return Location(kfile)

    return locate


def _render_kustomize(
    files: Mapping[str, bytes],
    directory: str,
    kfile: str,
    parser: _Parser,
    kubectl: str | None,
    timeout: float,
) -> None:
    binary = shutil.which(kubectl or "kubectl")
    if binary is None:
        where = f"at {kubectl}" if kubectl and "/" in kubectl else "on PATH"
        parser.problems.append(
            Problem(
                f"{kfile} needs kustomize, but kubectl was not found {where}: install kubectl (it includes kustomize)",
                Location(kfile),
            )
        )
        return
    root, problems = _kustomize_root(files, directory)
    parser.problems.extend(problems)
    kdata = _load_small_yaml(files[kfile])
    build_meta = kdata.get("buildMetadata") if isinstance(kdata, dict) else None
    user_origins = isinstance(build_meta, list) and "originAnnotations" in build_meta
    with tempfile.TemporaryDirectory(prefix="driftdeck-kustomize-") as tmp:
        base = Path(tmp)
        for path in files:
            norm = posixpath.normpath(path)
            if not _under(norm, root) or norm.startswith(("../", "/")) or norm == "..":
                continue
            data = files[path]
            if (
                norm == kfile
                and isinstance(kdata, dict)
                and build_meta is None
                and not data.lstrip().startswith(b"{")
            ):
                data = data.rstrip(b"\n") + b"\nbuildMetadata: [originAnnotations]\n"
            target = base / norm
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            proc = subprocess.run(
                [binary, "kustomize", str(base / directory) if directory else str(base)],
                capture_output=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            parser.problems.append(
                Problem(f"kubectl kustomize timed out after {timeout:g}s", Location(kfile))
            )
            return
        except OSError as exc:
            parser.problems.append(Problem(f"cannot run {binary}: {exc.strerror or exc}", Location(kfile)))
            return
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip().replace(tmp + "/", "")
        parser.problems.append(
            Problem(
                f"kubectl kustomize failed: {stderr or f'exit status {proc.returncode}'}", Location(kfile)
            )
        )
        return
    locate = _origin_locator(files, directory, kfile)

    def location_of(obj: dict[str, Any], line: int) -> Location:
        loc = locate(obj, line)
        if not user_origins:
            meta = obj.get("metadata")
            annotations = meta.get("annotations") if isinstance(meta, dict) else None
            if isinstance(annotations, dict) and ORIGIN_ANNOTATION in annotations:
                del annotations[ORIGIN_ANNOTATION]
                if not annotations and isinstance(meta, dict):
                    del meta["annotations"]
        return loc

    # The output is one YAML stream; its lines mean nothing to the user, so locations come from origins.
    parser.add_file(kfile, proc.stdout, location_of, MAX_KUSTOMIZE_OUTPUT)
