"""``driftdeck daemon``: every loop with no UI, serving the client API on a unix socket."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR = 0, 2


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(fmt: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _address(value: str, flag: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{flag} {value!r}: expected HOST:PORT (e.g. 127.0.0.1:7420)")
    return host or "127.0.0.1", int(port)


def _tokens(path: str | None) -> dict[str, str]:
    """``--token-file``: one token per line, optionally ``TOKEN viewer`` (default role operator)."""
    if not path:
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        role = parts[1] if len(parts) > 1 else "operator"
        if role not in ("operator", "viewer") or len(parts) > 2:
            raise ValueError(f"{path}:{n}: expected `TOKEN [operator|viewer]`")
        out[parts[0]] = role
    return out


def run_daemon(args: argparse.Namespace) -> int:
    from core.daemon.remote import default_socket
    from core.daemon.runtime import DaemonError, DaemonOptions, DaemonRuntime
    from core.daemon.server import ServerOptions

    setup_logging(args.log_format, args.log_level.upper())
    log = logging.getLogger("driftdeck.daemon")
    try:
        listen = _address(args.listen, "--listen") if args.listen else None
        metrics = _address(args.metrics, "--metrics") if args.metrics else None
        tokens = _tokens(args.token_file)
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return EXIT_ERROR
    server = ServerOptions(
        socket_path=args.socket or default_socket(), socket_group=args.socket_group,
        operator_group=args.operator_group, listen=listen, tokens=tokens, allow_remote=args.allow_remote,
        queue_size=args.client_queue,
    )
    options = DaemonOptions(
        config_path=args.config, server=server, metrics_listen=metrics, drain_timeout=args.drain_timeout,
        history_db=Path(args.history_db) if args.history_db else None,
        runs_db=Path(args.runs_db) if args.runs_db else None,
    )

    async def main() -> int:
        try:
            runtime = DaemonRuntime(options)
        except (DaemonError, KeyError) as exc:
            log.error("cannot start: %s", exc)
            return EXIT_ERROR
        try:
            return await runtime.run()
        except (OSError, ValueError) as exc:
            log.error("cannot start: %s", exc)
            return EXIT_ERROR

    return asyncio.run(main())


def register(sub: Any) -> None:
    p = sub.add_parser("daemon", help="run every loop headless and serve terminals on a unix socket")
    p.add_argument("-c", "--config", default="driftdeck.yaml", help="configuration file (default ./driftdeck.yaml)")
    p.add_argument("--socket", help="unix socket (default $XDG_RUNTIME_DIR/driftdeck/daemon.sock)")
    p.add_argument("--socket-group", help="group that may connect (socket mode 0660; default 0600)")
    p.add_argument("--operator-group", help="members may run operator commands (others: viewers)")
    p.add_argument("--listen", metavar="HOST:PORT", help="also serve TCP (needs --token-file; loopback only)")
    p.add_argument("--token-file", help="tokens for TCP clients, one per line: TOKEN [operator|viewer]")
    p.add_argument("--allow-remote", action="store_true", help="allow --listen on a non-loopback address")
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus /metrics here")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--drain-timeout", type=float, default=60.0, help="seconds SIGTERM waits for work in flight")
    p.add_argument("--client-queue", type=int, default=10_000, help="events queued per client before it must resync")
    p.add_argument("--history-db", help=argparse.SUPPRESS)
    p.add_argument("--runs-db", help=argparse.SUPPRESS)
    p.set_defaults(func=run_daemon)
