"""Run pipeline actions: commands in clean worktrees, and promotions into GitOps sources.

:func:`run_command` runs a ``run`` action in a detached ``git worktree`` of the run's
revision (of the local repository, or of a remote source's cache clone), removed
afterwards. The command is an argv list (no shell) or a string for ``/bin/sh -c``; it
gets a minimal environment (``PATH``, ``HOME``, ``LANG``, ``TMPDIR``) plus:

* ``DRIFTDECK_RUN_ID``, ``DRIFTDECK_PIPELINE``, ``DRIFTDECK_STAGE``, ``DRIFTDECK_ACTION``,
  ``DRIFTDECK_BRANCH``, ``DRIFTDECK_COMMIT_MESSAGE``, ``REVISION`` (full sha),
  ``REVISION_SHORT`` and ``DRIFTDECK_OUTPUT``: a fresh file; once the command exits 0,
  each ``KEY=VALUE`` line of it (``KEY`` an identifier) becomes an output; blank and
  ``#`` lines are skipped, other lines are reported on the ``driftdeck`` log stream;
* each pipeline variable as ``VAR_<NAME>`` (upper-cased, non-alphanumerics as ``_``) and
  under its own name when that is an identifier that would not shadow a variable above,
  ``PATH``-like basics or ones that change how programs start (``LD_*``, ``BASH_ENV``…);
* each earlier output ``STAGE.ACTION.KEY`` as ``OUT_<STAGE>_<ACTION>_<KEY>`` (same rule);
* the action's own ``env`` (it may override anything but the ``DRIFTDECK_*``/``REVISION*``
  names).

Revision data, messages, branch names and variables reach the command only through the
environment, never its command line. The command leads its own process group; its stdout
and stderr are streamed line by line to ``ctx.log`` (lines over 64 KiB are split, bad
UTF-8 replaced). When it exits, what is left of its group is stopped too; on timeout or
abandon the group gets SIGTERM and, after :data:`KILL_GRACE` seconds, SIGKILL. A process
that starts its own session escapes this (as with any process-group supervisor).

:func:`promote` sets values in a YAML file of a GitOps source and commits (and pushes)
the change with :meth:`GitSource.commit_files`. A path is dotted keys with ``[N]`` list
indexes, ``[key=value]`` list selectors and ``["quoted.key"]`` keys, e.g.
``spec.template.spec.containers[name=web].image``. It applies to every document of the
file where it exists; when it exists in none, missing mapping keys are created (never
list items) in the one document that has the longest part of the path (else an error).
Values are templates:
``${REVISION}``, ``${REVISION_SHORT}``, ``${<variable>}``, ``${STAGE.ACTION.KEY}``; ``$$``
is a literal ``$``. A value replacing a number or boolean keeps that type when it parses
as one; otherwise it is a string. Existing scalars are replaced in place in the text
(comments and layout untouched, checked by re-parsing); other edits go through a
ruamel.yaml round trip, which keeps comments and key order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import io
import itertools
import json
import logging
import os
import re
import shutil
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.model import Revision
from core.pipelines.types import ActionSpec, Status
from core.source import GitSource, SourceError

__all__ = [
    "KILL_GRACE",
    "ActionContext",
    "ActionResult",
    "PromoteError",
    "parse_path",
    "promote",
    "run_command",
    "set_yaml_values",
]

logger = logging.getLogger(__name__)

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
LINE_LIMIT = 64 * 1024  # bytes; longer lines are split
OUTPUT_LIMIT = 1024 * 1024  # bytes of DRIFTDECK_OUTPUT read
PIPE_DRAIN = 2.0  # seconds to wait for output once the process group is gone
LOG_STREAM = "driftdeck"  # the stream of driftdeck's own notes in ctx.log

_READ_CHUNK = 64 * 1024
_BASE_ENV = ("PATH", "HOME", "LANG", "TMPDIR")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STARTUP_VARS = re.compile(r"(LD_|DYLD_).*|BASH_ENV|ENV|IFS|SHELLOPTS|BASHOPTS|PS4|CDPATH|PYTHON.*")
_NOT_FOUND = re.compile(r"([^\s:]+): (?:command )?not found\s*$")


@dataclass
class ActionContext:
    """What an action runs with; ``outputs`` are earlier actions' outputs as ``STAGE.ACTION.KEY``."""

    run_id: str
    pipeline: str
    stage: str
    action: str
    revision: Revision
    source: GitSource
    variables: dict[str, str]
    outputs: dict[str, str]
    log: Callable[[str, str], None]  # (stream, line): stdout | stderr | driftdeck
    work_root: Path


