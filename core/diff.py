"""Field-level diffs of Kubernetes objects, with Secret values masked.

Every output form (:func:`field_changes`, :func:`unified`, :func:`side_by_side`,
:func:`to_json_patch`) compares the two objects after :func:`strip_for_diff` and
with Secret values masked as Flux does (``***``; ``*** (before)`` / ``*** (after)``
where a key's value changed), so a Secret's plaintext and base64 never leave here.

Lists whose items are all objects are matched by key when one of ``name``,
``containerPort``, ``port``, ``type`` or ``mountPath`` (or ``containerPort``/``port``
with ``protocol``) is present in every item and unique on both sides; other lists
are matched by index. Keyed lists whose items only changed order report no
field change (the JSON patch still reproduces the order).

Values compare with Python's ``==`` (so ``1 == 1.0 == True``), which matches JSON
numbers but cannot tell a boolean from 1 or 0.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Literal

import yaml

Obj = dict[str, Any]
Op = Literal["add", "remove", "change"]

MASK = "***"
MASK_BEFORE = "*** (before)"
MASK_AFTER = "*** (after)"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REVISION = "deployment.kubernetes.io/revision"

#: Top-level fields an operator does not compare.
STRIPPED_TOP = ("status",)
#: ``metadata`` fields the server owns.
STRIPPED_METADATA = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")
#: Annotations written by controllers or client-side apply. ``annotations`` left empty is dropped.
STRIPPED_ANNOTATIONS = (REVISION, LAST_APPLIED)

# Candidate keys of list-maps, tried in order; the first present in every item and unique wins.
_LIST_KEYS: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("containerPort",),
    ("containerPort", "protocol"),
    ("port",),
    ("port", "protocol"),
    ("type",),
    ("mountPath",),
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_PLAIN_KEY_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+-]*$")
_TOP_ORDER = {"apiVersion": 0, "kind": 1, "metadata": 2}
_MAP_ORDER = {"name": 0, "namespace": 1}


# ----- masking and stripping ----------------------------------------------------------------


def is_secret(obj: Obj | None) -> bool:
    """Any object of kind Secret (whatever its group: masking errs on the safe side)."""
    return isinstance(obj, dict) and obj.get("kind") == "Secret"


def _without_last_applied(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return obj
    rest = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    new_meta = {k: v for k, v in meta.items() if k != "annotations"}
    if rest:
        new_meta["annotations"] = rest
    return {**obj, "metadata": new_meta}


def mask_secret(obj: Obj) -> Obj:
    """A Secret with every ``data``/``stringData`` value replaced by ``***`` (keys kept) and its
    last-applied annotation dropped; any other object is returned unchanged (the same dict)."""
    if not is_secret(obj):
        return obj
    out = _without_last_applied(obj)
    out = dict(out) if out is obj else out
    for field in ("data", "stringData"):
        values = out.get(field)
        if isinstance(values, dict):
            out[field] = dict.fromkeys(values, MASK)
    return out


def _secret_data(obj: Obj) -> dict[str, str]:
    """``data`` with ``stringData`` folded in as base64, as the apiserver stores it."""
    raw, string = obj.get("data"), obj.get("stringData")
    data = {str(k): "" if v is None else str(v) for k, v in (raw if isinstance(raw, dict) else {}).items()}
    for k, v in (string if isinstance(string, dict) else {}).items():
        data[k] = base64.b64encode(("" if v is None else str(v)).encode()).decode()
    return data


def _with_data(obj: Obj, data: dict[str, str], had: bool) -> Obj:
    out = {k: v for k, v in _without_last_applied(obj).items() if k not in ("data", "stringData")}
    if data or had:
        out["data"] = data
    return out


def mask_pair(desired: Obj | None, live: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Mask a (desired, live) pair of Secrets the way Flux sanitizes a diff.

    ``stringData`` is folded into ``data`` on both sides. A key present on both sides
    with different values becomes ``*** (after)`` in desired and ``*** (before)`` in
    live; every other value becomes ``***``. Non-Secrets pass through unchanged.
    """
    if not is_secret(desired) and not is_secret(live):
        return desired, live
    if not (is_secret(desired) and is_secret(live)):
        return (mask_secret(desired) if desired is not None else None,
                mask_secret(live) if live is not None else None)
    assert desired is not None and live is not None
    new, old = _secret_data(desired), _secret_data(live)
    new_masked: dict[str, str] = {}
    old_masked: dict[str, str] = {}
    for k, v in new.items():
        changed = k in old and old[k] != v
        new_masked[k] = MASK_AFTER if changed else MASK
    for k, v in old.items():
        changed = k in new and new[k] != v
        old_masked[k] = MASK_BEFORE if changed else MASK
    had_new = "data" in desired or "stringData" in desired
    had_old = "data" in live or "stringData" in live
    return _with_data(desired, new_masked, had_new), _with_data(live, old_masked, had_old)


