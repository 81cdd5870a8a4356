"""Label and field selectors with the apiserver's grammar, validation and messages.

Label selectors follow ``k8s.io/apimachinery/pkg/labels`` (lexer, parser,
``NewRequirement`` validation, ``Requirement.Matches``) and
``metav1.LabelSelectorAsSelector`` for ``{matchLabels, matchExpressions}``.

Field selectors follow ``k8s.io/apimachinery/pkg/fields`` for the syntax and the
per-kind field-label conversion functions kube-apiserver registers
(``pkg/apis/<group>/<version>/conversion.go``) for what each kind accepts, plus the
registries' ``ToSelectableFields`` for the values matched. A kind without a
registered function accepts ``metadata.name`` and ``metadata.namespace`` only.

The apiserver answers a bad selector with 400 BadRequest carrying exactly
``str(SelectorError)``. The ``Unable to find "/v1, Resource=pods" that match label
selector ...`` text users see is added client-side by kubectl
(``EnhanceListError``); :func:`kubectl_list_error_message` reproduces it for tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "gvr_string",
    "kubectl_list_error_message",
    "label_selector_from_dict",
    "new_requirement",
    "parse_field_selector",
    "parse_label_selector",
]


class SelectorError(ValueError):
    """An invalid selector; ``str()`` is the apiserver's message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ------------------------------------------------------------------------ Go formatting