@dataclass
class ActionResult:
    status: Status
    message: str
    outputs: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None


def _failed(message: str, exit_code: int | None = None) -> ActionResult:
    return ActionResult(Status.FAILED, message, exit_code=exit_code)


# ----- run ---------------------------------------------------------------------------------------


async def run_command(spec: ActionSpec, ctx: ActionContext, abandon: asyncio.Event) -> ActionResult:
    """Run ``spec.run`` in a clean worktree of ``ctx.revision`` (see the module docstring)."""
    if spec.run is None:
        return _failed(f"action {spec.name!r} has no command")
    command = spec.run.command
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    if not argv or not argv[0]:
        return _failed("empty command")
    if abandon.is_set():
        return ActionResult(Status.ABANDONED, "abandoned before it started")
    run_dir = ctx.work_root / _safe_name(ctx.run_id)
    workdir = run_dir / f"{_safe_name(ctx.stage)}-{_safe_name(ctx.action)}"
    output_file = run_dir / f"{workdir.name}.output"
    emit = _safe_log(ctx.log)
    checkout = asyncio.ensure_future(asyncio.to_thread(_add_worktree, ctx.source, ctx.revision.sha, workdir))
    try:
        try:
            rev = await asyncio.shield(checkout)
            output_file.write_bytes(b"")
            env = _environment(ctx, spec, rev, output_file)
        except (SourceError, OSError, ValueError) as err:
            return _failed(f"cannot prepare {ctx.revision.sha[:7]}: {err}")
        result = await _execute(argv, workdir, env, spec.timeout, emit, abandon)
        if result.status is Status.SUCCEEDED:
            outputs, problems = _read_outputs(output_file)
            for problem in problems:
                emit(LOG_STREAM, problem)
            result.outputs = outputs
            if problems:
                result.message += f"; {len(problems)} DRIFTDECK_OUTPUT problem(s), see the log"
        return result
    finally:
        if not checkout.done():  # cancelled meanwhile: let the checkout finish, to remove it
            await asyncio.wait([checkout])
        if not checkout.cancelled():
            checkout.exception()  # retrieved here; reported above when it mattered
        await asyncio.to_thread(_cleanup, ctx.source, workdir, output_file, run_dir)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100].lstrip(".") or "_"


def _safe_log(log: Callable[[str, str], None]) -> Callable[[str, str], None]:
    """``log`` that never raises into the pipe readers (a reader that dies would block the process)."""
    failed = False

    def emit(stream: str, line: str) -> None:
        nonlocal failed
        try:
            log(stream, line)
        except Exception:
            if not failed:
                logger.exception("action log callback failed; further failures are not reported")
            failed = True

    return emit


def _add_worktree(source: GitSource, sha: str, workdir: Path) -> Revision:
    """Check ``sha`` out, detached, at ``workdir`` (replacing a leftover); its revision."""
    try:
        rev = source.revision(sha)  # opens (or clones) the repository and checks the commit exists
    except SourceError:
        if not source.remote:
            raise
        source.fetch()  # a remote cache that has not seen the commit yet
        rev = source.revision(sha)
    if workdir.exists() or workdir.is_symlink():
        _remove_worktree(source, workdir)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    hooks = ("-c", f"core.hooksPath={os.devnull}")
    try:
        source._git([*hooks, "worktree", "add", "--detach", "--quiet", str(workdir), rev.sha])
    except SourceError:
        _remove_worktree(source, workdir)
        raise
    return rev


def _remove_worktree(source: GitSource, workdir: Path) -> None:
    source._git(["worktree", "remove", "--force", "--force", str(workdir)], check=False)
    _rmtree(workdir)
    source._git(["worktree", "prune"], check=False)


