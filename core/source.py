"""Git sources: read revisions and trees, watch for new commits, commit reverts.

A :class:`GitSource` wraps one configured source (:class:`~core.model.SourceSpec`):

* **local** (``path``): the user's repository, read in place and watched with watchfiles
  on its ``.git`` directory (refs, ``HEAD``, ``packed-refs``);
* **remote** (``url``): a bare cache clone under ``cache_dir`` (default
  ``$XDG_CACHE_HOME/driftdeck/sources/<name>``) that tracks the configured branch as
  ``refs/remotes/origin/<branch>``; :meth:`GitSource.fetch` updates it, ``watch`` polls.

Trees are read from git objects (``ls-tree`` + one ``cat-file --batch``), never from a
working tree. Symlinks are resolved inside the repository like ``realpath`` would on a
checkout; one that leaves the repository (or dangles, or loops) becomes a
:class:`~core.model.Problem`. Submodules are skipped.

Reverts are real ``git revert`` commits, built in a temporary detached worktree so the
user's checkout never sees a half-done revert; the branch then moves once (fast-forward of
the checked-out branch, compare-and-swap ``update-ref`` for a bare repository, or a push
with ``--force-with-lease`` for remotes). ``revert(sha)`` rolls back to ``sha`` with one
revert commit per reverted commit (newest first, merges with ``--mainline 1``), like
``git revert sha..HEAD``, so each commit message names exactly one reverted commit.

Git runs as ``git`` argv lists (never a shell), with ``GIT_TERMINAL_PROMPT=0``,
``GIT_LITERAL_PATHSPECS=1`` and the inherited ``GIT_DIR``-style variables removed; hooks
are not run for driftdeck's own commits. All methods except :meth:`GitSource.watch` block:
call them through ``asyncio.to_thread``. Reads may run concurrently; fetch and revert are
serialised per source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.model import Location, Problem, Revision, SourceSpec

__all__ = ["REVERT_TRAILER", "GitSource", "SourceError", "default_cache_dir"]

log = logging.getLogger(__name__)

REVERT_TRAILER = "Reverted-by: driftdeck"
LOCAL_TIMEOUT = 120.0  # seconds, for git commands that do not touch the network
NETWORK_TIMEOUT = 300.0  # seconds, for fetch and push
MAX_SYMLINK_DEPTH = 40  # as Linux's MAXSYMLINKS
WATCH_FIRST_CHECK = 0.5  # seconds: re-read the head once the watcher has started

_GIT = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
_SCRUBBED_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")
_LOG_FORMAT = "--format=%H%x00%an%x00%ae%x00%cI%x00%B"
_LOG_FIELDS = 5
_SYMLINK = "120000"
_IN_PROGRESS = ("MERGE_HEAD", "REVERT_HEAD", "CHERRY_PICK_HEAD", "rebase-merge", "rebase-apply")


class SourceError(Exception):
    """A source operation failed; the message names the source and says why."""


def default_cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/driftdeck/sources/<name>`` (``~/.cache`` when unset)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"
    return base / "driftdeck" / "sources" / safe


@dataclass(frozen=True, slots=True)
class _Entry:
    mode: str
    kind: str  # blob | tree | commit
    sha: str


class _LinkError(Exception):
    """A symlink that cannot be followed; the message says why."""


class _Tree:
    """A commit's tree listing (path -> entry) with symlink resolution, ``realpath`` style."""

    def __init__(self, entries: dict[str, _Entry], link_targets: dict[str, str]) -> None:
        self.entries = entries
        self.link_targets = link_targets  # blob sha -> target text, for every symlink entry
        self.children: dict[str, list[str]] = {}
        for path in entries:
            self.children.setdefault(path.rpartition("/")[0], []).append(path)

    def is_dir(self, path: str) -> bool:
        return path == "" or (path in self.entries and self.entries[path].kind == "tree")

    def realpath(self, base: str, target: str, depth: int = 0) -> str:
        """Resolve ``target`` relative to directory ``base`` to a symlink-free repository path."""
        if target.startswith("/"):
            raise _LinkError("is absolute and leaves the repository")
        stack = base.split("/") if base else []
        parts = [p for p in target.split("/") if p not in ("", ".")]
        for i, part in enumerate(parts):
            if part == "..":
                if not stack:
                    raise _LinkError("leaves the repository")
                stack.pop()
                continue
            path = "/".join([*stack, part])
            entry = self.entries.get(path)
            if entry is None:
                raise _LinkError("points to a path that does not exist")
            if entry.mode == _SYMLINK:
                if depth >= MAX_SYMLINK_DEPTH:
                    raise _LinkError("has too many levels of symbolic links")
                real = self.realpath("/".join(stack), self.link_targets[entry.sha], depth + 1)
                stack = real.split("/") if real else []
            else:
                if i < len(parts) - 1 and entry.kind != "tree":
                    raise _LinkError("goes through a path that is not a directory")
                stack.append(part)
        return "/".join(stack)

    def walk(
        self,
        real_dir: str,
        out_dir: str,
        active: tuple[str, ...],
        out: dict[str, str],
        problems: list[Problem],
    ) -> None:
        """Collect ``out path -> blob sha`` under ``real_dir``, presented at ``out_dir``."""
        for child in self.children.get(real_dir, ()):
            name = child.rpartition("/")[2]
            out_path = f"{out_dir}/{name}" if out_dir else name
            entry = self.entries[child]
            if entry.kind == "commit":
                continue  # submodule
            if entry.kind == "tree":
                self.walk(child, out_path, (*active, child), out, problems)
            elif entry.mode != _SYMLINK:
                out[out_path] = entry.sha
            else:
                self._follow(real_dir, child, out_path, active, out, problems)

    def _follow(
        self,
        real_dir: str,
        link: str,
        out_path: str,
        active: tuple[str, ...],
        out: dict[str, str],
        problems: list[Problem],
    ) -> None:
        target = self.link_targets[self.entries[link].sha]
        try:
            real = self.realpath(real_dir, target)
        except _LinkError as err:
            problems.append(Problem(f"symlink -> {target} {err}; not followed", Location(link)))
            return
        if self.is_dir(real):
            if any(real == "" or a == real or a.startswith(real + "/") for a in active):
                problems.append(Problem(f"symlink -> {target} makes a loop; not followed", Location(link)))
                return
            self.walk(real, out_path, (*active, real), out, problems)
        elif self.entries[real].kind == "blob":
            out[out_path] = self.entries[real].sha


