"""Label and field selectors: grammar, matching and the apiserver's error messages."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.selectors import (
    LabelSelector,
    Requirement,
    SelectorError,
    gvr_string,
    kubectl_list_error_message,
    label_selector_from_dict,
    new_requirement,
    parse_field_selector,
    parse_label_selector,
)

QNAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def error_of(selector: str) -> str:
    with pytest.raises(SelectorError) as ei:
        parse_label_selector(selector)
    return str(ei.value)


# ------------------------------------------------------------------- label grammar


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app==web", {"app": "web"}, True),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("env in (prod, stage)", {"env": "stage"}, True),
        ("env in (prod,stage)", {}, False),
        ("env notin (prod)", {}, True),
        ("env notin (prod)", {"env": "prod"}, False),
        ("legacy", {"legacy": ""}, True),
        ("legacy", {}, False),
        ("!legacy", {}, True),
        ("!legacy", {"legacy": "1"}, False),
        ("app=", {"app": ""}, True),
        ("app=", {"app": "x"}, False),
        ("env in (,prod)", {"env": ""}, True),
        ("gen>3", {"gen": "4"}, True),
        ("gen>3", {"gen": "3"}, False),
        ("gen<3", {"gen": "x"}, False),
        ("in in (in), notin notin (x)", {"in": "in"}, True),
        ("app=web, tier!=db ,!legacy", {"app": "web", "tier": "fe"}, True),
        ("app=web,tier!=db,!legacy", {"app": "web", "tier": "db"}, False),
        ("example.com/role=a", {"example.com/role": "a"}, True),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


def test_requirements_are_sorted_and_printed_like_kube() -> None:
    sel = parse_label_selector("z notin (b,a),!y,x in (foo,,baz),w==1,v")
    assert str(sel) == "v,w==1,x in (,baz,foo),!y,z notin (a,b)"


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        (
            "a>x",
            'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": name part {QNAME_RULE}'),
        ("a=-b", f'unable to parse requirement: values[0][a]: Invalid value: "-b": {VALUE_RULE}'),
    ],
)
def test_label_selector_errors(selector: str, message: str) -> None:
    assert error_of(selector) == message


def test_key_with_two_slashes() -> None:
    assert error_of("a/b/c=d") == (
        'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name '
        + QNAME_RULE
        + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    )


def test_key_prefix_and_length_errors() -> None:
    msg = error_of("Bad_Prefix/x")
    assert msg.startswith(
        'unable to parse requirement: <nil>: Invalid value: "Bad_Prefix/x": prefix part a lowercase'
    )
    assert "name part must be no more than 63 characters" in error_of("a" * 64)
    assert "must be no more than 63 characters" in error_of("a=" + "b" * 64)


def test_requires_exact_match() -> None:
    sel = parse_label_selector("app=web,env in (prod),tier in (a,b)")
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("env") == "prod"
    assert sel.requires_exact_match("tier") is None
    assert sel.requires_exact_match("other") is None


# ---------------------------------------------------------- LabelSelector objects


def test_selector_object_with_labels_and_expressions() -> None:
    sel = label_selector_from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "stage"]},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "track", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.matches({"app": "web", "env": "prod", "track": "x"})
    assert not sel.matches({"app": "web", "env": "prod"})
    assert not sel.matches({"app": "web", "env": "prod", "track": "x", "legacy": "y"})
    assert not sel.matches({"app": "web", "env": "prod", "track": "x", "tier": "db"})
    assert str(sel) == "app=web,env in (prod,stage),!legacy,tier notin (db),track"


def test_directly_built_requirements_match() -> None:
    sel = LabelSelector([Requirement("env", "in", ("prod", "stage")), Requirement("app", "exists")])
    assert sel.matches({"env": "stage", "app": ""})
    assert not sel.matches({"env": "dev", "app": ""})
    assert str(sel) == "app,env in (prod,stage)"


def test_nil_selector_matches_nothing_and_empty_matches_everything() -> None:
    assert not label_selector_from_dict(None).matches({})
    assert label_selector_from_dict({}).matches({"any": "thing"})
    assert label_selector_from_dict({"matchLabels": {}, "matchExpressions": []}).empty()
    assert LabelSelector.nothing().matches({}) is False


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "env", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "Equals"}]},
            '"Equals" is not a valid label selector operator',
        ),
        ({"matchLabels": {"a b": "c"}}, f'key: Invalid value: "a b": name part {QNAME_RULE}'),
        ({"matchLabels": {"app": "a b"}}, f'values[0][app]: Invalid value: "a b": {VALUE_RULE}'),
    ],
)
def test_selector_object_errors(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError) as ei:
        label_selector_from_dict(selector)
    assert str(ei.value) == message


def test_new_requirement_aggregates_errors() -> None:
    with pytest.raises(SelectorError) as ei:
        new_requirement("-k", "gt", ["x", "y"])
    msg = str(ei.value)
    assert msg.startswith('[key: Invalid value: "-k": name part ')
    assert (
        "values: Invalid value: []string{\"x\", \"y\"}: for 'Gt', 'Lt' operators, exactly one value is required"
        in msg
    )
    assert msg.endswith("]")


# ------------------------------------------------------------------ field selectors


def pod(**over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "p1", "namespace": "default"},
        "spec": {"nodeName": "node-a", "restartPolicy": "Always", "serviceAccountName": "default"},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]},
    }
    obj.update(over)
    return obj


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("metadata.name=p1", True),
        ("metadata.name==p1", True),
        ("metadata.name!=p1", False),
        ("metadata.namespace=default,spec.nodeName=node-a", True),
        ("spec.nodeName=node-b", False),
        ("status.phase!=Succeeded,status.phase!=Failed", True),
        ("status.podIP=10.0.0.5", True),
        ("spec.hostNetwork=false", True),
        ("spec.schedulerName=", True),
        ("spec.host=node-a", True),
        ("status.podIPs=10.0.0.5", False),
        ("status.nominatedNodeName=", True),
    ],
)
def test_pod_field_selector(selector: str, expected: bool) -> None:
    assert parse_field_selector(selector, "Pod").matches(pod()) is expected


def test_legacy_spec_host_is_rewritten() -> None:
    assert str(parse_field_selector("spec.host=n1", "Pod")) == "spec.nodeName=n1"


@pytest.mark.parametrize(
    ("kind", "group", "selector", "obj", "expected"),
    [
        ("Secret", None, "type=kubernetes.io/tls", {"type": "kubernetes.io/tls"}, True),
        ("Secret", None, "type=Opaque", {"type": "kubernetes.io/tls"}, False),
        ("Namespace", None, "status.phase=Active", {"status": {"phase": "Active"}}, True),
        ("Node", None, "spec.unschedulable=false", {"spec": {}}, True),
        ("Node", None, "spec.unschedulable=true", {"spec": {"unschedulable": True}}, True),
        ("Job", None, "status.successful=1", {"status": {"succeeded": 1}}, True),
        ("Job", None, "status.successful=0", {"status": {}}, True),
        ("ReplicationController", None, "status.replicas=3", {"status": {"replicas": 3}}, True),
        ("Service", None, "spec.type=ClusterIP", {"spec": {"type": "ClusterIP"}}, True),
        (
            "Event",
            None,
            "involvedObject.kind=Pod,reason=Started",
            {"involvedObject": {"kind": "Pod"}, "reason": "Started"},
            True,
        ),
        ("Event", None, "source=kubelet", {"source": {"component": "kubelet"}}, True),
        ("Event", None, "source=ctrl", {"source": {}, "reportingComponent": "ctrl"}, True),
        ("Event", "events.k8s.io", "regarding.name=p1", {"regarding": {"name": "p1"}}, True),
        ("ConfigMap", None, "metadata.namespace=default", {"metadata": {"namespace": "default"}}, True),
    ],
)
def test_per_kind_field_selectors(
    kind: str, group: str | None, selector: str, obj: dict[str, Any], expected: bool
) -> None:
    assert parse_field_selector(selector, kind, group).matches(obj) is expected


@pytest.mark.parametrize(
    ("kind", "group", "selector", "message"),
    [
        ("Pod", None, "spec.foo=x", "field label not supported: spec.foo"),
        ("Node", None, "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("Namespace", None, "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("Job", None, "spec.parallelism=1", 'field label "spec.parallelism" not supported for Job'),
        (
            "Deployment",
            "apps",
            "status.replicas=1",
            '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (
            "ReplicaSet",
            "apps",
            "status.replicas=1",
            '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        ("Event", "events.k8s.io", "involvedObject.name=x", "field label not supported: involvedObject.name"),
        ("Pod", None, "spec.nodeName", "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"),
        ("Pod", None, "metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        ("Pod", None, "metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ],
)
def test_field_selector_errors(kind: str, group: str | None, selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as ei:
        parse_field_selector(selector, kind, group)
    assert str(ei.value) == message


def test_syntax_errors_win_over_unsupported_labels() -> None:
    with pytest.raises(SelectorError) as ei:
        parse_field_selector("spec.foo=x,zzz", "Pod")
    assert str(ei.value) == "invalid selector: 'spec.foo=x,zzz'; can't understand 'zzz'"


def test_escaped_values() -> None:
    sel = parse_field_selector("metadata.name=a\\,b\\=c\\\\d", "ConfigMap")
    assert sel.matches({"metadata": {"name": "a,b=c\\d"}})
    assert str(sel) == "metadata.name=a\\,b\\=c\\\\d"


def test_trailing_comma_is_ignored() -> None:
    assert parse_field_selector("metadata.name=p1,", "Pod").matches(pod())


def test_requires_exact_match_for_store_lookups() -> None:
    sel = parse_field_selector("metadata.name=p1,metadata.namespace!=kube-system", "Pod")
    assert sel.requires_exact_match("metadata.name") == "p1"
    assert sel.requires_exact_match("metadata.namespace") is None


def test_custom_resources() -> None:
    sel = parse_field_selector("spec.color=red", "Widget", custom=True, selectable_fields=[".spec.color"])
    assert sel.matches({"spec": {"color": "red"}})
    with pytest.raises(SelectorError) as ei:
        parse_field_selector("spec.size=1", "Widget", custom=True)
    assert str(ei.value) == "field label not supported: spec.size"
    with pytest.raises(SelectorError) as ei:
        parse_field_selector("metadata.namespace=x", "Cluster", custom=True, namespaced=False)
    assert str(ei.value) == "field label not supported: metadata.namespace"


def test_kubectl_wrapping_message() -> None:
    subject = gvr_string("", "v1", "pods")
    assert kubectl_list_error_message(subject, "field label not supported: spec.foo", "", "spec.foo=x") == (
        'Unable to find "/v1, Resource=pods" that match label selector "", field selector "spec.foo=x": '
        "field label not supported: spec.foo"
    )
    assert kubectl_list_error_message(gvr_string("apps", "v1", "deployments"), "boom") == (
        'Unable to list "apps/v1, Resource=deployments": boom'
    )
