"""Render + strict schema validation of 10,000 manifests (Deployments, Services, ConfigMaps).

Prints figures; not a pass/fail test. Target: < 3 s for 10,000 manifests.

    .venv/bin/python bench/render_bench.py [--count 10000] [--files 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.render import builtin_namespaced, render


def deployment(i: int) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{i}
  labels: {{app: web-{i}, tier: frontend}}
  annotations:
    example.org/owner: team-{i % 7}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web-{i}}}
  template:
    metadata:
      labels: {{app: web-{i}}}
    spec:
      containers:
        - name: web
          image: registry.example.org/web:1.{i}
          ports:
            - containerPort: 8080
              name: http
          env:
            - {{name: MODE, value: production}}
            - {{name: LEVEL, value: "3"}}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: "1", memory: 256Mi}}
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 5
"""


def service(i: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata:
  name: web-{i}
spec:
  selector: {{app: web-{i}}}
  ports:
    - port: 80
      targetPort: http
"""


def configmap(i: int) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-{i}
data:
  a: "1"
  b: hello
  config.yaml: |
    key: value
    other: {i}
"""


def snapshot(count: int, nfiles: int) -> dict[str, bytes]:
    makers = (deployment, service, configmap)
    per_file: list[list[str]] = [[] for _ in range(nfiles)]
    for i in range(count):
        per_file[i % nfiles].append(makers[i % 3](i))
    return {f"apps/bench/part-{n:04d}.yaml": "---\n".join(docs).encode() for n, docs in enumerate(per_file)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = snapshot(args.count, args.files)
    size = sum(len(v) for v in files.values())
    t0 = time.perf_counter()
    builtin_namespaced("v1", "ConfigMap")  # loads the schemas once
    load = time.perf_counter() - t0
    best = float("inf")
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        manifests, problems = render(
            files, "apps/bench", default_namespace="bench", namespaced=builtin_namespaced, validate=True
        )
        best = min(best, time.perf_counter() - t0)
        assert len(manifests) == args.count and not problems, problems[:3]
    t0 = time.perf_counter()
    render(files, "apps/bench", default_namespace="bench", namespaced=builtin_namespaced)
    plain = time.perf_counter() - t0
    print(f"schemas loaded in {load:.3f} s")
    print(
        f"render+validate {args.count} manifests ({size / 1e6:.1f} MB, {args.files} files): {best:.3f} s (best of {args.rounds})"
    )
    print(f"render without validation: {plain:.3f} s")
    print(f"per manifest: {best / args.count * 1e6:.0f} us")


if __name__ == "__main__":
    main()
