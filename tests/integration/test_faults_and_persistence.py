"""Fault injection controls and --data persistence, exercised over HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sandbox.server import Options, SandboxServer, write_kubeconfig
from tests.integration.clients import api_client, eventually


def admin(server: SandboxServer, action: str, method: str = "POST") -> dict[str, Any]:
    req = urllib.request.Request(server.url + "/_sandbox/" + action, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def raw_watch(server: SandboxServer, path: str, timeout: float = 5) -> list[dict[str, Any]]:
    with urllib.request.urlopen(server.url + path, timeout=timeout + 5) as resp:
        return [json.loads(line) for line in resp if line.strip()]


def test_compact_forces_410_on_old_resource_version(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    old_rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    assert admin(sandbox, "compact")["compactedTo"] >= int(old_rv)
    events = raw_watch(sandbox, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old_rv}&timeoutSeconds=2")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old_rv} (")
    # The client's own watch surfaces it as an ApiException(410) on the typed stream.
    from kubernetes import watch

    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=old_rv, timeout_seconds=2):
            pass
    assert err.value.status == 410
    # A relist gives a fresh resourceVersion that can be watched again.
    fresh = core.list_namespaced_config_map("default").metadata.resource_version
    assert raw_watch(sandbox, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={fresh}&timeoutSeconds=1") == []


def test_drop_watches_ends_open_streams(sandbox: SandboxServer) -> None:
    done = threading.Event()
    result: list[float] = []

    def consume() -> None:
        start = time.monotonic()
        raw_watch(sandbox, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=60", timeout=60)
        result.append(time.monotonic() - start)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    eventually(lambda: sandbox.store.watcher_count() == 1, what="watch registered")
    assert admin(sandbox, "drop-watches")["dropped"] == 1
    assert done.wait(10), "the stream did not end after drop-watches"
    assert sandbox.store.watcher_count() == 0


def test_fail_next_requests_500(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    admin(sandbox, "fail?count=2&code=500")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.list_namespace()
        assert err.value.status == 500
        status = json.loads(err.value.body)
        assert status["kind"] == "Status" and status["code"] == 500 and status["reason"] == "InternalError"
    assert len(core.list_namespace().items) >= 4
    assert admin(sandbox, "state", method="GET")["faults"]["failCount"] == 0


def test_fail_next_requests_429(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    admin(sandbox, "fail?count=1&code=429")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(sandbox.url + "/api/v1/namespaces", timeout=10)
    assert err.value.code == 429 and err.value.headers["Retry-After"] == "1"
    assert json.loads(err.value.read())["reason"] == "TooManyRequests"
    # The official client honours Retry-After (urllib3) and gets through on its own.
    admin(sandbox, "fail?count=1&code=429")
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    assert len(core.list_namespace().items) >= 4
    assert admin(sandbox, "state", method="GET")["faults"]["failCount"] == 0


def test_latency(sandbox: SandboxServer, sandbox_kubeconfig: str) -> None:
    core = client.CoreV1Api(api_client(sandbox_kubeconfig))
    admin(sandbox, "latency?ms=300")
    start = time.monotonic()
    core.list_namespace()
    slow = time.monotonic() - start
    admin(sandbox, "latency?ms=0")
    # Not a timing assertion on our speed: the injected delay is a lower bound.
    assert slow >= 0.3


def test_data_file_survives_restart(tmp_path: Path) -> None:
    data = str(tmp_path / "cluster.db")
    kc = str(tmp_path / "kubeconfig")
    first = SandboxServer(Options(data_file=data, kubeconfig=kc, controllers=False)).start_in_thread()
    try:
        core = client.CoreV1Api(api_client(kc))
        core.create_namespace({"metadata": {"name": "keep"}})
        made = core.create_namespaced_config_map("keep", {"metadata": {"name": "c"}, "data": {"k": "v"}})
        svc = core.create_namespaced_service("keep", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
        last_rv = int(core.list_namespace().metadata.resource_version)
    finally:
        first.stop()
    second = SandboxServer(Options(data_file=data, kubeconfig=kc, controllers=False)).start_in_thread()
    try:
        write_kubeconfig(kc, second.url)
        core = client.CoreV1Api(api_client(kc))
        got = core.read_namespaced_config_map("c", "keep")
        assert got.data == {"k": "v"} and got.metadata.uid == made.metadata.uid
        assert int(core.list_namespace().metadata.resource_version) >= last_rv
        other = core.create_namespaced_service("keep", {"metadata": {"name": "t"}, "spec": {"ports": [{"port": 80}]}})
        assert other.spec.cluster_ip != svc.spec.cluster_ip, "restored Service IPs must stay reserved"
        assert int(other.metadata.resource_version) > last_rv
    finally:
        second.stop()
    memory = SandboxServer(Options(kubeconfig=kc, controllers=False)).start_in_thread()
    try:
        write_kubeconfig(kc, memory.url)
        with pytest.raises(ApiException):
            client.CoreV1Api(api_client(kc)).read_namespaced_config_map("c", "keep")
    finally:
        memory.stop()


def test_bad_requests_get_status_errors(sandbox: SandboxServer) -> None:
    def call(method: str, path: str, body: bytes | None, ctype: str = "application/json") -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(sandbox.url + path, method=method, data=body, headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            assert err.headers["Content-Type"].startswith("application/json")
            return err.code, json.loads(err.read())

    code, st = call("POST", "/api/v1/namespaces/default/configmaps", b"{not json")
    assert code == 400 and st["reason"] == "BadRequest" and st["kind"] == "Status"
    code, st = call("PATCH", "/api/v1/namespaces/default/configmaps/x", b"{}", "text/plain")
    assert code == 415 and st["reason"] == "UnsupportedMediaType"
    code, st = call("GET", "/api/v1/namespaces/default/nothings", None)
    assert code == 404
    code, st = call("POST", "/apis/apps/v1/namespaces/default/deployments",
                    json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                                "spec": {"replicas": "3"}}).encode())
    assert code == 400 and "cannot unmarshal string" in st["message"]
    code, st = call("GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx", None)
    assert code == 400 and "field label not supported: spec.bogus" in st["message"]
    code, st = call("GET", "/api/v1/pods?labelSelector=a%20in%20(", None)
    assert code == 400
