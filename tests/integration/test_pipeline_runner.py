"""core.pipelines.runner (and GitSource.commit_files) with real processes and git repositories."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.model import Revision, SourceSpec
from core.pipelines import runner
from core.pipelines.runner import ActionContext, ActionResult, promote, run_command
from core.pipelines.types import ActionSpec, PromoteAction, RunAction, Status
from core.source import GitSource, SourceError

pytestmark = pytest.mark.timeout(60)

PY = sys.executable
EVIL = "$(touch {m}/pwned-dollar) `touch {m}/pwned-tick` \"dq\" 'sq' ; touch {m}/pwned-semi && echo $HOME"
DEPLOY = """\
# web deployment, promoted by CI
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app.kubernetes.io/version: "1.0"  # bumped on promote
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/version: "1.0"
spec:
  replicas: 2  # scaled by hand
  template:
    spec:
      containers:
        # the application
        - name: web
          image: registry.example/web:old  # set by driftdeck
        - name: proxy
          image: 'registry.example/proxy:1'
"""


# ----- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user/system git config; a fixed identity for the tests' own commits."""
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[user]\n\tname = Tess Ter\n\temail = tess@example.org\n[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {args} failed: {proc.stderr}"
    return proc.stdout.strip()


def commit(repo: Path, files: Mapping[str, str], message: str) -> str:
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def new_repo(path: Path, files: Mapping[str, str], message: str = "initial") -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files, message)
    return path


def local(repo: Path, name: str = "app") -> GitSource:
    return GitSource(SourceSpec(name=name, path=str(repo)))


