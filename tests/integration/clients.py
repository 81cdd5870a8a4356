"""Helpers to talk to a running sandbox with the official Python client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

T = TypeVar("T")


def api_client(kubeconfig: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig)


def dynamic(kubeconfig: str, tmp: Path) -> DynamicClient:
    return DynamicClient(api_client(kubeconfig), cache_file=str(tmp / "discovery-cache.json"))


def eventually(fn: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``fn`` until it returns a truthy value; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def deployment(name: str, image: str = "nginx:1.27", replicas: int | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name, **(labels or {})}},
            "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


async def wait_for(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``pred`` on the event loop (it reads engine state) until truthy; generous deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = pred()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_for_blocking(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Like :func:`wait_for`, but ``pred`` may block (kubectl, HTTP): it runs in a thread."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await asyncio.to_thread(pred)
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
