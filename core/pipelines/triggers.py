"""Decide whether a new commit or tag starts a pipeline run.

Globs (:func:`glob_match`) are anchored at the repository root and matched
segment by segment, like ``.gitignore`` and GitHub Actions filters:

* ``*`` matches any run of characters within one path segment, ``?`` one
  character, ``[a-z]`` / ``[!a-z]`` (or ``[^a-z]``) one character of a class;
  none of them matches ``/``. ``\\`` escapes the next character. Dot files are
  not special (``*`` matches ``.env``). Matching is case-sensitive.
* ``**`` as a whole segment matches any number of segments: ``src/**/x.py``
  matches ``src/x.py`` and ``src/a/b/x.py``; a trailing ``/**`` matches
  everything *inside* a directory (at least one segment), and a pattern ending
  in ``/`` means the same (``docs/`` == ``docs/**``). ``**`` elsewhere in a
  segment is an ordinary ``*``.
* A leading ``/`` or ``./`` on the pattern or the path is ignored.

Branch and tag filters use the same globs (``release/*``, ``v*``); a leading
``refs/heads/`` or ``refs/tags/`` is ignored on both sides.

Ref filters follow GitHub Actions: with neither ``branches`` nor ``tags`` any
branch commit or tag push triggers; with only ``tags``, plain branch commits do
not; with only ``branches``, tag pushes do not. Path filters are evaluated for
branch commits only: a tag that matches the ``tags`` filter (pushed alone or
carried by a commit) releases a revision, so path filters are skipped for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from core.pipelines.types import Trigger

__all__ = ["glob_error", "glob_match", "should_trigger"]


def glob_match(pattern: str, path: str) -> bool:
    """True if repository path ``path`` matches ``pattern`` (see the module doc for the syntax).

    An invalid pattern (see :func:`glob_error`) matches nothing.
    """
    try:
        regex = _compile(pattern)
    except ValueError:
        return False
    return regex.fullmatch(_strip_root(path)) is not None


def glob_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable glob (empty, a reversed range like ``[z-a]``), or None."""
    if not _strip_root(pattern):
        return "empty pattern"
    try:
        _compile(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def _strip_root(path: str) -> str:
    while path.startswith(("./", "/")):
        path = path[2:] if path.startswith("./") else path[1:]
    return path


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    pattern = _strip_root(pattern)
    if pattern.endswith("/"):
        pattern += "**"
    parts = pattern.split("/")
    last = len(parts) - 1
    out: list[str] = []
    for i, seg in enumerate(parts):
        if seg == "**":
            if i == last:
                out.append(".+" if i else ".*")
            else:
                out.append("(?:.+/)?")
            continue
        out.append(_segment(seg))
        if i != last:
            out.append("/")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise ValueError(f"bad character class in {pattern!r}: {exc.msg}") from None


def _segment(seg: str) -> str:
    """Regex for one path segment of a glob."""
    out: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        ch = seg[i]
        if ch == "*":
            while i < n and seg[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(seg[i]))
        elif ch == "[":
            cls, end = _char_class(seg, i)
            if cls is None:
                out.append(re.escape(ch))
            else:
                out.append(cls)
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _char_class(seg: str, start: int) -> tuple[str | None, int]:
    """Regex for the ``[...]`` class at ``seg[start]`` and the index of its ``]``; None if unclosed."""
    i = start + 1
    negate = i < len(seg) and seg[i] in "!^"
    if negate:
        i += 1
    first = i
    end = seg.find("]", first + 1 if first < len(seg) and seg[first] == "]" else first)
    if end < 0:
        return None, start
    body = "".join("\\" + c if c in "\\^[]" else c for c in seg[first:end])
    return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), end


# ----- triggers ----------------------------------------------------------------------------


def _listing(patterns: Sequence[str]) -> str:
    return ", ".join(patterns)


def _first_match(patterns: Sequence[str], value: str) -> str | None:
    return next((p for p in patterns if glob_match(p, value)), None)


def _ref_filter(trigger: Trigger, branch: str | None, tags: Sequence[str]) -> tuple[bool, str, bool]:
    """(passes, reason, matched by a tag)."""
    branches = tuple(p.removeprefix("refs/heads/") for p in trigger.branches)
    tag_patterns = tuple(p.removeprefix("refs/tags/") for p in trigger.tags)
    tag_names = [t.removeprefix("refs/tags/") for t in tags if t]
    for tag in tag_names if tag_patterns else ():
        pattern = _first_match(tag_patterns, tag)
        if pattern is not None:
            return True, f"tag {tag} matches {pattern}", True
    if branch is not None:
        if not branches and not tag_patterns:
            return True, f"branch {branch} (any branch)", False
        if not branches:
            return (
                False,
                f"branch {branch}: the pipeline triggers on tags only [{_listing(tag_patterns)}]",
                False,
            )
        pattern = _first_match(branches, branch)
        if pattern is None:
            return False, f"branch {branch} not in [{_listing(branches)}]", False
        return True, f"branch {branch} matches {pattern}", False
    if not tag_names:
        if branches or tag_patterns:
            return False, "neither a branch commit nor a tag push", False
        return True, "no branch or tag filter", False
    label = f"tag {tag_names[0]}" if len(tag_names) == 1 else f"tags {', '.join(tag_names)}"
    if not tag_patterns and not branches:
        return True, f"{label} (any tag)", True
    if not tag_patterns:
        return False, f"{label}: the pipeline triggers on branches only [{_listing(branches)}]", True
    return False, f"{label} not in [{_listing(tag_patterns)}]", True


def _path_filter(trigger: Trigger, changed: Sequence[str]) -> tuple[bool, str]:
    if not changed:
        return False, "no files changed"
    candidates: list[tuple[str, str | None]] = [(f, None) for f in changed]
    if trigger.paths:
        candidates = [(f, _first_match(trigger.paths, f)) for f in changed]
        candidates = [(f, p) for f, p in candidates if p is not None]
        if not candidates:
            return False, f"no changed file matches {_listing(trigger.paths)}"
    kept = [(f, p) for f, p in candidates if _first_match(trigger.exclude, f) is None]
    if not kept:
        return False, f"all changed files excluded ({_listing(trigger.exclude)})"
    file, pattern = kept[0]
    more = f" (+{len(kept) - 1} more)" if len(kept) > 1 else ""
    if pattern is None:
        return True, f"{file}{more} not excluded"
    return True, f"{file}{more} matches {pattern}"


def should_trigger(
    trigger: Trigger,
    *,
    branch: str | None,
    tags: Sequence[str] = (),
    changed: Sequence[str] | None,
) -> tuple[bool, str]:
    """Whether a commit on ``branch`` (None for a tag push) carrying ``tags`` starts a run, and why.

    ``changed`` lists the paths changed since the last run (None when unknown, e.g. the
    first run: path filters then pass).
    """
    if trigger.manual_only:
        return False, "manual trigger only (manual: true)"
    branch = branch.removeprefix("refs/heads/") if branch is not None else None
    ok, ref_reason, by_tag = _ref_filter(trigger, branch, tags)
    if not ok:
        return False, ref_reason
    if by_tag or not (trigger.paths or trigger.exclude):
        return True, ref_reason
    if changed is None:
        return True, f"{ref_reason}; changed files unknown (path filters skipped)"
    ok, path_reason = _path_filter(trigger, changed)
    return (True, f"{ref_reason}; {path_reason}") if ok else (False, path_reason)