def _cleanup(source: GitSource, workdir: Path, output_file: Path, run_dir: Path) -> None:
    try:
        if (workdir / ".git").exists():
            _remove_worktree(source, workdir)
        else:
            _rmtree(workdir)
    except SourceError as err:
        logger.warning("removing worktree %s failed: %s", workdir, err)
    with contextlib.suppress(OSError):
        output_file.unlink()
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # only when empty: parallel actions of the run may still be there


def _rmtree(path: Path) -> None:
    """Remove a tree even where the command made directories read-only."""

    def retry(func: Callable[[str], object], name: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            parent = os.path.dirname(name)
            os.chmod(parent, os.stat(parent).st_mode | stat.S_IRWXU)
            func(name)

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=retry)


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _environment(ctx: ActionContext, spec: ActionSpec, rev: Revision, output_file: Path) -> dict[str, str]:
    own = {
        "DRIFTDECK_RUN_ID": ctx.run_id,
        "DRIFTDECK_PIPELINE": ctx.pipeline,
        "DRIFTDECK_STAGE": ctx.stage,
        "DRIFTDECK_ACTION": ctx.action,
        "DRIFTDECK_BRANCH": ctx.revision.branch or rev.branch,
        "DRIFTDECK_COMMIT_MESSAGE": ctx.revision.message or rev.message,
        "DRIFTDECK_OUTPUT": str(output_file),
        "REVISION": rev.sha,
        "REVISION_SHORT": rev.short,
    }
    env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
    env.setdefault("PATH", os.defpath)
    for name, value in ctx.variables.items():
        shadows = name in env or name in own or name.startswith(("DRIFTDECK_", "VAR_", "OUT_"))
        if _IDENT.fullmatch(name) and not shadows and not _STARTUP_VARS.fullmatch(name):
            env[name] = value
    env.update({f"VAR_{_env_name(k)}": v for k, v in ctx.variables.items()})
    env.update({f"OUT_{_env_name(k)}": v for k, v in ctx.outputs.items()})
    env.update(spec.run.env if spec.run else ())
    env.update(own)
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"environment variable {key!r} has a name or value that cannot be passed")
    return env


async def _execute(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    emit: Callable[[str, str], None],
    abandon: asyncio.Event,
) -> ActionResult:
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own session and process group, led by the command
        )
    except FileNotFoundError:
        return _failed(f"command not found: {argv[0]}", 127)
    except PermissionError:
        return _failed(f"command not executable: {argv[0]}", 126)
    except OSError as err:
        return _failed(f"cannot run {argv[0]}: {err.strerror or err}")
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    pgid = proc.pid
    assert proc.stdout is not None and proc.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=5)

    def on_stderr(stream: str, line: str) -> None:
        tail.append(line)
        emit(stream, line)

    readers = [
        asyncio.create_task(_pump(proc.stdout, "stdout", emit)),
        asyncio.create_task(_pump(proc.stderr, "stderr", on_stderr)),
    ]
    waiter = asyncio.create_task(protocol.exited.wait())
    stopper = asyncio.create_task(abandon.wait())
    finished = False
    try:
        done, _ = await asyncio.wait(
            {waiter, stopper}, timeout=timeout if timeout > 0 else None, return_when=asyncio.FIRST_COMPLETED
        )
        outcome = None
        if waiter not in done:
            outcome = (
                ActionResult(Status.ABANDONED, "abandoned")
                if stopper in done
                else _failed(f"timed out after {timeout:g}s")
            )
        await _stop_group(proc, protocol.exited, pgid)
        await _drain(transport, readers)
        finished = True
    finally:
        waiter.cancel()
        stopper.cancel()
        if not finished:  # cancelled or broken: no grace
            _signal_group(pgid, signal.SIGKILL)
            for task in readers:
                task.cancel()
            transport.close()
    code = proc.returncode
    if outcome is not None:
        outcome.exit_code = code
        return outcome
    if code == 0:
        return ActionResult(Status.SUCCEEDED, "exit code 0", exit_code=0)
    if code is not None and code < 0:
        return _failed(f"killed by signal {_signal_name(-code)}", code)
    if code == 127:
        names = [m.group(1) for line in tail if (m := _NOT_FOUND.search(line))]
        if names:
            return _failed(f"command not found: {names[-1]} (exit code 127)", code)
    return _failed(f"exit code {code}", code)


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Streams, plus an event set as soon as the process exits (``Process.wait`` also
    waits for the pipes, which a left-over child may hold open)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_READ_CHUNK, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


