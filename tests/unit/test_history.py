"""History in a real SQLite file: schema, event mapping, readers, threads, crashes, secrets."""

from __future__ import annotations

import base64
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.events import (
    AppError,
    DriftDetected,
    DriftResolved,
    EventBus,
    HealthChanged,
    RevertCommitted,
    SyncFinished,
    SyncStarted,
)
from core.history import SCHEMA_VERSION, History, HistoryError, default_path
from core.kube import schema
from core.kube.fieldpath import path_string
from core.kube.structured import to_field_set
from core.model import ObjRef

ROOT = Path(__file__).resolve().parents[2]
DEP = ObjRef("apps", "Deployment", "web", "api")
SVC = ObjRef("", "Service", "web", "api")


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "state" / "history.db")


# ----- opening ---------------------------------------------------------------------------------


def test_schema_is_created_in_wal_mode_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "history.db"
    with History(path) as h:
        assert h.schema_version == SCHEMA_VERSION
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"schema_version", "syncs", "drifts", "reverts", "audit"} <= tables
    finally:
        db.close()
    with History(path) as h:  # reopening migrates nothing and keeps one version row
        assert h.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    db.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    History(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="newer"):
        History(path)


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "driftdeck" / "history.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".local" / "state" / "driftdeck" / "history.db"


def test_closed_history_raises(history: History) -> None:
    history.close()
    history.close()
    with pytest.raises(HistoryError, match="closed"):
        history.syncs("web")


# ----- event mapping ---------------------------------------------------------------------------


def test_sync_rows_open_and_close(history: History) -> None:
    history.record(SyncStarted("web", "abc", who="alice@pts/1", ts=10))
    (row,) = history.syncs("web")
    assert row["finished"] is None and row["ok"] is None and history.last_sync("web") is None
    history.record(SyncFinished("web", "abc", ok=True, message="3 applied", duration=2.5, applied=3, pruned=1, ts=12.5))
    (row,) = history.syncs("web")
    assert row == {
        "id": row["id"], "app": "web", "revision": "abc", "started": 10, "finished": 12.5, "ok": True,
        "message": "3 applied", "who": "alice@pts/1", "summary": {"applied": 3, "pruned": 1}, "duration": 2.5,
        "dry_run": False,
    }
    assert history.last_sync("web") == row

    # A finish without a seen start still lands as a complete row.
    history.record(SyncFinished("web", "def", ok=False, message="apply failed", duration=1.0, who="auto", ts=20))
    last = history.last_sync("web")
    assert last is not None and last["revision"] == "def" and last["started"] == 19 and last["ok"] is False
    # Dry runs are history but not "the last sync".
    history.record(SyncStarted("web", "ghi", dry_run=True, ts=30))
    history.record(SyncFinished("web", "ghi", ok=True, ts=31))
    last = history.last_sync("web")
    assert last is not None and last["revision"] == "def"
    assert [s["revision"] for s in history.syncs("web")] == ["ghi", "def", "abc"]
    assert [s["revision"] for s in history.syncs("web", limit=1)] == ["ghi"]
    assert history.syncs("other") == []


def test_interrupted_syncs_are_closed_on_recovery(history: History) -> None:
    history.record(SyncStarted("web", "abc", ts=1))
    history.record(SyncStarted("db", "abc", ts=1))
    history.record(SyncFinished("db", "abc", ok=True, ts=2))
    assert history.mark_interrupted() == 1
    (row,) = history.syncs("web")
    assert row["ok"] is False and row["finished"] is not None and row["message"].startswith("interrupted")
    assert history.mark_interrupted() == 0


