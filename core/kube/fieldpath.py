"""Field paths and field sets, as server-side apply records them in ``managedFields``.

A path element is stored as its ``fieldsV1`` key string, which makes elements
cheap to hash and compare:

* ``f:<name>``  a struct field or map key;
* ``k:<json>``  a list-map item, the JSON holding the key fields (sorted, compact, Go escaping);
* ``v:<json>``  a set item (a list of scalars);
* ``i:<n>``     a list index (decoded, never produced for built-in schemas).

A :data:`Path` is a tuple of elements. A :class:`FieldSet` is an immutable set of
paths; every path in it is a *member*. A node that is a member and also has
member descendants is written with a ``"."`` entry in ``fieldsV1``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

PathElement = str
Path = tuple[str, ...]

_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_escape(text: str) -> str:
    """Apply the extra escaping Go's JSON encoder does (``<``, ``>``, ``&``, U+2028, U+2029)."""
    for raw, esc in _GO_ESCAPES:
        if raw in text:
            text = text.replace(raw, esc)
    return text


def _plain(value: Any) -> Any:
    """Integral floats become ints, recursively (Go writes ``80``, not ``80.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys, raw UTF-8 and Go-style escaping."""
    if isinstance(value, str):
        return go_escape(json.dumps(value, ensure_ascii=False))
    if isinstance(value, (float, dict, list)):
        value = _plain(value)
    return go_escape(json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True))


# --- element constructors -------------------------------------------------------------------------


def field(name: str) -> PathElement:
    """A struct field or map key element."""
    return "f:" + name


def key(fields: Mapping[str, Any]) -> PathElement:
    """A list-map item element from its key fields."""
    items = tuple(sorted(fields.items()))
    for _, v in items:
        if isinstance(v, (dict, list, float)):
            return "k:" + canonical_json(dict(fields))
    # bools and ints hash alike (True == 1): keep the type in the cache key.
    return _scalar_key_typed(items, tuple(type(v) is bool for _, v in items))


@lru_cache(maxsize=65536)
def _scalar_key_typed(items: tuple[tuple[str, Any], ...], _bools: tuple[bool, ...]) -> PathElement:
    return "k:" + canonical_json(dict(items))


def value(val: Any) -> PathElement:
    """A set item element."""
    return "v:" + canonical_json(val)


def index(i: int) -> PathElement:
    """A list index element."""
    return "i:" + str(i)


def make_path(*parts: Any) -> Path:
    """Build a path: ``str`` is a field, ``dict`` a list-map key, ``int`` an index.

    Already-encoded elements (``"v:..."`` etc.) can be passed with :func:`value`.
    """
    out: list[str] = []
    for p in parts:
        if isinstance(p, dict):
            out.append(key(p))
        elif isinstance(p, bool):
            raise TypeError("bool is not a path part")
        elif isinstance(p, int):
            out.append(index(p))
        elif isinstance(p, str):
            out.append(p if p[:2] in ("v:", "k:", "i:", "f:") and len(p) > 2 else field(p))
        else:
            raise TypeError(f"unsupported path part {p!r}")
    return tuple(out)


# --- decoding, ordering, printing -----------------------------------------------------------------


@lru_cache(maxsize=65536)
def normalize_element(raw: str) -> PathElement:
    """Validate a ``fieldsV1`` key and return its canonical form."""
    kind, sep, payload = raw.partition(":")
    if not sep or kind not in ("f", "k", "v", "i"):
        raise ValueError(f"invalid path element {raw!r}")
    if kind == "f":
        return raw
    if kind == "i":
        try:
            return "i:" + str(int(payload))
        except ValueError:
            raise ValueError(f"invalid index element {raw!r}") from None
    try:
        decoded = json.loads(payload)
    except ValueError:
        raise ValueError(f"invalid path element {raw!r}") from None
    if kind == "k":
        if not isinstance(decoded, dict) or not decoded:
            raise ValueError(f"invalid key element {raw!r}")
        return "k:" + canonical_json(decoded)
    return "v:" + canonical_json(decoded)


