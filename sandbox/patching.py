"""The three non-apply PATCH flavours the apiserver accepts, applied to plain JSON values.

* :func:`json_patch` — RFC 6902 as ``gopkg.in/evanphx/json-patch.v4`` applies it
  (the library kube-apiserver uses), quirks included.
* :func:`merge_patch` — RFC 7386 as the same library's ``MergePatch`` applies it.
* :func:`strategic_merge_patch` — ``k8s.io/apimachinery/pkg/util/strategicpatch``
  (``StrategicMergeMapPatch``), driven by the schema's patch markers.

Errors are :class:`PatchError` carrying the HTTP code, reason and message the
apiserver answers with (``patch.go`` in ``apiserver/pkg/endpoints/handlers``):

* JSON patch: an op that does not apply (failed ``test``, missing path, bad index,
  unknown op) is **422 Invalid** via ``NewGenericServerResponse``, whose message is
  the fixed ``the server rejected our request due to an error in our request`` and
  whose ``details`` is ``{}`` — the library's own text (``detail``) is not sent. A
  body that is not a list of objects is 400 BadRequest; more than 10000 ops is 413.
* Merge patch: a ``null``/non-object patch is 400 ``Invalid JSON Patch``.
* Strategic merge patch: malformed ``$retainKeys``/``$setElementOrder``/
  ``$deleteFromPrimitiveList`` are 400 BadRequest; a list of lists is 422 Invalid
  (generic message); every other merge error is returned unwrapped and becomes a
  500 Status with no reason and the raw message (``map: map[image:x] does not
  contain declared merge key: name``), as ``ErrorToAPIStatus`` does.

Inputs are never mutated; results share no containers with the inputs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from core.kube.schema import DEDUCED, Node

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge_patch"]

MAX_JSON_PATCH_OPERATIONS = 10000

_INVALID_MSG = "the server rejected our request due to an error in our request"


class PatchError(Exception):
    """A patch the apiserver would reject; ``status()`` is the response body."""

    def __init__(self, code: int, reason: str, message: str, detail: str = "", details: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason  # "" for errors the apiserver does not classify (500)
        self.message = message  # what the Status carries
        self.detail = detail or message  # the underlying library error text
        self._details = details

    def __str__(self) -> str:
        if self.detail != self.message:
            return f"{self.message} ({self.detail})"
        return self.message

    def status(self) -> dict[str, Any]:
        """The ``Status`` object the apiserver returns for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self._details:
            body["details"] = {}
        body["code"] = self.code
        return body


def _bad_request(msg: str) -> PatchError:
    return PatchError(400, "BadRequest", msg)


def _invalid(detail: str) -> PatchError:
    """``NewGenericServerResponse(422, ...)``: the detail is not in the message."""
    return PatchError(422, "Invalid", _INVALID_MSG, detail=detail, details=True)


def _internal(msg: str) -> PatchError:
    """A plain Go error reaching ``ErrorToAPIStatus``: 500, no reason."""
    return PatchError(500, "", msg)


# --------------------------------------------------------------------------- helpers


def _copy(v: Any) -> Any:
    """Deep copy of a JSON value (dicts and lists rebuilt, scalars shared)."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _hkey(v: Any) -> Any:
    """A hashable identity for a JSON value that keeps bools apart from numbers."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", v)
    if v is None or isinstance(v, str):
        return v
    return ("j", json.dumps(v, sort_keys=True))


