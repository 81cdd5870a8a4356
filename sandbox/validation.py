"""Validation of built-in objects with kube-apiserver's wording.

* :func:`validate` returns 422 causes (``{"reason", "message", "field"}``)
  for a defaulted object, and on updates (``old`` given) the immutability
  rules; :func:`invalid_message` renders the Status message from them.
* :func:`typecheck` returns the JSON decoding error Go reports for a value of
  the wrong type (the apiserver answers 400); :func:`decode_error` wraps it
  in the ``… cannot be handled as a …`` sentence.
* :func:`unknown_fields` prunes fields the schema does not declare and
  returns their paths (for ``fieldValidation=Strict|Warn``).

Bad values are rendered like Go's ``%#v`` for the few struct-valued errors
(``v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, …}``). Huge
values, such as a whole Job pod template, are abbreviated (``core.PodTemplateSpec{…}``);
every message still ends in the same ``field is immutable`` detail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from core.kube import quantity
from core.kube.schema import Node

Obj = dict[str, Any]
Cause = dict[str, str]

__all__ = [
    "decode_error",
    "group_kind",
    "invalid_message",
    "typecheck",
    "unknown_fields",
    "validate",
]

# --------------------------------------------------------------------------- causes

_OMIT = object()


def _body(label: str, value: Any = _OMIT, detail: str = "") -> str:
    text = label
    if value is not _OMIT:
        text += ": " + _go(value)
    if detail:
        text += ": " + detail
    return text


def required(field: str, detail: str = "") -> Cause:
    return {"reason": "FieldValueRequired", "message": _body("Required value", _OMIT, detail), "field": field}


def invalid(field: str, value: Any, detail: str) -> Cause:
    return {"reason": "FieldValueInvalid", "message": _body("Invalid value", value, detail), "field": field}


def not_supported(field: str, value: Any, valid: Iterable[str]) -> Cause:
    detail = "supported values: " + ", ".join(json.dumps(v) for v in valid)
    return {
        "reason": "FieldValueNotSupported",
        "message": _body("Unsupported value", value, detail),
        "field": field,
    }


def duplicate(field: str, value: Any) -> Cause:
    return {"reason": "FieldValueDuplicate", "message": _body("Duplicate value", value), "field": field}


def forbidden(field: str, detail: str) -> Cause:
    return {"reason": "FieldValueForbidden", "message": _body("Forbidden", _OMIT, detail), "field": field}


def not_found(field: str, value: Any) -> Cause:
    return {"reason": "FieldValueNotFound", "message": _body("Not found", value), "field": field}


def too_long(field: str, limit: int) -> Cause:
    return {
        "reason": "FieldValueTooLong",
        "message": f"Too long: must have at most {limit} bytes",
        "field": field,
    }


def invalid_message(kind_group: str, name: str, causes: list[Cause]) -> str:
    """The apiserver's 422 message, e.g. ``Deployment.apps "web" is invalid: spec.x: Required value``."""
    seen: set[str] = set()
    parts: list[str] = []
    for cause in causes:
        text = f"{cause.get('field', '')}: {cause.get('message', '')}"
        if text not in seen:
            seen.add(text)
            parts.append(text)
    head = f"{kind_group} {json.dumps(name, ensure_ascii=False)} is invalid"
    if not parts:
        return head
    if len(parts) == 1:
        return f"{head}: {parts[0]}"
    return f"{head}: [{', '.join(parts)}]"


def group_kind(api_version: str, kind: str) -> str:
    """``Deployment.apps`` / ``Service``: the qualified kind used in messages."""
    group = api_version.rpartition("/")[0]
    return f"{kind}.{group}" if group else kind


# --------------------------------------------------------------------------- Go value rendering


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _go(value: Any) -> str:
    """Go's rendering of a bad value: %v for numbers/bools, %q for strings, %#v otherwise."""
    if isinstance(value, _Raw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _q(value)
    if isinstance(value, dict):
        return _go_map(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(_q(v) for v in value) + "}"
    return json.dumps(value, sort_keys=True)


def _go_float(value: float) -> str:
    """Go's %v of a float64 (strconv 'g' format, shortest digits)."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    exp = len(text) + exponent - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 21:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return prefix + format(Decimal(repr(abs(value))).normalize(), "f")


class _Raw:
    """A pre-rendered Go value."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _go_map(d: Any) -> str:
    if d is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{_q(str(k))}:{_q(str(v))}" for k, v in sorted(d.items()))
    return "map[string]string{" + items + "}"


def _go_strings(values: Any) -> str:
    if not values:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_q(str(v)) for v in values) + "}"


def _go_selector(sel: Any) -> _Raw:
    """``v1.LabelSelector{...}`` as Go's %#v prints it."""
    if not isinstance(sel, dict):
        return _Raw("null")
    labels = sel.get("matchLabels") or None
    exprs = sel.get("matchExpressions") or []
    if exprs:
        rendered = ", ".join(
            "v1.LabelSelectorRequirement{"
            f"Key:{_q(str(e.get('key', '')))}, Operator:{_q(str(e.get('operator', '')))}, "
            f"Values:{_go_strings(e.get('values'))}}}"
            for e in exprs
            if isinstance(e, dict)
        )
        expr_text = "[]v1.LabelSelectorRequirement{" + rendered + "}"
    else:
        expr_text = "[]v1.LabelSelectorRequirement(nil)"
    return _Raw(f"v1.LabelSelector{{MatchLabels:{_go_map(labels)}, MatchExpressions:{expr_text}}}")


def _go_int_or_string(value: Any) -> _Raw:
    if isinstance(value, str):
        return _Raw(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{_q(value)}}}")
    return _Raw(f'intstr.IntOrString{{Type:0, IntVal:{value if isinstance(value, int) else 0}, StrVal:""}}')


# --------------------------------------------------------------------------- name/label rules

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")
_PERCENT = re.compile(r"[0-9]+%")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i:
            text += " or "
        text += f"'{ex}', "
    return text + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


_SUBDOMAIN_MSG = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character",
    _DNS1123_SUBDOMAIN.pattern,
    "example.com",
)
_LABEL_MSG = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    _DNS1123_LABEL.pattern,
    "my-name",
    "123-abc",
)
_DNS1035_MSG = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character",
    _DNS1035_LABEL.pattern,
    "my-name",
    "abc-123",
)
_QNAME_MSG = _regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character",
    _QUALIFIED_NAME.pattern,
    "MyName",
    "my.name",
    "123-abc",
)
_LABEL_VALUE_MSG = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character",
    _LABEL_VALUE.pattern,
    "MyValue",
    "my_value",
    "12345",
)
_CONFIG_KEY_MSG = _regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    _CONFIG_KEY.pattern,
    "key.name",
    "KEY_NAME",
    "key-name",
)


def _name_errors(value: str, limit: int, pattern: re.Pattern[str], message: str) -> list[str]:
    errs = []
    if len(value) > limit:
        errs.append(_max_len(limit))
    if not pattern.fullmatch(value):
        errs.append(message)
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    return _name_errors(value, 253, _DNS1123_SUBDOMAIN, _SUBDOMAIN_MSG)


def is_dns1123_label(value: str) -> list[str]:
    return _name_errors(value, 63, _DNS1123_LABEL, _LABEL_MSG)


def is_dns1035_label(value: str) -> list[str]:
    return _name_errors(value, 63, _DNS1035_LABEL, _DNS1035_MSG)


def is_qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _QNAME_MSG
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QUALIFIED_NAME.fullmatch(name):
        errs.append("name part " + _QNAME_MSG)
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(_LABEL_VALUE_MSG)
    return errs


