"""Schema-guided operations on JSON-like objects: the typed layer of server-side apply.

Every function takes plain ``dict``/``list``/scalar values and a schema
:class:`~core.kube.schema.Node` that says how each node merges:

* scalars, atomic lists, atomic maps/structs are *leaves* (owned and replaced whole);
* granular structs and maps merge per key; undeclared keys (map entries, keys of
  deduced objects) are members of a field set, declared struct fields are not;
* ``list_type == "map"`` lists merge per item key (with key defaults such as
  ``protocol: TCP``), ``"set"`` lists per scalar value.

Results are fresh containers; inputs are never modified (except by :func:`prune`,
which works in place on an object the caller owns).
"""

from __future__ import annotations

from typing import Any

from core.kube.fieldpath import FieldSet, Path, SetNode, key, path_string, value
from core.kube.schema import DEDUCED, Node

_MISSING: Any = object()

_LEAF, _MAP, _LIST = 0, 1, 2


class StructuredError(ValueError):
    """An object does not fit its schema (duplicate or missing list keys, bad set items)."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        self.reason = message
        where = path_string(path)
        super().__init__(f"{where}: {message}" if where else message)


# --- helpers --------------------------------------------------------------------------------------


def copy_json(v: Any) -> Any:
    """A fast deep copy of a JSON-like value."""
    if isinstance(v, dict):
        return {k: copy_json(x) if isinstance(x, (dict, list)) else x for k, x in v.items()}
    if isinstance(v, list):
        return [copy_json(x) if isinstance(x, (dict, list)) else x for x in v]
    return v


def _list_mode(node: Node) -> int:
    """0 atomic, 1 list-map, 2 set."""
    if node.list_type == "map":
        return 1 if node.keys else 0
    if node.list_type == "set":
        return 2
    return 0


def _shape(node: Node, a: Any, b: Any) -> int:
    """How two values at ``node`` combine: as a leaf, a granular map or a granular list."""
    kind = node.kind
    if kind == "scalar" or node.atomic:
        return _LEAF
    if kind in ("struct", "map"):
        return _MAP
    if kind == "list":
        return _LIST if _list_mode(node) else _LEAF
    # deduced: objects are granular maps, everything else a leaf
    if isinstance(a, dict) or isinstance(b, dict):
        return _MAP
    return _LEAF


def item_element(item: Any, node: Node, path: Path = ()) -> str:
    """The path element of one item of a list-map or set ``node``."""
    if node.list_type == "map":
        if not isinstance(item, dict):
            raise StructuredError(path, "associative list with keys may not have non-map elements")
        keys = node.keys
        if len(keys) == 1:
            k = keys[0]
            if k in item:
                return key({k: item[k]})
            if k in node.key_defaults:
                return key({k: node.key_defaults[k]})
        else:
            fields: dict[str, Any] = {}
            for k in keys:
                if k in item:
                    fields[k] = item[k]
                elif k in node.key_defaults:
                    fields[k] = node.key_defaults[k]
            if fields:
                return key(fields)
        raise StructuredError(path, "associative list with keys has an element that omits all key fields")
    if isinstance(item, (dict, list)):
        raise StructuredError(path, "associative list without keys has an element that's a map or a list")
    if item is None:
        raise StructuredError(path, "associative list without keys has an element that's an explicit null")
    return value(item)


def _index_items(items: list[Any], node: Node, path: Path, strict: bool) -> tuple[list[str], dict[str, Any]]:
    """Elements of the items in order, and the first item per element."""
    pes: list[str] = []
    first: dict[str, Any] = {}
    for item in items:
        pe = item_element(item, node, path)
        if pe in first:
            if strict:
                raise StructuredError(path, f"duplicate entries for key {path_string((pe,))}")
        else:
            first[pe] = item
        pes.append(pe)
    return pes, first


def _leaf_equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if (type(a) is bool) != (type(b) is bool):
        return False
    return bool(a == b)


# --- field sets -----------------------------------------------------------------------------------


def to_field_set(obj: Any, node: Node) -> FieldSet:
    """The paths an Apply of ``obj`` owns (server-side-apply-cases §1.5, §1.6)."""
    out: list[Path] = []
    _tfs(obj, node, (), out)
    return FieldSet(out)


def _tfs(v: Any, node: Node, prefix: Path, out: list[Path]) -> None:
    shape = _shape(node, v, None)
    if shape == _LEAF:
        out.append(prefix)
        return
    if shape == _MAP:
        if not isinstance(v, dict):
            if v is not None:
                out.append(prefix)
            return
        for k, cv in v.items():
            child, declared = node.child(k)
            p = (*prefix, "f:" + k)
            _tfs(cv, child, p, out)
            if not declared or cv is None or (isinstance(cv, dict) and not cv):
                out.append(p)
        return
    if not isinstance(v, list):
        if v is not None:
            out.append(prefix)
        return
    elem = node.elem
    for item in v:
        p = (*prefix, item_element(item, node, prefix))
        _tfs(item, elem, p, out)
        out.append(p)


# --- merge ----------------------------------------------------------------------------------------


def merge(live: dict[str, Any] | None, applied: dict[str, Any], node: Node) -> dict[str, Any]:
    """Server-side-apply merge of ``applied`` over ``live``.

    Applied values win on leaves; atomic nodes are replaced whole; granular maps
    merge per key; list-maps and sets per item, ordered as SMD orders them (shared
    items follow the applied order, live-only items stay after their predecessor).
    List-map items the applied object touches get missing defaulted key fields.
    Raises :class:`StructuredError` for duplicate or missing keys in ``applied``.
    """
    out = _merge(live if live is not None else {}, applied, node, ())
    return out if isinstance(out, dict) else {}


def _merge(lv: Any, rv: Any, node: Node, path: Path) -> Any:
    if rv is _MISSING:
        return copy_json(lv)
    shape = _shape(node, lv, rv)
    if shape == _LEAF:
        return copy_json(rv)
    if shape == _MAP:
        lm = lv if isinstance(lv, dict) else None
        if not isinstance(rv, dict):
            if rv is not None or not lm:
                return copy_json(rv)
            return copy_json(lm)
        if not lm:
            if not rv:
                return {}
            lm = None
        out: dict[str, Any] = {}
        if lm:
            for k, x in lm.items():
                y = rv.get(k, _MISSING)
                if y is _MISSING:
                    out[k] = copy_json(x)
                else:
                    out[k] = _merge(x, y, node.child(k)[0], (*path, "f:" + k))
            for k, y in rv.items():
                if k not in lm:
                    out[k] = _merge(_MISSING, y, node.child(k)[0], (*path, "f:" + k))
        else:
            for k, y in rv.items():
                out[k] = _merge(_MISSING, y, node.child(k)[0], (*path, "f:" + k))
        return out
    # granular list
    ll = lv if isinstance(lv, list) else None
    if not isinstance(rv, list):
        if rv is not None or not ll:
            return copy_json(rv)
        return copy_json(ll)
    if not ll and not rv:
        return []
    return _merge_list(ll or [], rv, node, path)


def _merge_item(lv: Any, rv: Any, node: Node, elem: Node, path: Path) -> Any:
    item = _merge(lv, rv, elem, path)
    if node.key_defaults and isinstance(item, dict):
        for k, d in node.key_defaults.items():
            if k not in item:
                item[k] = d
    return item


def _merge_list(ll: list[Any], rl: list[Any], node: Node, path: Path) -> list[Any]:
    elem = node.elem
    r_pes, r_items = _index_items(rl, node, path, strict=True)
    l_pes, l_first = _index_items(ll, node, path, strict=False)
    shared = [pe for pe in r_pes if pe in l_first]
    si = 0
    next_shared: str | None = shared[0] if shared else None
    done: set[str] = set()
    out: list[Any] = []
    i = j = 0
    nl, nr = len(ll), len(rl)
    while i < nl or j < nr:
        if i < nl and j < nr:
            lpe = l_pes[i]
            if lpe == r_pes[j]:
                if lpe not in done:
                    out.append(_merge_item(ll[i], r_items[lpe], node, elem, (*path, lpe)))
                    done.add(lpe)
                i += 1
                j += 1
                si += 1
                next_shared = shared[si] if si < len(shared) else None
                continue
            if lpe in r_items and next_shared is not None and next_shared != lpe:
                i += 1
                continue
        if i < nl:
            lpe = l_pes[i]
            if lpe not in r_items:
                out.append(copy_json(ll[i]))
                i += 1
                continue
            if lpe in done:
                i += 1
                continue
        if j < nr:
            rpe = r_pes[j]
            if rpe not in done:
                out.append(_merge_item(l_first.get(rpe, _MISSING), r_items[rpe], node, elem, (*path, rpe)))
                done.add(rpe)
            j += 1
            if next_shared == rpe:
                si += 1
                next_shared = shared[si] if si < len(shared) else None
    return out


# --- compare --------------------------------------------------------------------------------------


def compare(old: Any, new: Any, node: Node) -> tuple[FieldSet, FieldSet, FieldSet]:
    """``(added, modified, removed)`` paths from ``old`` to ``new`` (SMD ``Compare``).

    Leaves are added, removed or modified; a non-leaf node is added (removed) when
    it is absent on one side, together with everything below it. A reordering of
    list items is no change.
    """
    added: list[Path] = []
    modified: list[Path] = []
    removed: list[Path] = []
    _cmp(old if old is not None else {}, new if new is not None else {}, node, (), added, modified, removed)
    return FieldSet(added), FieldSet(modified), FieldSet(removed)


def _cmp(
    lv: Any, rv: Any, node: Node, path: Path, added: list[Path], modified: list[Path], removed: list[Path]
) -> None:
    if lv is rv:
        return
    shape = _shape(node, lv, rv)
    if shape == _MAP:
        lm = lv if isinstance(lv, dict) else None
        rm = rv if isinstance(rv, dict) else None
        if (lm is None and lv is not None) or (rm is None and rv is not None) or (not lm and not rm):
            if path and not _leaf_equal(lv, rv):
                modified.append(path)
            return
        if lm:
            for k, x in lm.items():
                child = node.child(k)[0]
                p = (*path, "f:" + k)
                y = rm.get(k, _MISSING) if rm else _MISSING
                if y is _MISSING:
                    _all(x, child, p, removed)
                else:
                    _cmp(x, y, child, p, added, modified, removed)
        if rm:
            for k, y in rm.items():
                if lm is None or k not in lm:
                    _all(y, node.child(k)[0], (*path, "f:" + k), added)
        return
    if shape == _LIST:
        ll = lv if isinstance(lv, list) else None
        rl = rv if isinstance(rv, list) else None
        if (ll is None and lv is not None) or (rl is None and rv is not None) or (not ll and not rl):
            if path and not _leaf_equal(lv, rv):
                modified.append(path)
            return
        elem = node.elem
        _, lfirst = _index_items(ll or [], node, path, strict=False)
        _, rfirst = _index_items(rl or [], node, path, strict=False)
        for pe, x in lfirst.items():
            y = rfirst.get(pe, _MISSING)
            if y is _MISSING:
                _all(x, elem, (*path, pe), removed)
            else:
                _cmp(x, y, elem, (*path, pe), added, modified, removed)
        for pe, y in rfirst.items():
            if pe not in lfirst:
                _all(y, elem, (*path, pe), added)
        return
    if not _leaf_equal(lv, rv):
        modified.append(path)


def _all(v: Any, node: Node, path: Path, out: list[Path]) -> None:
    """``path`` and every path below it, as a one-sided compare reports them."""
    shape = _shape(node, v, None)
    if shape == _MAP and isinstance(v, dict) and v:
        for k, x in v.items():
            _all(x, node.child(k)[0], (*path, "f:" + k), out)
    elif shape == _LIST and isinstance(v, list) and v:
        elem = node.elem
        _, first = _index_items(v, node, path, strict=False)
        for pe, x in first.items():
            _all(x, elem, (*path, pe), out)
    out.append(path)


def all_fields(obj: Any, node: Node, before: Any = None) -> FieldSet:
    """Every field of ``obj`` as an Update from ``before`` (default: nothing) would own it."""
    added, modified, _ = compare(before if before is not None else {}, obj, node)
    return added.union(modified)


# --- remove / project -----------------------------------------------------------------------------


def remove(obj: dict[str, Any], fs: FieldSet, node: Node) -> dict[str, Any]:
    """``obj`` without the paths of ``fs``; removing a node removes its subtree.

    Containers emptied by the removal are dropped (the apiserver's typed round-trip
    turns them into absent fields). Unmodified subtrees are shared with ``obj``.
    """
    if fs.is_empty():
        return obj
    out = _remove(obj, fs.tree, node, ())
    return out if isinstance(out, dict) else {}


def _remove(v: Any, tree: dict[str, SetNode], node: Node, path: Path) -> Any:
    """A copy of ``v`` without the paths in ``tree``; ``_MISSING`` when it became empty."""
    shape = _shape(node, v, None)
    if shape == _MAP and isinstance(v, dict):
        out = None
        for pe, sub in tree.items():
            if pe[0] != "f":
                continue
            k = pe[2:]
            if k not in v:
                continue
            if out is None:
                out = dict(v)
            if sub.member:
                del out[k]
            elif sub.children:
                res = _remove(v[k], sub.children, node.child(k)[0], (*path, pe))
                if res is _MISSING:
                    del out[k]
                else:
                    out[k] = res
        if out is None:
            return v
        return out if out or not v else _MISSING
    if shape == _LIST and isinstance(v, list):
        elem = node.elem
        items: list[Any] = []
        changed = False
        for item in v:
            pe = item_element(item, node, path)
            hit = tree.get(pe)
            if hit is None:
                items.append(item)
                continue
            changed = True
            if hit.member:
                continue
            res = _remove(item, hit.children, elem, (*path, pe))
            if res is not _MISSING:
                items.append(res)
        if not changed:
            return v
        return items if items or not v else _MISSING
    return v


def project(obj: Any, fs: FieldSet, node: Node) -> dict[str, Any]:
    """The part of ``obj`` that ``fs`` covers.

    A leaf member (scalar, atomic) is taken whole. A granular member with no member
    below it stands for the node's existence: an empty container (a list-map item
    keeps its key fields). Members with children keep only those children. Paths
    missing from ``obj`` are skipped, so ``project(live, F) == project(expected, F)``
    tells whether the fields ``F`` agree.
    """
    out = _project(obj, fs.tree, node, ())
    return out if isinstance(out, dict) else {}


def _presence(v: Any, node: Node, list_node: Node | None) -> Any:
    shape = _shape(node, v, None)
    if shape == _MAP and isinstance(v, dict):
        if list_node is not None and list_node.list_type == "map":
            return {k: copy_json(v[k]) for k in list_node.keys if k in v}
        return {}
    if shape == _LIST and isinstance(v, list):
        return []
    return copy_json(v)


def _project(v: Any, tree: dict[str, SetNode], node: Node, path: Path) -> Any:
    shape = _shape(node, v, None)
    if shape == _MAP and isinstance(v, dict):
        out: dict[str, Any] = {}
        for pe, sub in tree.items():
            if pe[0] != "f":
                continue
            k = pe[2:]
            if k not in v:
                continue
            child = node.child(k)[0]
            if sub.children:
                res = _project(v[k], sub.children, child, (*path, pe))
                if res is _MISSING:
                    if sub.member:
                        out[k] = _presence(v[k], child, None)
                elif res or sub.member or not isinstance(res, (dict, list)):
                    out[k] = res
            else:
                out[k] = _presence(v[k], child, None)
        return out
    if shape == _LIST and isinstance(v, list):
        elem = node.elem
        items: list[Any] = []
        for item in v:
            pe = item_element(item, node, path)
            hit = tree.get(pe)
            if hit is None:
                continue
            if hit.children:
                res = _project(item, hit.children, elem, (*path, pe))
                if node.list_type == "map" and isinstance(res, dict) and isinstance(item, dict):
                    for k in node.keys:
                        if k in item and k not in res:
                            res[k] = copy_json(item[k])
                items.append(res if res is not _MISSING else _presence(item, elem, node))
            else:
                items.append(_presence(item, elem, node))
        return items
    if tree:
        # A leaf with paths below it (never produced for well-formed sets): take it whole.
        return copy_json(v)
    return _MISSING


# --- prune ----------------------------------------------------------------------------------------


def prune(obj: dict[str, Any], last: FieldSet, owned: FieldSet, node: Node) -> bool:
    """SSA prune, in place: drop what ``last`` owned that no manager in ``owned`` still owns.

    This is SMD's ``prune`` (remove the previous set, add back owned items, add back
    dangling items) computed in one walk: a path of ``last`` is removed when it, or an
    ancestor below some path of ``last``, is not owned. Struct fields with owned
    children count as owned (``EnsureNamedFieldsAreMembers``). Removing an item
    removes its subtree; a defaulted list key field is reset to its default instead
    of being dropped, so the item keeps its key. Returns whether anything changed.
    """
    if last.is_empty():
        return False
    return _prune(obj, node, last.tree, owned.tree, False, False, None)


def _owned(sub: SetNode | None, declared: bool) -> bool:
    return sub is not None and (sub.member or (declared and bool(sub.children)))


def _prune(
    v: Any,
    node: Node,
    ltree: dict[str, SetNode],
    otree: dict[str, SetNode] | None,
    under: bool,
    cut: bool,
    item_of: Node | None,
) -> bool:
    shape = _shape(node, v, None)
    changed = False
    if shape == _MAP and isinstance(v, dict):
        for pe, lsub in ltree.items():
            if pe[0] != "f":
                continue
            k = pe[2:]
            if k not in v:
                continue
            child, declared = node.child(k)
            cv = v[k]
            if declared and cv == [] and _shape(child, cv, None) == _LIST:
                continue  # an empty granular list is not part of any field set
            osub = otree.get(pe) if otree else None
            in_last = lsub.member or (declared and bool(lsub.children))
            u = under or in_last
            c = cut or (u and not _owned(osub, declared))
            if in_last and c:
                if item_of is not None and k in item_of.key_defaults:
                    if v[k] != item_of.key_defaults[k]:
                        v[k] = item_of.key_defaults[k]
                        changed = True
                else:
                    del v[k]
                    changed = True
                continue
            if (
                lsub.children
                and isinstance(cv, (dict, list))
                and cv
                and _prune(cv, child, lsub.children, osub.children if osub else None, u, c, None)
            ):
                changed = True
                if not cv:
                    del v[k]
        return changed
    if shape == _LIST and isinstance(v, list):
        elem = node.elem
        keep: list[Any] = []
        for item in v:
            pe = item_element(item, node)
            lhit = ltree.get(pe)
            if lhit is None:
                keep.append(item)
                continue
            ohit = otree.get(pe) if otree else None
            u = under or lhit.member
            c = cut or (u and not (ohit is not None and ohit.member))
            if lhit.member and c:
                changed = True
                continue
            if lhit.children and isinstance(item, (dict, list)) and item:
                item_node = node if node.list_type == "map" else None
                if _prune(item, elem, lhit.children, ohit.children if ohit else None, u, c, item_node):
                    changed = True
                    if not item:
                        continue
            keep.append(item)
        if changed:
            v[:] = keep
        return changed
    return False


def drop_applied_nulls(obj: Any, applied: Any, node: Node) -> None:
    """Delete, in place, fields that ``applied`` sets to ``null`` and that are still null in ``obj``.

    The apiserver's typed objects cannot hold such nulls: they become unset and
    are then defaulted (server-side-apply-cases D14).
    """
    if isinstance(applied, dict) and isinstance(obj, dict):
        if _shape(node, obj, applied) != _MAP:
            return
        for k, av in applied.items():
            if k not in obj:
                continue
            if av is None:
                if obj[k] is None:
                    del obj[k]
            elif isinstance(av, (dict, list)):
                drop_applied_nulls(obj[k], av, node.child(k)[0])
    elif isinstance(applied, list) and isinstance(obj, list) and node.list_type == "map" and node.keys:
        if _shape(node, obj, applied) != _LIST:
            return
        wanted = {item_element(a, node): a for a in applied if isinstance(a, dict)}
        elem = node.elem
        for item in obj:
            if isinstance(item, dict):
                a = wanted.get(item_element(item, node))
                if a is not None:
                    drop_applied_nulls(item, a, elem)


def ensure_named_fields_are_members(fs: FieldSet, node: Node) -> FieldSet:
    """``fs`` plus every declared struct field that has paths below it (SMD helper)."""
    extra: list[Path] = []

    def walk(level: dict[str, SetNode], n: Node, prefix: Path) -> None:
        for pe, sub in level.items():
            if not sub.children:
                continue
            p = (*prefix, pe)
            if pe[0] == "f":
                child, declared = n.child(pe[2:])
                if declared and not sub.member:
                    extra.append(p)
            else:
                child = n.elem if n.kind == "list" else DEDUCED
            walk(sub.children, child, p)

    walk(fs.tree, node, ())
    return fs.union(FieldSet(extra)) if extra else fs
