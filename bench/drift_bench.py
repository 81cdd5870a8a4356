"""Drift-check cost (prints figures; never pass/fail).

    .venv/bin/python bench/drift_bench.py [--n 20000] [--client]

A Deployment (two containers, ports, resources, env, probes) is applied to an
in-thread sandbox with ``Cluster.apply``; once the controllers have made it
Available, ``core.drift.check`` runs against the live object (and the same for a
minimal one-container Deployment). Figures are CPU time
of the calling thread per check (the sandbox's threads are not counted):

* in sync (the common case on every watch event);
* drifted (image changed by another manager: diff paths plus attribution);
* drifted but ignored by a JSON-pointer rule.

``--client`` also compares one GET through ``Cluster.get`` (raw JSON) with the
official ``DynamicClient`` plus ``ResourceInstance.to_dict()``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.cluster import Cluster  # noqa: E402
from core.drift import check, make_baseline, node_for  # noqa: E402
from core.model import IgnoreRule  # noqa: E402
from sandbox.server import Options, SandboxServer  # noqa: E402


def manifest() -> dict[str, Any]:
    def container(name: str, image: str, port: int) -> dict[str, Any]:
        return {
            "name": name,
            "image": image,
            "ports": [{"containerPort": port, "name": "http"}],
            "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"cpu": 1, "memory": "512Mi"},
            },
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}},
        }

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"team": "shop"},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {
                    "containers": [
                        container("web", "nginx:1.27", 80),
                        container("metrics", "exporter:0.15", 9113),
                    ],
                },
            },
        },
    }


def minimal() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "mini"},
        "spec": {
            "selector": {"matchLabels": {"app": "mini"}},
            "template": {
                "metadata": {"labels": {"app": "mini"}},
                "spec": {
                    "containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]
                },
            },
        },
    }


def per_call(fn: Callable[[], Any], n: int) -> float:
    """CPU microseconds of this thread per call (best of three runs)."""
    for _ in range(min(n, 200)):
        fn()
    best = float("inf")
    for _ in range(3):
        t = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t) / n)
    return best * 1e6


def wait_available(cluster: Cluster, name: str = "web") -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live = cluster.get("apps/v1", "Deployment", "default", name) or {}
        conds = (live.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Available" and c.get("status") == "True" for c in conds):
            return live
        time.sleep(0.05)
    raise SystemExit("Deployment never became Available")


def client_comparison(cluster: Cluster, tmp: str, n: int) -> None:
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(cluster.api_client, cache_file=str(Path(tmp) / "discovery.json"))
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    raw = per_call(lambda: cluster.get("apps/v1", "Deployment", "default", "web"), n)
    dynamic = per_call(lambda: res.get(name="web", namespace="default").to_dict(), n)
    print(f"{'GET Deployment, Cluster.get (raw JSON)':<44} {raw:8.1f} µs client CPU")
    print(f"{'GET Deployment, DynamicClient + to_dict()':<44} {dynamic:8.1f} µs client CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="checks per measurement")
    ap.add_argument("--client", action="store_true", help="also compare raw GETs with DynamicClient")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = SandboxServer(Options(pace=0.05, kubeconfig=str(Path(tmp) / "kubeconfig"))).start_in_thread()
        try:
            cluster = Cluster(str(Path(tmp) / "kubeconfig"), name="bench")
            sent = manifest()
            answer = cluster.apply(sent)
            b = make_baseline(sent, answer, node_for(answer))
            live = wait_available(cluster)
            drifted = copy.deepcopy(live)
            drifted["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
            mf = drifted["metadata"]["managedFields"]
            mf.append(
                {
                    "manager": "kubectl-set",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:spec": {
                            "f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}
                        }
                    },
                }
            )
            rules = [IgnoreRule(pointer="/spec/template/spec/containers/0/image")]
            assert (
                check(b, live) is None and check(b, drifted) is not None and check(b, drifted, rules) is None
            )

            mini = minimal()
            mini_b = make_baseline(mini, cluster.apply(mini), node_for(mini))
            mini_live = wait_available(cluster, "mini")
            assert check(mini_b, mini_live) is None

            print(f"Deployment: |F| = {len(b.fields)} paths, live object {len(str(live))} chars")
            print(
                f"minimal Deployment: |F| = {len(mini_b.fields)} paths, live object {len(str(mini_live))} chars"
            )
            for name, fn in (
                ("check, in sync (minimal Deployment)", lambda: check(mini_b, mini_live)),
                ("check, in sync (two containers)", lambda: check(b, live)),
                ("check, drifted (diff + attribution)", lambda: check(b, drifted)),
                ("check, drifted but ignored by pointer", lambda: check(b, drifted, rules)),
                ("make_baseline", lambda: make_baseline(sent, answer, b.node)),
            ):
                n = args.n if "in sync" in name else args.n // 4
                print(f"{name:<44} {per_call(fn, n):8.1f} µs CPU per call")
            if args.client:
                client_comparison(cluster, tmp, 300)
            cluster.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
