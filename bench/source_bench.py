"""Git source read figures (prints them; never pass/fail).

    .venv/bin/python bench/source_bench.py [--files 10000] [--runs 5]

Builds a repository of N small YAML files (100 per directory) in a temp dir, commits it,
and times ``GitSource.files(sha)`` (whole tree and one directory), with loose objects
and again after ``git gc`` (packed), then the same whole-tree read with a directory
symlink present (the slower, full-listing path). Best and median of ``--runs``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.model import SourceSpec  # noqa: E402
from core.source import GitSource  # noqa: E402

ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)


def git(repo: Path, *args: str) -> str:
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.org"]
    return subprocess.run(
        ["git", *ident, *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True
    ).stdout


def build(repo: Path, n: int) -> None:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(n):
        d = repo / "apps" / f"app{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"cm{i % 100:02d}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n  key: value-{i}\n"
        )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{n} files")


def timed(fn: Callable[[], int], runs: int) -> tuple[float, float, int]:
    samples, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = fn()
        samples.append(time.perf_counter() - start)
    return min(samples), statistics.median(samples), count


def report(label: str, fn: Callable[[], int], runs: int) -> None:
    best, median, count = timed(fn, runs)
    print(f"{label:<44} {count:>6} files  best {best * 1000:7.1f} ms  median {median * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)

    with tempfile.TemporaryDirectory(prefix="driftdeck-source-bench-") as tmp:
        repo = Path(tmp) / "repo"
        start = time.perf_counter()
        build(repo, args.files)
        print(
            f"built and committed {args.files} files in {time.perf_counter() - start:.1f} s (git {git(repo, 'version').split()[-1]})"
        )
        src = GitSource(SourceSpec(name="bench", path=str(repo)))
        sha = src.head().sha

        def whole() -> int:
            files, problems = src.files(sha)
            assert not problems
            return len(files)

        def one_dir() -> int:
            return len(src.files(sha, "apps/app042")[0])

        report("files(sha), loose objects", whole, args.runs)
        report("files(sha, 'apps/app042'), loose objects", one_dir, args.runs)
        git(repo, "gc", "-q")
        report("files(sha), packed", whole, args.runs)
        report("files(sha, 'apps/app042'), packed", one_dir, args.runs)

        os.symlink("app000", repo / "apps" / "alias")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "symlink")
        sha = src.head().sha
        report("files(sha), packed + a directory symlink", whole, args.runs)


if __name__ == "__main__":
    main()