def _strip(obj: Obj) -> Obj:
    """:func:`strip_for_diff` sharing unchanged sub-trees with ``obj`` (read-only use)."""
    out = {k: v for k, v in obj.items() if k not in STRIPPED_TOP}
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        new_meta = {k: v for k, v in meta.items() if k not in STRIPPED_METADATA}
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            kept = {k: v for k, v in annotations.items() if k not in STRIPPED_ANNOTATIONS}
            if kept:
                new_meta["annotations"] = kept
            else:
                del new_meta["annotations"]
        out["metadata"] = new_meta
    return out


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def strip_for_diff(obj: Obj) -> Obj:
    """A copy of ``obj`` without what an operator does not compare.

    Dropped: ``status``; ``metadata.managedFields``, ``resourceVersion``, ``uid``,
    ``generation``, ``creationTimestamp``, ``selfLink``; the annotations
    ``deployment.kubernetes.io/revision`` and
    ``kubectl.kubernetes.io/last-applied-configuration`` (and ``annotations`` when
    nothing else is left in it).
    """
    result: Obj = _clone(_strip(obj))
    return result


def _prepare(desired: Obj | None, live: Obj | None) -> tuple[Obj | None, Obj | None]:
    return mask_pair(_strip(desired) if desired is not None else None, _strip(live) if live is not None else None)