def test_drift_episodes(history: History) -> None:
    history.record(DriftDetected("web", DEP, (".spec.replicas",), ("kubectl-edit",), ts=1))
    history.record(DriftDetected("web", DEP, (".spec.template.spec.containers[name=\"api\"].image",), ("helm",), ts=2))
    history.record(DriftDetected("web", SVC, missing=True, ts=3))
    opened = history.open_drifts("web")
    assert [d["object"] for d in opened] == ["Deployment.apps/web/api", "Service/web/api"]
    dep = opened[0]
    assert dep["detected"] == 1 and dep["resolved"] is None
    assert dep["fields"] == ['.spec.replicas', '.spec.template.spec.containers[name="api"].image']
    assert dep["managers"] == ["helm", "kubectl-edit"]
    assert dep["ref"] == {"group": "apps", "kind": "Deployment", "namespace": "web", "name": "api"}
    assert opened[1]["missing"] is True

    history.record(DriftResolved("web", DEP, "self-heal", ts=4))
    history.record(DriftResolved("web", DEP, "sync", ts=5))  # nothing open any more: ignored
    history.record(DriftDetected("web", DEP, (".spec.replicas",), ts=6))  # a new episode
    rows = history.drifts("web")
    assert [(d["object"], d["detected"], d["resolved"], d["how"]) for d in rows] == [
        ("Deployment.apps/web/api", 6, None, None),
        ("Service/web/api", 3, None, None),
        ("Deployment.apps/web/api", 1, 4, "self-heal"),
    ]


def test_reverts_audit_and_merged_app_history(history: History) -> None:
    history.record(SyncStarted("web", "abc", who="alice", ts=10))
    history.record(SyncFinished("web", "abc", ok=True, ts=11))
    history.record(DriftDetected("web", DEP, (".spec.replicas",), ("kubectl",), ts=20))
    history.record(DriftResolved("web", DEP, "reverted-externally", ts=21))
    history.record(RevertCommitted("web", "config", ("abc",), "fff", who="bob", ts=30))
    history.record(RevertCommitted("db", "config", ("x",), "y", ts=31))
    history.add_audit("bob", "revert", target="web", args={"commits": ["abc"]}, result="ok", terminal="ssh:10.0.0.5 pts/2", ts=29)
    history.add_audit("carol", "suspend", target="db", ts=40)
    history.record(HealthChanged("web", "Healthy"))  # type: ignore[arg-type]  # not history: ignored
    history.record(AppError("web", "x"))

    (rev,) = history.reverts("web")
    assert rev == {"id": rev["id"], "app": "web", "source": "config", "reverted": ["abc"], "new_sha": "fff", "who": "bob", "ts": 30}
    audit = history.audit()
    assert [(a["who"], a["action"], a["target"]) for a in audit] == [("carol", "suspend", "db"), ("bob", "revert", "web")]
    assert audit[1]["args"] == {"commits": ["abc"]} and audit[1]["terminal"] == "ssh:10.0.0.5 pts/2"
    assert len(history.audit(limit=1)) == 1

    timeline = history.app_history("web")
    assert [(e["kind"], e["ts"]) for e in timeline] == [("revert", 30), ("audit", 29), ("drift", 20), ("sync", 10)]
    assert timeline[2]["how"] == "reverted-externally"
    assert [e["kind"] for e in history.app_history("web", limit=2)] == ["revert", "audit"]


def test_history_as_a_bus_listener(history: History) -> None:
    bus = EventBus()
    bus.on(history.record)
    bus.publish(SyncStarted("web", "abc"))
    bus.publish(SyncFinished("web", "abc", ok=True))
    last = history.last_sync("web")
    assert last is not None and last["ok"] is True


# ----- concurrency and durability --------------------------------------------------------------


