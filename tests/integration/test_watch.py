"""The Cluster client and its engine-owned list+watch loops, against the sandbox over HTTP,
including its fault injection (drop-watches, compaction, 500/429, bookmarks)."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.cluster import Cluster, ClusterError, ObjectCache, WatchManager
from core.model import ClusterSpec, ObjRef
from sandbox.api import Request
from sandbox.server import SandboxServer, write_kubeconfig
from tests.integration.clients import deployment, eventually

Obj = dict[str, Any]
CM_PATH = "/api/v1/namespaces/default/configmaps"


def cm(name: str, value: str = "1", labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


@dataclass
class Recorder:
    """A listener that records ``(type, name, rv)`` of every event."""

    events: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event_type: str, obj: Obj) -> None:
        meta = obj["metadata"]
        with self.lock:
            self.events.append((event_type, meta["name"], str(meta.get("resourceVersion", ""))))

    def of(self, name: str) -> list[str]:
        with self.lock:
            return [t for t, n, _ in self.events if n == name]

    def counts(self) -> Counter[tuple[str, str]]:
        with self.lock:
            return Counter((t, n) for t, n, _ in self.events)


@dataclass
class Rig:
    sandbox: SandboxServer
    cluster: Cluster  # the watcher's cluster: its request counter must not move per event
    writer: Cluster  # every other request
    watches: WatchManager
    rec: Recorder

    def admin(self, action: str) -> Any:
        return self.writer.request("POST", f"/_sandbox/{action.split('?')[0]}", _query(action))

    def watch_cms(self) -> Any:
        loop = self.watches.ensure("v1", "ConfigMap")
        assert self.watches.wait_synced("v1", "ConfigMap", 10)
        eventually(lambda: self.sandbox.store.watcher_count() >= 1, what="the watch stream open")
        return loop

    def caught_up(self, loop: Any) -> None:
        target = self.sandbox.store.rv
        eventually(lambda: int(loop.resource_version or 0) >= target, what="loop caught up with the store")

    def in_process(self, fn: Any) -> Any:
        """Change the store without HTTP (the admin ``fail`` fault rejects every API request)."""
        return self.sandbox.call(fn)


def _query(action: str) -> list[tuple[str, Any]]:
    _, _, q = action.partition("?")
    return [tuple(p.split("=", 1)) for p in q.split("&") if p]  # type: ignore[misc]


@pytest.fixture
def rig(sandbox: SandboxServer, sandbox_kubeconfig: str) -> Iterator[Rig]:
    cluster = Cluster(sandbox_kubeconfig, name="sandbox")
    writer = Cluster(sandbox_kubeconfig, name="writer")
    watches = WatchManager(cluster, watch_timeout=30, backoff_base=0.05, backoff_cap=0.5)
    rec = Recorder()
    watches.add_listener(rec)
    try:
        yield Rig(sandbox, cluster, writer, watches, rec)
    finally:
        watches.stop()
        cluster.close()
        writer.close()


# --- the cluster client ---------------------------------------------------------------------------


def test_discovery_scope_and_verbs(rig: Rig) -> None:
    found = rig.cluster.discover()
    dep = rig.cluster.resource("apps/v1", "Deployment")
    assert dep is not None and dep.plural == "deployments" and dep.namespaced and "watch" in dep.verbs
    assert found[("apps", "v1", "Deployment")] == dep
    assert rig.cluster.namespaced("v1", "Namespace") is False
    assert rig.cluster.namespaced("v1", "NoSuchKind") is None
    assert rig.cluster.resource("example.com/v1", "Nothing") is None


def test_cluster_from_spec_and_context_namespace(sandbox_kubeconfig: str, sandbox: SandboxServer) -> None:
    c = Cluster.from_spec(ClusterSpec(name="local", kubeconfig=sandbox_kubeconfig))
    assert c.name == "local" and c.url == sandbox.url and c.default_namespace == "default"


def test_apply_get_list_delete_round_trip(rig: Rig) -> None:
    answer = rig.writer.apply(cm("a"))
    assert answer["metadata"]["managedFields"][0]["manager"] == "driftdeck"
    live = rig.writer.get("v1", "ConfigMap", "default", "a")
    assert live is not None and live["data"] == {"v": "1"}
    assert rig.writer.get("v1", "ConfigMap", "default", "zzz") is None
    assert rig.writer.delete("v1", "ConfigMap", "default", "a") is True
    assert rig.writer.delete("v1", "ConfigMap", "default", "a") is False


def test_dry_run_apply_persists_nothing(rig: Rig) -> None:
    answer = rig.writer.apply(deployment("web"), dry_run=True)
    assert answer["spec"]["revisionHistoryLimit"] == 10  # defaulted like a real write
    assert not answer["metadata"].get("resourceVersion")
    assert rig.writer.get("apps/v1", "Deployment", "default", "web") is None


def test_list_pages_and_fills_kind(rig: Rig) -> None:
    for i in range(5):
        rig.writer.apply(cm(f"c{i}"))
    before = rig.writer.requests
    items, rv = rig.writer.list("v1", "ConfigMap", namespace="default", limit=2)
    names = [i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith("c")]
    assert names == [f"c{i}" for i in range(5)]
    assert rig.writer.requests - before >= 3  # three pages
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in items)
    assert int(rv) >= max(int(i["metadata"]["resourceVersion"]) for i in items)
    selected, _ = rig.writer.list("v1", "ConfigMap", "app in (x)")
    assert selected == []


def test_status_errors_become_cluster_errors(rig: Rig) -> None:
    with pytest.raises(ClusterError) as bad:
        rig.writer.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
    assert bad.value.code == 422 and bad.value.reason == "Invalid"
    assert bad.value.causes and bad.value.causes[0]["field"] == "metadata.name"
    rig.writer.apply(deployment("web", replicas=2))
    rig.writer.request(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        [("fieldManager", "kubectl-edit")],
        {"spec": {"replicas": 3}},
        "application/merge-patch+json",
    )
    with pytest.raises(ClusterError) as conflict:
        rig.writer.apply(deployment("web", replicas=2), force=False)
    assert conflict.value.code == 409 and conflict.value.reason == "Conflict"
    assert conflict.value.causes[0]["field"] == ".spec.replicas"
    assert rig.writer.apply(deployment("web", replicas=2))["spec"]["replicas"] == 2  # force takes it back


def test_unreachable_cluster_names_the_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = tmp_path / "kubeconfig"
    write_kubeconfig(str(kc), f"http://127.0.0.1:{port}")
    c = Cluster(str(kc), name="local")
    with pytest.raises(ClusterError) as err:
        c.get("v1", "ConfigMap", "default", "x")
    assert err.value.code == 0
    assert str(err.value) == f"cluster local (http://127.0.0.1:{port}) unreachable: connection refused"


# --- the object cache -----------------------------------------------------------------------------


def _obj(name: str, rv: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
    }


def test_cache_skips_stale_and_duplicate_events() -> None:
    cache = ObjectCache()
    assert cache.apply_event("ADDED", _obj("a", "5")) == "ADDED"
    assert cache.apply_event("ADDED", _obj("a", "5")) is None
    assert cache.apply_event("MODIFIED", _obj("a", "4")) is None
    assert cache.apply_event("MODIFIED", _obj("a", "7")) == "MODIFIED"
    assert cache.apply_event("DELETED", _obj("a", "6")) is None
    assert cache.apply_event("DELETED", _obj("a", "9")) == "DELETED"
    assert cache.apply_event("DELETED", _obj("a", "10")) is None  # never seen again
    assert cache.get(ObjRef("", "ConfigMap", "ns", "a")) is None


def test_cache_replace_synthesizes_the_difference() -> None:
    cache = ObjectCache()
    cache.replace("", "ConfigMap", [_obj("same", "1"), _obj("gone", "2"), _obj("changed", "3")])
    events = cache.replace("", "ConfigMap", [_obj("same", "1"), _obj("changed", "8"), _obj("new", "9")])
    assert sorted((t, o["metadata"]["name"]) for t, o in events) == [
        ("ADDED", "new"),
        ("DELETED", "gone"),
        ("MODIFIED", "changed"),
    ]
    assert len(cache) == 3


# --- watch loops ----------------------------------------------------------------------------------


def test_list_then_watch_delivers_each_change_once_without_api_calls(rig: Rig) -> None:
    rig.writer.apply(cm("a"))
    rig.writer.apply(cm("b"))
    loop = rig.watch_cms()
    assert rig.rec.of("a") == ["ADDED"] and rig.rec.of("b") == ["ADDED"]
    sent = rig.cluster.requests
    rig.writer.apply(cm("a", "2"))
    rig.writer.delete("v1", "ConfigMap", "default", "b")
    rig.writer.apply(cm("c"))
    eventually(lambda: rig.rec.of("c"), what="c added")
    rig.caught_up(loop)
    assert rig.rec.of("a") == ["ADDED", "MODIFIED"]
    assert rig.rec.of("b") == ["ADDED", "DELETED"]
    assert rig.rec.of("c") == ["ADDED"]
    assert rig.cluster.requests == sent  # events arrive on the open stream: no request per event
    cache = rig.watches.cache
    assert cache.get(ObjRef("", "ConfigMap", "default", "a"))["data"] == {"v": "2"}  # type: ignore[index]
    assert cache.get(ObjRef("", "ConfigMap", "default", "b")) is None
    assert loop.stats.lists == 1 and loop.stats.relists == 0 and loop.stats.errors == 0


def test_one_loop_per_kind_shared_by_all_listeners(rig: Rig) -> None:
    second = Recorder()
    rig.watches.add_listener(second)
    first = rig.watches.ensure("v1", "ConfigMap")
    assert rig.watches.ensure("v1", "ConfigMap") is first
    rig.watch_cms()
    rig.writer.apply(cm("x"))
    eventually(lambda: second.of("x") and rig.rec.of("x"), what="both listeners")
    threads = [t for t in threading.enumerate() if t.name == "watch-ConfigMap"]
    assert len(threads) == 1
    assert rig.sandbox.store.watcher_count() == 1


def test_a_loop_listener_hears_only_its_kind(rig: Rig) -> None:
    mine = Recorder()
    loop = rig.watch_cms()
    remove = loop.listen(mine)
    rig.watches.ensure("v1", "Secret")
    assert rig.watches.wait_synced("v1", "Secret", 10)
    rig.writer.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    rig.writer.apply(cm("c1"))
    eventually(lambda: mine.of("c1"), what="c1 heard")
    eventually(lambda: rig.rec.of("s"), what="s heard by the manager listener")
    assert mine.of("s") == []
    remove()
    rig.writer.apply(cm("c2"))
    eventually(lambda: rig.rec.of("c2"), what="c2 heard by the manager listener")
    assert mine.of("c2") == []


def test_stream_eof_at_timeout_rewatches_from_the_last_rv(rig: Rig) -> None:
    rig.watches.watch_timeout = 1
    loop = rig.watch_cms()
    eventually(lambda: loop.stats.reconnects >= 2, what="two timeouts")
    rig.writer.apply(cm("late"))
    eventually(lambda: rig.rec.of("late"), what="late added")
    rig.caught_up(loop)
    assert rig.rec.of("late") == ["ADDED"]
    assert loop.stats.relists == 0 and loop.stats.errors == 0


def test_drop_watches_rewatches_and_a_write_right_after_arrives_once(rig: Rig) -> None:
    rig.writer.apply(cm("a"))
    loop = rig.watch_cms()
    rig.admin("drop-watches")
    rig.writer.apply(cm("after"))
    rig.writer.apply(cm("a", "2"))
    eventually(lambda: rig.rec.of("a") == ["ADDED", "MODIFIED"], what="a modified")
    rig.caught_up(loop)
    assert rig.rec.of("after") == ["ADDED"]
    assert rig.rec.of("a") == ["ADDED", "MODIFIED"]
    assert loop.stats.reconnects >= 1 and loop.stats.relists == 0


def open_gap(rig: Rig, loop: Any) -> None:
    """Cut the loop off, change the store behind its back, compact the history, then reconnect.

    The loop comes back with a resourceVersion older than the compaction: 410, relist.
    Changes: ``gone`` deleted, ``changed`` modified, ``new`` created; ``same`` untouched.
    """
    rt = rig.sandbox.registry.lookup("", "v1", "configmaps")
    assert rt is not None
    req = Request(field_manager="other", force=True)
    rig.admin("fail?count=100000&code=500")  # every API request fails...
    rig.admin("drop-watches")  # ...and the open stream ends
    eventually(lambda: loop.stats.errors >= 1, what="the loop failing to re-watch")
    rig.in_process(lambda: rig.sandbox.api.delete(rt, "default", "gone", {}, req))
    rig.in_process(lambda: rig.sandbox.api.apply(rt, "default", "changed", cm("changed", "2"), req))
    rig.in_process(lambda: rig.sandbox.api.create(rt, "default", cm("new"), req))
    rig.admin("compact")
    rig.admin("reset")


def assert_gap_events(rig: Rig) -> None:
    """Each object reported exactly as often as it changed: no miss, no duplicate."""
    counts = Counter({k: v for k, v in rig.rec.counts().items() if k[1] != "kube-root-ca.crt"})
    assert counts == Counter(
        {
            ("ADDED", "same"): 1,
            ("ADDED", "gone"): 1,
            ("ADDED", "changed"): 1,
            ("DELETED", "gone"): 1,
            ("MODIFIED", "changed"): 1,
            ("ADDED", "new"): 1,
        }
    )
    cache = rig.watches.cache
    assert cache.get(ObjRef("", "ConfigMap", "default", "changed"))["data"] == {"v": "2"}  # type: ignore[index]
    assert cache.get(ObjRef("", "ConfigMap", "default", "gone")) is None


def test_compaction_gap_relists_and_synthesizes_exactly_the_difference(rig: Rig) -> None:
    for name in ("same", "gone", "changed"):
        rig.writer.apply(cm(name))
    loop = rig.watch_cms()
    open_gap(rig, loop)
    eventually(lambda: loop.stats.relists == 1, what="relist after 410")
    rig.caught_up(loop)
    assert_gap_events(rig)
    assert loop.thread is not None and loop.thread.is_alive()


class FailingRelists(Cluster):
    """Arms the sandbox's ``fail?count=3&code=500`` fault right before every relist."""

    list_calls = 0

    def list(self, *args: Any, **kwargs: Any) -> tuple[list[Obj], str]:
        self.list_calls += 1
        if self.list_calls == 2:
            self.request("POST", "/_sandbox/fail", [("count", 3), ("code", 500)])
        return super().list(*args, **kwargs)


