"""Sandbox performance figures (prints them; never pass/fail).

    .venv/bin/python bench/sandbox_bench.py [--objects 10000] [--watchers 10]

1. A sandbox subprocess (`driftdeck sandbox serve --no-controllers`): create, list (one
   page and paged by 500), and server-side apply of N ConfigMaps through the official
   Python client; p50/p99 request latency; the server's resident memory after.
2. Watch delivery: one write reaching W concurrent raw HTTP watchers; p50/p99 from the
   write's start to each watcher receiving the event.
3. In-process server-side apply of a Deployment (no HTTP): p50/p99.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, config  # noqa: E402
from kubernetes.dynamic import DynamicClient  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def fmt(name: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"{name:<38} n={len(ms):<6} p50={pct(ms, 50):7.2f} ms  p99={pct(ms, 99):7.2f} ms  max={max(ms):7.2f} ms"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(tmp: str) -> tuple[subprocess.Popen[str], str]:
    kc = os.path.join(tmp, "kubeconfig")
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftdeck", "sandbox", "serve", "--no-controllers", "--kubeconfig", kc],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("driftdeck sandbox listening"):
            break
    return proc, kc


def bench_objects(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, kc = start_server(tmp)
        try:
            api = config.new_client_from_config(config_file=kc)
            core = client.CoreV1Api(api)
            base_rss = rss_mib(proc.pid)
            create: list[float] = []
            for i in range(n):
                t = time.perf_counter()
                core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i:05d}", "labels": {"i": str(i % 10)}}, "data": {"k": "v" * 64}})
                create.append(time.perf_counter() - t)
            print(fmt(f"create ConfigMap x{n}", create))
            one: list[float] = []
            for _ in range(5):
                t = time.perf_counter()
                items = core.list_namespaced_config_map("default", _preload_content=False).data
                one.append(time.perf_counter() - t)
            print(fmt(f"list {n} in one page ({len(items) // 1024} KiB)", one))
            paged: list[float] = []
            t0 = time.perf_counter()
            cont = None
            while True:
                t = time.perf_counter()
                page = core.list_namespaced_config_map("default", limit=500, _continue=cont)
                paged.append(time.perf_counter() - t)
                cont = page.metadata._continue
                if not cont:
                    break
            print(fmt("list paged (limit=500), per page", paged) + f"  total={1000 * (time.perf_counter() - t0):.0f} ms")
            ssa: list[float] = []
            cms = DynamicClient(api, cache_file=os.path.join(tmp, "discovery.json")).resources.get(api_version="v1", kind="ConfigMap")
            for i in range(n):
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}", "namespace": "default"}, "data": {"k": "w"}}
                t = time.perf_counter()
                cms.server_side_apply(body=body, namespace="default", field_manager="bench", force_conflicts=True)
                ssa.append(time.perf_counter() - t)
            print(fmt(f"server-side apply ConfigMap x{n}", ssa))
            print(f"{'sandbox RSS':<38} idle={base_rss:.0f} MiB  with {n} objects={rss_mib(proc.pid):.0f} MiB")
        finally:
            proc.terminate()
            proc.wait(10)


def bench_watch(watchers: int, writes: int) -> None:
    from sandbox.server import Options, SandboxServer

    server = SandboxServer(Options(controllers=False)).start_in_thread()
    try:
        url = server.url
        received: list[list[tuple[str, float]]] = [[] for _ in range(watchers)]

        def consume(idx: int) -> None:
            with urllib.request.urlopen(url + "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=120", timeout=130) as resp:
                for line in resp:
                    ev = json.loads(line)
                    received[idx].append((ev["object"]["metadata"]["name"], time.perf_counter()))
                    if len(received[idx]) >= writes:
                        return

        threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(watchers)]
        for t in threads:
            t.start()
        while server.store.watcher_count() < watchers:
            time.sleep(0.01)
        sent: dict[str, float] = {}
        for i in range(writes):
            name = f"w-{i}"
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).encode()
            req = urllib.request.Request(url + "/api/v1/namespaces/default/configmaps", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            sent[name] = time.perf_counter()
            urllib.request.urlopen(req, timeout=10).read()
            time.sleep(0.01)
        for t in threads:
            t.join(30)
        lat = [at - sent[name] for rec in received for name, at in rec if name in sent]
        print(fmt(f"watch delivery, {watchers} watchers x {writes} writes", lat))
    finally:
        server.stop()


def bench_inprocess_apply(n: int) -> None:
    from sandbox.api import Request
    from sandbox.server import Options, SandboxServer

    server = SandboxServer(Options(controllers=False))
    rt = server.registry.lookup("apps", "v1", "deployments")
    assert rt is not None
    samples: list[float] = []
    for i in range(n):
        body: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d{i % 50}", "namespace": "default"},
            "spec": {"replicas": 1 + i % 3, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}},
                                  "spec": {"containers": [{"name": "app", "image": f"nginx:1.{i % 7}",
                                                           "ports": [{"containerPort": 80}],
                                                           "env": [{"name": "A", "value": "1"}]}]}}},
        }
        t = time.perf_counter()
        server.api.apply(rt, "default", f"d{i % 50}", body, Request(field_manager="bench", force=True))
        samples.append(time.perf_counter() - t)
    print(fmt(f"in-process SSA of a Deployment x{n}", samples[50:] or samples))
    server.store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--watchers", type=int, default=10)
    ap.add_argument("--writes", type=int, default=200)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    bench_inprocess_apply(2000)
    bench_watch(args.watchers, args.writes)
    bench_objects(args.objects)
    print("targets: watch p99 < 20 ms; in-process SSA of a Deployment p50 < 5 ms; 10,000 objects < 500 MiB RSS")


if __name__ == "__main__":
    main()
