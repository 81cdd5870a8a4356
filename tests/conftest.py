"""Shared fixtures: a real sandbox apiserver on a free loopback port, per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.server import Options, SandboxServer, write_kubeconfig

KUBECTL = shutil.which("kubectl")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """A running sandbox (fast controller pace) with a kubeconfig in tmp_path."""
    server = SandboxServer(Options(pace=0.05, bookmark_interval=0.5, kubeconfig=str(tmp_path / "kubeconfig")))
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox_kubeconfig(sandbox: SandboxServer) -> str:
    assert sandbox.options.kubeconfig is not None
    return sandbox.options.kubeconfig


@pytest.fixture
def kubectl(sandbox_kubeconfig: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run kubectl against the sandbox; skips when kubectl is not installed."""
    import subprocess

    if KUBECTL is None:
        pytest.skip("kubectl not installed: Debian's kubectl package provides 1.32; `make test` installs it")
    env = dict(os.environ, KUBECONFIG=sandbox_kubeconfig, HOME=str(tmp_path), KUBECACHEDIR=str(tmp_path / "kcache"))

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [KUBECTL, *args], input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    run.env = env  # type: ignore[attr-defined]
    return run


__all__ = ["FIXTURES", "KUBECTL", "SHARED", "write_kubeconfig"]
