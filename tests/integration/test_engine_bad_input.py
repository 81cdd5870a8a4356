"""Bad input, end to end: one healthy app next to one broken app per kind of bad input.

Every broken app gets a clear error (``rt.problems`` and an ``AppError`` event) that names
the file and line where that applies, the object, and what is wrong. Nothing of a broken
app is applied, and an app that was synced before and then receives a broken commit has
nothing pruned. Meanwhile the healthy app ``good`` reaches Synced/Healthy and keeps
reconciling new commits. Real git repositories, the sandbox over HTTP, real SQLite history.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from core.engine import Engine
from core.events import AppError, Event
from core.history import History
from core.inventory import Inventory
from core.model import Health, Problem, SyncStatus
from core.render import MAX_ALIAS_EXPANSION
from sandbox.server import SandboxServer, write_kubeconfig
from tests.integration.clients import wait_for_blocking as wait_for
from tests.integration.gitrepo import commit, deployment, init_repo, namespace, write_docs

BIG_FILE_SIZE = 50 * 1024 * 1024
NS = "default"  # the broken apps' objects live here; the sandbox serves it from the start

# Apps whose whole source path is broken in some way (all read from the shared repository).
FILE_CASES = ("malformed", "nokind", "noname", "unknownkind", "symlink", "bomb", "big")


# ----- helpers ---------------------------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def cm(name: str, value: str = "1", *, kind: bool = True, named: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": NS}
    if named:
        meta = {"name": name, **meta}
    obj: dict[str, Any] = {"apiVersion": "v1"}
    if kind:
        obj["kind"] = "ConfigMap"
    obj["metadata"] = meta
    obj["data"] = {"v": value}
    return obj


def dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def alias_bomb() -> str:
    """Billion laughs: nine levels of nine aliases, a few hundred bytes, 9**9 nodes expanded."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: lol", "data:"]
    lines.append('  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    for i in range(1, 9):
        ref = f"*a{i - 1}"
        lines.append(f"  a{i}: &a{i} [{','.join([ref] * 9)}]")
    return "\n".join(lines) + "\n"


def write_big(path: Path, size: int = BIG_FILE_SIZE) -> None:
    """A ``size``-byte YAML file, written quickly: a real first document, then a sparse tail.

    The tail is NUL bytes (a sparse hole on disk, cheap for git to hash and compress); a
    parser that tried to read the file would choke on them, so "not parsed" is observable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    head = dump(cm("big-victim")).encode()
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)


def broken_content(case: str, app_dir: Path) -> None:
    """Put the broken file(s) of ``case`` into ``app_dir`` (replacing ``victim.yaml`` where it applies)."""
    victim = app_dir / "victim.yaml"
    if case == "malformed":
        # Line 5 is indented less than its siblings: a YAML syntax error.
        victim.write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: malformed-victim\n namespace: default\ndata: {}\n"
        )
    elif case == "nokind":
        # The second document (line 6) has no kind.
        victim.write_text(dump(cm("nokind-extra")) + "---\n" + dump(cm("nokind-victim", kind=False)))
    elif case == "noname":
        victim.write_text("# a ConfigMap without a name\n" + dump(cm("noname-victim", named=False)))
    elif case == "unknownkind":
        victim.write_text(
            dump({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "unknownkind-victim"},
                  "spec": {"size": 3}})
        )
    elif case == "symlink":
        victim.unlink(missing_ok=True)
        os.symlink("/etc/passwd", app_dir / "passwd.yaml")
        # Leaves the repository by ".."; the file it names exists and holds a valid object.
        os.symlink("../../../outside.yaml", app_dir / "outside.yaml")
    elif case == "bomb":
        victim.write_text(alias_bomb())
    elif case == "big":
        victim.unlink(missing_ok=True)
        write_big(app_dir / "victim.yaml")
    else:  # pragma: no cover - a typo in the test
        raise AssertionError(case)


@dataclass(frozen=True)
class Expect:
    """What the error of one broken app must say."""

    file: str  # repo-relative path the problem points at
    line: int  # 0: no line applies (a whole file or a link)
    obj: str  # "" when the object cannot be known (a syntax error)
    words: tuple[str, ...]  # what is wrong, as substrings of the message


EXPECT: dict[str, Expect] = {
    "malformed": Expect("apps/malformed/victim.yaml", 5, "", ("YAML syntax error",)),
    "nokind": Expect("apps/nokind/victim.yaml", 9, "<no kind>/nokind-victim", ("missing kind",)),
    "noname": Expect("apps/noname/victim.yaml", 2, "ConfigMap/<no name>", ("missing metadata.name",)),
    "unknownkind": Expect("apps/unknownkind/victim.yaml", 1, "Widget/unknownkind-victim",
                          ("unknown kind Widget", "example.com/v1")),
    "symlink": Expect("apps/symlink/passwd.yaml", 0, "", ("symlink -> /etc/passwd", "leaves the repository",
                                                           "not followed")),
    "bomb": Expect("apps/bomb/victim.yaml", 0, "", ("alias bomb", str(MAX_ALIAS_EXPANSION))),
    "big": Expect("apps/big/victim.yaml", 0, "", (f"{BIG_FILE_SIZE} bytes", "not parsed")),
}


def matching(problems: list[Problem], exp: Expect) -> list[Problem]:
    out = []
    for p in problems:
        if p.location is None or p.location.file != exp.file:
            continue
        if exp.line and p.location.line != exp.line:
            continue
        if exp.obj and p.obj != exp.obj:
            continue
        if all(w in p.message for w in exp.words):
            out.append(p)
    return out


def app_errors(events: list[Event], app: str) -> list[str]:
    return [e.message for e in events if isinstance(e, AppError) and e.app == app]


class Kube:
    """Reads of the sandbox through kubectl."""

    def __init__(self, kubectl: Any) -> None:
        self.kubectl = kubectl

    def cm(self, name: str) -> dict[str, Any] | None:
        return self.cm_in(NS, name)

    def cm_in(self, ns: str, name: str) -> dict[str, Any] | None:
        proc = self.kubectl("-n", ns, "get", "configmap", name, "-o", "json", check=False)
        if proc.returncode != 0:
            assert "NotFound" in proc.stderr, proc.stderr
            return None
        obj: dict[str, Any] = json.loads(proc.stdout)
        return obj

    def names(self, kind: str, ns: str = NS) -> set[str]:
        out = self.kubectl("-n", ns, "get", kind, "-o", "json").stdout
        return {i["metadata"]["name"] for i in json.loads(out)["items"]}

    def image(self, ns: str, name: str) -> str:
        live = json.loads(self.kubectl("-n", ns, "get", "deploy", name, "-o", "json").stdout)
        image: str = live["spec"]["template"]["spec"]["containers"][0]["image"]
        return image


# ----- the workspace -----------------------------------------------------------------------------------------


def good_docs(image: str, value: str) -> list[dict[str, Any]]:
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good-cfg", "namespace": "good"},
           "data": {"v": value}}
    return [namespace("good"), deployment("good", "good", image, 1), cfg]


def app(path: str, *, cluster: str = "local", source: str = "config", ns: str = NS) -> dict[str, Any]:
    return {"source": source, "path": path, "cluster": cluster, "namespace": ns, "sync": "auto",
            "prune": True, "timeout": 30}


def write_config(tmp: Path, kubeconfig: str, apps: dict[str, dict[str, Any]], *, dead: bool = False) -> Path:
    clusters: dict[str, Any] = {"local": {"kubeconfig": kubeconfig}}
    sources: dict[str, Any] = {"config": {"path": "./config-repo", "branch": "main"}}
    if dead:
        dead_kubeconfig = tmp / "dead-kubeconfig"
        write_kubeconfig(str(dead_kubeconfig), f"http://127.0.0.1:{closed_port()}")
        clusters["dead"] = {"kubeconfig": str(dead_kubeconfig)}
        sources["nobranch"] = {"path": "./config-repo", "branch": "nope"}
    config = {"clusters": clusters, "sources": sources, "apps": apps}
    path = tmp / "driftdeck.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def make_engine(cfg_path: Path, tmp: Path) -> Engine:
    config, problems = load_config(str(cfg_path))
    assert problems == [], problems
    db = tmp / "history.db"
    return Engine(config, history=History(db), inventory=Inventory(db), cache_dir=tmp / "cache", who="tester")


@pytest.fixture
async def stopper() -> AsyncIterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for eng in engines:
        await eng.stop()


def collect(engine: Engine) -> list[Event]:
    seen: list[Event] = []
    engine.bus.on(seen.append)
    return seen


async def good_reconciles(engine: Engine, repo: Path, kube: Kube) -> None:
    """``good`` is Synced/Healthy, and a new commit for it is applied (its source watch still runs)."""
    good = engine.apps["good"]
    await wait_for(lambda: good.sync_status == SyncStatus.SYNCED and good.health == Health.HEALTHY,
                   what="good Synced and Healthy")
    assert not good.problems, good.problems
    write_docs(repo / "apps" / "good" / "good.yaml", good_docs("nginx:1.28", "2"))
    sha = commit(repo, "good: nginx 1.28, v2")
    await wait_for(lambda: good.revision is not None and good.revision.sha == sha, what="good at the new commit")
    await wait_for(lambda: kube.image("good", "good") == "nginx:1.28", what="good's new image applied")
    assert (kube.cm_in("good", "good-cfg") or {}).get("data") == {"v": "2"}
    await wait_for(lambda: good.sync_status == SyncStatus.SYNCED and good.health == Health.HEALTHY,
                   what="good Synced and Healthy again")


# ----- tests -------------------------------------------------------------------------------------------------


async def test_broken_apps_from_the_start_are_reported_and_never_applied(
    sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path, stopper: list[Engine]
) -> None:
    kube = Kube(kubectl)
    repo = init_repo(tmp_path / "config-repo")
    (tmp_path / "outside.yaml").write_text(dump(cm("leaked")))
    write_docs(repo / "apps" / "good" / "good.yaml", good_docs("nginx:1.27", "1"))
    for case in FILE_CASES:
        app_dir = repo / "apps" / case
        write_docs(app_dir / "keep.yaml", cm(f"{case}-keep"))
        broken_content(case, app_dir)
    # The same object in two apps: dup-a (first in order) owns it, dup-b claims it too.
    write_docs(repo / "apps" / "dup-a" / "shared.yaml", cm("shared", "from-a"))
    write_docs(repo / "apps" / "dup-b" / "shared.yaml", [cm("dup-b-keep"), cm("shared", "from-b")])
    write_docs(repo / "apps" / "offline" / "offline.yaml", cm("offline-keep"))
    write_docs(repo / "apps" / "lost" / "lost.yaml", cm("lost-keep"))
    commit(repo, "good, and a broken app per kind of bad input")

    apps = {"good": app("apps/good", ns="good")}
    apps.update({case: app(f"apps/{case}") for case in FILE_CASES})
    apps.update({"dup-a": app("apps/dup-a"), "dup-b": app("apps/dup-b"),
                 "offline": app("apps/offline", cluster="dead"), "lost": app("apps/lost", source="nobranch")})
    engine = make_engine(write_config(tmp_path, sandbox_kubeconfig, apps, dead=True), tmp_path)
    stopper.append(engine)
    events = collect(engine)
    await engine.start()

    # The file cases: a problem naming file(:line), object and what is wrong; an AppError saying so.
    wrong: list[str] = []
    for case in FILE_CASES:
        rt = engine.apps[case]
        exp = EXPECT[case]
        found = matching(rt.problems, exp)
        errors = app_errors(events, case)
        if not found:
            wrong.append(f"{case}: no problem like {exp} in {[str(p) for p in rt.problems]}")
        elif not any(str(found[0]) in m for m in errors):
            wrong.append(f"{case}: no AppError with {found[0]}: {errors}")
        elif rt.sync_status == SyncStatus.SYNCED:
            wrong.append(f"{case}: Synced despite {found[0]}")
    assert not wrong, "\n".join(wrong)
    # A link is reported, not followed: neither /etc/passwd nor the file outside the repository was read.
    symlink_problems = [str(p) for p in engine.apps["symlink"].problems]
    assert len(symlink_problems) == 2, symlink_problems
    assert any("apps/symlink/outside.yaml" in p and "symlink -> ../../../outside.yaml leaves the repository" in p
               for p in symlink_problems), symlink_problems
    # The 50 MB file is reported as too big, not parsed (its NUL bytes would be a UTF-8/YAML error otherwise).
    assert [str(p) for p in engine.apps["big"].problems] == [str(matching(engine.apps["big"].problems, EXPECT["big"])[0])]

    # The same object in two apps: the second one to claim it gets the error.
    assert not engine.apps["dup-a"].problems, engine.apps["dup-a"].problems
    dup = [p for p in engine.apps["dup-b"].problems if "also managed by app 'dup-a'" in p.message]
    assert dup and dup[0].obj == "ConfigMap/default/shared", engine.apps["dup-b"].problems
    assert dup[0].location is not None and str(dup[0].location) == "apps/dup-b/shared.yaml:9"
    assert any(str(dup[0]) in m for m in app_errors(events, "dup-b"))

    # The unreachable cluster: the error names the cluster and its URL.
    dead_url = engine.cluster("dead").url
    offline = engine.apps["offline"]
    assert any("cluster dead" in m and dead_url in m and "unreachable" in m for m in app_errors(events, "offline")), \
        app_errors(events, "offline")
    assert any("cluster dead" in str(p) and dead_url in str(p) for p in offline.problems), offline.problems

    # The missing branch: the error names the source and the branch.
    lost = engine.apps["lost"]
    assert any("source 'nobranch'" in m and "branch 'nope' not found" in m for m in app_errors(events, "lost")), \
        app_errors(events, "lost")
    assert any("branch 'nope' not found" in str(p) for p in lost.problems), lost.problems

    # Nothing of any broken app was applied; dup-a's object carries dup-a's data.
    present = kube.names("configmap")
    never = {f"{case}-keep" for case in FILE_CASES} | {"dup-b-keep", "offline-keep", "lost-keep", "leaked",
                                                       "big-victim", "nokind-extra", "lol"}
    assert not present & never, present & never
    assert (kube.cm("shared") or {}).get("data") == {"v": "from-a"}
    assert (kube.cm("shared") or {}).get("metadata", {}).get("labels", {}).get("driftdeck.io/app") == "dup-a"

    # good is Synced/Healthy and keeps reconciling; the broken apps still report their errors.
    await good_reconciles(engine, repo, kube)
    for case in FILE_CASES:
        assert matching(engine.apps[case].problems, EXPECT[case]), engine.apps[case].problems
    assert not kube.names("configmap") & never


async def test_a_broken_commit_to_synced_apps_applies_and_prunes_nothing(
    sandbox: SandboxServer, sandbox_kubeconfig: str, kubectl: Any, tmp_path: Path, stopper: list[Engine]
) -> None:
    kube = Kube(kubectl)
    repo = init_repo(tmp_path / "config-repo")
    (tmp_path / "outside.yaml").write_text(dump(cm("leaked")))
    write_docs(repo / "apps" / "good" / "good.yaml", good_docs("nginx:1.27", "1"))
    broken_apps = [*FILE_CASES, "dup-b"]
    for name in broken_apps:
        write_docs(repo / "apps" / name / "keep.yaml", cm(f"{name}-keep"))
        write_docs(repo / "apps" / name / "victim.yaml", cm(f"{name}-victim"))
    write_docs(repo / "apps" / "dup-a" / "shared.yaml", cm("shared", "from-a"))
    commit(repo, "every app valid")

    apps = {"good": app("apps/good", ns="good"), "dup-a": app("apps/dup-a")}
    apps.update({name: app(f"apps/{name}") for name in broken_apps})
    engine = make_engine(write_config(tmp_path, sandbox_kubeconfig, apps), tmp_path)
    stopper.append(engine)
    events = collect(engine)
    await engine.start()
    for name in engine.apps:
        rt = engine.apps[name]
        await wait_for(lambda rt=rt: rt.sync_status == SyncStatus.SYNCED and rt.health == Health.HEALTHY,  # type: ignore[misc]
                       what=f"{name} Synced and Healthy")
    before = {name: kube.cm(f"{name}-victim") for name in broken_apps}
    assert all(before.values())

    # One commit breaks them all: each keep.yaml changes (must not be applied) and each victim.yaml
    # is replaced by bad input (its object, no longer rendered, must not be pruned).
    for name in broken_apps:
        app_dir = repo / "apps" / name
        write_docs(app_dir / "keep.yaml", cm(f"{name}-keep", "2"))
        if name == "dup-b":
            write_docs(app_dir / "victim.yaml", cm("shared", "from-b"))  # claims dup-a's object
        else:
            broken_content(name, app_dir)
    bad_sha = commit(repo, "break every app but good")
    seen = len(events)

    def reported(name: str) -> bool:
        rt = engine.apps[name]
        if rt.revision is None or rt.revision.sha != bad_sha:
            return False
        if name == "dup-b":
            return any("also managed by app 'dup-a'" in p.message and p.obj == "ConfigMap/default/shared"
                       and str(p.location) == "apps/dup-b/victim.yaml:1" for p in rt.problems)
        return bool(matching(rt.problems, EXPECT[name]))

    def refused(name: str) -> bool:
        """The auto-sync of the broken commit was attempted and refused, naming the problem."""
        problems = [str(p) for p in engine.apps[name].problems]
        return any(m.startswith("not synced: ") and any(p in m for p in problems)
                   for m in app_errors(events[seen:], name))

    for name in broken_apps:
        await wait_for(lambda name=name: reported(name) and refused(name),  # type: ignore[misc]
                       what=f"{name}'s error at the broken commit")
        # A revision that cannot be rendered cannot be compared: Unknown (Argo's ComparisonError), not Synced.
        assert engine.apps[name].sync_status == SyncStatus.UNKNOWN, name

    # Nothing pruned, nothing applied: every victim is still there (ours, unchanged), every keep still "1".
    for name in broken_apps:
        victim = kube.cm(f"{name}-victim")
        assert victim is not None, f"{name}-victim was pruned"
        assert victim["metadata"]["resourceVersion"] == before[name]["metadata"]["resourceVersion"]  # type: ignore[index]
        assert victim["metadata"]["labels"]["driftdeck.io/app"] == name
        assert (kube.cm(f"{name}-keep") or {}).get("data") == {"v": "1"}, f"{name}-keep was applied"
    assert not kube.names("configmap") & {"leaked", "nokind-extra", "lol"}
    assert (kube.cm("shared") or {}).get("data") == {"v": "from-a"}
    assert not [e for e in events[seen:] if e.type == "SyncFinished" and getattr(e, "app", "") in broken_apps]

    await good_reconciles(engine, repo, kube)
    for name in broken_apps:
        assert kube.cm(f"{name}-victim") is not None, f"{name}-victim was pruned later"
        assert (kube.cm(f"{name}-keep") or {}).get("data") == {"v": "1"}