async def _pump(stream: asyncio.StreamReader, name: str, emit: Callable[[str, str], None]) -> None:
    """Read ``stream`` to EOF, emitting each line (split at :data:`LINE_LIMIT` bytes)."""
    pending = b""
    while chunk := await stream.read(_READ_CHUNK):
        pending += chunk
        if b"\n" in chunk:
            *lines, pending = pending.split(b"\n")
            for line in lines:
                _emit_line(line, name, emit)
        while len(pending) > LINE_LIMIT:
            cut = _utf8_cut(pending, LINE_LIMIT)
            emit(name, pending[:cut].decode("utf-8", "replace"))
            pending = pending[cut:]
    if pending:
        _emit_line(pending, name, emit)


def _emit_line(line: bytes, name: str, emit: Callable[[str, str], None]) -> None:
    if line.endswith(b"\r"):
        line = line[:-1]
    while len(line) > LINE_LIMIT:
        cut = _utf8_cut(line, LINE_LIMIT)
        emit(name, line[:cut].decode("utf-8", "replace"))
        line = line[cut:]
    emit(name, line.decode("utf-8", "replace"))


def _utf8_cut(data: bytes, limit: int) -> int:
    """A cut at most ``limit`` bytes into ``data`` (longer than that) not inside a UTF-8 sequence."""
    for cut in range(limit, max(limit - 4, 0), -1):
        if data[cut] & 0xC0 != 0x80:
            return cut
    return limit


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return True  # no /proc: zombies count as alive
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


async def _stop_group(proc: asyncio.subprocess.Process, exited: asyncio.Event, pgid: int) -> None:
    """SIGTERM what is left of the group, SIGKILL after :data:`KILL_GRACE`; reap the leader."""
    if proc.returncode is not None and not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KILL_GRACE
    while loop.time() < deadline:
        if proc.returncode is not None and not _group_alive(pgid):
            return
        await asyncio.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    await exited.wait()


async def _drain(transport: asyncio.SubprocessTransport, readers: list[asyncio.Task[None]]) -> None:
    """Let the readers finish; a process that left the group may hold the pipes: stop reading then."""
    _, pending = await asyncio.wait(readers, timeout=PIPE_DRAIN)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        transport.close()


def _read_outputs(path: Path) -> tuple[dict[str, str], list[str]]:
    """The ``KEY=VALUE`` lines of the output file, and problems with it."""
    try:
        with path.open("rb") as f:
            data = f.read(OUTPUT_LIMIT + 1)
    except OSError as err:
        return {}, [f"cannot read DRIFTDECK_OUTPUT: {err}"]
    problems = []
    if len(data) > OUTPUT_LIMIT:
        problems.append(f"DRIFTDECK_OUTPUT is over {OUTPUT_LIMIT} bytes; the rest is ignored")
        data = data[: data.rfind(b"\n", 0, OUTPUT_LIMIT) + 1]
    outputs: dict[str, str] = {}
    for number, raw in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not _IDENT.fullmatch(key):
            problems.append(f"DRIFTDECK_OUTPUT line {number} is not KEY=VALUE: {line[:80]!r}")
            continue
        outputs[key] = value
    return outputs, problems


# ----- promote -----------------------------------------------------------------------------------


class PromoteError(Exception):
    """A promotion that cannot be done; the message says why."""


