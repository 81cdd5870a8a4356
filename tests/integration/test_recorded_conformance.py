"""Conformance over HTTP with the recorded gitops-engine triples.

Each recorded live object is stored verbatim (managedFields included) through the
sandbox's admin import, then the config is server-side applied with ``dryRun=All`` as
``argocd-controller`` with force — the request Argo CD's server-side diff makes. The
response must equal what the field-manager library computes for the same triple
(tests/unit/test_recorded_fixtures_ssa.py checks that result against the predicted
object field for field and documents each hand-written or webhook difference), and here
we also check what only a server adds: resourceVersion unchanged, nothing persisted, the
generation bump on a spec change.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.server import Options, SandboxServer
from tests.unit import test_recorded_fixtures_ssa as lib

pytestmark = pytest.mark.skipif(lib.FIXTURES is None, reason="shared/fixtures not found beside the checkout")

CASES = [
    ("ssd-svc-label", "ssd-svc-no-label-config.yaml", "ssd-svc-no-label-predicted-live.json"),
    ("ssd-service", None, None),
    ("ssd-deploy-with-manual-apply", None, None),
    ("ssd-deploy-composite-key", None, None),
    ("ssd-deploy-nested", None, None),
    ("smd-deploy2", None, None),
]


def http(server: SandboxServer, method: str, path: str, body: Any = None, ctype: str = "application/json") -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def url_of(obj: dict[str, Any]) -> str:
    api_version, kind = obj["apiVersion"], obj["kind"]
    plural = {"Service": "services", "Deployment": "deployments"}[kind]
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    meta = obj["metadata"]
    return f"{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"


def strip_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    for k in ("resourceVersion", "generation"):
        meta.pop(k, None)
    for e in meta.get("managedFields", []):
        e.pop("time", None)
    return out


@pytest.fixture
def quiet_sandbox() -> Iterator[SandboxServer]:
    """No controllers: the recorded objects must stay exactly as imported."""
    server = SandboxServer(Options(controllers=False)).start_in_thread()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(("prefix", "config", "predicted"), CASES, ids=[c[0] for c in CASES])
def test_dry_run_apply_over_recorded_live(quiet_sandbox: SandboxServer, prefix: str, config: str | None, predicted: str | None) -> None:
    sandbox = quiet_sandbox
    live = lib.load(f"{prefix}-live.yaml")
    cfg = lib.load(config or f"{prefix}-config.yaml")
    pred = lib.load(predicted or f"{prefix}-predicted-live.json")
    live.setdefault("metadata", {}).setdefault("namespace", cfg["metadata"].get("namespace", "default"))
    cfg["metadata"].setdefault("namespace", live["metadata"]["namespace"])
    code, imported = http(sandbox, "POST", "/_sandbox/import", live)
    assert code == 200, imported
    stored = imported["items"][0]
    path = url_of(stored)

    code, dry = http(sandbox, "PATCH", path + "?dryRun=All&fieldManager=argocd-controller&force=true", cfg,
                     "application/apply-patch+yaml")
    assert code == 200, dry
    _, _, _, expected = lib.run(prefix, config, predicted, defaults=True)
    assert strip_volatile(dry) == strip_volatile(expected)
    # Server-only facts: a dry run keeps the resourceVersion and persists nothing.
    assert dry["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    code, after = http(sandbox, "GET", path)
    assert code == 200 and after == stored
    # The predicted object's spec is what the dry run returns (same normalisation as the library test).
    if prefix in ("ssd-svc-label", "ssd-deploy-with-manual-apply"):
        assert dry["spec"] == pred["spec"]
    if prefix == "ssd-deploy-with-manual-apply":
        # The config adds a port: a spec change, so the server bumps generation like the prediction.
        assert dry["metadata"]["generation"] == pred["metadata"]["generation"] == 5