def _go_v(v: Any) -> str:
    """Go's ``%v`` of a decoded JSON value (maps print with sorted keys)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_v(x) for x in v) + "]"
    return str(v)


def _go_type(v: Any) -> str:
    """``reflect.TypeOf`` of a decoded JSON value, as Go prints it."""
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    return "<nil>"


def _bad_arg_type(expected: str, actual: Any) -> PatchError:
    return _internal(f"expected a {expected}, but received a {_go_type(actual)}")


# ------------------------------------------------------------------ RFC 6902 (JSON patch)

_POINTER_ESCAPE = re.compile(r"~[01]")
_GO_INT = re.compile(r"[+-]?[0-9]+")


def _decode_key(k: str) -> str:
    return _POINTER_ESCAPE.sub(lambda m: "/" if m.group(0) == "~1" else "~", k)


class _OpError(Exception):
    """An evanphx error string; becomes a 422 at the API boundary."""


def _atoi(key: str) -> int:
    if not _GO_INT.fullmatch(key):
        raise _OpError(f'strconv.Atoi: parsing "{key}": invalid syntax')
    return int(key)


def _find(root: Any, path: str) -> tuple[Any, str] | None:
    """evanphx ``findObject``: the container holding the last token, or None.

    Like the library, the first token is dropped without checking it is empty, so
    a pointer without the leading ``/`` addresses from its second token.
    """
    split = path.split("/")
    if len(split) < 2:
        return None
    cur = root
    for part in split[1:-1]:
        key = _decode_key(part)
        if isinstance(cur, dict):
            nxt = cur.get(key)
        elif isinstance(cur, list):
            if not _GO_INT.fullmatch(key):
                return None
            idx = int(key)
            if idx < 0 or idx >= len(cur):
                return None
            nxt = cur[idx]
        else:
            return None
        if not isinstance(nxt, dict | list):
            return None
        cur = nxt
    return cur, _decode_key(split[-1])


def _c_get(con: Any, key: str) -> Any:
    if isinstance(con, dict):
        return con.get(key)  # v4: a missing key is not an error
    idx = _atoi(key)
    if idx < 0 or idx >= len(con):
        raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
    return con[idx]


def _c_add(con: Any, key: str, val: Any) -> None:
    if isinstance(con, dict):
        con[key] = val
        return
    if key == "-":
        con.append(val)
        return
    try:
        idx = _atoi(key)
    except _OpError as e:
        raise _OpError(f"value was not a proper array index: '{key}': {e}") from None
    size = len(con) + 1
    if idx >= size or idx < -size:
        raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
    if idx < 0:
        idx += size
    con.insert(idx, val)


def _c_remove(con: Any, key: str) -> None:
    if isinstance(con, dict):
        if key not in con:
            raise _OpError(f"Unable to remove nonexistent key: {key}: missing value")
        del con[key]
        return
    idx = _atoi(key)
    if idx >= len(con) or idx < -len(con):
        raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced")
    del con[idx]


def _op_str(op: dict[str, Any], field: str) -> str | None:
    v = op.get(field)
    return v if isinstance(v, str) else None


def _scalar_text(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _ev_equal(doc_val: Any, test_val: Any) -> bool:
    """evanphx v4 ``lazyNode.equal`` (doc side first).

    Objects compare key-by-key over the *document's* keys only, so extra keys in
    the test value are ignored; scalars compare by their JSON text (``1`` is not
    ``1.0``).
    """
    if isinstance(doc_val, dict):
        if not isinstance(test_val, dict):
            return False
        for k, v in doc_val.items():
            if k not in test_val:
                return False
            ov = test_val[k]
            if v is None and ov is None:
                continue
            if v is None or ov is None or not _ev_equal(v, ov):
                return False
        return True
    if isinstance(doc_val, list):
        if not isinstance(test_val, list) or len(doc_val) != len(test_val):
            return False
        return all(
            (a is None and b is None) or (a is not None and b is not None and _ev_equal(a, b))
            for a, b in zip(doc_val, test_val, strict=True)
        )
    if isinstance(test_val, dict | list):
        return False
    return _scalar_text(doc_val) == _scalar_text(test_val)


def _apply_op(root: dict[str, Any], op: dict[str, Any]) -> None:
    kind = _op_str(op, "op") or "unknown"
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise _OpError(f"Unexpected kind: {kind}")
    path = _op_str(op, "path")
    if path is None:
        raise _OpError(f"{kind} operation failed to decode path: operation missing path field: missing value")
    if kind == "add":
        found = _find(root, path)
        if found is None:
            raise _OpError(f'add operation does not apply: doc is missing path: "{path}": missing value')
        try:
            _c_add(found[0], found[1], _copy(op.get("value")))
        except _OpError as e:
            raise _OpError(f"error in add for path: '{path}': {e}") from None
    elif kind == "remove":
        found = _find(root, path)
        if found is None:
            raise _OpError(f'remove operation does not apply: doc is missing path: "{path}": missing value')
        try:
            _c_remove(found[0], found[1])
        except _OpError as e:
            raise _OpError(f"error in remove for path: '{path}': {e}") from None
    elif kind == "replace":
        found = _find(root, path)
        if found is None:
            raise _OpError(f"replace operation does not apply: doc is missing path: {path}: missing value")
        con, key = found
        if isinstance(con, list):
            try:
                idx = _atoi(key)
            except _OpError:
                idx = -1
            if idx < 0 or idx >= len(con):
                raise _OpError(f"replace operation does not apply: doc is missing key: {path}: missing value")
            con[idx] = _copy(op.get("value"))
        else:
            con[key] = _copy(op.get("value"))  # v4 replaces (adds) a missing object key
    elif kind == "test":
        found = _find(root, path)
        if found is None:
            raise _OpError(f"test operation does not apply: is missing path: {path}: missing value")
        try:
            val = _c_get(found[0], found[1])
        except _OpError as e:
            raise _OpError(f"error in test for path: '{path}': {e}") from None
        want = op.get("value")
        ok = want is None if val is None else (want is not None and _ev_equal(val, want))
        if not ok:
            raise _OpError(f"testing value {path} failed: test failed")
    else:  # move, copy
        src = _op_str(op, "from")
        if src is None:
            raise _OpError(
                f"{kind} operation failed to decode from: operation, missing from field: missing value"
            )
        found = _find(root, src)
        if found is None:
            raise _OpError(f"{kind} operation does not apply: doc is missing from path: {src}: missing value")
        try:
            val = _c_get(found[0], found[1])
            if kind == "move":
                _c_remove(found[0], found[1])
        except _OpError as e:
            what = (
                f"error in move for path: '{found[1]}'"
                if kind == "move"
                else f"error in copy for from: '{src}'"
            )
            raise _OpError(f"{what}: {e}") from None
        dest = _find(root, path)
        if dest is None:
            raise _OpError(
                f"{kind} operation does not apply: doc is missing destination path: {path}: missing value"
            )
        try:
            _c_add(dest[0], dest[1], _copy(val) if kind == "copy" else val)
        except _OpError as e:
            what = (
                f"error in move for path: '{path}'"
                if kind == "move"
                else "error while adding value during copy"
            )
            raise _OpError(f"{what}: {e}") from None


def json_patch(doc: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """Apply an RFC 6902 patch as kube-apiserver does (evanphx/json-patch v4).

    Known v4 behaviours kept on purpose: ``replace`` of a missing object key adds
    it; negative array indices count from the end for ``add``/``remove``; the root
    pointer ``""`` is not addressable; ``test`` on objects ignores extra keys in
    the test value.
    """
    if not isinstance(ops, list):
        raise _bad_request(f"json: cannot unmarshal {_json_kind(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise _bad_request(
                f"json: cannot unmarshal {_json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}",
        )
    root: dict[str, Any] = _copy(doc)
    for op in ops:
        try:
            _apply_op(root, op)
        except _OpError as e:
            raise _invalid(str(e)) from None
    return root


def _json_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null"


# ------------------------------------------------------------------ RFC 7386 (merge patch)


def _prune(v: Any) -> Any:
    """A copy with ``null`` object members removed at every depth (array nulls kept)."""
    if isinstance(v, dict):
        return {k: _prune(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_prune(x) for x in v]
    return v


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            doc.pop(k, None)
            continue
        cur = doc.get(k)
        if not isinstance(cur, dict):  # absent, null or not an object
            doc[k] = _prune(v)
        elif isinstance(v, dict):
            _merge_docs(cur, v)
        else:
            doc[k] = _copy(v)  # evanphx does not prune a non-object replacing an object


def merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 JSON merge patch: objects merge, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict):
        raise _bad_request("Invalid JSON Patch")
    out: dict[str, Any] = _copy(doc)
    _merge_docs(out, patch)
    return out


# --------------------------------------------------------------- strategic merge patch

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PREFIX = "$deleteFromPrimitiveList"
_ORDER_PREFIX = "$setElementOrder"

_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_ORDER_LIST = "invalid patch format of setElementOrder list"

_DROP = object()


def _is_directive_key(k: str) -> bool:
    return k == _RETAIN or k.startswith(_ORDER_PREFIX) or k.startswith(_DELETE_PREFIX)


def _clean(v: Any) -> Any:
    """A patch value taken as is: nulls discarded, directive-bearing maps dropped.

    Mirrors ``discardNullValuesFromPatch`` + ``removeDirectives``; the remaining
    ``$``-directive keys, which kube leaves for the decoder to ignore, are stripped.
    Returns ``_DROP`` when the value itself is a directive map.
    """
    if isinstance(v, dict):
        if _PATCH in v:
            return _DROP
        out: dict[str, Any] = {}
        for k, x in v.items():
            if x is None or _is_directive_key(k):
                continue
            c = _clean(x)
            if c is not _DROP:
                out[k] = c
        return out
    if isinstance(v, list):
        return [c for c in (_clean(x) for x in v) if c is not _DROP]
    return v


def _field(node: Node | None, key: str) -> Node | None:
    if node is None or node.kind not in ("struct", "map", "deduced"):
        return None
    return node.field(key)


def _elem(node: Node | None) -> Node | None:
    if node is None:
        return None
    if node.kind == "list":
        return node.elem
    return DEDUCED if node.kind == "deduced" else None


def _strategy(node: Node | None) -> str:
    """The non-retainKeys part of a field's patch strategy (``extractRetainKeysPatchStrategy``)."""
    if node is None or not node.patch_strategy:
        return ""
    parts = node.patch_strategy.split(",")
    if len(parts) == 1:
        return "" if parts[0] == "retainKeys" else parts[0]
    if len(parts) == 2 and "retainKeys" in parts:
        return parts[1] if parts[0] == "retainKeys" else parts[0]
    raise _internal(f"unexpected patch strategy: {node.patch_strategy}")