def test_failures_during_a_relist_back_off_and_recover(
    sandbox: SandboxServer, sandbox_kubeconfig: str, rig: Rig
) -> None:
    cluster = FailingRelists(sandbox_kubeconfig, name="faulty")
    watches = WatchManager(cluster, backoff_base=0.05, backoff_cap=0.5)
    watches.add_listener(rig.rec)
    rig.watches = watches
    try:
        for name in ("same", "gone", "changed"):
            rig.writer.apply(cm(name))
        loop = rig.watch_cms()
        open_gap(rig, loop)
        errors_before = loop.stats.errors
        eventually(lambda: loop.stats.relists == 1, what="relist after 410")
        rig.caught_up(loop)
        assert cluster.list_calls == 5  # the first list, three failed relists, the good one
        assert loop.stats.errors - errors_before == 3
        assert_gap_events(rig)
    finally:
        watches.stop()
        cluster.close()


def test_failures_on_the_first_list_back_off_and_recover(rig: Rig) -> None:
    rig.writer.apply(cm("a"))
    rig.admin("fail?count=3&code=500")
    loop = rig.watches.ensure("v1", "ConfigMap")
    assert rig.watches.wait_synced("v1", "ConfigMap", 10)
    assert loop.stats.errors == 3 and "injected failure" in loop.last_error
    rig.writer.apply(cm("b"))
    eventually(lambda: rig.rec.of("b"), what="b added")
    assert rig.rec.of("a") == ["ADDED"]
    assert loop.thread is not None and loop.thread.is_alive()