class Log:
    """A ``ctx.log`` that keeps lines (or only counts them)."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.count = 0
        self.lines: list[tuple[str, str]] = []
        self.hook: Callable[[], None] | None = None

    def __call__(self, stream: str, line: str) -> None:
        self.count += 1
        if self.keep:
            self.lines.append((stream, line))
        if self.hook is not None:
            self.hook()

    def of(self, stream: str) -> list[str]:
        return [line for s, line in self.lines if s == stream]


def context(
    tmp_path: Path,
    source: GitSource,
    revision: Revision | None = None,
    *,
    variables: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    log: Log | None = None,
) -> ActionContext:
    return ActionContext(
        run_id="run-0001",
        pipeline="web",
        stage="build",
        action="compile",
        revision=revision or source.head(),
        source=source,
        variables=variables or {},
        outputs=outputs or {},
        log=log or Log(),
        work_root=tmp_path / "work",
    )


def run_spec(
    command: tuple[str, ...] | str, timeout: float = 30.0, env: dict[str, str] | None = None
) -> ActionSpec:
    return ActionSpec(
        name="compile", kind="run", timeout=timeout, run=RunAction(command, tuple((env or {}).items()))
    )


async def run(spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event | None = None) -> ActionResult:
    return await run_command(spec, ctx, abandon or asyncio.Event())


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


async def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def app(tmp_path: Path) -> tuple[Path, str, str]:
    """An application repository: (path, first sha, second sha)."""
    repo = new_repo(tmp_path / "app", {"app.txt": "v1\n", "build.sh": "echo built\n"}, "first")
    first = git(repo, "rev-parse", "HEAD")
    second = commit(repo, {"app.txt": "v2\n"}, "second")
    return repo, first, second


# ----- run: success, outputs, environment ------------------------------------------------------------


async def test_success_outputs_and_a_clean_worktree_of_the_revision(
    tmp_path: Path, app: tuple[Path, str, str]
) -> None:
    repo, first, _second = app
    (repo / "app.txt").write_text("uncommitted\n")  # the user's checkout is not what runs
    source = local(repo)
    log = Log()
    ctx = context(tmp_path, source, source.revision(first), log=log)
    script = (
        'cat app.txt; git status --porcelain; echo oops >&2; printf "%s\\n" '
        '"IMAGE=registry/web:$REVISION_SHORT" "bad line" "" "# note" "TAG=a=b" >> "$DRIFTDECK_OUTPUT"'
    )
    result = await run(run_spec(script), ctx)

    assert result.status is Status.SUCCEEDED and result.exit_code == 0, result
    assert result.outputs == {"IMAGE": f"registry/web:{first[:7]}", "TAG": "a=b"}
    assert log.of("stdout") == ["v1"]  # the revision's content, and a clean tree
    assert log.of("stderr") == ["oops"]
    assert any("line 2" in line and "bad line" in line for line in log.of(runner.LOG_STREAM))
    assert "1 DRIFTDECK_OUTPUT problem" in result.message
    assert not (tmp_path / "work" / "run-0001").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert (repo / "app.txt").read_text() == "uncommitted\n"


async def test_environment_is_minimal_and_complete(
    tmp_path: Path, app: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _first, second = app
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    source = local(repo)
    log = Log()
    variables = {"VERSION": "1.2", "my-var": "m", "PATH": "/evil", "LD_PRELOAD": "/evil.so"}
    outputs = {"build.unit-test.COVERAGE": "91", "build.compile.IMAGE": "img"}
    ctx = context(tmp_path, source, variables=variables, outputs=outputs, log=log)
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    spec = run_spec((PY, "-c", dump), env={"EXTRA": "x y", "REVISION": "forged"})
    result = await run(spec, ctx)

    assert result.status is Status.SUCCEEDED, (result, log.lines)
    env = json.loads(log.of("stdout")[0])
    env.pop("LC_CTYPE", None)  # the interpreter may set it
    output_file = env.pop("DRIFTDECK_OUTPUT")
    assert output_file.endswith("build-compile.output") and "work/run-0001" in output_file
    expected = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    expected |= {
        "DRIFTDECK_RUN_ID": "run-0001",
        "DRIFTDECK_PIPELINE": "web",
        "DRIFTDECK_STAGE": "build",
        "DRIFTDECK_ACTION": "compile",
        "DRIFTDECK_BRANCH": "main",
        "DRIFTDECK_COMMIT_MESSAGE": "second",
        "REVISION": second,
        "REVISION_SHORT": second[:7],
        "VERSION": "1.2",
        "VAR_VERSION": "1.2",
        "VAR_MY_VAR": "m",
        "VAR_PATH": "/evil",
        "VAR_LD_PRELOAD": "/evil.so",
        "OUT_BUILD_UNIT_TEST_COVERAGE": "91",
        "OUT_BUILD_COMPILE_IMAGE": "img",
        "EXTRA": "x y",
    }
    assert env == expected


async def test_untrusted_data_reaches_the_command_only_as_data(
    tmp_path: Path, app: tuple[Path, str, str]
) -> None:
    repo, _first, _second = app
    marker = tmp_path / "markers"
    marker.mkdir()
    evil = EVIL.format(m=marker)
    message = f"{evil}\n\nbody `id` $(id)"
    source = local(repo)
    revision = replace(source.head(), message=message, branch=f"feat/{evil}")
    variables = {"EVIL": evil, f"x$(touch {marker}/pwned-name)": "v"}
    names = ("DRIFTDECK_COMMIT_MESSAGE", "DRIFTDECK_BRANCH", "VAR_EVIL", "EVIL")

    log = Log()
    ctx = context(tmp_path, source, revision, variables=variables, log=log)
    dump = f"import json, os; print(json.dumps([os.environ[k] for k in {names!r}]))"
    assert (await run(run_spec((PY, "-c", dump)), ctx)).status is Status.SUCCEEDED
    assert json.loads(log.of("stdout")[0]) == [message, f"feat/{evil}", evil, evil]

    log = Log()
    ctx = context(tmp_path, source, revision, variables=variables, log=log)
    script = 'printf "%s\\n" "$DRIFTDECK_BRANCH" "$VAR_EVIL" "$EVIL"; printf "%s" "$DRIFTDECK_COMMIT_MESSAGE"'
    result = await run(run_spec(script), ctx)
    assert result.status is Status.SUCCEEDED, result
    assert log.of("stdout") == [f"feat/{evil}", evil, evil, *message.split("\n")]
    assert list(marker.iterdir()) == []


# ----- run: failures, timeouts, abandon ---------------------------------------------------------------


async def test_exit_codes_and_command_not_found(tmp_path: Path, app: tuple[Path, str, str]) -> None:
    source = local(app[0])
    ctx = context(tmp_path, source)

    result = await run(run_spec("exit 3"), ctx)
    assert (result.status, result.message, result.exit_code) == (Status.FAILED, "exit code 3", 3)

    result = await run(run_spec(("no-such-command-xyz", "--flag")), ctx)
    assert result.status is Status.FAILED and result.message == "command not found: no-such-command-xyz"

    result = await run(run_spec("no-such-command-xyz --flag"), ctx)
    assert result.status is Status.FAILED and result.exit_code == 127
    assert "command not found: no-such-command-xyz" in result.message

    result = await run(run_spec(("./build.sh",)), ctx)  # not executable
    assert result.status is Status.FAILED and "not executable" in result.message

    result = await run(run_spec((PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")), ctx)
    assert result.status is Status.FAILED and result.message == "killed by signal SIGSEGV"


async def test_timeout_of_a_command_that_never_exits(tmp_path: Path, app: tuple[Path, str, str]) -> None:
    ctx = context(tmp_path, local(app[0]))
    for command in (("sleep", "300"), (PY, "-c", "while True: pass")):
        start = time.monotonic()
        result = await run(run_spec(command, timeout=0.5), ctx)
        elapsed = time.monotonic() - start
        assert result.status is Status.FAILED and result.message == "timed out after 0.5s", result
        assert 0.5 <= elapsed < 3.0


async def test_a_command_ignoring_sigterm_is_killed(
    tmp_path: Path, app: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "KILL_GRACE", 1.0)
    log = Log()
    ctx = context(tmp_path, local(app[0]), log=log)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(300)"
    start = time.monotonic()
    result = await run(run_spec((PY, "-c", stubborn), timeout=1.0), ctx)
    elapsed = time.monotonic() - start
    assert result.status is Status.FAILED and result.message == "timed out after 1s"
    assert result.exit_code == -9  # SIGKILL, after the grace
    assert 1.9 <= elapsed < 5.0
    assert log.of("stdout") == ["ready"]


async def test_abandon_kills_the_whole_process_group(tmp_path: Path, app: tuple[Path, str, str]) -> None:
    pidfile = tmp_path / "grandchild.pid"
    ctx = context(tmp_path, local(app[0]))
    script = f'sleep 300 & echo $! > "$PIDFILE"; "{PY}" -c "import time; time.sleep(300)"'
    abandon = asyncio.Event()
    task = asyncio.create_task(run(run_spec(script, env={"PIDFILE": str(pidfile)}), ctx, abandon))
    grandchild = int(await wait_for_file(pidfile))
    assert alive(grandchild)
    start = time.monotonic()
    abandon.set()
    result = await task
    assert result.status is Status.ABANDONED and result.message == "abandoned"
    assert time.monotonic() - start < 3.0
    assert not alive(grandchild)
    assert not (tmp_path / "work" / "run-0001").exists()

    abandon = asyncio.Event()
    abandon.set()
    assert (await run(run_spec("true"), ctx, abandon)).status is Status.ABANDONED


async def test_children_left_behind_are_killed_when_the_command_exits(
    tmp_path: Path, app: tuple[Path, str, str]
) -> None:
    pidfile = tmp_path / "bg.pid"
    log = Log()
    ctx = context(tmp_path, local(app[0]), log=log)
    start = time.monotonic()
    result = await run(
        run_spec('sleep 300 & echo $! > "$PIDFILE"; echo done', env={"PIDFILE": str(pidfile)}), ctx
    )
    assert result.status is Status.SUCCEEDED and log.of("stdout") == ["done"]
    assert time.monotonic() - start < 5.0
    assert not alive(int(pidfile.read_text()))


async def test_cancelling_the_runner_kills_the_command(tmp_path: Path, app: tuple[Path, str, str]) -> None:
    pidfile = tmp_path / "child.pid"
    ctx = context(tmp_path, local(app[0]))
    task = asyncio.create_task(
        run(run_spec('echo $$ > "$PIDFILE"; exec sleep 300', env={"PIDFILE": str(pidfile)}), ctx)
    )
    pid = int(await wait_for_file(pidfile))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if not alive(pid):
            break
        await asyncio.sleep(0.02)
    assert not alive(pid)
    assert not (tmp_path / "work" / "run-0001").exists()


# ----- run: output volume and shape --------------------------------------------------------------------


async def test_fifty_megabytes_of_output_are_streamed(tmp_path: Path, app: tuple[Path, str, str]) -> None:
    log = Log(keep=False)
    ctx = context(tmp_path, local(app[0]), log=log)
    baseline = rss_kib()
    peak = baseline

    def sample() -> None:
        nonlocal peak
        if log.count % 20000 == 0:
            peak = max(peak, rss_kib())

    log.hook = sample
    chunks, per_chunk = 524, 1000  # 524,000 lines of 100 bytes: 52.4 MB
    writer = (
        f"import sys; chunk = (b'x' * 99 + b'\\n') * {per_chunk}\n"
        f"for _ in range({chunks}): sys.stdout.buffer.write(chunk)"
    )
    result = await run(run_spec((PY, "-c", writer)), ctx)
    peak = max(peak, rss_kib())
    assert result.status is Status.SUCCEEDED, result
    assert log.count == chunks * per_chunk
    assert peak - baseline < 50 * 1024, f"RSS grew by {(peak - baseline) // 1024} MiB"


async def test_long_lines_are_split_and_bad_bytes_replaced(
    tmp_path: Path, app: tuple[Path, str, str]
) -> None:
    log = Log()
    ctx = context(tmp_path, local(app[0]), log=log)
    writer = (
        "import sys; w = sys.stdout.buffer.write\n"
        "w(b'a' * 200000 + b'\\n'); w(b'\\xff\\xfe bad\\r\\n'); w(('b' + '\\u00e9' * 40000).encode()); "
        "sys.stderr.write('no newline at the end')"
    )
    result = await run(run_spec((PY, "-c", writer)), ctx)
    assert result.status is Status.SUCCEEDED
    out = log.of("stdout")
    limit = runner.LINE_LIMIT
    assert [len(line) for line in out[:4]] == [limit, limit, limit, 200000 - 3 * limit]
    assert out[4] == "\ufffd\ufffd bad"
    assert out[5] == "b" + "\u00e9" * ((limit - 1) // 2)  # cut before a split character, not inside it
    assert "".join(out[5:]) == "b" + "\u00e9" * 40000 and len(out) == 7
    assert log.of("stderr") == ["no newline at the end"]


async def test_remote_source_runs_from_its_cache_clone(tmp_path: Path, app: tuple[Path, str, str]) -> None:
    repo, first, _second = app
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    source = GitSource(SourceSpec(name="app", url=str(bare)), cache_dir=tmp_path / "cache")
    log = Log()
    revision = Revision(first, branch="main")  # not fetched into the cache yet: run_command fetches
    script = 'cat app.txt; echo "$DRIFTDECK_COMMIT_MESSAGE"'
    result = await run(run_spec(script), context(tmp_path, source, revision, log=log))
    assert result.status is Status.SUCCEEDED and log.of("stdout") == ["v1", "first"]
    assert git(tmp_path / "cache", "worktree", "list", "--porcelain").count("worktree ") == 1


# ----- promote -----------------------------------------------------------------------------------------


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    return new_repo(tmp_path / "gitops", {"apps/web/deploy.yaml": DEPLOY, "README.md": "config\n"}, "add web")


def promote_spec(
    *values: tuple[str, str], message: str = "", file: str = "apps/web/deploy.yaml"
) -> ActionSpec:
    return ActionSpec(name="deploy", kind="promote", promote=PromoteAction("gitops", file, values, message))


IMAGE = ("spec.template.spec.containers[name=web].image", "registry.example/web:${REVISION_SHORT}")
VERSION = ('metadata.labels["app.kubernetes.io/version"]', "${VERSION}")


async def test_promote_edits_in_place_and_commits_with_trailers(
    tmp_path: Path, app: tuple[Path, str, str], gitops: Path
) -> None:
    source, target = local(app[0]), local(gitops, "gitops")
    ctx = context(
        tmp_path, source, variables={"VERSION": "1.1"}, outputs={"build.compile.DIGEST": "sha256:ab"}
    )
    sha = ctx.revision.sha
    before = git(gitops, "rev-parse", "HEAD")
    replicas = ("spec.replicas", "${build.compile.DIGEST}$${literal}")  # not a number: becomes a string
    result = await promote(promote_spec(IMAGE, VERSION, replicas), ctx, target)

    assert result.status is Status.SUCCEEDED, result
    head = git(gitops, "rev-parse", "HEAD")
    assert result.outputs == {"PROMOTED_SHA": head, "PROMOTED_FILE": "apps/web/deploy.yaml"}
    assert git(gitops, "rev-parse", "HEAD^") == before
    expected = (
        DEPLOY.replace("web:old", f"web:{sha[:7]}")
        .replace('version: "1.0"', 'version: "1.1"')
        .replace("replicas: 2", 'replicas: "sha256:ab${literal}"')
    )
    assert (gitops / "apps/web/deploy.yaml").read_text() == expected  # the checkout moved, comments kept
    assert git(gitops, "status", "--porcelain") == ""
    message = git(gitops, "log", "-1", "--format=%B")
    assert message.startswith("promote web: apps/web/deploy.yaml\n")
    trailers = git(gitops, "log", "-1", "--format=%(trailers:only,unfold)")
    assert trailers.splitlines() == [
        "Driftdeck-Run: run-0001",
        "Driftdeck-Pipeline: web",
        f"Driftdeck-Source-Revision: {sha}",
    ]
    assert git(gitops, "log", "-1", "--format=%an <%ae>") == "driftdeck <driftdeck@localhost>"

    again = await promote(promote_spec(IMAGE, VERSION, replicas), ctx, target)  # no-op
    assert again.status is Status.SUCCEEDED and again.message.startswith("already at value")
    assert again.outputs["PROMOTED_SHA"] == head == git(gitops, "rev-parse", "HEAD")


async def test_promote_creates_missing_keys_and_uses_the_message_template(
    tmp_path: Path, app: tuple[Path, str, str], gitops: Path
) -> None:
    ctx = context(tmp_path, local(app[0]))
    spec = promote_spec(
        ("spec.template.metadata.annotations.revision", "${REVISION}"),
        ("spec.replicas", "3"),
        message="deploy ${REVISION_SHORT} `id` $(id)",
    )
    result = await promote(spec, ctx, local(gitops, "gitops"))
    assert result.status is Status.SUCCEEDED, result
    text = (gitops / "apps/web/deploy.yaml").read_text()
    assert text.endswith(f"    metadata:\n      annotations:\n        revision: {ctx.revision.sha}\n")
    assert "  replicas: 3  # scaled by hand\n" in text  # stays a number
    assert "# web deployment, promoted by CI" in text and "# the application" in text
    assert "# bumped on promote" in text and "# set by driftdeck" in text
    assert git(gitops, "log", "-1", "--format=%s") == f"deploy {ctx.revision.short} `id` $(id)"


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ((("spec.replicas", "${NOPE}"),), "unknown variable ${NOPE} in the value for spec.replicas"),
        ((("spec.template.spec.containers[name=db].image", "x"),), "containers[name=db].image: not found"),
        ((("spec.template.spec", "x"),), "spec.template.spec is a mapping, not a value"),
        ((("metadata.annotations.x", "y"),), "could be created in several"),  # Service and Deployment
        ((("spec..replicas", "1"),), "invalid path"),
    ],
)
async def test_promote_errors_change_nothing(
    tmp_path: Path, app: tuple[Path, str, str], gitops: Path, values: tuple[tuple[str, str], ...], error: str
) -> None:
    before = git(gitops, "rev-parse", "HEAD")
    result = await promote(promote_spec(*values), context(tmp_path, local(app[0])), local(gitops, "gitops"))
    assert result.status is Status.FAILED and error in result.message, result
    assert git(gitops, "rev-parse", "HEAD") == before and git(gitops, "status", "--porcelain") == ""


async def test_promote_missing_file_and_message_variables(
    tmp_path: Path, app: tuple[Path, str, str], gitops: Path
) -> None:
    ctx = context(tmp_path, local(app[0]))
    result = await promote(promote_spec(IMAGE, file="apps/db/deploy.yaml"), ctx, local(gitops, "gitops"))
    assert result.status is Status.FAILED and "apps/db/deploy.yaml" in result.message
    result = await promote(promote_spec(IMAGE, message="for ${TICKET}"), ctx, local(gitops, "gitops"))
    assert result.status is Status.FAILED and "${TICKET}" in result.message


async def test_promote_to_a_remote_pushes_and_retries_a_lost_race(
    tmp_path: Path, app: tuple[Path, str, str], gitops: Path
) -> None:
    bare = tmp_path / "gitops.git"
    git(tmp_path, "clone", "-q", "--bare", str(gitops), str(bare))
    colleague = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(bare), str(colleague))
    target = GitSource(SourceSpec(name="gitops", url=str(bare)), cache_dir=tmp_path / "cache")
    log = Log()
    ctx = context(tmp_path, local(app[0]), variables={"VERSION": "2.0"}, log=log)

    original = target.commit_files
    calls = 0

    def racing(changes: Mapping[str, bytes], message: str, **kwargs: Any) -> Revision | None:
        nonlocal calls
        calls += 1
        if calls == 1:  # a colleague pushes between our read and our push
            commit(colleague, {"README.md": "changed by a colleague\n"}, "colleague")
            git(colleague, "push", "-q", "origin", "main")
        return original(changes, message, **kwargs)

    target.commit_files = racing  # type: ignore[method-assign]
    result = await promote(promote_spec(IMAGE, VERSION), ctx, target)

    assert result.status is Status.SUCCEEDED, result
    assert calls == 2 and any("retrying" in line for line in log.of(runner.LOG_STREAM))
    pushed = git(bare, "rev-parse", "main")
    assert result.outputs["PROMOTED_SHA"] == pushed
    assert git(bare, "log", "-1", "--format=%s", "main^") == "colleague"
    assert git(bare, "show", "main:README.md") == "changed by a colleague"
    assert f"web:{ctx.revision.short}" in git(bare, "show", "main:apps/web/deploy.yaml")
    assert "Driftdeck-Run: run-0001" in git(bare, "log", "-1", "--format=%B", "main")


# ----- GitSource.commit_files ----------------------------------------------------------------------------


def test_commit_files_on_a_local_checkout(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"a.yaml": "a: 1\n", "run.sh": "#!/bin/sh\n", "dir/x": "x\n"})
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("a.yaml")
    base = commit(repo, {}, "link")
    source = local(repo)

    rev = source.commit_files(
        {"a.yaml": b"a: 2\n", "run.sh": b"#!/bin/sh\necho\n", "new/b.yaml": b"b\n"},
        "update things\n\nKey: value",
        author="Robo <robo@example.org>",
    )
    assert (
        rev is not None
        and rev.sha == git(repo, "rev-parse", "HEAD")
        and rev.author == "Robo <robo@example.org>"
    )
    assert git(repo, "rev-parse", "HEAD^") == base
    assert git(repo, "log", "-1", "--format=%B") == "update things\n\nKey: value"
    assert (repo / "a.yaml").read_text() == "a: 2\n" and (repo / "new/b.yaml").read_text() == "b\n"
    assert git(repo, "ls-tree", "HEAD", "run.sh").startswith("100755 ")
    assert git(repo, "status", "--porcelain") == ""
    assert source.head().sha == rev.sha

    assert source.commit_files({"a.yaml": b"a: 2\n"}, "nothing") is None
    with pytest.raises(SourceError, match="moved from"):
        source.commit_files({"a.yaml": b"a: 3\n"}, "stale", base=base)
    for path, why in (("link", "symlink"), ("dir", "directory"), ("a.yaml/x", "a file"), ("../x", "plain")):
        with pytest.raises(SourceError, match=why):
            source.commit_files({path: b"x"}, "bad")
    (repo / "a.yaml").write_text("dirty\n")
    with pytest.raises(SourceError, match=r"cannot commit: .* uncommitted changes"):
        source.commit_files({"dir/x": b"y\n"}, "dirty")
    assert git(repo, "rev-parse", "HEAD") == rev.sha


def test_commit_files_in_a_bare_repository(tmp_path: Path) -> None:
    seed = new_repo(tmp_path / "seed", {"a.yaml": "a: 1\n"})
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    source = local(bare)
    rev = source.commit_files({"a.yaml": b"a: 2\n"}, "bump")
    assert rev is not None and git(bare, "rev-parse", "main") == rev.sha
    assert git(bare, "show", "main:a.yaml") == "a: 2"