# ----- field changes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed field. ``before`` is the live value, ``after`` the desired one
    (``None`` for an add or a remove)."""

    path: str
    op: Op
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.op == "add":
            return f"+ {self.path}: {_short(self.after)}"
        if self.op == "remove":
            return f"- {self.path}: {_short(self.before)}"
        return f"~ {self.path}: {_short(self.before)} -> {_short(self.after)}"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field_path(prefix: str, key: str) -> str:
    if _IDENT.match(key):
        return f"{prefix}.{key}" if prefix else key
    return f"{prefix}[{json.dumps(key)}]"


def _key_text(value: Any) -> str:
    if isinstance(value, str) and _PLAIN_KEY_VALUE.match(value):
        return value
    return json.dumps(value)


def _list_key(a: list[Any], b: list[Any]) -> tuple[str, ...] | None:
    """The key fields matching items of two lists, or ``None`` to match by index."""
    if not all(isinstance(i, dict) for i in a) or not all(isinstance(i, dict) for i in b):
        return None
    for fields in _LIST_KEYS:
        ok = True
        for items in (a, b):
            seen: set[tuple[Any, ...]] = set()
            for item in items:
                try:
                    ident = tuple(item[f] for f in fields)
                except KeyError:
                    ok = False
                    break
                if any(isinstance(v, dict | list) for v in ident) or ident in seen:
                    ok = False
                    break
                seen.add(ident)
            if not ok:
                break
        if ok:
            return fields
    return None


def _keyed(items: list[Any], fields: tuple[str, ...]) -> dict[tuple[Any, ...], tuple[int, Any]]:
    return {tuple(item[f] for f in fields): (i, item) for i, item in enumerate(items)}


def _item_path(prefix: str, fields: tuple[str, ...], ident: tuple[Any, ...]) -> str:
    return prefix + "[" + ",".join(f"{f}={_key_text(v)}" for f, v in zip(fields, ident, strict=True)) + "]"


def _walk(path: str, old: Any, new: Any, out: list[FieldChange]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k, v in new.items():
            if k not in old:
                out.append(FieldChange(_field_path(path, str(k)), "add", None, v))
            elif old[k] != v:
                _walk(_field_path(path, str(k)), old[k], v, out)
        for k, v in old.items():
            if k not in new:
                out.append(FieldChange(_field_path(path, str(k)), "remove", v, None))
        return
    if isinstance(old, list) and isinstance(new, list):
        fields = _list_key(old, new)
        if fields is None:
            for i, v in enumerate(new):
                if i < len(old):
                    if old[i] != v:
                        _walk(f"{path}[{i}]", old[i], v, out)
                else:
                    out.append(FieldChange(f"{path}[{i}]", "add", None, v))
            for i in range(len(new), len(old)):
                out.append(FieldChange(f"{path}[{i}]", "remove", old[i], None))
            return
        old_by = _keyed(old, fields)
        new_by = _keyed(new, fields)
        for ident, (_, item) in new_by.items():
            if ident not in old_by:
                out.append(FieldChange(_item_path(path, fields, ident), "add", None, item))
            elif old_by[ident][1] != item:
                _walk(_item_path(path, fields, ident), old_by[ident][1], item, out)
        for ident, (_, item) in old_by.items():
            if ident not in new_by:
                out.append(FieldChange(_item_path(path, fields, ident), "remove", item, None))
        return
    out.append(FieldChange(path, "change", old, new))


def field_changes(desired: Obj | None, live: Obj | None) -> list[FieldChange]:
    """Changes turning ``live`` into ``desired``, on stripped and masked objects.

    Paths look like ``spec.template.spec.containers[name=web].image``; map keys that
    are not identifiers are quoted (``metadata.labels["app.kubernetes.io/name"]``).
    ``None`` on either side counts as an empty object.
    """
    new, old = _prepare(desired, live)
    out: list[FieldChange] = []
    _walk("", old or {}, new or {}, out)
    return out


# ----- YAML renderings ----------------------------------------------------------------------


class _Dumper(yaml.CSafeDumper if hasattr(yaml, "CSafeDumper") else yaml.SafeDumper):  # type: ignore[misc]
    """Safe dumper writing multi-line strings as literal blocks."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def _ordered(value: Any, top: bool = False) -> Any:
    """Keys in one canonical order on both sides: apiVersion, kind, metadata first at the top,
    name and namespace first elsewhere, then alphabetical. List order is kept."""
    if isinstance(value, dict):
        rank = _TOP_ORDER if top else _MAP_ORDER
        keys = sorted(value, key=lambda k: (rank.get(k, len(rank)), str(k)))
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def to_yaml(obj: Obj | None) -> str:
    """The canonical YAML text the diffs compare (keys ordered, no stripping or masking)."""
    if obj is None:
        return ""
    text: str = yaml.dump(
        _ordered(obj, top=True), Dumper=_Dumper, default_flow_style=False, sort_keys=False,
        allow_unicode=True, width=1_000_000,
    )
    return text


def _lines(obj: Obj | None) -> list[str]:
    return to_yaml(obj).splitlines() if obj else []