def test_429_with_retry_after_recovers(rig: Rig) -> None:
    rig.cluster.discover()
    rig.admin("fail?count=2&code=429")
    loop = rig.watches.ensure("v1", "ConfigMap")
    assert rig.watches.wait_synced("v1", "ConfigMap", 10)
    assert loop.stats.errors == 2


def test_bookmarks_advance_the_rv_so_a_compaction_needs_no_relist(rig: Rig) -> None:
    loop = rig.watch_cms()
    start = int(loop.resource_version)
    for i in range(3):  # other kinds move the global revision
        rig.writer.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"}})
    target = rig.sandbox.store.rv
    assert target > start
    eventually(lambda: int(loop.resource_version) >= target, what="bookmark")
    assert loop.stats.bookmarks >= 1 and loop.stats.received == 0
    rig.admin("compact")
    rig.admin("drop-watches")
    rig.writer.apply(cm("after"))
    eventually(lambda: rig.rec.of("after"), what="after added")
    assert loop.stats.relists == 0 and loop.stats.reconnects >= 1


def test_selector_watch_reports_dropping_out_as_deleted_and_get_confirms_it_exists(rig: Rig) -> None:
    watches = WatchManager(rig.cluster, label_selector="owner=driftdeck", backoff_base=0.05, backoff_cap=0.5)
    rec = Recorder()
    watches.add_listener(rec)
    try:
        rig.writer.apply(cm("mine", labels={"owner": "driftdeck"}))
        watches.ensure("v1", "ConfigMap")
        assert watches.wait_synced("v1", "ConfigMap", 10)
        assert rec.of("mine") == ["ADDED"]
        rig.writer.request(
            "PATCH",
            f"{CM_PATH}/mine",
            [("fieldManager", "kubectl-label")],
            {"metadata": {"labels": {"owner": None}}},
            "application/merge-patch+json",
        )
        eventually(lambda: rec.of("mine") == ["ADDED", "DELETED"], what="dropped out of the selector")
        assert rig.writer.get("v1", "ConfigMap", "default", "mine") is not None  # not missing: confirm by GET
    finally:
        watches.stop()


def test_stop_ends_every_loop_promptly(rig: Rig) -> None:
    for api_version, kind in (("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("v1", "Service")):
        rig.watches.ensure(api_version, kind)
        assert rig.watches.wait_synced(api_version, kind, 10)
    eventually(lambda: rig.sandbox.store.watcher_count() == 3, what="three open watches")
    started = time.monotonic()
    rig.watches.stop()
    assert time.monotonic() - started < 2.0
    assert all(loop.thread is not None and not loop.thread.is_alive() for loop in rig.watches.loops())
    eventually(lambda: rig.sandbox.store.watcher_count() == 0, what="server-side watches closed")
    with pytest.raises(RuntimeError):
        rig.watches.ensure("v1", "Secret")


def test_stop_interrupts_a_backoff(rig: Rig) -> None:
    rig.watches.backoff_base = rig.watches.backoff_cap = 30.0
    rig.cluster.discover()
    rig.admin("fail?count=1&code=500")
    loop = rig.watches.ensure("v1", "ConfigMap")
    eventually(lambda: loop.stats.errors == 1, what="first failure")
    started = time.monotonic()
    rig.watches.stop()
    assert time.monotonic() - started < 2.0
