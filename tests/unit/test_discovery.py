"""Discovery documents compared field by field with the ones recorded from kube-apiserver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox import discovery
from sandbox.resources import Registry

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "k8s-discovery"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"recorded discovery documents not found at {FIXTURES}"
)

CRD: dict[str, Any] = {
    "spec": {
        "group": "demo.driftdeck.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [
            {"name": "v1alpha1", "served": True},
            {"name": "v1", "served": True, "subresources": {"status": {}, "scale": {}}},
            {"name": "v2beta1", "served": True},
            {"name": "v0", "served": False},
        ],
    }
}


def _recorded(path: str) -> dict[str, Any] | None:
    f = FIXTURES / (path.strip("/").replace("/", "__") + ".json")
    return json.loads(f.read_text()) if f.exists() else None


def _served_gvs(reg: Registry) -> list[tuple[str, str]]:
    return sorted({(t.group, t.version) for t in reg.types})


@needs_fixtures
@pytest.mark.parametrize("gv", _served_gvs(Registry()), ids=lambda gv: "/".join(filter(None, gv)))
def test_resource_rows_equal_recorded(gv: tuple[str, str]) -> None:
    group, version = gv
    url = f"/apis/{group}/{version}" if group else f"/api/{version}"
    recorded = _recorded(url)
    if recorded is None:
        pytest.skip(f"no recorded document for {url}")
    ours = discovery.api_resource_list(Registry(), group, version)
    assert ours is not None
    assert ours.keys() == recorded.keys()
    assert {k: v for k, v in ours.items() if k != "resources"} == {
        k: v for k, v in recorded.items() if k != "resources"
    }
    by_name = {r["name"]: r for r in recorded["resources"]}
    for row in ours["resources"]:
        assert row["name"] in by_name, f"{row['name']} is not served by kube-apiserver"
        want = {k: v for k, v in by_name[row["name"]].items() if k != "storageVersionHash"}
        got = {k: v for k, v in row.items() if k != "storageVersionHash"}
        assert got == want
        assert ("storageVersionHash" in row) == ("storageVersionHash" in by_name[row["name"]])
    recorded_order = [r["name"] for r in recorded["resources"] if r["name"] in {x["name"] for x in ours["resources"]}]
    assert [r["name"] for r in ours["resources"]] == recorded_order


@needs_fixtures
def test_storage_version_hash_is_kubes() -> None:
    recorded = _recorded("/apis/apps/v1")
    assert recorded is not None
    want = {r["name"]: r["storageVersionHash"] for r in recorded["resources"] if "storageVersionHash" in r}
    ours = discovery.api_resource_list(Registry(), "apps", "v1")
    assert ours is not None
    got = {r["name"]: r["storageVersionHash"] for r in ours["resources"] if "storageVersionHash" in r}
    assert got == want


@needs_fixtures
def test_groups_match_recorded_apis() -> None:
    recorded = _recorded("/apis")
    assert recorded is not None
    ours = discovery.api_group_list(Registry())
    assert ours.keys() == recorded.keys()
    assert (ours["kind"], ours["apiVersion"]) == (recorded["kind"], recorded["apiVersion"])
    rec = {g["name"]: g for g in recorded["groups"]}
    for g in ours["groups"]:
        assert g["name"] in rec
        assert g.keys() == rec[g["name"]].keys()
        assert g["preferredVersion"] == rec[g["name"]]["preferredVersion"]
        assert g["preferredVersion"] in g["versions"]
        served = {v["groupVersion"] for v in rec[g["name"]]["versions"]}
        assert {v["groupVersion"] for v in g["versions"]} <= served
    names = [g["name"] for g in ours["groups"]]
    assert names == [g["name"] for g in recorded["groups"] if g["name"] in names]


@needs_fixtures
def test_api_versions_shape() -> None:
    recorded = _recorded("/api")
    assert recorded is not None
    ours = discovery.api_versions("127.0.0.1:8080")
    assert ours.keys() == recorded.keys()
    assert ours["versions"] == recorded["versions"]
    assert ours["serverAddressByClientCIDRs"] == [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:8080"}]


def test_api_group() -> None:
    reg = Registry()
    apps = discovery.api_group(reg, "apps")
    assert apps == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }
    assert discovery.api_group(reg, "nope.example.com") is None
    assert discovery.api_group(reg, "") is None
    assert discovery.api_resource_list(reg, "apps", "v2") is None


def test_version_info() -> None:
    info = discovery.version_info()
    assert set(info) == {
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    }
    assert (info["major"], info["minor"]) == ("1", "32")
    assert info["gitVersion"].startswith("v1.32.")
    assert "/" in info["platform"]


def test_version_order_is_kube_aware() -> None:
    versions = ["v1alpha1", "foo", "v1", "v2beta1", "v1beta2", "v2", "v1beta1", "v10", "v11alpha2", "bar"]
    assert sorted(versions, key=discovery.version_sort_key) == [
        "v10",
        "v2",
        "v1",
        "v2beta1",
        "v1beta2",
        "v1beta1",
        "v11alpha2",
        "v1alpha1",
        "bar",
        "foo",
    ]


def test_crd_group_and_resources() -> None:
    reg = Registry()
    reg.set_crd(CRD)
    groups = discovery.api_group_list(reg)["groups"]
    assert groups[-1]["name"] == "demo.driftdeck.io"  # custom groups follow the built-in ones
    assert [v["version"] for v in groups[-1]["versions"]] == ["v1", "v2beta1", "v1alpha1"]
    assert groups[-1]["preferredVersion"] == {"groupVersion": "demo.driftdeck.io/v1", "version": "v1"}
    doc = discovery.api_resource_list(reg, "demo.driftdeck.io", "v1")
    assert doc is not None
    assert doc["groupVersion"] == "demo.driftdeck.io/v1"
    assert doc["resources"] == [
        {
            "name": "widgets",
            "singularName": "widget",
            "namespaced": True,
            "kind": "Widget",
            "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
            "shortNames": ["wd"],
            "storageVersionHash": discovery.storage_version_hash("demo.driftdeck.io", "v1", "Widget"),
        },
        {
            "name": "widgets/scale",
            "singularName": "",
            "namespaced": True,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        },
        {
            "name": "widgets/status",
            "singularName": "",
            "namespaced": True,
            "kind": "Widget",
            "verbs": ["get", "patch", "update"],
        },
    ]
    assert discovery.api_resource_list(reg, "demo.driftdeck.io", "v0") is None
    reg.remove_crd(CRD)
    assert discovery.api_group(reg, "demo.driftdeck.io") is None


def test_deployment_subresources() -> None:
    doc = discovery.api_resource_list(Registry(), "apps", "v1")
    assert doc is not None
    rows = {r["name"]: r for r in doc["resources"]}
    assert rows["deployments/status"] == {
        "name": "deployments/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Deployment",
        "verbs": ["get", "patch", "update"],
    }
    assert rows["deployments/scale"]["group"] == "autoscaling"
    assert rows["deployments/scale"]["version"] == "v1"
    assert rows["deployments/scale"]["kind"] == "Scale"
    assert "watch" in rows["deployments"]["verbs"]