def unified(
    desired: Obj | None, live: Obj | None, *, context: int = 3, from_label: str = "live", to_label: str = "desired",
) -> str:
    """A unified diff of the YAML of ``live`` (first) and ``desired`` (second), stripped and
    masked, like ``kubectl diff``. Empty when they are equal; ``None`` or ``{}`` is no document."""
    new, old = _prepare(desired, live)
    lines = difflib.unified_diff(
        _lines(old), _lines(new), fromfile=from_label, tofile=to_label, n=context, lineterm="",
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def _wrap(line: str, width: int) -> list[str]:
    if width <= 0 or len(line) <= width:
        return [line]
    indent = len(line) - len(line.lstrip(" "))
    rest = textwrap.wrap(line[indent:], width=max(width - indent, 1), break_long_words=True,
                         break_on_hyphens=False, drop_whitespace=False)
    return [" " * indent + part for part in rest] or [line]


def side_by_side(desired: Obj | None, live: Obj | None, width: int) -> list[tuple[str, str, str]]:
    """Rows ``(live line, desired line, marker)`` of the whole stripped, masked YAML.

    Markers: ``" "`` same, ``"~"`` changed, ``"-"`` only live, ``"+"`` only desired.
    Lines longer than ``width`` (one column's width; ``<= 0`` for no limit) are wrapped
    onto continuation rows with the same marker.
    """
    new, old = _prepare(desired, live)
    left, right = _lines(old), _lines(new)
    rows: list[tuple[str, str, str]] = []

    def emit(a: str | None, b: str | None, marker: str) -> None:
        la = _wrap(a, width) if a is not None else []
        lb = _wrap(b, width) if b is not None else []
        for i in range(max(len(la), len(lb))):
            rows.append((la[i] if i < len(la) else "", lb[i] if i < len(lb) else "", marker))

    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for a in left[i1:i2]:
                emit(a, a, " ")
            continue
        olds, news = left[i1:i2], right[j1:j2]
        paired = min(len(olds), len(news))
        for k in range(paired):
            emit(olds[k], news[k], "~")
        for a in olds[paired:]:
            emit(a, None, "-")
        for b in news[paired:]:
            emit(None, b, "+")
    return rows


# ----- JSON patch ---------------------------------------------------------------------------


def _pointer(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _patch(path: str, old: Any, new: Any, ops: list[Obj]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old:
            if k not in new:
                ops.append({"op": "remove", "path": _pointer(path, k)})
        for k, v in new.items():
            if k in old:
                _patch(_pointer(path, k), old[k], v, ops)
            else:
                ops.append({"op": "add", "path": _pointer(path, k), "value": _clone(v)})
        return
    if isinstance(old, list) and isinstance(new, list):
        fields = _list_key(old, new)
        if fields is not None:
            old_by = _keyed(old, fields)
            new_by = _keyed(new, fields)
            common_old = [ident for ident in old_by if ident in new_by]
            common_new = [ident for ident in new_by if ident in old_by]
            if common_old == common_new:  # same relative order: remove, then add/patch in place
                for ident, (i, _) in reversed(old_by.items()):
                    if ident not in new_by:
                        ops.append({"op": "remove", "path": _pointer(path, i)})
                for i, (ident, (_, item)) in enumerate(new_by.items()):
                    if ident in old_by:
                        _patch(_pointer(path, i), old_by[ident][1], item, ops)
                    else:
                        ops.append({"op": "add", "path": _pointer(path, i), "value": _clone(item)})
                return
            ops.append({"op": "replace", "path": path, "value": _clone(new)})
            return
        for i in range(len(old) - 1, len(new) - 1, -1):
            ops.append({"op": "remove", "path": _pointer(path, i)})
        for i, v in enumerate(new):
            if i < len(old):
                _patch(_pointer(path, i), old[i], v, ops)
            else:
                ops.append({"op": "add", "path": _pointer(path, i), "value": _clone(v)})
        return
    ops.append({"op": "replace", "path": path, "value": _clone(new)})


def to_json_patch(desired: Obj | None, live: Obj | None, *, strip: bool = True) -> list[Obj]:
    """RFC 6902 operations turning ``live`` into ``desired`` (``None`` counts as ``{}``).

    With ``strip`` (the default) the patch applies to ``strip_for_diff(live)``. Secrets are
    masked first, so their ops carry mask strings: the patch then turns the masked live
    Secret into the masked desired one, and shows which keys changed, never a value.
    """
    if strip:
        new, old = _prepare(desired, live)
    else:
        new, old = mask_pair(desired, live)
    ops: list[Obj] = []
    _patch("", old or {}, new or {}, ops)
    return ops