async def promote(spec: ActionSpec, ctx: ActionContext, target: GitSource) -> ActionResult:
    """Set ``spec.promote``'s values in its file of ``target`` and commit (see the module docstring)."""
    p = spec.promote
    if p is None:
        return _failed(f"action {spec.name!r} has no promote settings")
    names = {
        **ctx.variables,
        **ctx.outputs,
        "REVISION": ctx.revision.sha,
        "REVISION_SHORT": ctx.revision.short,
    }
    file = "/".join(part for part in p.file.split("/") if part not in ("", "."))
    if not file or ".." in file.split("/"):
        return _failed(f"invalid file {p.file!r}: give a path inside the repository")
    try:
        values = [(path, _render(template, names, f"the value for {path}")) for path, template in p.set]
        subject = _render(p.message, names, "the commit message") if p.message else ""
    except PromoteError as err:
        return _failed(str(err))
    if not subject:
        subject = f"promote {ctx.pipeline}: {file}\n\n" + "\n".join(f"{k}: {v}" for k, v in values)
    trailers = {
        "Driftdeck-Run": ctx.run_id,
        "Driftdeck-Pipeline": ctx.pipeline,
        "Driftdeck-Source-Revision": ctx.revision.sha,
    }
    message = subject.rstrip() + "\n\n" + "".join(f"{k}: {_one_line(v)}\n" for k, v in trailers.items())
    for attempt in (1, 2):
        try:
            head = await asyncio.to_thread(_fresh_head, target)
            files, problems = await asyncio.to_thread(target.files, head.sha, file)
        except SourceError as err:
            return _failed(str(err))
        if file not in files:
            why = "; ".join(str(pr) for pr in problems) or ("is a directory" if files else "does not exist")
            return _failed(f"{file} in source {target.name!r} at {head.short}: {why}")
        try:
            new = set_yaml_values(files[file], values, file)
        except PromoteError as err:
            return _failed(str(err))
        done = {"PROMOTED_SHA": head.sha, "PROMOTED_FILE": file}
        if new == files[file]:
            return ActionResult(Status.SUCCEEDED, f"already at value: {file} at {head.short}", done)
        commit = functools.partial(target.commit_files, {file: new}, message, base=head.sha)
        try:
            rev = await asyncio.to_thread(commit)
        except SourceError as err:
            if attempt == 1 and await asyncio.to_thread(_moved, target, head.sha):
                ctx.log(LOG_STREAM, f"{target.name}: the branch moved during the promotion; retrying once")
                continue
            return _failed(str(err))
        if rev is None:
            return ActionResult(Status.SUCCEEDED, f"already at value: {file} at {head.short}", done)
        done["PROMOTED_SHA"] = rev.sha
        return ActionResult(Status.SUCCEEDED, f"committed {rev.short} to {target.name}: {file}", done)
    raise AssertionError("unreachable")


def _fresh_head(source: GitSource) -> Revision:
    if source.remote:
        source.fetch()
    return source.head()


def _moved(source: GitSource, sha: str) -> bool:
    try:
        return _fresh_head(source).sha != sha
    except SourceError:
        return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


_TEMPLATE = re.compile(r"\$(?:\{([^{}]*)\}|\$)")