def _value_order(v: Any) -> tuple[Any, ...]:
    """Total order of SMD's ``value.Compare``: numbers, strings, bools, lists, maps, null."""
    if v is None:
        return (5,)
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, tuple(_value_order(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple((k, _value_order(v[k])) for k in sorted(v)))
    return (6, repr(v))


@lru_cache(maxsize=65536)
def element_order(pe: PathElement) -> tuple[Any, ...]:
    """Sort key of an element: fields, then keys, then values, then indexes."""
    kind, payload = pe[0], pe[2:]
    if kind == "f":
        return (1, payload)
    if kind == "k":
        fields = json.loads(payload)
        return (2, tuple((k, _value_order(fields[k])) for k in sorted(fields)))
    if kind == "v":
        return (3, _value_order(json.loads(payload)))
    return (4, int(payload))


def _go_float(f: float) -> str:
    text = repr(f)
    if "e" in text:
        mant, _, exp = text.partition("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mant}e{sign}{digits}"
    return text[:-2] if text.endswith(".0") else text


def go_quote(s: str) -> str:
    """Go's ``%q`` / ``strconv.Quote``."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append(
                {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[
                    ch
                ]
            )
        else:
            cp = ord(ch)
            if cp < 0x80:
                out.append(f"\\x{cp:02x}")
            elif cp < 0x10000:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def _value_string(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, list):
        return "[" + ",".join(_value_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_value_string(v[k])}" for k in sorted(v)) + "}"
    return str(v)


@lru_cache(maxsize=65536)
def element_string(pe: PathElement) -> str:
    """One element in the §4.2 path-string format (``.name``, ``[k=v]``, ``[=v]``, ``[3]``)."""
    kind, payload = pe[0], pe[2:]
    if kind == "f":
        return "." + payload
    if kind == "k":
        fields = json.loads(payload)
        return "[" + ",".join(f"{k}={_value_string(fields[k])}" for k in sorted(fields)) + "]"
    if kind == "v":
        return "[=" + _value_string(json.loads(payload)) + "]"
    return "[" + payload + "]"


def path_string(path: Iterable[PathElement]) -> str:
    """A path in the apiserver's conflict-message format, e.g. ``.spec.containers[name="app"].image``."""
    return "".join(element_string(pe) for pe in path)


def element_key_fields(pe: PathElement) -> dict[str, Any]:
    """The key fields of a ``k:`` element."""
    if not pe.startswith("k:"):
        raise ValueError(f"not a key element: {pe!r}")
    result: dict[str, Any] = json.loads(pe[2:])
    return result


def element_value(pe: PathElement) -> Any:
    """The value of a ``v:`` element."""
    if not pe.startswith("v:"):
        raise ValueError(f"not a value element: {pe!r}")
    return json.loads(pe[2:])


# --- field sets -----------------------------------------------------------------------------------


class SetNode:
    """A node of a field set's tree view: whether it is a member, and its children."""

    __slots__ = ("children", "member")

    def __init__(self) -> None:
        self.member = False
        self.children: dict[PathElement, SetNode] = {}


def _build_tree(paths: Iterable[Path]) -> dict[PathElement, SetNode]:
    root: dict[PathElement, SetNode] = {}
    for path in paths:
        level = root
        node: SetNode | None = None
        for pe in path:
            node = level.get(pe)
            if node is None:
                node = level[pe] = SetNode()
            level = node.children
        if node is not None:
            node.member = True
    return root


class FieldSet:
    """An immutable set of paths with SMD member semantics."""

    __slots__ = ("_paths", "_tree")

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self._paths: frozenset[Path] = paths if isinstance(paths, frozenset) else frozenset(paths)
        self._tree: dict[PathElement, SetNode] | None = None

    # construction / conversion
    @classmethod
    def from_fieldsv1(cls, data: Mapping[str, Any]) -> FieldSet:
        """Decode a ``fieldsV1`` object (any key order or spelling of ``k:``/``v:`` JSON)."""
        out: list[Path] = []

        def walk(obj: Mapping[str, Any], prefix: Path, level: dict[PathElement, SetNode]) -> None:
            for raw, sub in obj.items():
                if raw == ".":
                    continue
                if not isinstance(sub, Mapping):
                    raise ValueError(f"fieldsV1: value of {raw!r} is not an object")
                pe = normalize_element(raw)
                path = (*prefix, pe)
                node = level.get(pe)
                if node is None:
                    node = level[pe] = SetNode()
                if not sub or "." in sub:
                    out.append(path)
                    node.member = True
                if sub:
                    walk(sub, path, node.children)

        if not isinstance(data, Mapping):
            raise ValueError("fieldsV1 is not an object")
        tree: dict[PathElement, SetNode] = {}
        walk(data, (), tree)
        fs = cls(out)
        fs._tree = tree
        return fs

    def to_fieldsv1(self) -> dict[str, Any]:
        """The ``fieldsV1`` object, keys in the apiserver's order (``.`` first)."""

        def emit(level: dict[PathElement, SetNode]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for pe in sorted(level, key=element_order):
                node = level[pe]
                if node.children:
                    child: dict[str, Any] = {".": {}} if node.member else {}
                    child.update(emit(node.children))
                    out[pe] = child
                else:
                    out[pe] = {}
            return out

        return emit(self.tree)

    def to_json(self) -> str:
        """The exact bytes the apiserver writes for this set (Go escaping, raw UTF-8)."""
        return go_escape(json.dumps(self.to_fieldsv1(), separators=(",", ":"), ensure_ascii=False))

    @property
    def tree(self) -> dict[PathElement, SetNode]:
        """A nested view (built once, must not be modified)."""
        if self._tree is None:
            self._tree = _build_tree(self._paths)
        return self._tree

    @property
    def paths(self) -> frozenset[Path]:
        return self._paths

    # set algebra
    def union(self, other: FieldSet) -> FieldSet:
        if not other._paths:
            return self
        if not self._paths:
            return other
        return FieldSet(self._paths | other._paths)

    def difference(self, other: FieldSet) -> FieldSet:
        if not other._paths or not self._paths:
            return self
        return FieldSet(self._paths - other._paths)

    def intersection(self, other: FieldSet) -> FieldSet:
        return FieldSet(self._paths & other._paths)

    __or__ = union
    __sub__ = difference
    __and__ = intersection

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Remove every path of ``other`` together with everything below it."""
        if not other._paths or not self._paths:
            return self
        prefixes = other._paths
        lengths = sorted({len(p) for p in prefixes})
        kept = [p for p in self._paths if not any(p[:n] in prefixes for n in lengths if n <= len(p))]
        return self if len(kept) == len(self._paths) else FieldSet(kept)

    def with_prefix(self, prefix: Path) -> FieldSet:
        """The paths below ``prefix``, with the prefix cut off."""
        n = len(prefix)
        return FieldSet(p[n:] for p in self._paths if len(p) > n and p[:n] == prefix)

    def has_prefix(self, prefix: Path) -> bool:
        """Whether some path is ``prefix`` or below it."""
        level = self.tree
        for pe in prefix:
            node = level.get(pe)
            if node is None:
                return False
            level = node.children
        return True

    def leaves(self) -> FieldSet:
        """Members that have no member below them."""
        parents = {p[:i] for p in self._paths for i in range(1, len(p))}
        return FieldSet(p for p in self._paths if p not in parents)

    # queries
    def is_empty(self) -> bool:
        return not self._paths

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __iter__(self) -> Iterator[Path]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FieldSet):
            return self._paths == other._paths
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._paths)

    def __repr__(self) -> str:
        return f"FieldSet({sorted(path_string(p) for p in self._paths)!r})"

    def iter_sorted(self) -> Iterator[Path]:
        """SMD iteration order: at each level the members (sorted), then each child subtree (sorted)."""

        def walk(level: dict[PathElement, SetNode], prefix: Path) -> Iterator[Path]:
            order = sorted(level, key=element_order)
            for pe in order:
                if level[pe].member:
                    yield (*prefix, pe)
            for pe in order:
                node = level[pe]
                if node.children:
                    yield from walk(node.children, (*prefix, pe))

        return walk(self.tree, ())


EMPTY = FieldSet()


def union_all(sets: Iterable[FieldSet]) -> FieldSet:
    """The union of many sets."""
    acc: set[Path] = set()
    for s in sets:
        acc |= s.paths
    return FieldSet(frozenset(acc))