def go_quote(s: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x80
                else (f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
            )
    out.append('"')
    return "".join(out)


def _go_string_slice(values: list[str] | None) -> str:
    """``%#v`` of a ``[]string``."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


# -------------------------------------------------------------------- name validation

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(_QNAME_FMT)
_QNAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUB_FMT = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1123_SUB_RE = re.compile(_DNS1123_SUB_FMT)
_DNS1123_SUB_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    parts = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {parts}regex used for validation is '{fmt}')"


def _blen(s: str) -> int:
    return len(s.encode())


def qualified_name_errors(value: str) -> list[str]:
    """``validation.IsQualifiedName``: label keys and annotation keys."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if _blen(prefix) > 253:
                errs.append("prefix part must be no more than 253 characters")
            if not _DNS1123_SUB_RE.fullmatch(prefix):
                errs.append("prefix part " + _regex_error(_DNS1123_SUB_MSG, _DNS1123_SUB_FMT, "example.com"))
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """``validation.IsValidLabelValue``."""
    errs: list[str] = []
    if _blen(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _aggregate(errs: list[str]) -> str:
    """``utilerrors.Aggregate.Error()``: one message, or ``[a, b]`` de-duplicated."""
    seen: list[str] = []
    for e in errs:
        if e not in seen:
            seen.append(e)
    if len(errs) == 1 or len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


# ---------------------------------------------------------------------- requirements

EXISTS = "exists"
DOES_NOT_EXIST = "!"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_GO_INT64 = re.compile(r"[+-]?[0-9]+")


def _parse_int64(s: str) -> int | None:
    if not _GO_INT64.fullmatch(s):
        return None
    v = int(s)
    return v if -(2**63) <= v < 2**63 else None


@dataclass(frozen=True)
class Requirement:
    """One ``key op values`` term; build with :func:`new_requirement` to validate."""

    key: str
    operator: str
    values: tuple[str, ...] = ()
    _set: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_set", frozenset(self.values))

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self._set
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self._set
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have = _parse_int64(str(labels[self.key]))
            want = _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        head = ("!" if op == DOES_NOT_EXIST else "") + self.key
        if op in (EXISTS, DOES_NOT_EXIST):
            return head
        sym = {
            EQUALS: "=",
            DOUBLE_EQUALS: "==",
            NOT_EQUALS: "!=",
            IN: " in ",
            NOT_IN: " notin ",
            GREATER_THAN: ">",
            LESS_THAN: "<",
        }.get(op, "")
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        return f"{head}{sym}({vals})" if op in (IN, NOT_IN) else f"{head}{sym}{vals}"


def new_requirement(key: str, operator: str, values: Iterable[str] | None = ()) -> Requirement:
    """``labels.NewRequirement``: validate and build; raises :class:`SelectorError`."""
    vals = list(values) if values is not None else None
    n = len(vals or [])
    errs: list[str] = []
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(f"key: Invalid value: {go_quote(key)}: {'; '.join(key_errs)}")
    if operator in (IN, NOT_IN):
        if n == 0:
            errs.append(
                f"values: Invalid value: {_go_string_slice(vals)}: for 'in', 'notin' operators, values set can't be empty"
            )
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if n != 1:
            errs.append(
                f"values: Invalid value: {_go_string_slice(vals)}: exact-match compatibility requires one single value"
            )
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if n != 0:
            errs.append(
                f"values: Invalid value: {_go_string_slice(vals)}: values set must be empty for exists and does not exist"
            )
    elif operator in (GREATER_THAN, LESS_THAN):
        if n != 1:
            errs.append(
                f"values: Invalid value: {_go_string_slice(vals)}: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        for i, v in enumerate(vals or []):
            if _parse_int64(v) is None:
                errs.append(
                    f"values[{i}]: Invalid value: {go_quote(v)}: for 'Gt', 'Lt' operators, the value must be an integer"
                )
    else:
        supported = ", ".join(
            go_quote(o)
            for o in (
                IN,
                NOT_IN,
                EQUALS,
                DOUBLE_EQUALS,
                NOT_EQUALS,
                GREATER_THAN,
                LESS_THAN,
                EXISTS,
                DOES_NOT_EXIST,
            )
        )
        errs.append(f"operator: Unsupported value: {go_quote(operator)}: supported values: {supported}")
    for i, v in enumerate(vals or []):
        v_errs = label_value_errors(v)
        if v_errs:
            errs.append(f"values[{i}][{key}]: Invalid value: {go_quote(v)}: {'; '.join(v_errs)}")
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, operator, tuple(vals or ()))


class LabelSelector:
    """A conjunction of requirements (sorted by key, like kube's)."""

    __slots__ = ("_nothing", "requirements")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        """``labels.Nothing()``: what a nil ``LabelSelector`` object converts to."""
        return cls(nothing=True)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        lbls: Mapping[str, str] = labels or {}
        return all(r.matches(lbls) for r in self.requirements)

    def empty(self) -> bool:
        """True when the selector matches everything."""
        return not self._nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have, when the selector pins it."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self._nothing else f"LabelSelector({str(self)!r})"


# -------------------------------------------------------------------- label parser

(
    _T_ERROR,
    _T_END,
    _T_CPAR,
    _T_COMMA,
    _T_NOT,
    _T_DEQ,
    _T_EQ,
    _T_GT,
    _T_ID,
    _T_IN,
    _T_LT,
    _T_NEQ,
    _T_NOTIN,
    _T_OPAR,
) = range(14)
_TOKENS = {
    ")": _T_CPAR,
    ",": _T_COMMA,
    "!": _T_NOT,
    "==": _T_DEQ,
    "=": _T_EQ,
    ">": _T_GT,
    "in": _T_IN,
    "<": _T_LT,
    "!=": _T_NEQ,
    "notin": _T_NOTIN,
    "(": _T_OPAR,
}
_SPECIAL = frozenset("=!(),><")
_SPACE = frozenset(" \t\r\n")
_BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


def _lex(s: str) -> list[tuple[int, str]]:
    """The label-selector lexer; a NUL character ends the input, as in Go."""
    s = s.split("\0", 1)[0]
    out: list[tuple[int, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _SPACE:
            i += 1
        if i >= n:
            out.append((_T_END, ""))
            return out
        if s[i] in _SPECIAL:
            buf = ""
            last: tuple[int, str] | None = None
            while i < n and s[i] in _SPECIAL:
                buf += s[i]
                tok = _TOKENS.get(buf)
                if tok is not None:
                    last = (tok, buf)
                elif last is not None:
                    break
                i += 1
            out.append(last if last is not None else (_T_ERROR, f"error expected: keyword found '{buf}'"))
        else:
            j = i
            while j < n and s[j] not in _SPECIAL and s[j] not in _SPACE:
                j += 1
            word = s[i:j]
            i = j
            out.append((_TOKENS.get(word, _T_ID), word))


class _Parser:
    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (_T_IN, _T_NOTIN):
            tok = _T_ID
        return tok, lit

    def take(self, values: bool = True) -> tuple[int, str]:
        item = self.peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok in (_T_ID, _T_NOT):
                try:
                    reqs.append(self.requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, lit2 = self.take()
                if t == _T_END:
                    return reqs
                if t == _T_COMMA:
                    t2, lit3 = self.peek()
                    if t2 not in (_T_ID, _T_NOT):
                        raise SelectorError(f"found '{lit3}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _T_END:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, key = self.take()
        if tok == _T_NOT:
            op = DOES_NOT_EXIST
            tok, key = self.take()
        if tok != _T_ID:
            raise SelectorError(f"found '{key}', expected: identifier")
        key_errs = qualified_name_errors(key)
        if key_errs:
            raise SelectorError(f"<nil>: Invalid value: {go_quote(key)}: {'; '.join(key_errs)}")
        if self.peek()[0] in (_T_END, _T_COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        if op in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, op, [])
        tok, lit = self.take(values=False)
        op = {
            _T_IN: IN,
            _T_EQ: EQUALS,
            _T_DEQ: DOUBLE_EQUALS,
            _T_GT: GREATER_THAN,
            _T_LT: LESS_THAN,
            _T_NOTIN: NOT_IN,
            _T_NEQ: NOT_EQUALS,
        }.get(tok, "")
        if not op:
            raise SelectorError(f"found '{lit}', expected: {_BINARY_OPS}")
        values = self.value_set() if op in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, op, sorted(values))

    def value_set(self) -> set[str]:
        tok, lit = self.take()
        if tok != _T_OPAR:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok in (_T_ID, _T_COMMA):
            vals = self.identifiers()
            if self.take()[0] != _T_CPAR:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return vals
        if tok == _T_CPAR:
            self.take()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        vals: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == _T_ID:
                vals.add(lit)
                t2, lit2 = self.peek()
                if t2 == _T_COMMA:
                    continue
                if t2 == _T_CPAR:
                    return vals
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _T_COMMA:
                if not vals:
                    vals.add("")
                t2, _ = self.peek()
                if t2 == _T_CPAR:
                    vals.add("")
                    return vals
                if t2 == _T_COMMA:
                    self.take()
                    vals.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.peek()
        if tok in (_T_END, _T_COMMA):
            return {""}
        tok, lit = self.take()
        if tok == _T_ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str) -> LabelSelector:
    """``labels.Parse``: the ``labelSelector`` query-parameter grammar.

    ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``,
    ``a>1``, ``a<1``, comma-separated (AND). An empty string matches everything.
    """
    return LabelSelector(_Parser(s).parse())


_EXPR_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector`` for a ``{matchLabels, matchExpressions}`` object.

    ``None`` selects nothing; ``{}`` selects everything.
    """
    if sel is None:
        return LabelSelector.nothing()
    match_labels = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []
    if not match_labels and not exprs:
        return LabelSelector.everything()
    reqs = [
        new_requirement(k, EQUALS, [v if isinstance(v, str) else str(v)]) for k, v in match_labels.items()
    ]
    for expr in exprs:
        op = _EXPR_OPS.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(
                f"{go_quote(str(expr.get('operator', '')))} is not a valid label selector operator"
            )
        values = expr.get("values")
        reqs.append(new_requirement(expr.get("key", ""), op, list(values) if values else None))
    return LabelSelector(reqs)


# ------------------------------------------------------------------- field selectors

Getter = Callable[[Mapping[str, Any]], str]


def _path(obj: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _str_at(dotted: str) -> Getter:
    def get(obj: Mapping[str, Any]) -> str:
        v = _path(obj, dotted)
        return "" if v is None else _format(v)

    return get


def _bool_at(dotted: str) -> Getter:
    def get(obj: Mapping[str, Any]) -> str:
        return "true" if _path(obj, dotted) is True else "false"

    return get


def _int_at(dotted: str) -> Getter:
    def get(obj: Mapping[str, Any]) -> str:
        v = _path(obj, dotted)
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else "0"

    return get


def _format(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _pod_ip(obj: Mapping[str, Any]) -> str:
    ips = _path(obj, "status.podIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], Mapping):
        return str(ips[0].get("ip") or "")
    return str(_path(obj, "status.podIP") or "")


def _event_source(obj: Mapping[str, Any]) -> str:
    return str(_path(obj, "source.component") or obj.get("reportingComponent") or "")


def _never_set(obj: Mapping[str, Any]) -> str:
    return ""


@dataclass(frozen=True)
class _KindFields:
    """What a kind's field-label conversion accepts and how the values are read."""

    accepted: Mapping[str, str]  # label as sent -> canonical label
    getters: Mapping[str, Getter]  # canonical label -> value
    reject: Callable[[str], str]


def _field_label_not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _default_reject(label: str) -> str:
    return f'{go_quote(label)} is not a known field selector: only "metadata.name", "metadata.namespace"'


_NAME: dict[str, Getter] = {"metadata.name": _str_at("metadata.name")}
_NAME_NS: dict[str, Getter] = {**_NAME, "metadata.namespace": _str_at("metadata.namespace")}


def _kind(
    getters: Mapping[str, Getter],
    reject: Callable[[str], str] = _field_label_not_supported,
    aliases: Mapping[str, str] | None = None,
) -> _KindFields:
    accepted = {k: k for k in getters}
    accepted.update(aliases or {})
    return _KindFields(accepted, getters, reject)


_DEFAULT_FIELDS = _kind(_NAME_NS, _default_reject)

_CORE_EVENT_FIELDS = [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
]

_BUILTIN_FIELDS: dict[tuple[str, str], _KindFields] = {
    ("", "Pod"): _kind(
        {
            **_NAME_NS,
            "spec.nodeName": _str_at("spec.nodeName"),
            "spec.restartPolicy": _str_at("spec.restartPolicy"),
            "spec.schedulerName": _str_at("spec.schedulerName"),
            "spec.serviceAccountName": _str_at("spec.serviceAccountName"),
            "spec.hostNetwork": _bool_at("spec.hostNetwork"),
            "status.phase": _str_at("status.phase"),
            "status.podIP": _pod_ip,
            "status.podIPs": _never_set,  # accepted, but never in PodToSelectableFields
            "status.nominatedNodeName": _str_at("status.nominatedNodeName"),
        },
        aliases={"spec.host": "spec.nodeName"},
    ),
    ("", "Node"): _kind({**_NAME, "spec.unschedulable": _bool_at("spec.unschedulable")}),
    ("", "Namespace"): _kind({**_NAME, "status.phase": _str_at("status.phase")}),
    ("", "Secret"): _kind({**_NAME_NS, "type": _str_at("type")}),
    ("", "Service"): _kind(
        {**_NAME_NS, "spec.clusterIP": _str_at("spec.clusterIP"), "spec.type": _str_at("spec.type")}
    ),
    ("", "ReplicationController"): _kind({**_NAME_NS, "status.replicas": _int_at("status.replicas")}),
    ("", "Event"): _kind(
        {
            **_NAME_NS,
            **{f: _str_at(f) for f in _CORE_EVENT_FIELDS},
            "reason": _str_at("reason"),
            "reportingComponent": _str_at("reportingComponent"),
            "source": _event_source,
            "type": _str_at("type"),
        }
    ),
    ("events.k8s.io", "Event"): _KindFields(
        accepted={
            "metadata.name": "metadata.name",
            "metadata.namespace": "metadata.namespace",
            "reason": "reason",
            "type": "type",
            "reportingController": "reportingComponent",
            **{f.replace("involvedObject.", "regarding."): f for f in _CORE_EVENT_FIELDS},
        },
        getters={
            **_NAME_NS,
            **{f: _str_at(f.replace("involvedObject.", "regarding.")) for f in _CORE_EVENT_FIELDS},
            "reason": _str_at("reason"),
            "type": _str_at("type"),
            "reportingComponent": _str_at("reportingController"),
        },
        reject=_field_label_not_supported,
    ),
    ("batch", "Job"): _kind(
        {**_NAME_NS, "status.successful": _int_at("status.succeeded")},
        reject=lambda label: f"field label {go_quote(label)} not supported for Job",
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"): _kind(
        {**_NAME, "spec.signerName": _str_at("spec.signerName")}
    ),
}

# The usual group of a kind whose field labels differ from the default, for callers
# that pass only the kind.
_KIND_GROUP = {"Job": "batch", "CertificateSigningRequest": "certificates.k8s.io"}


def _escape_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_value(s: str) -> str:
    """``fields.UnescapeValue``: ``\\\\``, ``\\,``, ``\\=`` escapes; bare ``,``/``=`` are errors."""
    if not any(c in s for c in "\\,="):
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c in "\\,=":
                out.append(c)
                in_slash = False
                continue
            raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
        if c == "\\":
            in_slash = True
        elif c in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    if not s:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


@dataclass(frozen=True)
class FieldRequirement:
    """``field=value`` (also written ``==``) or ``field!=value``, on the canonical label."""

    field: str
    operator: str  # "=" or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.operator == '!=' else '='}{_escape_value(self.value)}"


class FieldSelector:
    """A parsed, per-kind validated field selector."""

    __slots__ = ("_getters", "requirements")

    def __init__(self, requirements: Iterable[FieldRequirement], getters: Mapping[str, Getter]) -> None:
        self.requirements = tuple(requirements)
        self._getters = getters

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for r in self.requirements:
            get = self._getters.get(r.field)
            have = get(obj) if get is not None else ""
            if (have == r.value) != (r.operator == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, field_label: str) -> str | None:
        """The value ``field_label`` must equal, when an ``=`` term pins it."""
        for r in self.requirements:
            if r.field == field_label and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"


def parse_field_selector(
    s: str,
    kind: str,
    group: str | None = None,
    *,
    custom: bool = False,
    namespaced: bool = True,
    selectable_fields: Iterable[str] = (),
) -> FieldSelector:
    """``fields.ParseSelector`` then the kind's field-label conversion.

    ``kind``/``group`` pick a built-in kind's table (``group=None`` means the kind's
    usual group; pass ``"events.k8s.io"`` for that Event). For custom resources pass
    ``custom=True``, ``namespaced`` and the CRD version's ``selectableFields``
    JSONPaths (``.spec.color`` → label ``spec.color``). Errors raise
    :class:`SelectorError` with the apiserver's text, e.g.
    ``field label not supported: spec.foo``.
    """
    if custom:
        getters: dict[str, Getter] = dict(_NAME_NS if namespaced else _NAME)
        for path in selectable_fields:
            label = path.lstrip(".")
            getters[label] = _str_at(label)
        spec = _kind(getters)
    else:
        grp = _KIND_GROUP.get(kind, "") if group is None else group
        spec = _BUILTIN_FIELDS.get((grp, kind), _DEFAULT_FIELDS)

    terms: list[tuple[str, str, str]] = []
    for part in sorted(_split_terms(s)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        terms.append((lhs, op, _unescape_value(rhs)))

    reqs: list[FieldRequirement] = []
    for lhs, op, value in terms:
        canonical = spec.accepted.get(lhs)
        if canonical is None:
            raise SelectorError(spec.reject(lhs))
        reqs.append(FieldRequirement(canonical, "!=" if op == "!=" else "=", value))
    return FieldSelector(reqs, spec.getters)


# ----------------------------------------------------------------- kubectl wrapping


def gvr_string(group: str, version: str, resource: str) -> str:
    """``schema.GroupVersionResource.String()``: ``/v1, Resource=pods``."""
    return f"{group}/{version}, Resource={resource}"


def kubectl_list_error_message(
    subject: str, message: str, label_selector: str = "", field_selector: str = ""
) -> str:
    """The text kubectl prints for a 400/404 on list (``cli-runtime`` ``EnhanceListError``).

    The apiserver does **not** send this; it sends ``message`` alone. ``subject`` is
    :func:`gvr_string` of the listed resource.
    """
    if not label_selector and not field_selector:
        return f"Unable to list {go_quote(subject)}: {message}"
    return (
        f"Unable to find {go_quote(subject)} that match label selector {go_quote(label_selector)}, "
        f"field selector {go_quote(field_selector)}: {message}"
    )
