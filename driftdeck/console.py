"""``driftdeck tui`` (and plain ``driftdeck``): the console, attached to a running daemon
(``--connect``, ``$DRIFTDECK_SOCKET`` or the default socket) or on an in-process engine.

The engine and the pipeline service run in the console's own event loop; the first paint
does not wait for them: apps show from the config at once and fill in as the initial
reconcile reports. Logging goes to a file (a terminal UI owns stdout/stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from core import paths
from core.daemon.protocol import RemoteError
from core.daemon.remote import Address, daemon_available, default_socket
from driftdeck.attach import SYSTEM_SOCKET, add_connect_options, daemon_address

EXIT_OK, EXIT_ERROR = 0, 2


def keymap_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "driftdeck" / "keymap.yaml"


def load_keymap(path: Path | None) -> tuple[dict[str, str], list[str]]:
    """``{binding id: keys}`` from a YAML mapping; problems name the file and the entry."""
    explicit = path is not None
    path = path or keymap_path()
    if not path.exists():
        return {}, [f"{path}: no such keymap file"] if explicit else []
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        return {}, [f"{path}: cannot read the keymap: {exc}"]
    if not isinstance(data, dict):
        return {}, [f"{path}: expected a mapping of binding id to keys, got {type(data).__name__}"]
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            problems.append(f"{path}: entry {key!r}: expected `binding-id: keys` (e.g. `sync: ctrl+s`)")
            continue
        keymap[key] = value.strip()
    return keymap, problems


def _log_to_file() -> Path:
    log_path = paths.state_dir() / "console.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return log_path


def app_options(args: argparse.Namespace) -> dict[str, Any]:
    keymap, problems = load_keymap(Path(args.keymap) if args.keymap else None)
    for p in problems:
        print(f"driftdeck: {p}", file=sys.stderr)
    return {
        "read_only": bool(args.read_only),
        "theme": args.theme,
        "refresh_hz": args.refresh,
        "keymap": keymap,
    }


async def run_console(
    config_path: str,
    options: dict[str, Any],
    *,
    after_start: Callable[[], Awaitable[None]] | None = None,
    cluster_label: str | None = None,
    exit_after: float | None = None,
) -> int:
    """Load ``config_path``, start the engine and pipelines in this loop and run the console."""
    from core.client import LocalClient
    from core.config import load_config
    from core.engine import Engine
    from core.pipelines.service import PipelineService
    from driftdeck.commands.reconcile import who
    from tui.app import DriftdeckApp

    config, problems = load_config(config_path)
    if not config.apps and not config.pipelines:
        for p in problems:
            print(f"driftdeck: {p}", file=sys.stderr)
        print(f"driftdeck: {config_path}: nothing to show (no apps, no pipelines)", file=sys.stderr)
        return EXIT_ERROR
    log_path = _log_to_file()
    user = who()
    engine = Engine(config, who=user)
    service = PipelineService(engine, engine.config)
    client = LocalClient(engine, user, service)
    label = cluster_label or ", ".join(sorted(config.clusters)) or "local"
    notices = [str(p) for p in [*problems, *service.problems]]
    app = DriftdeckApp(client, cluster=label, mode="in-process", notices=notices, freeze_gc=True, **options)

    async def start() -> None:
        try:
            await engine.start()
            # Runs a crash left open are marked interrupted here, unless a daemon (which owns
            # them and recovers them itself) is running next to this in-process console.
            await service.start(recover=not any(daemon_available(p) for p in (default_socket(), SYSTEM_SOCKET)))
            if after_start is not None:
                await after_start()
            if exit_after:
                await asyncio.sleep(exit_after)
                app.exit()
        except Exception as exc:  # the console stays up and says what failed
            logging.getLogger("driftdeck.console").exception("start failed")
            app.notify(f"start failed: {exc} (details in {log_path})", severity="error", timeout=15)

    starter = asyncio.create_task(start(), name="engine start")
    try:
        await app.run_async()
    finally:
        starter.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starter
        await service.stop()
        await engine.stop()
    return EXIT_OK


async def run_attached(address: Address, options: dict[str, Any]) -> int:
    """The console on a running daemon: read-only when the daemon says this user is a viewer."""
    from core.daemon.remote import RemoteClient
    from tui.app import DriftdeckApp

    client = RemoteClient(address)
    try:
        await client.connect()
    except (OSError, RemoteError, TimeoutError) as exc:
        print(f"driftdeck: cannot attach to the daemon at {address}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _log_to_file()
    role = str(client.identity.get("role", ""))
    notices = []
    if role == "viewer" and not options.get("read_only"):
        notices.append(f"{client.identity.get('user')} is a viewer on this daemon: operator actions are disabled")
    opts = {**options, "read_only": bool(options.get("read_only")) or role != "operator"}
    app = DriftdeckApp(client, cluster="daemon", mode=f"attached {address}", notices=notices, freeze_gc=True,
                       **opts)
    try:
        await app.run_async()
    finally:
        await client.close()
    return EXIT_OK


def run_tui(args: argparse.Namespace) -> int:
    try:
        address = daemon_address(args)
    except OSError as exc:
        print(f"driftdeck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if address is not None:
        return asyncio.run(run_attached(address, app_options(args)))
    config = args.config
    if not Path(config).exists():
        print(f"driftdeck: {config}: no such file (driftdeck demo shows a sample workspace; "
              "docs/configuration.md describes the file)", file=sys.stderr)
        return EXIT_ERROR
    return asyncio.run(run_console(config, app_options(args)))


def add_console_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--read-only", action="store_true", help="disable every operator action (visibly)")
    p.add_argument("--theme", choices=["driftdeck-dark", "driftdeck-light", "driftdeck-256"],
                   help="colour theme (default driftdeck-dark; NO_COLOR is respected)")
    p.add_argument("--refresh", type=float, metavar="HZ",
                   help="screen updates per second (default 20, or 2 when SSH_CONNECTION is set)")
    p.add_argument("--keymap", help=f"keymap file (default {keymap_path()})")


def register(sub: Any) -> None:
    p = sub.add_parser("tui", help="the console (the default verb)")
    p.add_argument("-c", "--config", default="driftdeck.yaml", help="configuration file (default ./driftdeck.yaml)")
    add_console_options(p)
    add_connect_options(p)
    p.set_defaults(func=run_tui)