def _path_segment(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _port_name(value: str) -> list[str]:
    errs = []
    if len(value) > 15:
        errs.append(_max_len(15))
    if not _PORT_NAME_CHARS.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _port_num(value: Any) -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def _d(value: Any) -> Obj:
    """``value`` if it is a dict, else an empty dict."""
    return value if isinstance(value, dict) else {}


def _labels(labels: Any, path: str) -> list[Cause]:
    out: list[Cause] = []
    if not isinstance(labels, dict):
        return out
    for key, value in labels.items():
        out.extend(invalid(path, key, m) for m in is_qualified_name(str(key)))
        if isinstance(value, str):
            out.extend(invalid(path, value, m) for m in is_valid_label_value(value))
    return out


_ANNOTATION_LIMIT = 256 * 1024


def _annotations(annotations: Any, path: str) -> list[Cause]:
    out: list[Cause] = []
    if not isinstance(annotations, dict):
        return out
    total = 0
    for key, value in annotations.items():
        out.extend(invalid(path, key, m) for m in is_qualified_name(str(key).lower()))
        total += len(str(key)) + len(value if isinstance(value, str) else "")
    if total > _ANNOTATION_LIMIT:
        out.append(too_long(path, _ANNOTATION_LIMIT))
    return out


def _nonnegative(value: Any, path: str) -> list[Cause]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


# --------------------------------------------------------------------------- metadata


@cache
def _scopes() -> dict[tuple[str, str], bool]:
    from sandbox.resources import BUILTIN

    return {(rt.api_version, rt.kind): rt.namespaced for rt in BUILTIN}


NameFn = Callable[[str], list[str]]


def _object_meta(obj: Obj, name_fn: NameFn, path: str = "metadata") -> list[Cause]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    out: list[Cause] = []
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        out.append(required(f"{path}.name", "name or generateName is required"))
    elif name:
        out.extend(invalid(f"{path}.name", name, m) for m in name_fn(name))
    namespaced = _scopes().get((str(obj.get("apiVersion", "")), str(obj.get("kind", ""))))
    namespace = meta.get("namespace") or ""
    if namespaced is True:
        if not namespace:
            out.append(required(f"{path}.namespace"))
        else:
            out.extend(invalid(f"{path}.namespace", namespace, m) for m in is_dns1123_label(namespace))
    elif namespaced is False and namespace:
        out.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    out.extend(_labels(meta.get("labels"), f"{path}.labels"))
    out.extend(_annotations(meta.get("annotations"), f"{path}.annotations"))
    for i, fin in enumerate(meta.get("finalizers") or []):
        if isinstance(fin, str):
            out.extend(invalid(f"{path}.finalizers[{i}]", fin, m) for m in is_qualified_name(fin))
    return out


def _object_meta_update(obj: Obj, old: Obj) -> list[Cause]:
    meta, old_meta = obj.get("metadata") or {}, old.get("metadata") or {}
    out: list[Cause] = []
    for key in ("name", "namespace", "uid"):
        new_v, old_v = meta.get(key), old_meta.get(key)
        if old_v and new_v and new_v != old_v:
            out.append(invalid(f"metadata.{key}", new_v, "field is immutable"))
    return out


# --------------------------------------------------------------------------- selectors


def _selector_matches(sel: Any, labels: Any) -> bool:
    """LabelSelectorAsSelector(sel).Matches(labels); a missing selector matches nothing."""
    if not isinstance(sel, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in sel.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            continue
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _selector_empty(sel: Any) -> bool:
    return isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions")


def _label_selector(sel: Any, path: str) -> list[Cause]:
    out: list[Cause] = []
    if not isinstance(sel, dict):
        return out
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        if not isinstance(expr, dict):
            continue
        p = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                out.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                out.append(
                    forbidden(
                        f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            out.append(invalid(f"{p}.operator", op, "not a valid selector operator"))
        out.extend(
            invalid(f"{p}.key", expr.get("key"), m) for m in is_qualified_name(str(expr.get("key") or ""))
        )
    out.extend(_labels(sel.get("matchLabels"), f"{path}.matchLabels"))
    return out


def _same_selector(a: Any, b: Any) -> bool:
    def canon(s: Any) -> tuple[Any, Any]:
        s = s if isinstance(s, dict) else {}
        return (s.get("matchLabels") or {}, s.get("matchExpressions") or [])

    return canon(a) == canon(b)


def _immutable_selector(obj: Obj, old: Obj) -> list[Cause]:
    new_sel = (obj.get("spec") or {}).get("selector")
    old_sel = (old.get("spec") or {}).get("selector")
    if _same_selector(new_sel, old_sel):
        return []
    return [invalid("spec.selector", _go_selector(new_sel), "field is immutable")]


# --------------------------------------------------------------------------- pod spec

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_VOLUME_NAME_REQUIRED = {
    "configMap": "name",
    "secret": "secretName",
    "persistentVolumeClaim": "claimName",
    "hostPath": "path",
    "nfs": "server",
}


def _quantity(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        return quantity.parse(value if isinstance(value, str) else str(value))
    except ValueError:
        return None


def _resources(res: Any, path: str) -> list[Cause]:
    out: list[Cause] = []
    if not isinstance(res, dict):
        return out
    limits = _d(res.get("limits"))
    requests = _d(res.get("requests"))
    for kind, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            q = _quantity(value)
            if q is not None and q < 0:
                out.append(
                    invalid(f"{path}.{kind}[{name}]", str(value), "must be greater than or equal to 0")
                )
    for name, value in requests.items():
        req, lim = _quantity(value), _quantity(limits.get(name))
        if req is not None and lim is not None and req > lim:
            out.append(
                invalid(
                    f"{path}.requests",
                    quantity.canonical(value),
                    f"must be less than or equal to {name} limit of {quantity.canonical(limits[name])}",
                )
            )
    return out


def _probe(probe: Any, path: str, liveness: bool) -> list[Cause]:
    if not isinstance(probe, dict):
        return []
    out: list[Cause] = []
    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(k) is not None]
    if not handlers:
        out.append(required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        out.append(forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type"))
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        out.extend(_nonnegative(probe.get(key), f"{path}.{key}"))
    if liveness and probe.get("successThreshold") not in (None, 1):
        out.append(invalid(f"{path}.successThreshold", probe.get("successThreshold"), "must be 1"))
    http = probe.get("httpGet")
    if isinstance(http, dict):
        out.extend(_named_port(http.get("port"), f"{path}.httpGet.port"))
    tcp = probe.get("tcpSocket")
    if isinstance(tcp, dict):
        out.extend(_named_port(tcp.get("port"), f"{path}.tcpSocket.port"))
    return out


def _named_port(port: Any, path: str) -> list[Cause]:
    if isinstance(port, str):
        return [invalid(path, port, m) for m in _port_name(port)]
    return [invalid(path, port, m) for m in _port_num(port)]


def _containers(
    containers: Any, path: str, volumes: set[str], names: set[str], host_network: bool, required_list: bool
) -> list[Cause]:
    out: list[Cause] = []
    if not isinstance(containers, list) or not containers:
        if required_list:
            out.append(required(path))
        return out
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        p = f"{path}[{i}]"
        name = c.get("name") or ""
        if not name:
            out.append(required(f"{p}.name"))
        else:
            out.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(name))
            if name in names:
                out.append(duplicate(f"{p}.name", name))
            names.add(name)
        image = c.get("image")
        if not image:
            out.append(required(f"{p}.image"))
        elif isinstance(image, str) and image != image.strip():
            out.append(invalid(f"{p}.image", image, "must not have leading or trailing whitespace"))
        for key, liveness in (("livenessProbe", True), ("readinessProbe", False), ("startupProbe", True)):
            out.extend(_probe(c.get(key), f"{p}.{key}", liveness))
        port_names: set[str] = set()
        for j, port in enumerate(c.get("ports") or []):
            if not isinstance(port, dict):
                continue
            pp = f"{p}.ports[{j}]"
            pname = port.get("name")
            if pname:
                msgs = _port_name(pname)
                out.extend(invalid(f"{pp}.name", pname, m) for m in msgs)
                if not msgs and pname in port_names:
                    out.append(duplicate(f"{pp}.name", pname))
                port_names.add(pname)
            cport = port.get("containerPort")
            if not cport:
                out.append(required(f"{pp}.containerPort"))
            else:
                out.extend(invalid(f"{pp}.containerPort", cport, m) for m in _port_num(cport))
            hport = port.get("hostPort")
            if hport:
                out.extend(invalid(f"{pp}.hostPort", hport, m) for m in _port_num(hport))
                if host_network and hport != cport:
                    out.append(
                        invalid(
                            f"{pp}.hostPort", hport, "must match `containerPort` when `hostNetwork` is true"
                        )
                    )
            proto = port.get("protocol")
            if not proto:
                out.append(required(f"{pp}.protocol"))
            elif proto not in _PROTOCOLS:
                out.append(not_supported(f"{pp}.protocol", proto, _PROTOCOLS))
        for j, env in enumerate(c.get("env") or []):
            if isinstance(env, dict) and not env.get("name"):
                out.append(required(f"{p}.env[{j}].name"))
        mount_paths: set[str] = set()
        for j, mount in enumerate(c.get("volumeMounts") or []):
            if not isinstance(mount, dict):
                continue
            mp = f"{p}.volumeMounts[{j}]"
            mname = mount.get("name") or ""
            if not mname:
                out.append(required(f"{mp}.name"))
            elif mname not in volumes:
                out.append(not_found(f"{mp}.name", mname))
            mpath = mount.get("mountPath") or ""
            if not mpath:
                out.append(required(f"{mp}.mountPath"))
            elif mpath in mount_paths:
                out.append(invalid(f"{mp}.mountPath", mpath, "must be unique"))
            mount_paths.add(mpath)
        out.extend(_resources(c.get("resources"), f"{p}.resources"))
        policy = c.get("imagePullPolicy")
        if not policy:
            out.append(required(f"{p}.imagePullPolicy"))
        elif policy not in _PULL_POLICIES:
            out.append(not_supported(f"{p}.imagePullPolicy", policy, _PULL_POLICIES))
        tmp = c.get("terminationMessagePolicy")
        if tmp and tmp not in ("File", "FallbackToLogsOnError"):
            out.append(not_supported(f"{p}.terminationMessagePolicy", tmp, ("File", "FallbackToLogsOnError")))
    return out


def _volumes(volumes: Any, path: str) -> tuple[set[str], list[Cause]]:
    out: list[Cause] = []
    names: set[str] = set()
    for i, v in enumerate(volumes or []):
        if not isinstance(v, dict):
            continue
        p = f"{path}[{i}]"
        name = v.get("name") or ""
        if not name:
            out.append(required(f"{p}.name"))
        else:
            out.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(name))
            if name in names:
                out.append(duplicate(f"{p}.name", name))
            names.add(name)
        sources = [k for k in v if k != "name" and v[k] is not None]
        if not sources:
            out.append(required(p, "must specify a volume type"))
        elif len(sources) > 1:
            out.append(forbidden(f"{p}.{sources[1]}", "may not specify more than 1 volume type"))
        for source in sources:
            key = _VOLUME_NAME_REQUIRED.get(source)
            src = v.get(source)
            if key and isinstance(src, dict) and not src.get(key):
                out.append(required(f"{p}.{source}.{key}"))
    return names, out


def _pod_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [required(path)]
    volume_names, out = _volumes(spec.get("volumes"), f"{path}.volumes")
    names: set[str] = set()
    host_network = spec.get("hostNetwork") is True
    out.extend(
        _containers(spec.get("containers"), f"{path}.containers", volume_names, names, host_network, True)
    )
    out.extend(
        _containers(
            spec.get("initContainers"), f"{path}.initContainers", volume_names, names, host_network, False
        )
    )
    policy = spec.get("restartPolicy")
    if not policy:
        out.append(required(f"{path}.restartPolicy"))
    elif policy not in _RESTART_POLICIES:
        out.append(not_supported(f"{path}.restartPolicy", policy, _RESTART_POLICIES))
    dns = spec.get("dnsPolicy")
    if not dns:
        out.append(required(f"{path}.dnsPolicy"))
    elif dns not in _DNS_POLICIES:
        out.append(not_supported(f"{path}.dnsPolicy", dns, _DNS_POLICIES))
    out.extend(_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    for i, secret in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(secret, dict) and not secret.get("name"):
            out.append(required(f"{path}.imagePullSecrets[{i}].name"))
    sa = spec.get("serviceAccountName")
    if sa:
        out.extend(invalid(f"{path}.serviceAccountName", sa, m) for m in is_dns1123_subdomain(sa))
    out.extend(_nonnegative(spec.get("activeDeadlineSeconds"), f"{path}.activeDeadlineSeconds"))
    return out


def _pod_template(template: Any, path: str) -> list[Cause]:
    """ValidatePodTemplateSpec (label errors are reported at ``<path>.labels``, as upstream)."""
    template = _d(template)
    meta = _d(template.get("metadata"))
    out = _labels(meta.get("labels"), f"{path}.labels")
    out.extend(_annotations(meta.get("annotations"), f"{path}.annotations"))
    out.extend(_pod_spec(template.get("spec"), f"{path}.spec"))
    return out


def _template_for_replicas(spec: Obj, path: str, selector: Any, pod_spec: bool = True) -> list[Cause]:
    """ValidatePodTemplateSpecForReplicaSet: selector match, template, restartPolicy Always."""
    template = _d(spec.get("template"))
    labels = (template.get("metadata") or {}).get("labels")
    out: list[Cause] = []
    if not (isinstance(selector, dict) and _selector_empty(selector)) and not _selector_matches(
        selector, labels
    ):
        out.append(
            invalid(
                f"{path}.metadata.labels",
                _Raw(_go_map(labels)),
                "`selector` does not match template `labels`",
            )
        )
    if pod_spec:
        out.extend(_pod_template(template, path))
    else:
        meta = _d(template.get("metadata"))
        out.extend(_labels(meta.get("labels"), f"{path}.labels"))
        out.extend(_annotations(meta.get("annotations"), f"{path}.annotations"))
    policy = (template.get("spec") or {}).get("restartPolicy")
    if policy != "Always":
        out.append(not_supported(f"{path}.spec.restartPolicy", policy, ("Always",)))
    return out


# --------------------------------------------------------------------------- workloads


def _selector_required(spec: Obj, what: str) -> list[Cause]:
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        return [required("spec.selector")]
    out = _label_selector(sel, "spec.selector")
    if _selector_empty(sel):
        out.append(invalid("spec.selector", _go_selector(sel), f"empty selector is invalid for {what}"))
    return out


def _int_or_percent(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value):
            return [invalid(path, _go_int_or_string(value), "must be an integer or percentage (e.g '5%')")]
        return []
    return _nonnegative(value, path)


def _int_or_percent_value(value: Any) -> int:
    if isinstance(value, str):
        return int(value[:-1]) if _PERCENT.fullmatch(value) else -1
    return value if isinstance(value, int) else 0


def _rolling_update(ru: Obj, path: str, max_surge: bool = True) -> list[Cause]:
    out = _int_or_percent(ru.get("maxUnavailable"), f"{path}.maxUnavailable")
    if max_surge:
        out.extend(_int_or_percent(ru.get("maxSurge"), f"{path}.maxSurge"))
    if (
        _int_or_percent_value(ru.get("maxUnavailable")) == 0
        and _int_or_percent_value(ru.get("maxSurge")) == 0
    ):
        out.append(
            invalid(
                f"{path}.maxUnavailable",
                _go_int_or_string(ru.get("maxUnavailable")),
                "may not be 0 when `maxSurge` is 0",
            )
        )
    mu = ru.get("maxUnavailable")
    if isinstance(mu, str) and _PERCENT.fullmatch(mu) and int(mu[:-1]) > 100:
        out.append(invalid(f"{path}.maxUnavailable", _go_int_or_string(mu), "must not be greater than 100%"))
    return out


def _deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    out.extend(_nonnegative(spec.get("replicas"), "spec.replicas"))
    out.extend(_selector_required(spec, "deployment"))
    out.extend(_template_for_replicas(spec, "spec.template", spec.get("selector")))
    strategy = _d(spec.get("strategy"))
    stype = strategy.get("type")
    if stype == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            out.append(
                forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if isinstance(ru, dict):
            out.extend(_rolling_update(ru, "spec.strategy.rollingUpdate"))
        else:
            out.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
    else:
        ru_text = (
            "(*apps.RollingUpdateDeployment)(nil)"
            if strategy.get("rollingUpdate") is None
            else "(*apps.RollingUpdateDeployment)(0xc000000000)"
        )
        out.append(
            not_supported(
                "spec.strategy",
                _Raw(f"apps.DeploymentStrategy{{Type:{_q(str(stype or ''))}, RollingUpdate:{ru_text}}}"),
                ("Recreate", "RollingUpdate"),
            )
        )
    out.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    out.extend(_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int) and not isinstance(pds, bool):
        out.extend(_nonnegative(pds, "spec.progressDeadlineSeconds"))
        if pds <= (spec.get("minReadySeconds") or 0):
            out.append(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    if old is not None:
        out = _object_meta_update(obj, old) + out + _immutable_selector(obj, old)
    return out


def _replicaset(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    out.extend(_nonnegative(spec.get("replicas"), "spec.replicas"))
    out.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    out.extend(_selector_required(spec, "deployment"))
    out.extend(_template_for_replicas(spec, "spec.template", spec.get("selector")))
    if old is not None:
        out = _object_meta_update(obj, old) + out + _immutable_selector(obj, old)
    return out


def _daemonset(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    sel = spec.get("selector")
    out.extend(_label_selector(sel, "spec.selector"))
    template = _d(spec.get("template"))
    labels = (template.get("metadata") or {}).get("labels")
    if not _selector_matches(sel, labels) and not _selector_empty(sel):
        out.append(
            invalid(
                "spec.template.metadata.labels",
                _Raw(_go_map(labels)),
                "`selector` does not match template `labels`",
            )
        )
    if _selector_empty(sel):
        out.append(invalid("spec.selector", _go_selector(sel), "empty selector is invalid for daemonset"))
    out.extend(_pod_template(template, "spec.template"))
    policy = (template.get("spec") or {}).get("restartPolicy")
    if policy != "Always":
        out.append(not_supported("spec.template.spec.restartPolicy", policy, ("Always",)))
    out.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    strategy = _d(spec.get("updateStrategy"))
    stype = strategy.get("type")
    if stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if isinstance(ru, dict):
            out.extend(_rolling_update(ru, "spec.updateStrategy.rollingUpdate"))
    elif stype != "OnDelete":
        out.append(not_supported("spec.updateStrategy", stype, ("OnDelete", "RollingUpdate")))
    out.extend(_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit"))
    if old is not None:
        out = _object_meta_update(obj, old) + out + _immutable_selector(obj, old)
    return out


_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _statefulset(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_label)
    spec = _d(obj.get("spec"))
    pmp = spec.get("podManagementPolicy")
    if pmp not in ("OrderedReady", "Parallel"):
        out.append(not_supported("spec.podManagementPolicy", pmp, ("OrderedReady", "Parallel")))
    strategy = _d(spec.get("updateStrategy"))
    stype = strategy.get("type")
    if stype == "OnDelete" and strategy.get("rollingUpdate") is not None:
        out.append(
            invalid(
                "spec.updateStrategy.rollingUpdate",
                _Raw("apps.RollingUpdateStatefulSetStrategy{...}"),
                "only allowed for updateStrategy 'RollingUpdate'",
            )
        )
    elif stype not in ("OnDelete", "RollingUpdate"):
        out.append(not_supported("spec.updateStrategy", stype, ("OnDelete", "RollingUpdate")))
    ru = strategy.get("rollingUpdate")
    if isinstance(ru, dict):
        out.extend(_nonnegative(ru.get("partition"), "spec.updateStrategy.rollingUpdate.partition"))
    out.extend(_nonnegative(spec.get("replicas"), "spec.replicas"))
    out.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    out.extend(_selector_required(spec, "statefulset"))
    # Upstream checks only the template's labels and annotations here (volume mounts
    # may name volumeClaimTemplates), plus restartPolicy Always.
    out.extend(_template_for_replicas(spec, "spec.template", spec.get("selector"), pod_spec=False))
    if old is not None:
        old_spec = old.get("spec") or {}
        rest_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        rest_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        extra: list[Cause] = []
        if rest_new != rest_old:
            extra.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                )
            )
        out = _object_meta_update(obj, old) + out + extra
    return out


def _job_restart_policy(template: Any, path: str) -> list[Cause]:
    policy = ((template or {}).get("spec") or {}).get("restartPolicy") if isinstance(template, dict) else None
    if policy in ("OnFailure", "Never"):
        return []
    return [not_supported(f"{path}.spec.restartPolicy", policy or "", ("OnFailure", "Never"))]


def _job(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ):
        out.extend(_nonnegative(spec.get(key), f"spec.{key}"))
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and ads == 0:
        out.append(invalid("spec.activeDeadlineSeconds", ads, "must be greater than 0"))
    sel = spec.get("selector")
    template = _d(spec.get("template"))
    uid = (obj.get("metadata") or {}).get("uid")
    if not isinstance(sel, dict):
        if uid or spec.get("manualSelector") is True:
            out.append(required("spec.selector"))
    else:
        out.extend(_label_selector(sel, "spec.selector"))
        labels = (template.get("metadata") or {}).get("labels")
        if not _selector_empty(sel) and not _selector_matches(sel, labels):
            out.append(
                invalid(
                    "spec.template.metadata.labels",
                    _Raw(_go_map(labels)),
                    "`selector` does not match template `labels`",
                )
            )
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        out.append(not_supported("spec.completionMode", mode, ("NonIndexed", "Indexed")))
    if mode == "Indexed" and spec.get("completions") is None:
        out.append(required("spec.completions", "when completion mode is Indexed"))
    out.extend(_pod_template(template, "spec.template"))
    out.extend(_job_restart_policy(template, "spec.template"))
    if old is not None:
        old_spec = old.get("spec") or {}
        extra = _immutable_selector(obj, old)
        for key in ("completions", "completionMode", "manualSelector", "podFailurePolicy"):
            if spec.get(key) != old_spec.get(key) and not (
                key == "completions" and _elastic_indexed(spec, old_spec)
            ):
                extra.append(invalid(f"spec.{key}", spec.get(key), "field is immutable"))
        if _template_changed(template, old_spec.get("template"), suspended=old_spec.get("suspend") is True):
            extra.append(invalid("spec.template", _Raw("core.PodTemplateSpec{...}"), "field is immutable"))
        out = _object_meta_update(obj, old) + out + extra
    return out


def _elastic_indexed(spec: Obj, old_spec: Obj) -> bool:
    return spec.get("completionMode") == "Indexed" and spec.get("completions") == spec.get("parallelism")


def _template_changed(new: Any, old: Any, suspended: bool) -> bool:
    """Job templates are immutable, except scheduling directives of suspended Jobs."""
    new = new if isinstance(new, dict) else {}
    old = old if isinstance(old, dict) else {}
    if new == old:
        return False
    if not suspended:
        return True
    mutable_meta = ("labels", "annotations")
    mutable_spec = ("nodeSelector", "tolerations", "affinity", "schedulingGates")
    n_meta = {k: v for k, v in (new.get("metadata") or {}).items() if k not in mutable_meta}
    o_meta = {k: v for k, v in (old.get("metadata") or {}).items() if k not in mutable_meta}
    n_spec = {k: v for k, v in (new.get("spec") or {}).items() if k not in mutable_spec}
    o_spec = {k: v for k, v in (old.get("spec") or {}).items() if k not in mutable_spec}
    return n_meta != o_meta or n_spec != o_spec


_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELD = re.compile(
    r"(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*"
)


def _cron_schedule(schedule: str) -> str | None:
    text = schedule.strip()
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        return None
    if text.startswith("@"):
        if text in _CRON_MACROS or text.startswith("@every "):
            return None
        return f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for f in fields:
        if not _CRON_FIELD.fullmatch(f):
            return f"failed to parse int from {f}: strconv.Atoi: parsing {_q(f)}: invalid syntax"
    return None


def _cronjob(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 52:
        out.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    spec = _d(obj.get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        out.append(required("spec.schedule"))
    elif isinstance(schedule, str):
        err = _cron_schedule(schedule)
        if err:
            out.append(invalid("spec.schedule", schedule, err))
    policy = spec.get("concurrencyPolicy")
    if policy not in ("Allow", "Forbid", "Replace"):
        if not policy:
            out.append(required("spec.concurrencyPolicy"))
        else:
            out.append(not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    out.extend(_nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds"))
    out.extend(_nonnegative(spec.get("successfulJobsHistoryLimit"), "spec.successfulJobsHistoryLimit"))
    out.extend(_nonnegative(spec.get("failedJobsHistoryLimit"), "spec.failedJobsHistoryLimit"))
    job_template = _d(spec.get("jobTemplate"))
    job_spec = _d(job_template.get("spec"))
    jt_meta = job_template.get("metadata") or {}
    out.extend(_labels(jt_meta.get("labels"), "spec.jobTemplate.metadata.labels"))
    out.extend(_annotations(jt_meta.get("annotations"), "spec.jobTemplate.metadata.annotations"))
    template = job_spec.get("template")
    out.extend(_pod_template(template, "spec.jobTemplate.spec.template"))
    out.extend(_job_restart_policy(template, "spec.jobTemplate.spec.template"))
    if old is not None:
        out = _object_meta_update(obj, old) + out
    return out


def _pod(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    out.extend(_pod_spec(obj.get("spec"), "spec"))
    if old is not None:
        new_spec = dict(obj.get("spec") or {})
        old_spec = dict(old.get("spec") or {})
        for s in (new_spec, old_spec):
            for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
                s.pop(key, None)
            for ckey in ("containers", "initContainers"):
                s[ckey] = [
                    {k: v for k, v in c.items() if k != "image"}
                    for c in s.get(ckey) or []
                    if isinstance(c, dict)
                ]
        extra = _object_meta_update(obj, old)
        if new_spec != old_spec:
            extra.append(
                forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                    "(allow it to be set to 1 if it was previously negative)",
                )
            )
        out = extra + out
    return out


def _pod_template_kind(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    out.extend(_pod_template(obj.get("template"), "template"))
    return out


# --------------------------------------------------------------------------- core kinds

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_IP = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def _valid_ip(value: str) -> bool:
    if _IP.fullmatch(value):
        return True
    import ipaddress

    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _service(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1035_label)
    spec = _d(obj.get("spec"))
    stype = spec.get("type")
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    headless = spec.get("clusterIP") == "None"
    if stype == "ExternalName":
        if not spec.get("externalName"):
            out.append(required("spec.externalName"))
        else:
            out.extend(
                invalid("spec.externalName", spec["externalName"], m)
                for m in is_dns1123_subdomain(str(spec["externalName"]).rstrip("."))
            )
    elif not ports and not headless:
        out.append(required("spec.ports"))
    ips = spec.get("clusterIPs") or []
    for i, ip in enumerate(ips):
        if not isinstance(ip, str):
            continue
        if ip == "None":
            if i == 0 and stype in ("NodePort", "LoadBalancer"):
                out.append(
                    invalid("spec.clusterIPs[0]", ip, f"may not be set to 'None' for {stype} services")
                )
        elif not _valid_ip(ip):
            out.append(
                invalid(
                    f"spec.clusterIPs[{i}]",
                    ip,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )
            )
    if spec.get("clusterIP") and ips and spec["clusterIP"] != ips[0]:
        out.append(invalid("spec.clusterIPs", _Raw(_go_strings(ips)), "first value must match `clusterIP`"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            out.append(required(f"{p}.name"))
        elif name:
            out.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(name))
            if name in names:
                out.append(duplicate(f"{p}.name", name))
            names.add(name)
        number = port.get("port")
        out.extend(invalid(f"{p}.port", number, m) for m in _port_num(number))
        proto = port.get("protocol")
        if not proto:
            out.append(required(f"{p}.protocol"))
        elif proto not in _PROTOCOLS:
            out.append(not_supported(f"{p}.protocol", proto, _PROTOCOLS))
        target = port.get("targetPort")
        if target is not None:
            out.extend(_named_port(target, f"{p}.targetPort"))
        node_port = port.get("nodePort")
        if node_port and stype == "ClusterIP":
            out.append(forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'"))
        key = (number, proto)
        if key in seen:
            out.append(
                duplicate(
                    p,
                    _Raw(
                        f'core.ServicePort{{Name:"", Protocol:{_q(str(proto))}, AppProtocol:(*string)(nil), '
                        f'Port:{number}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
                    ),
                )
            )
        seen.add(key)
    if stype not in _SERVICE_TYPES:
        if not stype:
            out.append(required("spec.type"))
        else:
            out.append(not_supported("spec.type", stype, _SERVICE_TYPES))
    affinity = spec.get("sessionAffinity")
    if affinity not in ("ClientIP", "None"):
        if not affinity:
            out.append(required("spec.sessionAffinity"))
        else:
            out.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    etp = spec.get("externalTrafficPolicy")
    if etp and etp not in ("Cluster", "Local"):
        out.append(not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    itp = spec.get("internalTrafficPolicy")
    if itp and itp not in ("Cluster", "Local"):
        out.append(not_supported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    out.extend(_labels(spec.get("selector"), "spec.selector"))
    if old is not None:
        extra = _object_meta_update(obj, old)
        old_spec = old.get("spec") or {}
        if "ExternalName" not in (stype, old_spec.get("type")):
            old_ips = old_spec.get("clusterIPs") or (
                [old_spec["clusterIP"]] if old_spec.get("clusterIP") else []
            )
            if old_ips:
                if not ips:
                    extra.append(required("spec.clusterIPs[0]", "primary clusterIP can not be unset"))
                elif ips[0] != old_ips[0]:
                    extra.append(
                        invalid("spec.clusterIPs[0]", _Raw(_go_strings(ips)), "may not change once set")
                    )
        out = extra + out
    return out


_SECRET_LIMIT = 1024 * 1024


def _data_keys(data: Any, path: str) -> tuple[int, list[Cause]]:
    out: list[Cause] = []
    size = 0
    if not isinstance(data, dict):
        return size, out
    for key, value in data.items():
        key = str(key)
        if len(key) > 253:
            out.append(invalid(f"{path}[{key}]", key, _max_len(253)))
        if not _CONFIG_KEY.fullmatch(key):
            out.append(invalid(f"{path}[{key}]", key, _CONFIG_KEY_MSG))
        if key in (".", ".."):
            out.append(invalid(f"{path}[{key}]", key, f"must not be '{key}'"))
        elif key.startswith(".."):
            out.append(invalid(f"{path}[{key}]", key, "must not start with '..'"))
        size += len(value) if isinstance(value, str) else 0
    return size, out


def _decoded_len(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    text = value.replace("\n", "").replace("\r", "")
    return len(text) * 3 // 4 - text[-2:].count("=")


def _immutable_data(obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    out = []
    if obj.get("immutable") is not True:
        out.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if (obj.get(key) or {}) != (old.get(key) or {}):
            out.append(forbidden(key, "field is immutable when `immutable` is set"))
    return out


def _secret(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    data = obj.get("data")
    size, key_errs = _data_keys(data, "data")
    out.extend(key_errs)
    raw_size = sum(_decoded_len(v) for v in data.values()) if isinstance(data, dict) else size
    if raw_size > _SECRET_LIMIT:
        out.append(too_long("data", _SECRET_LIMIT))
    stype = obj.get("type")
    data = data if isinstance(data, dict) else {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if stype == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            out.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif stype == "kubernetes.io/dockercfg":
        if ".dockercfg" not in data:
            out.append(required("data[.dockercfg]"))
    elif stype == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in data:
            out.append(required("data[.dockerconfigjson]"))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            out.append(required("data[username]"))
    elif stype == "kubernetes.io/ssh-auth":
        if "ssh-privatekey" not in data:
            out.append(required("data[ssh-privatekey]"))
    elif stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                out.append(required(f"data[{key}]"))
    if old is not None:
        extra = _object_meta_update(obj, old)
        if old.get("type") and obj.get("type") != old.get("type"):
            extra.append(invalid("type", obj.get("type"), "field is immutable"))
        out = extra + _immutable_data(obj, old, ("data",)) + out
    return out


def _configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    size, errs = _data_keys(obj.get("data"), "data")
    out.extend(errs)
    bsize, berrs = _data_keys(obj.get("binaryData"), "binaryData")
    out.extend(berrs)
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    if isinstance(data, dict) and isinstance(binary, dict):
        for key in data:
            if key in binary:
                out.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    if size + bsize > _SECRET_LIMIT:
        out.append(too_long("", _SECRET_LIMIT))
    if old is None:
        return out
    return _object_meta_update(obj, old) + _immutable_data(obj, old, ("data", "binaryData")) + out


def _namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_label)
    for i, fin in enumerate((obj.get("spec") or {}).get("finalizers") or []):
        if isinstance(fin, str):
            out.extend(invalid(f"spec.finalizers[{i}]", fin, m) for m in is_qualified_name(fin))
    if old is not None:
        out = _object_meta_update(obj, old) + out
    return out


_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _pvc(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    modes = spec.get("accessModes") or []
    if not modes:
        out.append(required("spec.accessModes", "at least 1 access mode is required"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            out.append(not_supported("spec.accessModes", mode, _ACCESS_MODES))
    requests = ((spec.get("resources") or {}).get("requests")) or {}
    if "storage" not in requests:
        out.append(required("spec.resources[storage]"))
    else:
        q = _quantity(requests["storage"])
        if q is not None and q <= 0:
            out.append(
                invalid("spec.resources[storage]", str(requests["storage"]), "must be greater than zero")
            )
    vm = spec.get("volumeMode")
    if vm is not None and vm not in ("Block", "Filesystem"):
        out.append(not_supported("spec.volumeMode", vm, ("Block", "Filesystem")))
    if old is not None:
        extra: list[Cause] = []
        old_spec = old.get("spec") or {}

        # The binder may set volumeName once, and a default StorageClass may be
        # assigned retroactively to a claim that had none.
        may_set = {"volumeName"} if not old_spec.get("volumeName") else set()
        if old_spec.get("storageClassName") is None:
            may_set.add("storageClassName")

        def strip(s: Obj) -> Obj:
            s = {k: v for k, v in s.items() if k not in may_set and k != "volumeAttributesClassName"}
            res = dict(s.get("resources") or {})
            res.pop("requests", None)
            s["resources"] = res
            return s

        if strip(spec) != strip(old_spec):
            extra.append(
                forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                )
            )
        out = _object_meta_update(obj, old) + out + extra
    return out


def _ingress(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    rules = spec.get("rules") or []
    if not rules and not spec.get("defaultBackend"):
        out.append(
            invalid(
                "spec",
                _Raw("networking.IngressSpec{...}"),
                "either `defaultBackend` or `rules` must be specified",
            )
        )
    if isinstance(spec.get("defaultBackend"), dict):
        out.extend(_ingress_backend(spec["defaultBackend"], "spec.defaultBackend"))
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        p = f"spec.rules[{i}]"
        host = rule.get("host")
        if host:
            check = host[2:] if host.startswith("*.") else host
            out.extend(invalid(f"{p}.host", host, m) for m in is_dns1123_subdomain(check))
        http = rule.get("http")
        if not isinstance(http, dict):
            continue
        paths = http.get("paths") or []
        if not paths:
            out.append(required(f"{p}.http.paths"))
        for j, entry in enumerate(paths):
            if not isinstance(entry, dict):
                continue
            pp = f"{p}.http.paths[{j}]"
            path_type = entry.get("pathType")
            path = entry.get("path")
            if not path_type:
                out.append(required(f"{pp}.pathType", "pathType must be specified"))
            elif path_type not in ("Exact", "ImplementationSpecific", "Prefix"):
                out.append(
                    not_supported(f"{pp}.pathType", path_type, ("Exact", "ImplementationSpecific", "Prefix"))
                )
            elif path_type in ("Exact", "Prefix") and not str(path or "").startswith("/"):
                out.append(invalid(f"{pp}.path", path or "", "must be an absolute path"))
            if isinstance(entry.get("backend"), dict):
                out.extend(_ingress_backend(entry["backend"], f"{pp}.backend"))
            else:
                out.append(required(f"{pp}.backend"))
    return (_object_meta_update(obj, old) if old is not None else []) + out


def _ingress_backend(backend: Obj, path: str) -> list[Cause]:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [
            invalid(
                path, _Raw("networking.IngressBackend{...}"), "cannot set both resource and service backends"
            )
        ]
    if service is None and resource is None:
        return [
            invalid(path, _Raw("networking.IngressBackend{...}"), "resource or service backend is required")
        ]
    out: list[Cause] = []
    if isinstance(service, dict):
        if not service.get("name"):
            out.append(required(f"{path}.service.name"))
        else:
            out.extend(
                invalid(f"{path}.service.name", service["name"], m) for m in is_dns1035_label(service["name"])
            )
        port = _d(service.get("port"))
        if port.get("name") and port.get("number"):
            out.append(
                invalid(
                    f"{path}.service.port",
                    _Raw("networking.ServiceBackendPort{...}"),
                    "cannot set both port name & port number",
                )
            )
        elif port.get("name"):
            out.extend(
                invalid(f"{path}.service.port.name", port["name"], m) for m in _port_name(port["name"])
            )
        elif port.get("number"):
            out.extend(
                invalid(f"{path}.service.port.number", port["number"], m) for m in _port_num(port["number"])
            )
        else:
            out.append(required(f"{path}.service.port", "port name or number is required"))
    return out


def _hpa(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, is_dns1123_subdomain)
    spec = _d(obj.get("spec"))
    ref = _d(spec.get("scaleTargetRef"))
    if not ref.get("kind"):
        out.append(required("spec.scaleTargetRef.kind"))
    if not ref.get("name"):
        out.append(required("spec.scaleTargetRef.name"))
    min_r, max_r = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(min_r, int) and min_r < 1:
        out.append(invalid("spec.minReplicas", min_r, "must be greater than or equal to 1"))
    if not isinstance(max_r, int) or max_r < 1:
        out.append(invalid("spec.maxReplicas", max_r if max_r is not None else 0, "must be greater than 0"))
    elif isinstance(min_r, int) and max_r < min_r:
        out.append(invalid("spec.maxReplicas", max_r, "must be greater than or equal to `minReplicas`"))
    return (_object_meta_update(obj, old) if old is not None else []) + out


def _role(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, _path_segment)
    for i, rule in enumerate(obj.get("rules") or []):
        if not isinstance(rule, dict):
            continue
        if not rule.get("verbs"):
            out.append(required(f"rules[{i}].verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            if obj.get("kind") == "Role":
                out.append(
                    invalid(
                        f"rules[{i}].nonResourceURLs",
                        _Raw(_go_strings(rule["nonResourceURLs"])),
                        "namespaced rules cannot apply to non-resource URLs",
                    )
                )
            if rule.get("apiGroups") or rule.get("resources"):
                out.append(
                    invalid(
                        f"rules[{i}].nonResourceURLs",
                        _Raw(_go_strings(rule["nonResourceURLs"])),
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
        else:
            if not rule.get("apiGroups"):
                out.append(
                    required(f"rules[{i}].apiGroups", "resource rules must supply at least one api group")
                )
            if not rule.get("resources"):
                out.append(
                    required(f"rules[{i}].resources", "resource rules must supply at least one resource")
                )
    return (_object_meta_update(obj, old) if old is not None else []) + out


def _role_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    out = _object_meta(obj, _path_segment)
    ref = _d(obj.get("roleRef"))
    kinds = ("Role", "ClusterRole") if obj.get("kind") == "RoleBinding" else ("ClusterRole",)
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        out.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), ("rbac.authorization.k8s.io",)))
    if ref.get("kind") not in kinds:
        out.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        out.append(required("roleRef.name"))
    else:
        out.extend(invalid("roleRef.name", ref["name"], m) for m in _path_segment(ref["name"]))
    for i, subject in enumerate(obj.get("subjects") or []):
        if not isinstance(subject, dict):
            continue
        p = f"subjects[{i}]"
        if not subject.get("name"):
            out.append(required(f"{p}.name"))
        kind = subject.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            out.append(not_supported(f"{p}.kind", kind or "", ("ServiceAccount", "User", "Group")))
        elif kind == "ServiceAccount" and subject.get("apiGroup"):
            out.append(not_supported(f"{p}.apiGroup", subject["apiGroup"], ("",)))
        elif kind in ("User", "Group") and subject.get("apiGroup") != "rbac.authorization.k8s.io":
            out.append(
                not_supported(f"{p}.apiGroup", subject.get("apiGroup", ""), ("rbac.authorization.k8s.io",))
            )
    if old is not None:
        extra = _object_meta_update(obj, old)
        old_ref = old.get("roleRef") or {}
        if ref != old_ref:
            extra.append(
                invalid(
                    "roleRef",
                    _Raw(
                        f"rbac.RoleRef{{APIGroup:{_q(str(ref.get('apiGroup', '')))}, Kind:{_q(str(ref.get('kind', '')))}, "
                        f"Name:{_q(str(ref.get('name', '')))}}}"
                    ),
                    "cannot change roleRef",
                )
            )
        out = extra + out
    return out


def _meta_only(name_fn: NameFn) -> Callable[[Obj, Obj | None], list[Cause]]:
    def check(obj: Obj, old: Obj | None) -> list[Cause]:
        out = _object_meta(obj, name_fn)
        return (_object_meta_update(obj, old) if old is not None else []) + out

    return check


_VALIDATORS: dict[tuple[str, str], Callable[[Obj, Obj | None], list[Cause]]] = {
    ("apps/v1", "Deployment"): _deployment,
    ("apps/v1", "ReplicaSet"): _replicaset,
    ("apps/v1", "DaemonSet"): _daemonset,
    ("apps/v1", "StatefulSet"): _statefulset,
    ("batch/v1", "Job"): _job,
    ("batch/v1", "CronJob"): _cronjob,
    ("v1", "Pod"): _pod,
    ("v1", "PodTemplate"): _pod_template_kind,
    ("v1", "Service"): _service,
    ("v1", "Secret"): _secret,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Namespace"): _namespace,
    ("v1", "PersistentVolumeClaim"): _pvc,
    ("networking.k8s.io/v1", "Ingress"): _ingress,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): _hpa,
    ("rbac.authorization.k8s.io/v1", "Role"): _role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): _role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _role_binding,
}


def validate(obj: Obj, old: Obj | None = None) -> list[Cause]:
    """422 causes for a defaulted object; ``old`` (the stored object) adds update rules.

    Kinds without specific rules get the ObjectMeta checks (DNS-1123 subdomain
    name, namespace, labels, annotations).
    """
    fn = _VALIDATORS.get((str(obj.get("apiVersion", "")), str(obj.get("kind", ""))))
    if fn is None:
        fn = _meta_only(is_dns1123_subdomain)
    return fn(obj, old)


# --------------------------------------------------------------------------- decoding

_JSON_TYPE = {str: "string", bool: "bool", dict: "object", list: "array"}

# Named Go types of string/enum fields (the decoder reports these, not "string").
_NAMED_TYPES: dict[tuple[str, str], str] = {
    ("PodSpec", "restartPolicy"): "v1.RestartPolicy",
    ("PodSpec", "dnsPolicy"): "v1.DNSPolicy",
    ("PodSpec", "preemptionPolicy"): "v1.PreemptionPolicy",
    ("Container", "imagePullPolicy"): "v1.PullPolicy",
    ("Container", "terminationMessagePolicy"): "v1.TerminationMessagePolicy",
    ("ContainerPort", "protocol"): "v1.Protocol",
    ("ServicePort", "protocol"): "v1.Protocol",
    ("ServiceSpec", "type"): "v1.ServiceType",
    ("ServiceSpec", "sessionAffinity"): "v1.ServiceAffinity",
    ("ServiceSpec", "externalTrafficPolicy"): "v1.ServiceExternalTrafficPolicy",
    ("ServiceSpec", "internalTrafficPolicy"): "v1.ServiceInternalTrafficPolicy",
    ("ServiceSpec", "ipFamilyPolicy"): "v1.IPFamilyPolicy",
    ("ServiceSpec", "ipFamilies"): "v1.IPFamily",
    ("Secret", "type"): "v1.SecretType",
    ("HTTPGetAction", "scheme"): "v1.URIScheme",
    ("Toleration", "operator"): "v1.TolerationOperator",
    ("Toleration", "effect"): "v1.TaintEffect",
    ("PersistentVolumeClaimSpec", "accessModes"): "v1.PersistentVolumeAccessMode",
    ("PersistentVolumeClaimSpec", "volumeMode"): "v1.PersistentVolumeMode",
    ("DeploymentStrategy", "type"): "v1.DeploymentStrategyType",
    ("StatefulSetSpec", "podManagementPolicy"): "v1.PodManagementPolicyType",
    ("StatefulSetUpdateStrategy", "type"): "v1.StatefulSetUpdateStrategyType",
    ("DaemonSetUpdateStrategy", "type"): "v1.DaemonSetUpdateStrategyType",
    ("CronJobSpec", "concurrencyPolicy"): "v1.ConcurrencyPolicy",
    ("JobSpec", "completionMode"): "v1.CompletionMode",
    ("JobSpec", "podReplacementPolicy"): "v1.PodReplacementPolicy",
    ("LabelSelectorRequirement", "operator"): "v1.LabelSelectorOperator",
    ("HTTPIngressPath", "pathType"): "v1.PathType",
    ("NamespaceSpec", "finalizers"): "v1.FinalizerName",
    ("ResourceRequirements", "limits"): "v1.ResourceList",
    ("ResourceRequirements", "requests"): "v1.ResourceList",
    ("VolumeResourceRequirements", "limits"): "v1.ResourceList",
    ("VolumeResourceRequirements", "requests"): "v1.ResourceList",
}
_INT_RANGE = {"int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_TIME_TYPES = ("io.k8s.apimachinery.pkg.apis.meta.v1.Time", "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime")


class _TypeError(Exception):
    pass


def _short(def_name: str) -> str:
    return def_name.rsplit(".", 1)[-1]


def _pkg_type(def_name: str) -> str:
    parts = def_name.rsplit(".", 2)
    return ".".join(parts[-2:]) if len(parts) >= 2 else def_name


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return _JSON_TYPE.get(type(value), "object")


def _go_type(node: Node, struct: str, key: str) -> str:
    named = _NAMED_TYPES.get((struct, key))
    if named and node.kind != "list":
        return named
    kind = node.kind
    if kind == "struct":
        return _pkg_type(node.name) if node.name else "struct"
    if kind == "map":
        elem = node.elem
        if elem.kind == "scalar" and elem.scalar_type == "string":
            return "map[string][]uint8" if elem.raw.get("format") == "byte" else "map[string]string"
        return "map[string]" + _go_type(elem, "", "")
    if kind == "list":
        elem_type = named or _go_type(node.elem, "", "")
        return "[]" + elem_type
    if kind == "scalar":
        st = node.scalar_type
        if st == "integer":
            return str(node.raw.get("format") or "int")
        if st == "number":
            return "float64"
        if st == "boolean":
            return "bool"
        if st == "string":
            return "string"
        if st == "quantity":
            return "resource.Quantity"
        if st == "int-or-string":
            return "intstr.IntOrString"
    return "interface {}"


def _go_base64(value: str) -> str | None:
    """Go's StdEncoding.Decode error (``illegal base64 data at input byte N``) or None."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    data = value.encode()
    n = len(data)
    si = 0
    while True:
        quantum = 0
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return f"illegal base64 data at input byte {si - j}"
            ch = chr(data[si])
            si += 1
            if ch in alphabet:
                quantum += 1
                j += 1
                continue
            if ch in "\r\n":
                continue
            if ch != "=":
                return f"illegal base64 data at input byte {si - 1}"
            if j in (0, 1):
                return f"illegal base64 data at input byte {si - 1}"
            if j == 2:
                while si < n and chr(data[si]) in "\r\n":
                    si += 1
                if si == n:
                    return f"illegal base64 data at input byte {n}"
                if chr(data[si]) != "=":
                    return f"illegal base64 data at input byte {si - 1}"
                si += 1
            while si < n and chr(data[si]) in "\r\n":
                si += 1
            if si < n:
                return f"illegal base64 data at input byte {si}"
            return None


def _check_scalar(value: Any, node: Node, struct: str, fields: str, key: str) -> None:
    st = node.scalar_type
    where = f"Go struct field {struct}.{fields}" if struct else "Go value"

    def fail(what: str, gotype: str | None = None) -> None:
        raise _TypeError(
            f"json: cannot unmarshal {what} into {where} of type {gotype or _go_type(node, struct, key)}"
        )

    if st == "string":
        if not isinstance(value, str):
            fail(_json_kind(value))
        if node.raw.get("format") == "byte":
            err = _go_base64(value)
            if err:
                raise _TypeError(err)
        elif node.name in _TIME_TYPES and not (_RFC3339.fullmatch(value) and _parses(value)):
            raise _TypeError(
                f'parsing time {_q(value)} as "2006-01-02T15:04:05Z07:00": cannot parse {_q(value)} as "2006"'
            )
    elif st == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(_json_kind(value))
        gotype = _go_type(node, struct, key)
        lo, hi = _INT_RANGE.get(gotype, _INT_RANGE["int64"])
        if isinstance(value, float) or not lo <= value <= hi:
            fail(f"number {value!r}")
    elif st == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(_json_kind(value))
    elif st == "boolean":
        if not isinstance(value, bool):
            fail(_json_kind(value))
    elif st == "quantity":
        if isinstance(value, (dict, list, bool)) or not isinstance(value, (str, int, float)):
            raise _TypeError(quantity.ERR_FORMAT)
        try:
            quantity.parse(
                value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
            )
        except ValueError as exc:
            raise _TypeError(str(exc)) from None
    elif st == "int-or-string":
        if isinstance(value, str):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _TypeError(f"json: cannot unmarshal {_json_kind(value)} into Go value of type int32")
        if isinstance(value, float) or not -(1 << 31) <= value < (1 << 31):
            raise _TypeError(f"json: cannot unmarshal number {value!r} into Go value of type int32")


def _parses(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check(value: Any, node: Node, struct: str, fields: str, key: str) -> None:
    if value is None:
        return
    kind = node.kind
    if kind == "struct":
        if not isinstance(value, dict):
            if struct:
                raise _TypeError(
                    f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{fields} "
                    f"of type {_go_type(node, struct, key)}"
                )
            raise _TypeError(
                f"json: cannot unmarshal {_json_kind(value)} into Go value of type {_go_type(node, '', '')}"
            )
        _check_struct(value, node, fields)
    elif kind == "map":
        if not isinstance(value, dict):
            raise _TypeError(
                f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{fields} "
                f"of type {_go_type(node, struct, key)}"
            )
        elem = node.elem
        for v in value.values():
            _check(v, elem, struct, fields, "")
    elif kind == "list":
        if not isinstance(value, list):
            raise _TypeError(
                f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{fields} "
                f"of type {_go_type(node, struct, key)}"
            )
        elem = node.elem
        named = _NAMED_TYPES.get((struct, key))
        for v in value:
            if named and elem.kind == "scalar" and v is not None and not isinstance(v, str):
                raise _TypeError(
                    f"json: cannot unmarshal {_json_kind(v)} into Go struct field {struct}.{fields} of type {named}"
                )
            _check(v, elem, struct, fields, key if named else "")
    elif kind == "scalar":
        _check_scalar(value, node, struct, fields, key)


def _check_struct(d: Obj, node: Node, prefix: str) -> None:
    struct = _short(node.name) if node.name else ""
    for key, value in d.items():
        child = node.field(key)
        if child is None or value is None:
            continue
        _check(value, child, struct, f"{prefix}.{key}" if prefix else key, key)


def typecheck(obj: Obj, node: Node | None) -> str | None:
    """The Go JSON decoder's error for the first wrongly typed value, or None.

    E.g. ``json: cannot unmarshal string into Go struct field
    DeploymentSpec.spec.replicas of type int32``; quantity, base64 and time
    parse errors are reported with their own messages. Wrap the result with
    :func:`decode_error` for the 400 message. ``apiVersion``/``kind``,
    unknown fields and custom resources (non-built-in schemas) are not checked.
    """
    if node is None or node.kind != "struct" or not node.name.startswith("io.k8s."):
        return None  # custom resources are checked against their schema, not Go types
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    try:
        _check_struct(rest, node, "")
    except _TypeError as exc:
        return str(exc)
    return None


def decode_error(obj: Obj, message: str) -> str:
    """The 400 message for a body that failed to decode, e.g. ``Deployment in version "v1" cannot be handled as a Deployment: …``."""
    kind = str(obj.get("kind", ""))
    version = str(obj.get("apiVersion", "")).rpartition("/")[2]
    return f"{kind} in version {_q(version)} cannot be handled as a {kind}: {message}"


def unknown_fields(obj: Obj, node: Node | None) -> list[str]:
    """Remove fields the schema does not declare; returns their paths (``.spec.foo``, ``.spec.containers[0].x``).

    With ``fieldValidation=Strict`` the caller answers 400 ``strict decoding
    error: unknown field "spec.foo"`` (path without the leading dot).
    Preserve-unknown-fields and schemaless nodes are kept as they are.
    """
    found: list[str] = []
    if node is not None and isinstance(obj, dict):
        _prune(obj, node, "", found)
    return found


def _prune(value: Any, node: Node, path: str, found: list[str]) -> None:
    kind = node.kind
    if kind == "struct" and isinstance(value, dict):
        for key in list(value):
            child = node.field(key)
            if child is None:
                found.append(f"{path}.{key}")
                del value[key]
            elif value[key] is not None and child.kind != "scalar":
                _prune(value[key], child, f"{path}.{key}", found)
    elif kind == "list" and isinstance(value, list):
        elem = node.elem
        if elem.kind in ("struct", "list", "map"):
            for i, item in enumerate(value):
                _prune(item, elem, f"{path}[{i}]", found)
    elif kind == "map" and isinstance(value, dict):
        elem = node.elem
        if elem.kind in ("struct", "list", "map"):
            for key, item in value.items():
                _prune(item, elem, f"{path}.{key}", found)
