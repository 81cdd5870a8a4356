"""Finding and attaching to a running daemon (the CLI verbs and ``driftdeck tui`` use it when one runs)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.daemon.protocol import RemoteError
from core.daemon.remote import Address, RemoteClient, daemon_available, default_socket

SYSTEM_SOCKET = "/run/driftdeck/daemon.sock"  # deploy/systemd/driftdeck.service


def add_connect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect", metavar="SOCKET|tcp://HOST:PORT",
                   help=f"use this daemon (default: {default_socket()} when a daemon answers there)")
    p.add_argument("--token-file", help="token for a tcp:// daemon (first word of the file)")
    p.add_argument("--no-daemon", action="store_true", help="run in this process even when a daemon runs")


def daemon_address(args: argparse.Namespace) -> Address | None:
    """The daemon to use: ``--connect``, ``$DRIFTDECK_SOCKET``, or the default socket when one answers."""
    if getattr(args, "no_daemon", False):
        return None
    token = ""
    token_file = getattr(args, "token_file", None)
    if token_file:
        words = Path(token_file).read_text().split()
        token = words[0] if words else ""
    explicit = getattr(args, "connect", None) or os.environ.get("DRIFTDECK_SOCKET")
    if explicit:
        return Address.parse(explicit, token)
    for path in (default_socket(), SYSTEM_SOCKET):  # the user's daemon, then the systemd unit's
        if daemon_available(path):
            return Address(path=path)
    return None


def say(message: str) -> None:
    print(f"driftdeck: {message}", file=sys.stderr)


def run_on_daemon(args: argparse.Namespace, body: Callable[[RemoteClient], Awaitable[int]]) -> int | None:
    """Run ``body`` on the daemon when one is used (see :func:`driftdeck.attach.daemon_address`);
    None means: no daemon, run in-process."""
    try:
        address = daemon_address(args)
    except OSError as exc:
        print(f"driftdeck: {exc}", file=sys.stderr)
        return 2
    if address is None:
        return None

    async def main() -> int:
        client = RemoteClient(address)
        try:
            await client.connect()
        except (OSError, RemoteError, TimeoutError) as exc:
            print(f"driftdeck: cannot attach to the daemon at {address}: {exc}", file=sys.stderr)
            return 2
        try:
            return await body(client)
        except RemoteError as exc:
            print(f"driftdeck: {exc}", file=sys.stderr)
            return 2
        finally:
            await client.close()

    return asyncio.run(main())
