"""core.pipelines.triggers: globs and the branch/tag/path trigger decision."""

from __future__ import annotations

import pytest

from core.pipelines.triggers import glob_error, glob_match, should_trigger
from core.pipelines.types import Trigger

# ----- glob_match ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # * stays within one segment
        ("*.py", "setup.py", True),
        ("*.py", "src/setup.py", False),
        ("src/*", "src/a.py", True),
        ("src/*", "src/a/b.py", False),
        ("src/*.py", "src/.hidden.py", True),
        # ** spans any depth, including none
        ("src/**", "src/a.py", True),
        ("src/**", "src/a/b/c.py", True),
        ("src/**", "src", False),  # a trailing /** matches inside the directory only
        ("src/**", "srcx/a.py", False),
        ("**/*.py", "a.py", True),
        ("**/*.py", "a/b/c.py", True),
        ("**/*.py", "a/b/c.pyc", False),
        ("src/**/test_*.py", "src/test_a.py", True),
        ("src/**/test_*.py", "src/x/y/test_a.py", True),
        ("src/**/test_*.py", "src/x/y/a_test.py", False),
        ("a/**/**/b", "a/b", True),
        ("**", "anything/at/all", True),
        ("a**b", "axyb", True),  # ** inside a segment is a plain *
        ("a**b", "ax/yb", False),
        # ?
        ("?.md", "a.md", True),
        ("?.md", "ab.md", False),
        ("a?b", "a/b", False),
        # character classes
        ("v[0-9].txt", "v7.txt", True),
        ("v[0-9].txt", "vx.txt", False),
        ("v[!0-9].txt", "vx.txt", True),
        ("v[^0-9].txt", "v7.txt", False),
        ("[]]", "]", True),
        ("[a-]", "-", True),
        ("[.-0]", "/", False),  # a class never matches the separator
        ("x[", "x[", True),  # an unclosed class is literal
        (r"\*.md", "*.md", True),
        (r"\*.md", "a.md", False),
        # anchored at the repository root
        ("docs/*.md", "sub/docs/a.md", False),
        ("/docs/*.md", "docs/a.md", True),
        ("docs/*.md", "./docs/a.md", True),
        # a trailing slash means the directory's contents
        ("docs/", "docs/a.md", True),
        ("docs/", "docs/a/b.md", True),
        ("docs/", "docs", False),
        ("docs/", "docsx/a.md", False),
        # case-sensitive, and regex characters are literal
        ("README.md", "readme.md", False),
        ("a+b(c).txt", "a+b(c).txt", True),
        ("a.b", "axb", False),
    ],
)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


def test_glob_error() -> None:
    assert glob_error("src/**") is None
    assert glob_error("") == "empty pattern"
    assert glob_error("/") == "empty pattern"
    assert glob_error("[z-a].txt") == "bad character class in '[z-a].txt': bad character range z-a"
    assert glob_match("[z-a].txt", "z.txt") is False  # an invalid pattern matches nothing


# ----- should_trigger -----------------------------------------------------------------------


MAIN_SRC = Trigger(branches=("main",), paths=("src/**",))


def test_branch_filter() -> None:
    assert should_trigger(MAIN_SRC, branch="feature/x", changed=["src/a.py"]) == (
        False,
        "branch feature/x not in [main]",
    )
    assert should_trigger(MAIN_SRC, branch="main", changed=["src/a.py"]) == (
        True,
        "branch main matches main; src/a.py matches src/**",
    )
    assert should_trigger(MAIN_SRC, branch="refs/heads/main", changed=["src/a.py"])[0] is True
    release = Trigger(branches=("main", "release/*"))
    assert should_trigger(release, branch="release/1.2", changed=None) == (
        True,
        "branch release/1.2 matches release/*",
    )
    assert should_trigger(release, branch="release/1.2/hotfix", changed=None) == (
        False,
        "branch release/1.2/hotfix not in [main, release/*]",
    )
    assert should_trigger(Trigger(), branch="anything", changed=None) == (
        True,
        "branch anything (any branch)",
    )


