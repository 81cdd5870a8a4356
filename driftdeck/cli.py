"""The ``driftdeck`` command line. This is the edge of the system: it may wire
``core`` and ``sandbox`` together; neither of them imports this module."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from driftdeck import paths

EXIT_OK = 0
EXIT_ERROR = 2


def _serve(args: argparse.Namespace) -> int:
    from sandbox.server import Options, SandboxServer

    kubeconfig = args.kubeconfig or str(paths.sandbox_kubeconfig())
    opts = Options(
        host="127.0.0.1",
        port=args.port,
        data_file=args.data,
        kubeconfig=kubeconfig,
        pace=args.pace,
        pods=not args.no_pods,
        controllers=not args.no_controllers,
    )
    try:
        server = SandboxServer(opts)
    except Exception as exc:  # a broken --data file, for instance
        print(f"driftdeck sandbox: cannot start: {exc}", file=sys.stderr)
        return EXIT_ERROR

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await server.start_async()
        print(f"driftdeck sandbox listening on {server.url}", flush=True)
        print(f"kubeconfig: {kubeconfig} (context driftdeck-sandbox)", flush=True)
        print(f"  export KUBECONFIG={kubeconfig}", flush=True)
        print("  kubectl get namespaces", flush=True)
        await stop.wait()
        await server.stop_async()

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"driftdeck sandbox: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from driftdeck.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftdeck", description="GitOps and pipeline console for the terminal.")
    sub = parser.add_subparsers(dest="verb", required=True)

    def serve_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
        p.add_argument("--kubeconfig", help=f"kubeconfig to write (default: {paths.sandbox_kubeconfig()})")
        p.add_argument("--data", help="SQLite file that keeps the cluster state across restarts")
        p.add_argument("--pace", type=float, default=0.5, help="seconds between controller phases")
        p.add_argument("--no-pods", action="store_true", help="controllers create no Pods (large benchmarks)")
        p.add_argument("--no-controllers", action="store_true", help="run no built-in controllers")

    sandbox = sub.add_parser("sandbox", help="the built-in Kubernetes-API-compatible cluster")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_verb", required=True)
    serve = sandbox_sub.add_parser("serve", help="run the sandbox apiserver and write a kubeconfig")
    serve_args(serve)
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="the console on the built-in sandbox cluster and a demo workspace")
    demo.add_argument("--port", type=int, default=0, help="sandbox port on 127.0.0.1 (default: a free one)")
    demo.add_argument("--pace", type=float, default=0.5, help="seconds between sandbox controller phases")
    demo.add_argument("--dir", help=f"demo workspace (default: {paths.state_dir() / 'demo'})")
    demo.add_argument("--fresh", action="store_true", help="recreate the demo workspace")
    demo.add_argument("--exit-after", type=float, metavar="SECONDS", help="stop on its own after SECONDS")
    demo.add_argument("--headless", action="store_true",
                      help="no console: print the event stream (the default when stdout is not a terminal)")
    from driftdeck.console import add_console_options

    add_console_options(demo)
    demo.set_defaults(func=_demo)

    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module("driftdeck.console" if name == "tui" else f"driftdeck.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"driftdeck.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


# Each module in driftdeck/commands registers its verbs with `register(subparsers)`.
COMMAND_MODULES = ("validate", "reconcile", "pipelines", "tui", "daemon")  # pipelines: run/runs/logs/approve/reject/retry/stop/trace


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["tui", *argv]  # plain `driftdeck [-c FILE] [--read-only]…` opens the console
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
