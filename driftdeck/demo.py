"""``driftdeck demo``: the sandbox, a demo workspace, the reconciliation and pipeline loops
and the console on them (``--headless``, or stdout not a terminal: the event stream printed).

The workspace holds two real git repositories and a ``driftdeck.yaml``:

* ``config-repo``: three apps. ``web`` (auto sync, self-heal, prune) becomes Synced and
  Healthy; ``api`` (manual) stays OutOfSync until ``driftdeck sync api``; ``worker`` uses a
  ``fail``-tagged image, so the sandbox rollout ends in ProgressDeadlineExceeded (Degraded).
* ``app-repo``: the source of pipeline ``web`` (build, test, an approval, then a promotion of
  the new image into ``config-repo`` and a sync of ``web``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from core import paths

AUTHOR_NAME = "driftdeck demo"
AUTHOR_EMAIL = "demo@localhost"
MARKER = ".driftdeck-demo"  # --fresh only ever deletes a directory that carries it
CONFIG_FILE = "driftdeck.yaml"
DRIFT_AFTER = 8.0  # seconds after start: a hand edit of web shows drift, then self-heal
_background: set[asyncio.Task[None]] = set()

PIPELINE: dict[str, Any] = {
    "source": "app",
    "trigger": {"branches": ["main"]},
    "stages": [
        {"name": "build", "actions": [
            {"name": "image", "run": 'echo "building web $(cat src/version.txt)" && '
                                     'echo "IMAGE_TAG=web-$(cat src/version.txt)" >> "$DRIFTDECK_OUTPUT"'},
        ]},
        {"name": "test", "actions": [
            {"name": "unit", "run": "test -s src/version.txt && echo tests passed"},
        ]},
        {"name": "release", "actions": [
            {"name": "approve", "approval": {"message": "promote web to the cluster?"}},
        ]},
        {"name": "deploy", "actions": [
            {"name": "promote", "promote": {
                "source": "config", "file": "apps/web/web.yaml",
                "set": {"spec.template.spec.containers[name=web].image": "registry.example.org/web:${REVISION_SHORT}"},
            }},
            {"name": "rollout", "runOrder": 2, "sync": {"app": "web", "timeout": "60s"}},
        ]},
    ],
}


# ----- git and manifests ---------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME=AUTHOR_NAME, GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
               GIT_COMMITTER_NAME=AUTHOR_NAME, GIT_COMMITTER_EMAIL=AUTHOR_EMAIL)
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def _init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "commit.gpgsign", "false")
    return path


def _commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _write_docs(path: Path, docs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _deployment(name: str, namespace: str, image: str, replicas: int = 1) -> dict[str, Any]:
    container = {"name": name, "image": image, "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "0.1", "memory": "64Mi"}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


def _service(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def _configmap(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


# ----- workspace ------------------------------------------------------------------------------------------


def default_dir() -> Path:
    return paths.state_dir() / "demo"


def create_workspace(root: Path, kubeconfig: str) -> Path:
    """Create the demo workspace under ``root`` (or reuse the one there); returns its driftdeck.yaml."""
    root = root.resolve()
    config_path = root / CONFIG_FILE
    if config_path.exists() and (root / "config-repo" / ".git").is_dir() and (root / "app-repo" / ".git").is_dir():
        return config_path
    if root.exists() and any(p.name != MARKER for p in root.iterdir()) and not (root / MARKER).exists():
        raise ValueError(f"{root} is not empty and not a driftdeck demo workspace")
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("created by `driftdeck demo`; `driftdeck demo --fresh` recreates this directory\n")

    cfg = _init_repo(root / "config-repo")
    _write_docs(cfg / "apps" / "web" / "web.yaml", [
        _namespace("web"),
        _configmap("web-settings", "web", {"GREETING": "hello from driftdeck"}),
        _deployment("web", "web", "nginx:1.27", replicas=2),
        _service("web", "web"),
    ])
    _write_docs(cfg / "apps" / "api" / "api.yaml", [
        _namespace("api"), _deployment("api", "api", "api:1.0"), _service("api", "api"),
    ])
    _write_docs(cfg / "apps" / "worker" / "worker.yaml", [
        _namespace("worker"), _deployment("worker", "worker", "registry.example.org/worker:fail"),
    ])
    _commit(cfg, "demo: web, api and worker")

    app = _init_repo(root / "app-repo")
    (app / "src").mkdir(exist_ok=True)
    (app / "src" / "version.txt").write_text("1\n")
    _commit(app, "web v1")

    app_common = {"source": "config", "cluster": "local", "prune": True, "timeout": 30}
    config = {
        "clusters": {"local": {"kubeconfig": kubeconfig}},
        "sources": {"config": {"path": "./config-repo", "branch": "main"},
                    "app": {"path": "./app-repo", "branch": "main"}},
        "apps": {
            "web": {**app_common, "path": "apps/web", "namespace": "web", "sync": "auto", "selfHeal": True},
            "api": {**app_common, "path": "apps/api", "namespace": "api", "sync": "manual"},
            "worker": {**app_common, "path": "apps/worker", "namespace": "worker", "sync": "auto"},
        },
        "pipelines": {"web": PIPELINE},
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


def remove_workspace(root: Path) -> None:
    """``--fresh``: delete a previous demo workspace (only one this module created)."""
    if not root.exists():
        return
    if not (root / MARKER).exists():
        raise ValueError(f"{root} is not a driftdeck demo workspace; not deleting it")
    shutil.rmtree(root)


def bump_app(root: Path) -> str:
    """One commit to the app repository, so pipeline ``web`` runs."""
    app = root / "app-repo"
    version_file = app / "src" / "version.txt"
    try:
        version = int(version_file.read_text().strip() or "1") + 1
    except ValueError:
        version = 2
    version_file.write_text(f"{version}\n")
    return _commit(app, f"web v{version}")


# ----- run --------------------------------------------------------------------------------------------------


def _banner(root: Path, config_path: Path, kubeconfig: str, url: str, console: bool = False) -> None:
    c = str(config_path)
    if console:
        print(f"driftdeck demo stopped. The workspace stays in {root}; "
              f"`driftdeck -c {c}` reopens the console (the sandbox stops with the demo).")
        return
    lines = [
        "driftdeck demo: the sandbox cluster, a demo workspace and the reconciliation + pipeline loops",
        f"  sandbox:    {url}",
        f"  workspace:  {root}",
        f"  export KUBECONFIG={kubeconfig}",
        "try, from another shell:",
        f"  driftdeck status -c {c}",
        f"  driftdeck sync api -c {c}              # api is manual: OutOfSync until synced",
        '  kubectl -n web patch deploy web --type json -p \'[{"op":"replace","path":"/spec/replicas","value":5}]\''
        "   # drift: web self-heals",
        "  driftdeck runs web                     # the pipeline run a commit started",
        "  driftdeck approve RUN release.approve  # promote the new image into config-repo and sync web",
        "Ctrl-C stops the demo. Events:",
    ]
    print("\n".join(lines), flush=True)


async def _loop(config_path: Path, root: Path, exit_after: float | None) -> int:
    from core.config import load_config
    from core.engine import Engine
    from core.events import ApprovalRequested
    from core.pipelines.service import PipelineService
    from driftdeck.commands.reconcile import _format_event, who

    config, problems = load_config(str(config_path))
    for p in problems:
        print(f"driftdeck: {p}", file=sys.stderr)
    if not config.apps:
        return 2
    engine = Engine(config, who=who())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    sub = engine.bus.subscribe()

    async def printer() -> None:
        async for ev in sub:
            print(_format_event(ev), flush=True)
            if isinstance(ev, ApprovalRequested):
                print(f"  -> driftdeck approve {ev.run_id} {ev.stage}.{ev.action}", flush=True)

    task = asyncio.create_task(printer())
    pipelines: PipelineService | None = None
    try:
        await engine.start()
        pipelines = PipelineService(engine, engine.config)
        for problem in pipelines.problems:
            print(f"driftdeck: {problem}", file=sys.stderr)
        await pipelines.start()
        sha = await asyncio.to_thread(bump_app, root)
        print(f"demo: committed {sha[:7]} to app-repo; pipeline web starts", flush=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), exit_after)
    finally:
        if pipelines is not None:
            await pipelines.stop()
        await engine.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    print("driftdeck demo: stopped", flush=True)
    return 0


def foreign_edit(kubeconfig: str) -> None:
    """What the demo does to show drift: someone scales web by hand (web self-heals)."""
    from kubernetes import client, config

    api = client.AppsV1Api(config.new_client_from_config(config_file=kubeconfig))
    api.patch_namespaced_deployment("web", "web", {"spec": {"replicas": 5}}, field_manager="kubectl-scale")


async def _console(config_path: Path, root: Path, args: argparse.Namespace, url: str) -> int:
    from driftdeck.console import app_options, run_console

    async def drift_later() -> None:
        await asyncio.sleep(DRIFT_AFTER)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(foreign_edit, str(root / "kubeconfig"))

    async def after_start() -> None:
        await asyncio.to_thread(bump_app, root)  # a commit to app-repo: pipeline web starts
        task = asyncio.get_running_loop().create_task(drift_later())
        _background.add(task)
        task.add_done_callback(_background.discard)

    options = app_options(args)
    return await run_console(str(config_path), options, after_start=after_start, cluster_label="sandbox",
                             exit_after=args.exit_after)


def run_demo(args: argparse.Namespace) -> int:
    from sandbox.server import Options, SandboxServer

    root = (Path(args.dir) if args.dir else default_dir()).expanduser().resolve()
    kubeconfig = str(root / "kubeconfig")
    try:
        if args.fresh:
            remove_workspace(root)
        config_path = create_workspace(root, kubeconfig)
    except (ValueError, OSError, subprocess.CalledProcessError) as exc:
        print(f"driftdeck demo: cannot prepare the workspace: {exc}", file=sys.stderr)
        return 2
    try:
        server = SandboxServer(Options(host="127.0.0.1", port=args.port, pace=args.pace, kubeconfig=kubeconfig))
        server.start_in_thread()
    except Exception as exc:
        print(f"driftdeck demo: cannot start the sandbox: {exc}", file=sys.stderr)
        return 2
    headless = getattr(args, "headless", False) or not sys.stdout.isatty()
    try:
        if not headless:
            code = asyncio.run(_console(config_path, root, args, server.url))
            _banner(root, config_path, kubeconfig, server.url, console=True)
            return code
        _banner(root, config_path, kubeconfig, server.url)
        return asyncio.run(_loop(config_path, root, args.exit_after))
    finally:
        server.stop()