def test_tag_filter() -> None:
    tags = Trigger(tags=("v*",))
    assert should_trigger(tags, branch=None, tags=["v1.2.0"], changed=None) == (True, "tag v1.2.0 matches v*")
    assert should_trigger(tags, branch=None, tags=["refs/tags/v2"], changed=None) == (
        True,
        "tag v2 matches v*",
    )
    assert should_trigger(tags, branch=None, tags=["nightly", "latest"], changed=None) == (
        False,
        "tags nightly, latest not in [v*]",
    )
    # only tags declared: plain branch commits do not trigger
    assert should_trigger(tags, branch="main", changed=["src/a.py"]) == (
        False,
        "branch main: the pipeline triggers on tags only [v*]",
    )
    # only branches declared: tag pushes do not trigger
    assert should_trigger(Trigger(branches=("main",)), branch=None, tags=["v1"], changed=None) == (
        False,
        "tag v1: the pipeline triggers on branches only [main]",
    )
    # no ref filter at all: a tag push triggers
    assert should_trigger(Trigger(), branch=None, tags=["v1"], changed=None) == (True, "tag v1 (any tag)")
    assert should_trigger(tags, branch=None, tags=[], changed=None) == (
        False,
        "neither a branch commit nor a tag push",
    )


def test_commit_with_a_matching_tag_triggers_on_any_branch() -> None:
    both = Trigger(branches=("main",), tags=("v*",), paths=("src/**",))
    assert should_trigger(both, branch="hotfix", tags=["v1.0.1"], changed=["docs/x.md"]) == (
        True,
        "tag v1.0.1 matches v*",  # a release tag skips the path filter
    )
    assert should_trigger(both, branch="hotfix", tags=["wip"], changed=["src/a.py"]) == (
        False,
        "branch hotfix not in [main]",
    )
    assert should_trigger(both, branch="main", tags=["wip"], changed=["src/a.py"]) == (
        True,
        "branch main matches main; src/a.py matches src/**",
    )


def test_path_filters() -> None:
    assert should_trigger(MAIN_SRC, branch="main", changed=["docs/a.md", "README.md"]) == (
        False,
        "no changed file matches src/**",
    )
    assert should_trigger(MAIN_SRC, branch="main", changed=["README.md", "src/a.py", "src/b.py"]) == (
        True,
        "branch main matches main; src/a.py (+1 more) matches src/**",
    )
    excl = Trigger(paths=("src/**", "lib/**"), exclude=("**/*.md", "src/docs/"))
    assert should_trigger(excl, branch="main", changed=["src/README.md", "src/docs/x.txt", "other.py"]) == (
        False,
        "all changed files excluded (**/*.md, src/docs/)",
    )
    assert should_trigger(excl, branch="main", changed=["src/README.md", "lib/x.py"]) == (
        True,
        "branch main (any branch); lib/x.py matches lib/**",
    )
    assert should_trigger(excl, branch="main", changed=["x.py"]) == (
        False,
        "no changed file matches src/**, lib/**",
    )
    only_exclude = Trigger(exclude=("docs/**",))
    assert should_trigger(only_exclude, branch="main", changed=["docs/a.md"]) == (
        False,
        "all changed files excluded (docs/**)",
    )
    assert should_trigger(only_exclude, branch="main", changed=["docs/a.md", "app.py"]) == (
        True,
        "branch main (any branch); app.py not excluded",
    )
    assert should_trigger(MAIN_SRC, branch="main", changed=[]) == (False, "no files changed")
    assert should_trigger(Trigger(), branch="main", changed=[]) == (True, "branch main (any branch)")


def test_unknown_changes_pass_the_path_filter() -> None:
    assert should_trigger(MAIN_SRC, branch="main", changed=None) == (
        True,
        "branch main matches main; changed files unknown (path filters skipped)",
    )


def test_manual_only_never_triggers_on_commits() -> None:
    manual = Trigger(branches=("main",), manual_only=True)
    assert should_trigger(manual, branch="main", changed=None) == (
        False,
        "manual trigger only (manual: true)",
    )
    assert should_trigger(manual, branch=None, tags=["v1"], changed=None)[0] is False