def _render(template: str, names: dict[str, str], what: str) -> str:
    """``${NAME}`` substitution (``$$`` is ``$``); an unknown name is a :class:`PromoteError`."""

    def substitute(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return "$"
        name = m.group(1).strip()
        if name not in names:
            known = ", ".join(sorted(names)[:12])
            raise PromoteError(f"unknown variable ${{{name}}} in {what} (known: {known})")
        return names[name]

    return _TEMPLATE.sub(substitute, template)


# ----- YAML paths and edits ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Select:
    key: str
    value: str


_Step = _Key | _Index | _Select
_PLAIN_KEY = re.compile(r"[^.\[\]]+")
_BRACKET = re.compile(
    r"""\[\s*(?:
        (?P<index>\d+)
      | (?P<q>["'])(?P<qkey>(?:(?!(?P=q)).)*)(?P=q)
      | (?P<skey>[^\]=\s"']+)\s*=\s*(?:(?P<sq>["'])(?P<sqval>(?:(?!(?P=sq)).)*)(?P=sq)|(?P<sval>[^\]"']*?))
    )\s*\]""",
    re.VERBOSE,
)


def parse_path(text: str) -> list[_Step]:
    """``a.b[0].c``, ``containers[name=web].image``, ``labels["app.kubernetes.io/version"]``."""
    steps: list[_Step] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "[":
            m = _BRACKET.match(text, pos)
            if not m:
                raise PromoteError(f"invalid path {text!r}: bad [...] at column {pos + 1}")
            if m.group("index") is not None:
                steps.append(_Index(int(m.group("index"))))
            elif m.group("q") is not None:
                steps.append(_Key(m.group("qkey")))
            else:
                value = m.group("sqval") if m.group("sq") is not None else m.group("sval").strip()
                steps.append(_Select(m.group("skey"), value))
            pos = m.end()
            continue
        if steps:
            if text[pos] != ".":
                raise PromoteError(f"invalid path {text!r}: expected '.' or '[' at column {pos + 1}")
            pos += 1
        m = _PLAIN_KEY.match(text, pos)
        if not m:
            raise PromoteError(f"invalid path {text!r}: empty key at column {pos + 1}")
        steps.append(_Key(m.group()))
        pos = m.end()
    if not steps:
        raise PromoteError("empty path")
    return steps


@dataclass
class _Hit:
    parent: Any  # the mapping or list holding the value
    key: str | int
    path: list[str | int]
    exists: bool


def _walk(root: Any, steps: list[_Step], mode: str, text: str) -> _Hit | None:
    """Find the value at ``steps``; ``mode`` find | probe (could be created) | create."""
    node = root
    path: list[str | int] = []
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, _Key):
            if not isinstance(node, dict):
                return None
            creatable = mode != "find" and all(isinstance(s, _Key) for s in steps[i + 1 :])
            path.append(step.name)
            if step.name not in node:
                if not creatable:
                    return None
                if last or mode == "probe":  # in a probe, ``path`` ends at the first missing key
                    return _Hit(node, step.name, path, exists=False)
                node[step.name] = CommentedMap()
            elif last:
                return _Hit(node, step.name, path, exists=True)
            elif node[step.name] is None:  # ``labels:`` with nothing under it
                if not creatable:
                    return None
                if mode == "probe":
                    return _Hit(node, step.name, path, exists=False)
                node[step.name] = CommentedMap()
            node = node[step.name]
        else:
            if not isinstance(node, list):
                return None
            if isinstance(step, _Index):
                index = step.index
                if index >= len(node):
                    return None
            else:
                found = [
                    j
                    for j, item in enumerate(node)
                    if isinstance(item, dict) and step.key in item and _text(item[step.key]) == step.value
                ]
                if not found:
                    return None
                if len(found) > 1:
                    raise PromoteError(f"{text}: [{step.key}={step.value}] matches {len(found)} list items")
                index = found[0]
            path.append(index)
            if last:
                return _Hit(node, index, path, exists=True)
            node = node[index]
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _yaml_rt() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    return y


def _yaml_safe() -> YAML:
    return YAML(typ="safe", pure=True)


def set_yaml_values(data: bytes, values: list[tuple[str, str]], file: str = "<yaml>") -> bytes:
    """``data`` (a YAML stream) with each ``(path, value)`` set; the same bytes if nothing changes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PromoteError(f"{file} is not UTF-8: {err}") from err
    bom = text.startswith("\ufeff")
    text = text.removeprefix("\ufeff")
    try:
        docs = list(_yaml_rt().load_all(text))
    except YAMLError as err:
        raise PromoteError(f"{file} is not valid YAML: {err}") from err
    splices: list[tuple[int, list[str | int], Any]] = []
    structural = False
    for path, value in values:
        steps = parse_path(path)
        where = f"{file}: {path}"
        hits = [(i, h) for i, doc in enumerate(docs) if (h := _walk(doc, steps, "find", where))]
        if not hits:
            probes = [(i, h) for i, doc in enumerate(docs) if (h := _walk(doc, steps, "probe", where))]
            if not probes:
                raise PromoteError(f"{where}: not found")
            deepest = max(len(h.path) for _, h in probes)  # the documents that have most of the path
            possible = [i for i, h in probes if len(h.path) == deepest]
            if len(possible) > 1:
                raise PromoteError(
                    f"{where}: in none of its {len(docs)} documents, and could be created in several: "
                    "add it to one first"
                )
            hit = _walk(docs[possible[0]], steps, "create", where)
            assert hit is not None
            hits = [(possible[0], hit)]
        for index, hit in hits:
            old = hit.parent[hit.key] if hit.exists else None
            if isinstance(old, dict | list):
                raise PromoteError(
                    f"{where} is a {'mapping' if isinstance(old, dict) else 'list'}, not a value"
                )
            new = _typed(old, value) if hit.exists else value
            plain_old, plain_new = _plain_scalar(old), _plain_scalar(new)
            if hit.exists and type(plain_new) is type(plain_old) and plain_new == plain_old:
                continue
            if isinstance(old, str) and type(old) is not str:  # a quoted string stays quoted
                new = type(old)(new)
            hit.parent[hit.key] = new
            if hit.exists:
                splices.append((index, hit.path, new))
            else:
                structural = True
    if not splices and not structural:
        return data
    result = None if structural else _splice(text, docs, splices)
    if result is None:
        result = _dump(text, docs)
    return (("\ufeff" if bom else "") + result).encode("utf-8")


def _plain_scalar(value: Any) -> Any:
    """The plain Python value of a ruamel scalar (``str`` for a quoted string)."""
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def _typed(old: Any, text: str) -> Any:
    """``text`` as ``old``'s type when ``old`` is a number or boolean and ``text`` parses as one."""
    if old is None or isinstance(old, str):
        return text
    try:
        parsed = _yaml_safe().load(text)
    except YAMLError:
        return text
    if isinstance(old, bool):
        return parsed if isinstance(parsed, bool) else text
    if isinstance(old, int | float) and isinstance(parsed, int | float) and not isinstance(parsed, bool):
        return parsed
    return text


