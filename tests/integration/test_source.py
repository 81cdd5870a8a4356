"""core.source against real git repositories in tmp dirs (local, bare "remote", clones)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import pytest

from core.model import Problem, Revision, SourceSpec
from core.source import REVERT_TRAILER, GitSource, SourceError

EVIL = "$(touch {m}/pwned-dollar) `touch {m}/pwned-tick` \"dq\" 'sq' ; touch {m}/pwned-semi"


# ----- helpers -------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {args} failed: {proc.stderr}"
    return proc.stdout.strip()


def commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    """Write (or delete, for None) files, commit everything, return the new sha."""
    for name, content in files.items():
        path = repo / name
        if content is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def tree_of(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", f"{rev}^{{tree}}")


def new_repo(path: Path, files: dict[str, str | None] | None = None, message: str = "initial") -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    if files is not None:
        commit(path, files, message)
    return path


def local(repo: Path, branch: str = "main") -> GitSource:
    return GitSource(SourceSpec(name="config", path=str(repo), branch=branch))


def assert_clean(repo: Path, head: str) -> None:
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo / ".git" / "REVERT_HEAD").exists()
    assert len(git(repo, "worktree", "list", "--porcelain").split("\n\n")) == 1


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user/system git config; a fixed identity for the tests' own commits."""
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[user]\n\tname = Tess Ter\n\temail = tess@example.org\n[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A bare repository used as the remote, and a second clone ("a colleague") that pushes to it."""
    seed = new_repo(tmp_path / "seed", {"apps/web/deploy.yaml": "replicas: 1\n"}, "add web")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(bare), str(other))
    yield bare, other


def remote_source(bare: Path, tmp_path: Path, branch: str = "main") -> GitSource:
    return GitSource(
        SourceSpec(name="web-src", url=str(bare), branch=branch), cache_dir=tmp_path / "cache" / "web"
    )


# ----- local reads ---------------------------------------------------------------------------------


def test_local_head_files_and_log(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"apps/web/a.yaml": "a: 1\n", "apps/db/b.yaml": "b: 1\n"}, "first")
    first = git(repo, "rev-parse", "HEAD")
    second = commit(repo, {"apps/web/a.yaml": "a: 2\n", "README": "hi\n"}, "second\n\nbody line")
    src = local(repo)

    head = src.head()
    assert head.sha == second and head.branch == "main"
    assert head.subject == "second" and head.message == "second\n\nbody line"
    assert head.author == "Tess Ter <tess@example.org>" and head.time.startswith("20")
    assert [r.sha for r in src.log()] == [second, first]
    assert [r.sha for r in src.log(limit=1)] == [second]
    assert src.revision(first[:10]).sha == first

    files, problems = src.files(second)
    assert problems == []
    assert files == {"README": b"hi\n", "apps/db/b.yaml": b"b: 1\n", "apps/web/a.yaml": b"a: 2\n"}
    assert src.files(first, "apps/web") == ({"apps/web/a.yaml": b"a: 1\n"}, [])
    assert src.files(second, "./apps/web/")[0] == {"apps/web/a.yaml": b"a: 2\n"}
    assert src.files(second, "apps/web/a.yaml")[0] == {"apps/web/a.yaml": b"a: 2\n"}

    # from git objects, not the working tree
    (repo / "apps/web/a.yaml").write_text("uncommitted\n")
    (repo / "apps/web/new.yaml").write_text("untracked\n")
    assert src.files(second, "apps/web")[0] == {"apps/web/a.yaml": b"a: 2\n"}

    missing, problems = src.files(second, "apps/nope")
    assert missing == {} and len(problems) == 1 and "does not exist" in problems[0].message
    escaped, problems = src.files(second, "../etc")
    assert escaped == {} and "leaves the repository" in problems[0].message
    with pytest.raises(SourceError, match="not found"):
        src.revision("0" * 40)
    with pytest.raises(SourceError, match="invalid revision"):
        src.files("--output=/tmp/x")


def test_fetch_on_local_source_rereads_head(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a": "1"})
    src = local(repo)
    first = src.head()
    assert src.fetch() is None
    sha = commit(repo, {"a": "2"}, "two")
    moved = src.fetch()
    assert moved is not None and moved.sha == sha and moved.sha != first.sha
    assert src.fetch() is None


def test_symlinks_inside_resolved_escaping_reported(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    (repo / "common/base").mkdir(parents=True)
    (repo / "common/base/svc.yaml").write_text("kind: Service\n")
    (repo / "apps/web").mkdir(parents=True)
    (repo / "apps/web/own.yaml").write_text("kind: ConfigMap\n")
    (repo / "outside.txt").write_text("secret\n")
    os.symlink("../../common/base", repo / "apps/web/base")  # directory link inside the repo
    os.symlink("own.yaml", repo / "apps/web/alias.yaml")  # file link
    os.symlink("base/svc.yaml", repo / "apps/web/via-dir-link.yaml")  # through another link
    os.symlink("../../../etc", repo / "apps/web/escape")  # leaves the repository
    os.symlink("/etc/passwd", repo / "apps/web/abs")  # absolute
    os.symlink("nowhere.yaml", repo / "apps/web/dangling")
    os.symlink("..", repo / "apps/web/loop")  # back to an ancestor
    sha = commit(repo, {}, "links")

    files, problems = local(repo).files(sha, "apps/web")
    assert files == {
        "apps/web/alias.yaml": b"kind: ConfigMap\n",
        "apps/web/base/svc.yaml": b"kind: Service\n",
        "apps/web/own.yaml": b"kind: ConfigMap\n",
        "apps/web/via-dir-link.yaml": b"kind: Service\n",
    }
    by_file = {p.location.file: p.message for p in problems if p.location}
    assert set(by_file) == {"apps/web/escape", "apps/web/abs", "apps/web/dangling", "apps/web/loop"}
    assert "leaves the repository" in by_file["apps/web/escape"]
    assert "leaves the repository" in by_file["apps/web/abs"]
    assert "does not exist" in by_file["apps/web/dangling"]
    assert "loop" in by_file["apps/web/loop"]
    assert all("not followed" in m for m in by_file.values())

    # a bad link in a directory that is also reached through a link is reported once
    os.symlink("/etc/hosts", repo / "common/base/hosts")
    sha = commit(repo, {}, "bad link in a linked dir")
    files, problems = local(repo).files(sha)
    assert "common/base/svc.yaml" in files and "apps/web/base/svc.yaml" in files
    assert [p.location.file for p in problems if p.location].count("common/base/hosts") == 1


def test_subpath_through_symlinked_directory(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"deploy/web/a.yaml": "a\n"})
    os.symlink("deploy", repo / "apps")
    sha = commit(repo, {}, "alias")
    assert local(repo).files(sha, "apps/web") == ({"apps/web/a.yaml": b"a\n"}, [])


def test_submodules_are_skipped(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a.yaml": "a\n"})
    other = git(repo, "rev-parse", "HEAD")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{other},vendor/lib")
    git(repo, "commit", "-q", "-m", "add gitlink")
    files, problems = local(repo).files("HEAD")
    assert files == {"a.yaml": b"a\n"} and problems == []


def test_missing_branch_and_bad_paths(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a": "1"})
    with pytest.raises(SourceError) as err:
        local(repo, branch="release").head()
    assert "'config'" in str(err.value) and "'release'" in str(err.value) and "main" in str(err.value)
    with pytest.raises(SourceError, match="does not exist"):
        local(tmp_path / "nope").head()
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="not a git repository"):
        local(tmp_path / "plain").head()
    with pytest.raises(SourceError, match="not a valid branch name"):
        local(repo, branch="bad..name").head()
    with pytest.raises(SourceError, match="exactly one"):
        GitSource(SourceSpec(name="x", path=str(repo), url="file:///x"))


def test_blocking_calls_run_in_threads(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a": "1"})
    src = local(repo)

    async def main() -> tuple[Revision, tuple[dict[str, bytes], list[Problem]]]:
        head = await asyncio.to_thread(src.head)
        return head, await asyncio.to_thread(src.files, head.sha)

    head, (files, _) = asyncio.run(main())
    assert files == {"a": b"1"} and head.sha == git(repo, "rev-parse", "HEAD")


# ----- remote --------------------------------------------------------------------------------------


def test_remote_clone_to_cache_and_fetch(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    bare, other = remote
    src = remote_source(bare, tmp_path)
    head = src.head()
    assert head.sha == git(bare, "rev-parse", "main")
    assert (tmp_path / "cache/web/HEAD").is_file() and git(
        tmp_path / "cache/web", "rev-parse", "--is-bare-repository"
    ) == "true"
    assert src.files(head.sha)[0] == {"apps/web/deploy.yaml": b"replicas: 1\n"}
    assert src.fetch() is None

    new = commit(other, {"apps/web/deploy.yaml": "replicas: 3\n"}, "scale web")
    git(other, "push", "-q", "origin", "main")
    assert src.head().sha == head.sha  # head() does not hit the network
    moved = src.fetch()
    assert moved is not None and moved.sha == new and moved.subject == "scale web"
    assert src.files(new, "apps/web")[0] == {"apps/web/deploy.yaml": b"replicas: 3\n"}
    assert src.fetch() is None

    again = remote_source(bare, tmp_path)  # an existing cache is reused
    assert again.head().sha == new

    elsewhere = new_repo(tmp_path / "elsewhere", {"x": "1"})  # the configured url changed
    moved_url = remote_source(elsewhere, tmp_path)
    assert moved_url.head().sha == git(elsewhere, "rev-parse", "HEAD")


def test_remote_default_cache_dir_and_errors(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    bare, _ = remote
    src = GitSource(SourceSpec(name="web-src", url=str(bare)))
    src.head()
    assert (tmp_path / "xdg-cache/driftdeck/sources/web-src/HEAD").is_file()

    with pytest.raises(SourceError) as err:
        remote_source(bare, tmp_path, branch="release").head()
    assert "'web-src'" in str(err.value) and "'release'" in str(err.value) and "not found" in str(err.value)

    unreachable = GitSource(
        SourceSpec(name="gone", url=str(tmp_path / "nope.git")), cache_dir=tmp_path / "c2"
    )
    with pytest.raises(SourceError, match=r"'gone'.*fetching"):
        unreachable.head()


# ----- revert --------------------------------------------------------------------------------------


def history(repo: Path) -> list[str]:
    shas = [commit(repo, {"app.yaml": "v: 1\n", "keep.yaml": "k\n"}, "one")]
    shas.append(commit(repo, {"app.yaml": "v: 2\n"}, "two"))
    shas.append(commit(repo, {"app.yaml": "v: 3\n", "extra.yaml": "e\n"}, "three"))
    shas.append(commit(repo, {"keep.yaml": None}, "four"))
    return shas


def test_revert_last_on_local_checkout(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    shas = history(repo)
    src = local(repo)
    src.head()
    new = src.revert(last=True)

    assert git(repo, "rev-parse", "main") == new.sha == git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-parse", f"{new.sha}^") == shas[3]
    assert tree_of(repo, new.sha) == tree_of(repo, shas[2])
    assert new.message == f'Revert "four"\n\nThis reverts commit {shas[3]}.\n\n{REVERT_TRAILER}'
    assert new.author == "driftdeck <driftdeck@localhost>"
    assert git(repo, "log", "-1", "--format=%(trailers:key=Reverted-by,valueonly)", new.sha) == "driftdeck"
    assert (repo / "keep.yaml").read_text() == "k\n"  # the checkout followed
    assert_clean(repo, new.sha)
    assert src.fetch() is None  # our own commit is the known head


def test_revert_to_sha_one_commit_each(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    shas = history(repo)
    src = local(repo)
    assert [r.sha for r in src.revert_targets(shas[1])] == [shas[3], shas[2]]
    new = src.revert(shas[1], author="Ada Ops <ada@example.org>")

    assert tree_of(repo, new.sha) == tree_of(repo, shas[1])
    first, second = git(repo, "rev-list", "--reverse", f"{shas[3]}..{new.sha}").split()
    assert git(repo, "rev-parse", f"{first}^") == shas[3] and second == new.sha
    assert f"This reverts commit {shas[3]}." in src.revision(first).message
    assert new.subject == 'Revert "three"' and f"This reverts commit {shas[2]}." in new.message
    assert new.author == "Ada Ops <ada@example.org>"
    assert git(repo, "log", "-1", "--format=%cn <%ce>", new.sha) == "Ada Ops <ada@example.org>"
    assert_clean(repo, new.sha)

    with pytest.raises(SourceError, match="nothing to revert"):
        src.revert(new.sha)
    with pytest.raises(ValueError):
        src.revert()


def test_revert_to_across_a_merge(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a": "1\n"}, "base")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"b": "feature\n"}, "feature work")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"a": "2\n"}, "main work")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    new = local(repo).revert(base)
    assert tree_of(repo, new.sha) == tree_of(repo, base)
    assert_clean(repo, new.sha)


def test_revert_pushes_for_remote(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    bare, other = remote
    before = commit(other, {"apps/web/deploy.yaml": "replicas: 9\n"}, "bad scale")
    git(other, "push", "-q", "origin", "main")
    src = remote_source(bare, tmp_path)
    assert src.head().sha == before

    new = src.revert(last=True)
    assert git(bare, "rev-parse", "main") == new.sha
    assert git(bare, "rev-parse", f"{new.sha}^") == before
    assert tree_of(bare, new.sha) == tree_of(bare, f"{before}^")
    assert new.subject == 'Revert "bad scale"' and before in new.message
    assert src.head().sha == new.sha

    # a colleague moved the branch meanwhile: the push is refused and nothing changes
    git(other, "pull", "-q", "--ff-only")
    moved = commit(other, {"x": "1"}, "colleague")
    git(other, "push", "-q", "origin", "main")
    with pytest.raises(SourceError, match="rejected"):
        src.revert(last=True)
    assert git(bare, "rev-parse", "main") == moved


def test_revert_conflict_leaves_repository_clean(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    shas = history(repo)
    src = local(repo)
    with pytest.raises(SourceError) as err:
        src.revert(shas[1], only=True)  # "two" changed app.yaml, "three" changed it again
    assert "app.yaml" in str(err.value) and "conflict" in str(err.value) and shas[1][:7] in str(err.value)
    assert_clean(repo, shas[3])
    assert src.revert(shas[3], only=True).subject == 'Revert "four"'  # still usable afterwards


def test_revert_refuses_dirty_or_other_branch(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    shas = history(repo)
    src = local(repo)
    (repo / "app.yaml").write_text("edited\n")
    with pytest.raises(SourceError, match=r"uncommitted changes \(app\.yaml\)"):
        src.revert(last=True)
    git(repo, "checkout", "-q", "--", "app.yaml")
    git(repo, "checkout", "-q", "-b", "other")
    with pytest.raises(SourceError, match="'other' checked out, not the configured branch 'main'"):
        src.revert(last=True)
    assert git(repo, "rev-parse", "main") == shas[3]


def test_revert_in_local_bare_repository(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    bare, _ = remote
    before = git(bare, "rev-parse", "main")
    src = GitSource(SourceSpec(name="bare", path=str(bare)))
    new = src.revert(last=True)
    assert git(bare, "rev-parse", "main") == new.sha and git(bare, "rev-parse", f"{new.sha}^") == before


def test_shell_metacharacters_are_data(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    evil = EVIL.format(m=marks)
    branch = f"x-$(touch${{IFS}}{marks}/pwned-branch)-`touch${{IFS}}{marks}/pwned-branch2`"
    repo = new_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", branch)
    commit(repo, {"a": "1"}, "safe")
    bad = commit(repo, {"a": "2"}, evil)

    src = local(repo, branch=branch)
    assert src.head().subject == evil
    new = src.revert(last=True, author=f"Mal $(touch {marks}/pwned-author) <m@example.org>")
    assert new.message == f'Revert "{evil}"\n\nThis reverts commit {bad}.\n\n{REVERT_TRAILER}'
    assert new.author == f"Mal $(touch {marks}/pwned-author) <m@example.org>"
    assert git(repo, "rev-parse", branch) == new.sha
    assert list(marks.iterdir()) == []


# ----- watch ---------------------------------------------------------------------------------------


async def next_revision(it: AsyncGenerator[Revision, None], deadline: float = 10.0) -> Revision:
    return await asyncio.wait_for(it.__anext__(), deadline)


async def test_watch_local_yields_new_commits(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a": "1"})
    src = local(repo)
    it = src.watch(interval=60)
    first = asyncio.ensure_future(next_revision(it))
    await asyncio.sleep(0.8)  # let the watcher start (a missed event would only cost the interval)
    started = time.monotonic()
    sha = await asyncio.to_thread(commit, repo, {"a": "2"}, "two")
    rev = await first
    assert rev.sha == sha
    assert time.monotonic() - started < 10  # well under the 60 s re-read: it came from the watcher

    second = asyncio.ensure_future(next_revision(it))
    await asyncio.to_thread(git, repo, "pack-refs", "--all")  # touches refs, no new commit
    sha3 = await asyncio.to_thread(commit, repo, {"a": "3"}, "three")
    assert (await second).sha == sha3  # no duplicate of `sha` in between
    await it.aclose()


async def test_watch_since_reports_missed_head(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a": "1"})
    old = git(repo, "rev-parse", "HEAD")
    new = commit(repo, {"a": "2"}, "two")
    it = local(repo).watch(since=old, interval=60)
    assert (await next_revision(it)).sha == new
    await it.aclose()


async def test_watch_remote_polls(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    bare, other = remote
    src = remote_source(bare, tmp_path)
    errors: list[SourceError] = []
    it = src.watch(interval=0.2, on_error=errors.append)
    pending = asyncio.ensure_future(next_revision(it))
    await asyncio.sleep(0.3)
    sha = await asyncio.to_thread(commit, other, {"apps/web/deploy.yaml": "replicas: 2\n"}, "two")
    await asyncio.to_thread(git, other, "push", "-q", "origin", "main")
    assert (await pending).sha == sha
    await it.aclose()
    assert errors == []


async def test_watch_remote_reports_errors_and_goes_on(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    bare, other = remote
    errors: list[SourceError] = []
    it = remote_source(bare, tmp_path, branch="release").watch(interval=0.2, on_error=errors.append)
    pending = asyncio.ensure_future(next_revision(it))
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert errors and "'release' not found" in str(errors[0])
    await asyncio.to_thread(git, other, "push", "-q", "origin", "main:release")
    assert (await pending).sha == git(bare, "rev-parse", "release")
    await it.aclose()