def _extract_key(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise _bad_request(_BAD_PRIMITIVE_LIST if prefix == _DELETE_PREFIX else _BAD_ORDER_LIST)
    return rest


def _no_merge_key(m: dict[str, Any], key: str) -> PatchError:
    return _internal(f"map: {_go_v(m)} does not contain declared merge key: {key}")


def _element_kind(*lists: list[Any]) -> str:
    """``sliceElementType``: the one Go type of all elements ("map" for objects)."""
    seen: str | None = None
    for lst in lists:
        for v in lst:
            t = _go_type(v)
            if seen is None:
                if t == "[]interface {}":
                    raise _invalid("lists of lists are not supported")
                seen = t
            elif t != seen:
                raise _internal(f"list element types are not identical: {_go_v(list(lists))}")
    if seen is None:
        raise _internal("no elements in any of the given slices")
    return "map" if seen == "map[string]interface {}" else seen


def _ident(item: Any, merge_key: str, kind: str) -> Any:
    if kind == "map":
        return _hkey(item.get(merge_key)) if isinstance(item, dict) else _hkey(None)
    return _hkey(item)


def _positions(order: list[Any], merge_key: str, kind: str) -> dict[Any, int]:
    pos: dict[Any, int] = {}
    for i, item in enumerate(order):
        pos.setdefault(_ident(item, merge_key, kind), i)
    return pos


def _require_merge_key(items: Iterable[Any], merge_key: str) -> None:
    for item in items:
        if not isinstance(item, dict):
            raise _bad_arg_type("map[string]interface {}", item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)


def _sort_by(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """``normalizeSliceOrder``: stable sort by position in ``order`` (``$patch: delete`` items last)."""
    tail: list[Any] = []
    if kind == "map":
        _require_merge_key(items, merge_key)
        _require_merge_key(order, merge_key)
        tail = [x for x in items if x.get(_PATCH) == "delete"]
        if tail:
            items = [x for x in items if x.get(_PATCH) != "delete"]
    pos = _positions(order, merge_key, kind)
    end = len(order)
    return sorted(items, key=lambda x: pos.get(_ident(x, merge_key, kind), end)) + tail


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    """``normalizeElementOrder`` + ``mergeSortedSlice``.

    Patch items keep the patch's order, server-only items the live order; a server
    item is emitted before a patch item only when both are in the live list and it
    comes first there, so items new to the list land before the remaining live ones.
    """
    right = _sort_by(patch_items, patch_order, merge_key, kind)
    left = _sort_by(server_only, server_order, merge_key, kind)
    pos = _positions(server_order, merge_key, kind)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = pos.get(_ident(left[i], merge_key, kind))
            ri = pos.get(_ident(right[j], merge_key, kind))
            if li is not None and ri is not None and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split ``merged`` into items named in ``by`` and the rest."""
    if merge_key:
        for item in by:
            if not isinstance(item, dict):
                raise _internal("value for key 0 is not a map.")
        names = {_hkey(item[merge_key]) for item in by if merge_key in item}
        _require_merge_key(merged, merge_key)
        inside = [x for x in merged if _hkey(x[merge_key]) in names]
        outside = [x for x in merged if _hkey(x[merge_key]) not in names]
    else:
        values = {_hkey(x) for x in by}
        inside = [x for x in merged if _hkey(x) in values]
        outside = [x for x in merged if _hkey(x) not in values]
    return inside, outside


def _merge_slice(
    original: list[Any], patch: list[Any], elem: Node | None, merge_key: str, is_delete: bool, name: str
) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        if is_delete:
            gone = {_hkey(x) for x in patch}
            return [x for x in original if _hkey(x) not in gone]
        seen: set[Any] = set()
        merged = []
        for x in original + patch:
            h = _hkey(x)
            if h not in seen:
                seen.add(h)
                merged.append(_copy(x))
        inside, outside = _partition(merged, patch, "")
        return _normalize_order(inside, outside, patch, original, "", kind)

    if not merge_key:
        raise _internal(f"cannot merge lists without merge key for {name or 'type map'}")
    # $patch directives inside the list (mergeSliceWithSpecialElements).
    items: list[Any] = []
    replace = False
    doomed: set[Any] = set()
    for v in patch:
        if _PATCH not in v:
            items.append(v)
            continue
        directive = v[_PATCH]
        if directive == "delete":
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
            doomed.add(_hkey(v[merge_key]))
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _internal(f"unknown patch type: {_go_v(directive)} in map: {_go_v(v)}")
    if replace:
        original = [c for c in (_clean(x) for x in items) if c is not _DROP]
        items = []
    elif doomed:
        original = [x for x in original if not (merge_key in x and _hkey(x[merge_key]) in doomed)]
    # Merge the remaining items by key (mergeSliceWithoutSpecialElements). The live
    # order used below is the list before appending: new items are not "in" it.
    server_order = list(original)
    index: dict[Any, int] = {}
    for i, x in enumerate(original):
        if merge_key in x:
            index.setdefault(_hkey(x[merge_key]), i)
    for v in items:
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        h = _hkey(v[merge_key])
        at = index.get(h)
        if at is not None:
            original[at] = _merge_map(original[at], v, elem)
        else:
            index[h] = len(original)
            original.append(_clean(v))
    inside, outside = _partition(original, items, merge_key)
    return _normalize_order(inside, outside, items, server_order, merge_key, kind)


def _merge_list_field(
    original: Any, patch: Any, fnode: Node | None, strategy: str, is_delete: bool
) -> list[Any]:
    """``mergeSliceHandler``: merge lists with strategy ``merge``, replace the others."""
    if not isinstance(original, list):
        raise _bad_arg_type("[]interface {}", original)
    if not isinstance(patch, list):
        raise _bad_arg_type("[]interface {}", patch)
    if strategy == "merge" or is_delete:
        merge_key = fnode.patch_merge_key if fnode is not None else ""
        name = fnode.name if fnode is not None else ""
        return _merge_slice(original, patch, _elem(fnode), merge_key, is_delete, name)
    out: list[Any] = _clean(patch)
    return out


def _apply_element_order(
    original: dict[str, Any], patch: dict[str, Any], key: str, node: Node | None
) -> None:
    """One ``$setElementOrder/<field>`` directive with its list (``mergePatchIntoOriginal``)."""
    order = patch.pop(key)
    if not isinstance(order, list):
        raise _bad_arg_type("[]interface {}", order)
    field = _extract_key(key, _ORDER_PREFIX)
    orig_list = original.get(field)
    has_orig = field in original
    patch_list = patch.get(field)
    has_patch = field in patch
    if has_orig and not isinstance(orig_list, list):
        raise _bad_arg_type("[]interface {}", orig_list)
    if has_patch and not isinstance(patch_list, list):
        raise _bad_arg_type("[]interface {}", patch_list)
    fnode = _field(node, field)
    strategy = _strategy(fnode)
    merge_key = fnode.patch_merge_key if fnode is not None else ""
    orig_items: list[Any] = orig_list if has_orig else []  # type: ignore[assignment]
    patch_items: list[Any] = patch_list if has_patch else []  # type: ignore[assignment]
    _check_order(patch_items, order, merge_key)
    if has_orig and not has_patch:
        merged = orig_items
    elif has_patch and not has_orig:
        merged = _clean(patch_items)
    elif has_orig and has_patch:
        merged = _merge_list_field(orig_items, patch_items, fnode, strategy, False)
    else:
        return
    inside, outside = _partition(merged, order, merge_key)
    kind = _element_kind(orig_items, patch_items)
    original[field] = _normalize_order(inside, outside, order, orig_items, merge_key, kind)
    patch.pop(field, None)


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """``validatePatchWithSetOrderList``: patch items must follow ``order``."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        for v in patch_list:
            if not isinstance(v, dict):
                raise _bad_arg_type("map[string]interface {}", v)
        items = [v for v in patch_list if v.get(_PATCH) != "delete"]

    def same(a: Any, b: Any) -> bool:
        if not merge_key:
            return bool(_hkey(a) == _hkey(b))
        for m in (a, b):
            if not isinstance(m, dict):
                raise _bad_arg_type("map[string]interface {}", m)
            if merge_key not in m:
                raise _no_merge_key(m, merge_key)
        return bool(_hkey(a[merge_key]) == _hkey(b[merge_key]))

    p = s = 0
    while p < len(items) and s < len(order):
        if isinstance(items[p], dict) and _PATCH in items[p]:
            p += 1
            continue
        if same(items[p], order[s]):
            p += 1
        s += 1
    if p < len(items) and s >= len(order):
        raise _internal(
            f"the order in patch list:\n{_go_v(patch_list)}\n doesn't match {_ORDER_PREFIX} list:\n{_go_v(order)}"
        )


def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: Node | None) -> dict[str, Any]:
    """``mergeMap``: ``original`` is owned (mutated and returned), ``patch`` is read only."""
    if _PATCH in patch:
        directive = patch[_PATCH]
        if directive == "replace":
            out = _clean({k: v for k, v in patch.items() if k != _PATCH})
            return out if isinstance(out, dict) else {}
        if directive == "delete":
            return {}
        raise _internal(f"unknown patch type: {_go_v(directive)} in map: {_go_v(patch)}")
    patch = dict(patch)

    if _RETAIN in patch:
        retain = patch.pop(_RETAIN)
        if not isinstance(retain, list):
            raise _bad_request(_BAD_RETAIN_KEYS)
        keep = {k for k in retain if isinstance(k, str)}
        for k, v in patch.items():
            if v is None or k.startswith(_DELETE_PREFIX) or k.startswith(_ORDER_PREFIX):
                continue
            if k not in keep:
                raise _bad_request(_BAD_RETAIN_KEYS)
        for k in [k for k in original if k not in keep]:
            del original[k]

    for key in [k for k in patch if k.startswith(_ORDER_PREFIX)]:
        _apply_element_order(original, patch, key, node)

    for key, pv in patch.items():
        k = key
        is_delete = False
        if key.startswith(_DELETE_PREFIX):
            k = _extract_key(key, _DELETE_PREFIX)
            is_delete = True
        if pv is None:
            original.pop(k, None)
            continue
        if k not in original or _go_type(original[k]) != _go_type(pv):
            if not is_delete:
                cv = _clean(pv)
                if cv is _DROP:
                    original.pop(k, None)
                else:
                    original[k] = cv
            continue
        ov = original[k]
        if isinstance(ov, dict):
            fnode = _field(node, k)
            if _strategy(fnode) == "replace":
                cv = _clean(pv)
                original[k] = {} if cv is _DROP else cv
            else:
                original[k] = _merge_map(ov, pv, fnode)
        elif isinstance(ov, list):
            fnode = _field(node, k)
            original[k] = _merge_list_field(ov, pv, fnode, _strategy(fnode), is_delete)
        else:
            original[k] = pv
    return original


def strategic_merge_patch(doc: dict[str, Any], patch: dict[str, Any], node: Node | None) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to ``doc``, the schema ``node`` of its kind.

    Lists whose field is marked ``x-kubernetes-patch-strategy: merge`` merge by
    ``patchMergeKey`` (object items) or as sets (scalar items); other lists are
    replaced. ``null`` deletes a key. Supported directives: ``$patch:
    replace|delete`` in maps, ``$patch: replace|delete`` items in merging lists,
    ``$retainKeys``, ``$setElementOrder/<field>`` and
    ``$deleteFromPrimitiveList/<field>``. Fields the schema does not know merge as
    maps / replace as lists (JSON-merge-patch-like). ``node=None`` means no schema.
    """
    if not isinstance(patch, dict):
        raise _bad_request(
            f"json: cannot unmarshal {_json_kind(patch)} into Go value of type map[string]interface {{}}"
        )
    return _merge_map(_copy(doc), patch, node)