class GitSource:
    """One git source: revisions, trees, fetch, watch and revert (see the module docstring)."""

    def __init__(self, spec: SourceSpec, cache_dir: Path | None = None) -> None:
        if bool(spec.path) == bool(spec.url):
            raise SourceError(f"source {spec.name!r}: set exactly one of 'path' (local) or 'url' (remote)")
        self.spec = spec
        self.remote = bool(spec.url)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(spec.name)
        self._lock = threading.RLock()  # serialises opening, fetch and revert
        self._ready = False
        self._cwd = Path()  # where git runs: the work tree, or the git dir when bare
        self._git_dir = Path()
        self._common_dir = Path()
        self._bare = False
        self._last_head: str | None = None

    # ----- public API --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def branch_ref(self) -> str:
        """The ref that holds the configured branch's head in the repository we read."""
        b = self.spec.branch
        return f"refs/remotes/origin/{b}" if self.remote else f"refs/heads/{b}"

    def head(self) -> Revision:
        """The configured branch's head (remote: as of the last fetch; fetches once if never)."""
        sha = self._head_sha()
        self._last_head = sha
        return self.revision(sha)

    def revision(self, sha: str) -> Revision:
        """The commit ``sha`` (any commit-ish) as a :class:`Revision`."""
        full = self._resolve(sha)
        revs = self._log([full, "-1"])
        if not revs:
            raise SourceError(f"source {self.name!r}: commit {sha!r} not found")
        return revs[0]

    def log(self, limit: int = 50) -> list[Revision]:
        """Up to ``limit`` commits reachable from the head, newest first."""
        if limit <= 0:
            return []
        return self._log([self._head_sha(), f"--max-count={int(limit)}"])

    def files(self, sha: str, subpath: str = "") -> tuple[dict[str, bytes], list[Problem]]:
        """Snapshot of the tree at ``sha`` under ``subpath``: ``{repo-relative path: content}``.

        Read from git objects. Symlinks resolve inside the repository and appear at the
        link's path; ones that leave it, dangle or loop are returned as problems.
        Submodules are skipped. A missing ``subpath`` is a problem, not an error.
        """
        commit = self._resolve(sha)
        problems: list[Problem] = []
        sub = self._normalise_subpath(subpath, problems)
        if sub is None:
            return {}, problems
        tree = self._listing(commit, sub) if sub else None
        if tree is None or sub not in tree.entries or any(e.mode == _SYMLINK for e in tree.entries.values()):
            tree = self._listing(commit, "")
        try:
            real = tree.realpath("", sub)
        except _LinkError as err:
            return {}, [Problem(f"path {sub!r} at {commit[:7]}: {err}", Location(sub))]
        blobs: dict[str, str] = {}
        if tree.is_dir(real):
            tree.walk(real, sub, (real,), blobs, problems)
        elif tree.entries[real].kind == "blob":
            blobs[sub] = tree.entries[real].sha
        contents = self._read_blobs(set(blobs.values()))
        unique = list(dict.fromkeys(problems))  # a bad link reached twice (through a linked dir) once
        return {path: contents[blob] for path, blob in blobs.items()}, unique

    def fetch(self) -> Revision | None:
        """Remote: fetch the branch; the new head if it moved, else None.

        Local: re-read the head; the head if it differs from the one last returned by
        :meth:`head`, :meth:`fetch` or :meth:`revert`, else None.
        """
        if not self.remote:
            sha = self._head_sha()
            moved, self._last_head = sha != self._last_head, sha
            return self.revision(sha) if moved else None
        with self._lock:
            self._ensure()
            before = self._ref_sha(self.branch_ref)
            self._fetch_remote()
            after = self._head_sha()
        self._last_head = after
        return self.revision(after) if after != before else None

    def revert_targets(
        self, sha: str | None = None, *, last: bool = False, only: bool = False
    ) -> list[Revision]:
        """The commits :meth:`revert` would revert, in the order it would revert them."""
        with self._lock:
            return [self.revision(c) for c in self._targets(self._head_sha(), sha, last, only)]

    def revert(
        self, sha: str | None = None, *, last: bool = False, only: bool = False, author: str = "driftdeck"
    ) -> Revision:
        """Commit real ``git revert`` commits on the branch and return the new head.

        ``last=True``: revert the head commit. ``revert(sha)``: roll back to ``sha`` by
        reverting every first-parent commit after it, newest first, one commit each (the
        tree then equals ``sha``'s). ``revert(sha, only=True)``: revert just ``sha``.
        ``author`` is ``"Name"`` or ``"Name <email>"`` (author and committer). Remote
        sources are pushed. Conflicts raise :class:`SourceError` naming the files; nothing
        is changed then. Local sources need the configured branch checked out and no
        uncommitted changes to tracked files.
        """
        with self._lock:
            self._ensure()
            head = self._head_sha()
            if not self.remote and not self._bare:
                self._check_checkout()
            targets = self._targets(head, sha, last, only)
            new = self._build_reverts(head, targets, _identity(author))
            self._publish(head, new)
            self._last_head = new
            return self.revision(new)

    def commit_files(
        self,
        changes: Mapping[str, bytes],
        message: str,
        *,
        author: str = "driftdeck",
        base: str | None = None,
    ) -> Revision | None:
        """Commit ``changes`` (repository path -> new content) on the branch; the new head.

        None when every file already has that content (no empty commits). The commit is
        built from git objects in a scratch index (no checkout is touched until the branch
        moves), on ``base`` when given (the head the changes were computed from: if the
        branch is no longer there, :class:`SourceError` and nothing changes), else on the
        head. The branch then moves as for :meth:`revert` (fast-forward of the checked-out
        branch, compare-and-swap, or a push with ``--force-with-lease``), with its rules for
        local checkouts. Contents are stored byte for byte (no filters) and keep an existing
        file's mode; a path that is, or goes through, a symlink or a directory is refused.
        ``message`` is stored verbatim.
        """
        with self._lock:
            self._ensure()
            head = self._head_sha()
            if base is not None and self._resolve(base) != head:
                raise SourceError(
                    f"source {self.name!r}: branch {self.spec.branch!r} moved from {base[:7]} to {head[:7]}; "
                    "nothing was changed"
                )
            if not self.remote and not self._bare:
                self._check_checkout("commit")
            new = self._build_commit(head, changes, message, _identity(author))
            if new is None:
                return None
            self._publish(head, new, "commit")
            self._last_head = new
            return self.revision(new)

    async def watch(
        self,
        *,
        since: str | None = None,
        interval: float | None = None,
        on_error: Callable[[SourceError], None] | None = None,
    ) -> AsyncGenerator[Revision, None]:
        """Yield the branch head each time it changes (never the same sha twice in a row).

        Local sources are watched with watchfiles (and re-read every ``interval`` seconds
        as a safety net); remote ones are fetched every ``interval`` seconds (default: the
        spec's). The first head compared against is ``since`` (yielded at once if the head
        differs), else the head when watching starts. Errors raise, unless ``on_error`` is
        given: then they are reported to it and watching goes on (a local path that is not
        a repository still raises).
        """
        period = float(interval if interval is not None else self.spec.interval)
        last = since
        if last is None:
            try:
                last = await asyncio.to_thread(self._head_sha)
            except SourceError as err:
                if on_error is None:
                    raise
                on_error(err)
        if self.remote:
            first = since is not None
            while True:
                if not first:
                    await asyncio.sleep(period)
                first = False
                rev = await self._poll(self._fetched_head, on_error)
                if rev is not None and rev.sha != last:
                    last = rev.sha
                    yield rev
        else:
            await asyncio.to_thread(self._ensure)
            changed = asyncio.Event()
            stop = asyncio.Event()
            pump = asyncio.create_task(self._pump_fs_events(changed, stop))
            try:
                timeout = 0.0 if since is not None else WATCH_FIRST_CHECK
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), timeout)
                    changed.clear()
                    timeout = period
                    rev = await self._poll(self.head, on_error)
                    if rev is not None and rev.sha != last:
                        last = rev.sha
                        yield rev
            finally:
                stop.set()
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)

    # ----- watching ------------------------------------------------------------------------------

    def _fetched_head(self) -> Revision:
        """Fetch, then the head (which may have moved by our own push, unseen by fetch)."""
        self.fetch()
        return self.head()

    @staticmethod
    async def _poll(
        read: Callable[[], Revision | None], on_error: Callable[[SourceError], None] | None
    ) -> Revision | None:
        try:
            return await asyncio.to_thread(read)
        except SourceError as err:
            if on_error is None:
                raise
            on_error(err)
            return None

    async def _pump_fs_events(self, changed: asyncio.Event, stop: asyncio.Event) -> None:
        from watchfiles import Change, awatch

        common, git_dir = self._common_dir.resolve(), self._git_dir.resolve()
        head_files = {str(git_dir / "HEAD"), str(common / "packed-refs")}
        ref_dirs = (str(common / "refs") + os.sep, str(common / "reftable") + os.sep)

        def relevant(_change: Change, path: str) -> bool:
            return path in head_files or path.startswith(ref_dirs)

        paths = [common] if git_dir == common or git_dir.is_relative_to(common) else [common, git_dir]
        try:
            async for _ in awatch(*paths, watch_filter=relevant, debounce=400, step=30, stop_event=stop):
                changed.set()
        except Exception:  # the interval re-read still runs: degrade, do not die
            log.warning(
                "source %s: watching %s failed; falling back to polling", self.name, paths, exc_info=True
            )

    # ----- opening -------------------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            self._check_branch_name()
            if self.remote:
                self._open_cache()
            else:
                self._open(Path(self.spec.path).expanduser())
            self._ready = True

    def _open(self, path: Path) -> None:
        try:
            import git  # GitPython: locates git dirs, work trees, linked worktrees
        except ImportError as err:  # GitPython refuses to import without a git executable
            raise SourceError(f"source {self.name!r}: git is not usable: {err}") from err
        try:
            with git.Repo(path) as repo:
                self._bare = repo.bare
                self._git_dir = Path(repo.git_dir)
                self._common_dir = Path(repo.common_dir)
                self._cwd = Path(repo.working_tree_dir) if repo.working_tree_dir else self._git_dir
        except git.NoSuchPathError as err:
            raise SourceError(f"source {self.name!r}: path {str(path)!r} does not exist") from err
        except git.InvalidGitRepositoryError as err:
            raise SourceError(
                f"source {self.name!r}: {str(path)!r} is not a git repository (give the repository's top directory)"
            ) from err

    def _open_cache(self) -> None:
        url = self.spec.url
        if url.startswith("-"):
            raise SourceError(f"source {self.name!r}: invalid url {url!r}")
        if "://" not in url and not re.match(r"^[^/]+:", url):  # a local path, not scp-like host:path
            url = str(Path(url).expanduser().resolve())
        d = self.cache_dir
        if (d / "HEAD").is_file() and (d / "objects").is_dir():
            self._open(d)
            if not self._bare:
                raise SourceError(f"source {self.name!r}: cache {str(d)!r} is not a bare repository")
        elif d.exists() and any(d.iterdir()):
            raise SourceError(f"source {self.name!r}: cache {str(d)!r} exists and is not a git repository")
        else:
            d.mkdir(parents=True, exist_ok=True)
            self._git(["init", "--bare", "--quiet", str(d)], cwd=d)
            self._open(d)
        current = self._git(["config", "--get", "remote.origin.url"], check=False).stdout.decode().strip()
        if current != url:  # a new cache, or the configured url changed: forget the old remote's head
            self._git(["config", "remote.origin.url", url])
            if current:
                self._git(["update-ref", "-d", self.branch_ref], check=False)

    def _check_branch_name(self) -> None:
        b = self.spec.branch
        ok = (
            b
            and not b.startswith("-")
            and self._git(
                ["check-ref-format", f"refs/heads/{b}"], cwd=Path(tempfile.gettempdir()), check=False
            ).returncode
            == 0
        )
        if not ok:
            raise SourceError(f"source {self.name!r}: {b!r} is not a valid branch name")

    # ----- reading -------------------------------------------------------------------------------

    def _head_sha(self) -> str:
        self._ensure()
        sha = self._ref_sha(self.branch_ref)
        if sha is None and self.remote:
            with self._lock:
                sha = self._ref_sha(self.branch_ref)
                if sha is None:
                    self._fetch_remote()
                    sha = self._ref_sha(self.branch_ref)
        if sha is None:
            raise SourceError(self._missing_branch_message())
        return sha

    def _missing_branch_message(self) -> str:
        where = self.spec.url or self.spec.path
        msg = f"source {self.name!r}: branch {self.spec.branch!r} not found in {where}"
        if not self.remote:
            out = self._git(["for-each-ref", "--format=%(refname:short)", "--count=10", "refs/heads/"]).stdout
            names = out.decode(errors="replace").split()
            msg += f" (branches: {', '.join(names)})" if names else " (the repository has no commits yet)"
        return msg

    def _ref_sha(self, ref: str) -> str | None:
        proc = self._git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def _resolve(self, rev: str) -> str:
        self._ensure()
        if not rev or rev.startswith("-") or "\0" in rev or "\n" in rev:
            raise SourceError(f"source {self.name!r}: invalid revision {rev!r}")
        proc = self._git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], check=False)
        if proc.returncode != 0:
            raise SourceError(f"source {self.name!r}: commit {rev!r} not found")
        return proc.stdout.decode().strip()

    def _log(self, args: list[str]) -> list[Revision]:
        out = self._git(["log", "-z", _LOG_FORMAT, *args, "--"]).stdout.decode("utf-8", errors="replace")
        fields = out.split("\0")
        revs = []
        for i in range(0, len(fields) - _LOG_FIELDS + 1, _LOG_FIELDS):
            sha, name, email, time, message = fields[i : i + _LOG_FIELDS]
            author = f"{name} <{email}>" if email else name
            revs.append(Revision(sha.strip(), author, message.rstrip("\n"), time, self.spec.branch))
        return revs

    def _normalise_subpath(self, subpath: str, problems: list[Problem]) -> str | None:
        parts: list[str] = []
        for part in subpath.replace("\\", "/").split("/"):
            if part in ("", "."):
                continue
            if part == ".." and not parts:
                problems.append(Problem(f"path {subpath!r} leaves the repository", Location(subpath)))
                return None
            if part == "..":
                parts.pop()
            else:
                parts.append(part)
        return "/".join(parts)

    def _listing(self, commit: str, sub: str) -> _Tree:
        args = ["ls-tree", "-r", "-t", "-z", "--full-tree", commit]
        out = self._git([*args, "--", sub] if sub else args).stdout
        entries: dict[str, _Entry] = {}
        links: set[str] = set()
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, sha = meta.decode().split(" ")
            entries[raw_path.decode("utf-8", "surrogateescape")] = _Entry(mode, kind, sha)
            if mode == _SYMLINK:
                links.add(sha)
        targets = {
            sha: data.decode("utf-8", "surrogateescape") for sha, data in self._read_blobs(links).items()
        }
        return _Tree(entries, targets)

    def _read_blobs(self, shas: set[str]) -> dict[str, bytes]:
        """Contents of blobs, all in one ``git cat-file --batch``."""
        if not shas:
            return {}
        order = sorted(shas)
        out = self._git(
            ["cat-file", "--batch", "--buffer"], input="".join(s + "\n" for s in order).encode()
        ).stdout
        result: dict[str, bytes] = {}
        pos = 0
        for sha in order:
            eol = out.index(b"\n", pos)
            header = out[pos:eol].split(b" ")
            if len(header) != 3:
                raise SourceError(f"source {self.name!r}: object {sha} is missing from the repository")
            size = int(header[2])
            result[sha] = out[eol + 1 : eol + 1 + size]
            pos = eol + 1 + size + 1
        return result

    # ----- fetching ------------------------------------------------------------------------------

    def _fetch_remote(self) -> None:
        b = self.spec.branch
        proc = self._git(
            ["fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{b}:refs/remotes/origin/{b}"],
            check=False,
            timeout=NETWORK_TIMEOUT,
        )
        if proc.returncode == 0:
            return
        err = proc.stderr.decode(errors="replace").strip()
        if "couldn't find remote ref" in err:
            raise SourceError(self._missing_branch_message())
        raise SourceError(f"source {self.name!r}: fetching {self.spec.url} failed: {err}")

    # ----- reverting -----------------------------------------------------------------------------

    def _check_checkout(self, what: str = "revert") -> None:
        """A local source's checkout must be on the configured branch with tracked files clean."""
        b, where = self.spec.branch, self._cwd
        proc = self._git(["symbolic-ref", "--quiet", "HEAD"], check=False)
        current = proc.stdout.decode().strip().removeprefix("refs/heads/") if proc.returncode == 0 else ""
        if current != b:
            has = f"branch {current!r}" if current else "a detached HEAD"
            raise SourceError(
                f"source {self.name!r}: cannot {what}: {where} has {has} checked out, not the configured "
                f"branch {b!r}; check out {b!r} first"
            )
        busy = [name for name in _IN_PROGRESS if (self._git_dir / name).exists()]
        if busy:
            raise SourceError(
                f"source {self.name!r}: cannot {what}: {where} has an operation in progress ({busy[0]})"
            )
        out = self._git(["status", "--porcelain=v1", "-z", "--untracked-files=no"]).stdout
        dirty = [r[3:].decode("utf-8", "replace") for r in out.split(b"\0") if len(r) > 3]
        if dirty:
            shown = ", ".join(dirty[:5]) + (", ..." if len(dirty) > 5 else "")
            raise SourceError(
                f"source {self.name!r}: cannot {what}: {where} has uncommitted changes ({shown}); "
                "commit or stash them first"
            )

    def _targets(self, head: str, sha: str | None, last: bool, only: bool) -> list[str]:
        """The commits to revert, newest first."""
        if last == (sha is not None) or (only and sha is None):
            raise ValueError("revert needs exactly one of last=True or a sha")
        if last:
            return [head]
        target = self._resolve(sha or "")
        if not self._is_ancestor(target, head):
            raise SourceError(
                f"source {self.name!r}: {target[:7]} is not in the history of branch {self.spec.branch!r}"
            )
        if only:
            return [target]
        if target == head:
            raise SourceError(
                f"source {self.name!r}: nothing to revert: {target[:7]} is the head of {self.spec.branch!r}"
            )
        out = self._git(["rev-list", "--first-parent", f"{target}..{head}", "--"]).stdout.decode().split()
        if not out or self._parents(out[-1])[:1] != [target]:
            raise SourceError(
                f"source {self.name!r}: {target[:7]} is not on the first-parent history of {self.spec.branch!r} "
                "(it came in through a merge); pick a commit of the branch itself"
            )
        return out

    def _is_ancestor(self, a: str, b: str) -> bool:
        return self._git(["merge-base", "--is-ancestor", a, b], check=False).returncode == 0

    def _parents(self, sha: str) -> list[str]:
        return self._git(["rev-list", "--parents", "-n", "1", sha, "--"]).stdout.decode().split()[1:]

    def _build_reverts(self, head: str, targets: list[str], ident: dict[str, str]) -> str:
        """Revert ``targets`` in order on top of ``head`` in a scratch worktree; the new sha."""
        scratch = Path(tempfile.mkdtemp(prefix="driftdeck-revert-"))
        wt = scratch / "wt"
        try:
            self._git([*_NO_HOOKS, "worktree", "add", "--detach", "--quiet", str(wt), head])
            for commit in targets:
                parents = self._parents(commit)
                mainline = ["--mainline", "1"] if len(parents) > 1 else []
                proc = self._git(
                    [*_NO_HOOKS, "revert", "--no-commit", *mainline, commit], cwd=wt, check=False
                )
                if proc.returncode != 0:
                    raise SourceError(self._revert_failure(commit, wt, proc))
                message = self._revert_message(commit, parents)
                self._git(
                    [
                        *_NO_HOOKS,
                        "commit",
                        "--quiet",
                        "--no-verify",
                        "--allow-empty",
                        "--cleanup=verbatim",
                        "-m",
                        message,
                    ],
                    cwd=wt,
                    env=ident,
                )
            return self._git(["rev-parse", "HEAD"], cwd=wt).stdout.decode().strip()
        finally:
            self._git(["worktree", "remove", "--force", "--force", str(wt)], check=False)
            shutil.rmtree(scratch, ignore_errors=True)
            self._git(["worktree", "prune"], check=False)

    def _revert_failure(self, commit: str, wt: Path, proc: subprocess.CompletedProcess[bytes]) -> str:
        subject = self.revision(commit).subject
        out = self._git(["diff", "--name-only", "--diff-filter=U", "-z"], cwd=wt, check=False).stdout
        conflicts = [p.decode("utf-8", "replace") for p in out.split(b"\0") if p]
        head = f"source {self.name!r}: reverting {commit[:7]} ({subject!r})"
        if conflicts:
            return f"{head} conflicts in: {', '.join(conflicts)}; nothing was changed"
        return f"{head} failed: {proc.stderr.decode(errors='replace').strip()}; nothing was changed"

    def _revert_message(self, commit: str, parents: list[str]) -> str:
        subject = self.revision(commit).subject
        body = f"This reverts commit {commit}"
        body += f", reversing\nchanges made to {parents[0]}." if len(parents) > 1 else "."
        return f'Revert "{subject}"\n\n{body}\n\n{REVERT_TRAILER}\n'

    def _build_commit(
        self, head: str, changes: Mapping[str, bytes], message: str, ident: dict[str, str]
    ) -> str | None:
        """A commit of ``changes`` on top of ``head`` built in a scratch index; None if no change."""
        files = {self._commit_path(path): data for path, data in changes.items()}
        modes = self._commit_modes(head, list(files))
        scratch = Path(tempfile.mkdtemp(prefix="driftdeck-commit-"))
        env = {**ident, "GIT_INDEX_FILE": str(scratch / "index")}
        try:
            self._git(["read-tree", head], env=env)
            records = []
            for path, data in files.items():
                blob = self._git(["hash-object", "-w", "--no-filters", "--stdin"], input=data).stdout
                records.append(f"{modes.get(path, '100644')} {blob.decode().strip()}\t{path}\0")
            index_info = "".join(records).encode("utf-8", "surrogateescape")
            self._git(["update-index", "-z", "--index-info"], input=index_info, env=env)
            tree = self._git(["write-tree"], env=env).stdout.decode().strip()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if tree == self._git(["rev-parse", f"{head}^{{tree}}"]).stdout.decode().strip():
            return None
        text = message if message.endswith("\n") else message + "\n"
        proc = self._git(["commit-tree", tree, "-p", head, "-F", "-"], input=text.encode(), env=ident)
        return proc.stdout.decode().strip()

    def _commit_path(self, path: str) -> str:
        parts = path.split("/")
        bad = not path or any(
            p in ("", ".", "..") or p.lower() == ".git" or "\0" in p or "\n" in p for p in parts
        )
        if bad:
            raise SourceError(f"source {self.name!r}: cannot commit {path!r}: not a plain repository path")
        return path

    def _commit_modes(self, head: str, paths: list[str]) -> dict[str, str]:
        """Modes of the existing files among ``paths``; refuses symlinks and directories on the way."""
        wanted = {"/".join(p.split("/")[: i + 1]) for p in paths for i in range(p.count("/") + 1)}
        out = self._git(["ls-tree", "-t", "-z", "--full-tree", head, "--", *sorted(wanted)]).stdout
        modes: dict[str, str] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw = record.partition(b"\t")
            mode, kind, _sha = meta.decode().split(" ")
            entry = raw.decode("utf-8", "surrogateescape")
            modes[entry] = mode
            target = entry in paths
            if mode == _SYMLINK or kind == "commit" or (kind == "tree") == target:
                kinds = {_SYMLINK: "a symlink", "160000": "a submodule", "040000": "a directory"}
                raise SourceError(
                    f"source {self.name!r}: cannot commit {', '.join(paths)}: {entry!r} is {kinds.get(mode, 'a file')}"
                )
        return modes

    def _publish(self, old: str, new: str, what: str = "revert") -> None:
        """Move the branch from ``old`` to ``new``: fast-forward, compare-and-swap, or push."""
        b = self.spec.branch
        if self.remote:
            proc = self._git(
                [
                    "push",
                    "--quiet",
                    "--porcelain",
                    f"--force-with-lease=refs/heads/{b}:{old}",
                    "origin",
                    f"{new}:refs/heads/{b}",
                ],
                check=False,
                timeout=NETWORK_TIMEOUT,
            )
            if proc.returncode != 0:
                detail = (proc.stdout + proc.stderr).decode(errors="replace").strip()
                raise SourceError(
                    f"source {self.name!r}: pushing the {what} to {self.spec.url} ({b}) was rejected; the remote "
                    f"branch may have moved since the last fetch: fetch and retry. git said: {detail}"
                )
            self._git(["update-ref", "-m", f"driftdeck: {what} pushed", self.branch_ref, new, old])
        elif self._bare:
            proc = self._git(
                ["update-ref", "-m", f"driftdeck: {what}", f"refs/heads/{b}", new, old], check=False
            )
            if proc.returncode != 0:
                raise SourceError(
                    f"source {self.name!r}: branch {b!r} moved during the {what}; nothing was changed"
                )
        else:
            proc = self._git([*_NO_HOOKS, "merge", "--ff-only", "--quiet", new], check=False)
            if proc.returncode != 0:
                raise SourceError(
                    f"source {self.name!r}: could not fast-forward {b!r} in {self._cwd} to the {what} commit "
                    f"{new[:7]} (the branch or working tree changed meanwhile): "
                    f"{proc.stderr.decode(errors='replace').strip()}"
                )

    # ----- running git ---------------------------------------------------------------------------

    def _git(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = LOCAL_TIMEOUT,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``git *args`` (an argv list, no shell) in the repository; raise SourceError if ``check``."""
        full_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        full_env.update(GIT_TERMINAL_PROMPT="0", GIT_LITERAL_PATHSPECS="1", LC_ALL="C", LANGUAGE="C")
        full_env.update(env or {})
        try:
            proc = subprocess.run(
                [_GIT, *args],
                cwd=cwd or self._cwd,
                input=input if input is not None else b"",
                capture_output=True,
                env=full_env,
                timeout=timeout,
            )
        except FileNotFoundError as err:
            raise SourceError(f"source {self.name!r}: cannot run {_GIT!r}: {err}") from err
        except subprocess.TimeoutExpired as err:
            raise SourceError(f"source {self.name!r}: git {args[0]} timed out after {timeout:.0f}s") from err
        if check and proc.returncode != 0:
            cmd = next((a for a in args if not a.startswith("-") and "=" not in a), "")
            raise SourceError(
                f"source {self.name!r}: git {cmd} failed: {proc.stderr.decode(errors='replace').strip()}"
            )
        return proc


def _identity(author: str) -> dict[str, str]:
    """Author and committer environment for ``"Name"`` or ``"Name <email>"``."""
    m = re.fullmatch(r"\s*(.*?)\s*<([^<>]*)>\s*", author)
    name, email = (m.group(1), m.group(2)) if m else (author, "driftdeck@localhost")
    name = re.sub(r"[<>\n\r]", "", name).strip() or "driftdeck"
    email = re.sub(r"[<>\n\r]", "", email).strip() or "driftdeck@localhost"
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
