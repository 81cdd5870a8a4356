"""Discovery documents (``/version``, ``/api``, ``/apis``, resource lists) built from a Registry.

Pure functions: each returns the JSON body a kube-apiserver 1.32 would send,
shaped like the documents recorded in ``kubernetes/api/discovery`` (same keys,
verbs, short names, categories and ordering). Plain ``application/json`` only:
clients fall back from aggregated discovery when the reply is not aggregated.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import re
from typing import Any

from sandbox.resources import Registry, ResourceType

MAJOR = "1"
MINOR = "32"
GIT_VERSION = "v1.32.4+driftdeck"
DEFAULT_SERVER_ADDRESS = "127.0.0.1:6443"

# Built-in groups in the order kube-apiserver lists them in /apis (descending
# group priority, as in the recorded apis.json). CRD groups come after these:
# their APIServices get the lowest group priority, ties broken by name.
BUILTIN_GROUP_ORDER = (
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "resource.k8s.io",
    "storagemigration.k8s.io",
)

SUBRESOURCE_VERBS = ["get", "patch", "update"]
# The apiextensions-apiserver lists custom resource verbs in this order.
CRD_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def version_info() -> dict[str, str]:
    """``/version``: a version.Info; the build fields describe this Python process honestly."""
    machine = platform.machine().lower()
    return {
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{platform.system().lower() or 'linux'}/{_MACHINES.get(machine, machine or 'amd64')}",
    }


def api_versions(server_address: str = DEFAULT_SERVER_ADDRESS) -> dict[str, Any]:
    """``/api``: APIVersions of the core group (served without ``apiVersion``, like kube)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def version_sort_key(version: str) -> tuple[int, int, int, str]:
    """Kube-aware version order: GA > beta > alpha, higher numbers first, then others by name."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (1, 0, 0, version)
    stability = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (0, stability * 1_000_000 - int(m.group(1)), -int(m.group(3) or 0), "")


def served_groups(reg: Registry) -> list[tuple[str, list[str]]]:
    """The named groups in /apis order, each with its versions (preferred first)."""
    groups = {g: sorted(vs, key=version_sort_key) for g, vs in reg.groups().items() if g}
    rank = {g: i for i, g in enumerate(BUILTIN_GROUP_ORDER)}
    order = sorted(groups, key=lambda g: (rank.get(g, len(rank)), g))
    return [(g, groups[g]) for g in order]


def _group_body(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": dict(gvs[0])}


def api_group_list(reg: Registry) -> dict[str, Any]:
    """``/apis``: APIGroupList of every named group (the core group is only under /api)."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_body(g, vs) for g, vs in served_groups(reg)],
    }


def api_group(reg: Registry, group: str) -> dict[str, Any] | None:
    """``/apis/{group}``: one APIGroup, or None when the group is not served."""
    for name, versions in served_groups(reg):
        if name == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_body(name, versions)}
    return None


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """kube-apiserver's storageVersionHash: base64 of the first 8 bytes of sha256("g/v/Kind")."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def resource_rows(rt: ResourceType) -> list[dict[str, Any]]:
    """The APIResource rows of one type: the resource itself, then its subresources."""
    row: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(CRD_VERBS if rt.crd else rt.verbs),
    }
    if rt.short_names:
        row["shortNames"] = list(rt.short_names)
    if rt.categories:
        row["categories"] = list(rt.categories)
    # The storage version of a CRD is not kept on the type; each served version hashes its own.
    row["storageVersionHash"] = storage_version_hash(rt.group, rt.version, rt.kind)
    rows = [row]
    for sub in sorted(rt.subresources):
        sub_row: dict[str, Any] = {
            "name": f"{rt.plural}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
        }
        if sub == "scale":
            sub_row.update(group="autoscaling", version="v1", kind="Scale")
        else:
            sub_row["kind"] = rt.kind
        sub_row["verbs"] = list(SUBRESOURCE_VERBS)
        rows.append(sub_row)
    return rows


def api_resource_list(reg: Registry, group: str, version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/{g}/{v}``: APIResourceList sorted by name, or None if not served."""
    types = reg.in_group_version(group, version)
    if not types:
        return None
    rows = [r for rt in types for r in resource_rows(rt)]
    rows.sort(key=lambda r: r["name"])
    body: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        body["apiVersion"] = "v1"  # the core list is served without apiVersion
    body["groupVersion"] = f"{group}/{version}" if group else version
    body["resources"] = rows
    return body