def _splice(text: str, docs: list[Any], edits: list[tuple[int, list[str | int], Any]]) -> str | None:
    """Replace the edited scalars in the text itself; None if that cannot be done faithfully."""
    try:
        nodes = list(_yaml_rt().compose_all(text))
    except YAMLError:
        return None
    ranges: list[tuple[int, int, str]] = []
    for index, path, value in edits:
        node = _node_at(nodes[index], path) if index < len(nodes) else None
        if node is None or node.anchor or node.style in ("|", ">") or text[node.start_mark.index] in "!&":
            return None
        rendered = _scalar_text(value, node.style)
        if rendered is None:
            return None
        ranges.append((node.start_mark.index, node.end_mark.index, rendered))
    ranges.sort()
    if any(a[1] > b[0] for a, b in itertools.pairwise(ranges)):
        return None
    out = text
    for start, end, rendered in reversed(ranges):
        out = out[:start] + rendered + out[end:]
    try:
        return out if list(_yaml_safe().load_all(out)) == docs else None
    except YAMLError:
        return None


def _node_at(node: Node, path: list[str | int]) -> ScalarNode | None:
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            found = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == step]
            if len(found) != 1:
                return None  # e.g. the key came from a merge (<<)
            node = found[0]
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return None
    return node if isinstance(node, ScalarNode) else None


def _scalar_text(value: Any, style: str | None) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(int(value))
    if not isinstance(value, str):
        return None
    if style == "'" and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    if style is None and _plain_ok(value):
        return value
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _plain_ok(value: str) -> bool:
    if not value or not value.isprintable() or value != value.strip() or any(c in value for c in ",[]{}#"):
        return False
    if value[0] in "-?:|>!&*%@`'\"" or value.endswith(":") or ": " in value:
        return False
    try:
        return _yaml_safe().load(value) == value
    except YAMLError:
        return False


def _dump(text: str, docs: list[Any]) -> str:
    y = _yaml_rt()
    mapping, offset = _guess_indent(text)
    y.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    y.explicit_start = text.lstrip().startswith("---")
    out = io.StringIO()
    y.dump_all(docs, out)
    return out.getvalue()


def _guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, sequence dash offset) as first seen in ``text``; (2, 0) by default."""
    mapping = offset = None
    lines = [line for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")]
    for prev, cur in itertools.pairwise(lines):
        stripped = prev.strip()
        if not stripped.endswith(":"):
            continue
        col = len(prev) - len(prev.lstrip())
        if stripped.startswith("- "):
            col += 2
        cur_col = len(cur) - len(cur.lstrip())
        if cur.lstrip().startswith("-") and offset is None and cur_col >= col:
            offset = cur_col - col
        elif not cur.lstrip().startswith("-") and mapping is None and cur_col > col:
            mapping = cur_col - col
        if mapping is not None and offset is not None:
            break
    return mapping or 2, offset or 0