def test_writes_from_many_threads(history: History) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(100):
                history.record(SyncStarted(f"app{n}", str(i)))
                history.record(SyncFinished(f"app{n}", str(i), ok=True))
                if i % 10 == 0:
                    history.syncs(f"app{n}", 5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(8):
        rows = history.syncs(f"app{n}", 1000)
        assert len(rows) == 100 and all(r["ok"] for r in rows)


def test_another_process_sees_committed_rows_while_the_writer_is_open(history: History) -> None:
    history.record(SyncStarted("web", "abc", ts=1))
    history.record(SyncFinished("web", "abc", ok=True, ts=2))
    history.record(DriftDetected("web", DEP, (".spec.replicas",), ts=3))
    script = (
        "import sys\n"
        "from core.history import History\n"
        "h = History(sys.argv[1])\n"
        "print(len(h.syncs('web')), len(h.open_drifts('web')), h.last_sync('web')['ok'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, history.path], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["1", "1", "True"]


WRITER = """
import sys
from core.events import DriftDetected, SyncFinished, SyncStarted
from core.history import History
from core.model import ObjRef

h = History(sys.argv[1])
app = sys.argv[2]
i = 0
while True:
    h.record(SyncStarted(app, str(i), who="writer"))
    h.record(DriftDetected(app, ObjRef("", "ConfigMap", "ns", f"cm-{i}"), (".data.k",)))
    h.record(SyncFinished(app, str(i), ok=True, duration=0.01))
    print(i, flush=True)
    i += 1
"""


def test_kill_9_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    acknowledged: dict[str, int] = {}
    for round_ in range(3):  # each round reopens a database a killed writer left behind
        app = f"app{round_}"
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), app], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        last = -1
        try:
            for line in proc.stdout:
                last = int(line)
                if last >= 150 + 50 * round_:
                    break
        finally:
            proc.kill()  # SIGKILL: no cleanup, possibly mid-transaction
            proc.wait(timeout=30)
        assert proc.returncode == -9
        acknowledged[app] = last

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with History(path) as h:
        for app, last in acknowledged.items():
            rows = {r["revision"]: r for r in h.syncs(app, 100_000)}
            for i in range(last + 1):  # every acknowledged (committed) record is there, complete
                assert rows[str(i)]["ok"] is True, (app, i)
            names = {d["ref"]["name"] for d in h.drifts(app, 100_000)}
            assert {f"cm-{i}" for i in range(last + 1)} <= names
        # A sync the kill cut short (started, never finished) is what recovery closes.
        h.mark_interrupted()
        assert all(r["finished"] is not None for app in acknowledged for r in h.syncs(app, 100_000))


# ----- secrets ---------------------------------------------------------------------------------


def test_secret_values_never_reach_the_database(tmp_path: Path) -> None:
    planted = "hunter2-PLANTED-s3cr3t-value"
    encoded = base64.b64encode(planted.encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db-credentials", "namespace": "web", "labels": {"app": "web"}},
        "type": "Opaque",
        "data": {"password": encoded},
        "stringData": {"token": planted},
    }
    node = schema.for_object("v1", "Secret")
    assert node is not None
    paths = tuple(path_string(p) for p in to_field_set(secret, node).iter_sorted())
    assert ".data.password" in paths and ".stringData.token" in paths
    ref = ObjRef.of(secret)

    path = tmp_path / "history.db"
    h = History(path)
    h.record(SyncStarted("web", "abc", who="alice"))
    h.record(DriftDetected("web", ref, paths, ("kubectl-edit",)))
    h.record(DriftResolved("web", ref, "self-heal"))
    h.record(SyncFinished("web", "abc", ok=False, message=f"apply {ref}: field {paths[0]} is invalid"))
    h.add_audit("alice", "sync", target="web", args={"object": str(ref)}, result="failed")
    h.record(SyncFinished("web", "zzz", ok=True, message="CONTROL-MARKER-42"))  # proves the scan can see text
    stored = h.drifts("web")[0]["fields"]
    assert ".data.password" in stored

    def scan() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("history.db"))

    live = scan()  # with the WAL in use
    h.close()  # checkpoints into the main file
    for blob in (live, scan()):
        assert b"CONTROL-MARKER-42" in blob
        assert b".data.password" in blob
        assert planted.encode() not in blob
        assert encoded.encode() not in blob
