"""driftdeck validate: check the config, render every app and schema-check its objects.

Offline: no cluster and no network. Local sources are read from their working
tree (uncommitted edits included, .git skipped); apps on remote sources are
skipped and listed as such. Kind scope comes from the bundled Kubernetes 1.32
schemas plus CRDs in the app's own output; other kinds are "unknown kind".

Exit codes: 0 clean, 2 problems found (or the config could not be read).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from core.config import load_config
from core.model import AppSpec, Config, Location, Problem
from core.render import builtin_namespaced, render

EXIT_OK, EXIT_PROBLEMS = 0, 2


def register(subparsers: Any) -> None:
    """Add the ``validate`` verb to the CLI's subparsers."""
    p = subparsers.add_parser(
        "validate",
        help="check driftdeck.yaml and render + schema-check every app (offline)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-c", "--config", default="driftdeck.yaml", help="configuration file (default ./driftdeck.yaml)"
    )
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.add_argument("--app", action="append", default=[], help="only this app (repeatable)")
    p.set_defaults(func=run)


class WorkTree(Mapping[str, bytes]):
    """A working tree as ``{posix relative path: bytes}``; files are read only when looked up."""

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = paths
        self.problems: list[Problem] = []

    def __getitem__(self, key: str) -> bytes:
        full = self._paths[key]
        try:
            with open(full, "rb") as fh:
                return fh.read()
        except OSError as exc:
            self.problems.append(Problem(f"cannot read: {exc.strerror or exc}", Location(key)))
            return b""

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def read_tree(root: str) -> tuple[WorkTree, list[Problem]]:
    """Every file below ``root`` (``.git`` skipped), read lazily.

    Symlinks are followed when they stay inside ``root``; ones that leave it are
    problems. Read errors land in ``WorkTree.problems``.
    """
    files: dict[str, str] = {}
    problems: list[Problem] = []
    real_root = os.path.realpath(root)
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real_dir = os.path.realpath(dirpath)
        rel_dir = os.path.relpath(dirpath, root)
        if real_dir in seen_dirs or not _inside(real_dir, real_root):
            if not _inside(real_dir, real_root):
                problems.append(
                    Problem("symlinked directory leaves the repository; not followed", Location(rel_dir))
                )
            dirnames[:] = []
            continue
        seen_dirs.add(real_dir)
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name)).replace(os.sep, "/")
            real = os.path.realpath(full)
            if not _inside(real, real_root):
                problems.append(Problem("symlink leaves the repository; not followed", Location(rel)))
                continue
            if not os.path.isfile(real):
                problems.append(Problem("not a regular file (dangling symlink?); skipped", Location(rel)))
                continue
            files[rel] = full
    return WorkTree(files), problems


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _display(file: str, base: str) -> str:
    """A repo-relative path shown relative to the current directory when that is shorter."""
    full = os.path.normpath(os.path.join(base, file))
    rel = os.path.relpath(full)
    return rel if not rel.startswith("..") or len(rel) < len(full) else full


def _relocate(problem: Problem, base: str, app: str) -> Problem:
    loc = problem.location
    if loc is not None:
        loc = Location(_display(loc.file, base), loc.line)
    return dataclasses.replace(problem, location=loc, app=problem.app or app)


def _check_app(config: Config, app: AppSpec) -> dict[str, Any]:
    source = config.sources[app.source]
    result: dict[str, Any] = {"name": app.name, "source": app.source, "path": app.path}
    if not source.path:
        result.update(
            status="skipped",
            reason=f"remote source {source.name!r} ({source.url}) is not read offline",
        )
        return result
    if not os.path.isdir(source.path):
        problem = Problem(
            f"source {source.name!r}: {source.path} is not a directory", app.location, app=app.name
        )
        result.update(status="problems", manifests=0, problems=[problem], notes=[])
        return result
    files, problems = read_tree(source.path)
    manifests, render_problems = render(
        files,
        app.path,
        default_namespace=app.namespace or "default",
        namespaced=builtin_namespaced,
        validate=True,
    )
    all_problems = [
        _relocate(p, source.path, app.name) for p in [*problems, *files.problems, *render_problems]
    ]
    notes = [
        f"{_display(m.location.file, source.path)}:{m.location.line}: {m.ref}: {note}"
        for m in manifests
        for note in m.notes
    ]
    result.update(
        status="problems" if all_problems else "ok",
        manifests=len(manifests),
        problems=all_problems,
        notes=notes,
    )
    return result


def _problem_json(p: Problem) -> dict[str, Any]:
    return {
        "file": p.location.file if p.location else "",
        "line": p.location.line if p.location else 0,
        "object": p.obj,
        "field": p.field,
        "message": p.message,
        "app": p.app,
    }


def run(args: argparse.Namespace) -> int:
    """Validate; print problems as ``file:line: object: field: message`` (or JSON)."""
    config, config_problems = load_config(args.config)
    selected = [a for name, a in config.apps.items() if not args.app or name in args.app]
    unknown = [n for n in args.app if n not in config.apps]
    config_problems += [
        Problem(f"no valid app named {n!r} in the config", Location(args.config)) for n in unknown
    ]
    if config.pipelines and not args.app:
        from core.config import pipeline_lines
        from core.pipelines.spec import parse_pipelines

        _, pipeline_problems = parse_pipelines(
            config.pipelines, file=config.path, lines=pipeline_lines(config.path),
            sources=config.sources, apps=config.apps,
        )
        config_problems += pipeline_problems
    results = [_check_app(config, app) for app in selected]
    problems = [*config_problems, *(p for r in results for p in r.get("problems", []))]
    if args.output == "json":
        out = {
            "ok": not problems,
            "config": args.config,
            "problems": [_problem_json(p) for p in problems],
            "apps": [
                {k: v for k, v in r.items() if k != "problems"} | {"problems": len(r.get("problems", []))}
                for r in results
            ],
        }
        print(json.dumps(out, indent=2))
    else:
        for p in problems:
            print(p)
        for r in results:
            for note in r.get("notes", []):
                print(f"note: {note}", file=sys.stderr)
            if r["status"] == "skipped":
                print(f"app {r['name']}: skipped: {r['reason']}", file=sys.stderr)
        checked = sum(1 for r in results if r["status"] != "skipped")
        manifests = sum(r.get("manifests", 0) for r in results)
        skipped = len(results) - checked
        summary = f"{checked} app(s) checked, {manifests} object(s)"
        if skipped:
            summary += f", {skipped} skipped"
        summary += f", {len(problems)} problem(s)" if problems else ", no problems"
        print(summary, file=sys.stderr)
    return EXIT_PROBLEMS if problems else EXIT_OK
