"""A real ``driftdeck daemon`` subprocess on a workspace of real git repositories and the sandbox."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.integration.gitrepo import commit, deployment, init_repo, namespace, write_docs

ROOT = Path(__file__).resolve().parents[2]


def workspace(tmp: Path, kubeconfig: str, extra_pipelines: dict[str, Any] | None = None,
              ns: str = "dd-web") -> Path:
    """Config repo (app web, manual, in namespace ``ns``), app repo, and driftdeck.yaml with
    pipelines ``slow`` (waits until ``tmp/marker`` exists, at most 60 s) and ``ship`` (build,
    then an approval ``gate``)."""
    cfg = init_repo(tmp / "config-repo")
    write_docs(cfg / "apps" / "web" / "web.yaml", [namespace(ns), deployment("web", ns, "nginx:1.27")])
    commit(cfg, "web")
    app = init_repo(tmp / "app-repo")
    (app / "README").write_text("app\n")
    commit(app, "app v1")
    marker = tmp / "marker"
    pipelines: dict[str, Any] = {
        "slow": {"source": "app", "trigger": {"manual": True}, "stages": [
            {"name": "soak", "actions": [{"name": "wait", "run": [
                "/bin/sh", "-c", f'echo soaking; test -f "{marker}" || sleep 60; echo done']}]},
        ]},
        "ship": {"source": "app", "trigger": {"manual": True}, "stages": [
            {"name": "build", "actions": [{"name": "compile", "run": "echo compiling && echo built"}]},
            {"name": "release", "actions": [{"name": "gate", "approval": {"message": "ship?"}}]},
        ]},
        **(extra_pipelines or {}),
    }
    config = {
        "clusters": {"local": {"kubeconfig": kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"},
                    "app": {"path": "./app-repo", "branch": "main"}},
        "apps": {"web": {"source": "config", "path": "apps/web", "cluster": "local", "namespace": ns,
                         "sync": "manual", "prune": True, "timeout": 30}},
        "pipelines": pipelines,
    }
    (tmp / "driftdeck.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp / "driftdeck.yaml"


@dataclass
class Daemon:
    config: Path
    socket: str
    state: Path
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    log: Path | None = None

    def env(self) -> dict[str, str]:
        return dict(os.environ, XDG_STATE_HOME=str(self.state / "state"), XDG_CACHE_HOME=str(self.state / "cache"),
                    XDG_CONFIG_HOME=str(self.state / "config"))

    def start(self, wait: bool = True) -> Daemon:
        self.log = self.state / f"daemon-{time.time():.0f}-{os.getpid()}.log"
        cmd = [sys.executable, "-m", "driftdeck", "daemon", "-c", str(self.config), "--socket", self.socket,
               "--history-db", str(self.state / "history.db"), "--runs-db", str(self.state / "runs.db"),
               "--log-format", "json", *self.args]
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), env=self.env(), stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"), text=True)  # noqa: SIM115
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.logs()}")
            if "daemon ready" in self.logs():
                return
            time.sleep(0.1)
        raise AssertionError(f"daemon not ready: {self.logs()}")

    def logs(self) -> str:
        return self.log.read_text() if self.log and self.log.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line})
        return out

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


@contextmanager
def running_daemon(config: Path, sock_dir: Path, state: Path, *args: str) -> Iterator[Daemon]:
    d = Daemon(config, str(sock_dir / "d.sock"), state, list(args)).start()
    try:
        yield d
    finally:
        d.stop()


class RawClient:
    """The wire protocol by hand (a stalled reader, another user, a bad token)."""

    def __init__(self, path: str | None = None, tcp: tuple[str, int] | None = None) -> None:
        if tcp is not None:
            self.sock = socket.create_connection(tcp, timeout=10)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            assert path is not None
            self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.n = 0

    def send(self, op: str, **args: Any) -> int:
        self.n += 1
        self.file.write(json.dumps({"id": self.n, "op": op, "args": args}).encode() + b"\n")
        self.file.flush()
        return self.n

    def reply(self, rid: int) -> dict[str, Any]:
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("closed")
            msg: dict[str, Any] = json.loads(line)
            if msg.get("id") == rid:
                return msg

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        return self.reply(self.send(op, **args))

    def close(self) -> None:
        self.sock.close()
