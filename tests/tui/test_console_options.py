"""Console options: keymap file, refresh rate over SSH, NO_COLOR, themes, small terminals, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftdeck.console import load_keymap
from themes import theme_names
from tui.app import DEFAULT_REFRESH_HZ, SSH_REFRESH_HZ, DriftdeckApp
from tui.operator import ConfirmScreen
from tui.sample import T0, sample_client

ROOT = Path(__file__).resolve().parents[2]


def make(**kw: object) -> DriftdeckApp:
    return DriftdeckApp(sample_client(), cluster="sandbox", clock=lambda: T0, utc=True, **kw)  # type: ignore[arg-type]


def test_keymap_file_is_read_and_its_problems_are_named(tmp_path: Path) -> None:
    good = tmp_path / "keymap.yaml"
    good.write_text("sync: ctrl+s\nrevert: ctrl+r, R\n")
    assert load_keymap(good) == ({"sync": "ctrl+s", "revert": "ctrl+r, R"}, [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("sync: [ctrl+s\n")
    keymap, problems = load_keymap(bad)
    assert keymap == {} and len(problems) == 1 and str(bad) in problems[0] and "cannot read" in problems[0]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("sync: 3\nrun: p\n")
    keymap, problems = load_keymap(wrong)
    assert keymap == {"run": "p"} and "entry 'sync'" in problems[0]
    keymap, problems = load_keymap(tmp_path / "missing.yaml")
    assert keymap == {} and "no such keymap file" in problems[0]


async def test_a_rebound_key_runs_the_action_and_the_old_one_does_not() -> None:
    app = make(keymap={"sync": "ctrl+s"})
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)


def test_refresh_defaults_to_2hz_over_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    assert make().refresh_hz == DEFAULT_REFRESH_HZ
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22")
    app = make()
    assert app.refresh_hz == SSH_REFRESH_HZ and app.flush_interval == 0.5
    assert make(refresh_hz=1.0).refresh_hz == 1.0


def test_no_color_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert make().no_color


async def test_themes_can_be_chosen() -> None:
    assert theme_names() == ["driftdeck-dark", "driftdeck-light", "driftdeck-256"]
    app = make(theme="driftdeck-light")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.theme == "driftdeck-light"
        await pilot.press("colon", *"theme driftdeck-256", "enter")
        await pilot.pause()
        assert app.theme == "driftdeck-256"


async def test_a_too_small_terminal_says_so() -> None:
    app = make()
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        notice = app.query_one("#too-small")
        assert notice.has_class("-shown")
        assert "70x20" in str(notice.render()) and "80x24" in str(notice.render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not notice.has_class("-shown")


async def test_below_100_columns_the_panels_become_tabs() -> None:
    app = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.query_one("#narrow-tabs").display
        assert app.apps_table.display and not app.query_one("#pipelines").display
        await pilot.press("tab")
        await pilot.pause()
        assert app.focused is app.pipelines_table
        assert app.query_one("#pipelines").display and not app.query_one("#apps").display
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert app.query_one("#pipelines").display and app.query_one("#apps").display
        assert not app.query_one("#narrow-tabs").display


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_STATE_HOME=str(cwd / "state"), XDG_CONFIG_HOME=str(cwd / "config"))
    return subprocess.run([sys.executable, "-m", "driftdeck", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60)


def test_plain_driftdeck_opens_the_console_on_the_local_config(tmp_path: Path) -> None:
    proc = _cli(cwd=tmp_path)
    assert proc.returncode == 2
    assert "driftdeck.yaml: no such file" in proc.stderr and "driftdeck demo" in proc.stderr
    proc = _cli("tui", "-c", "other.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "other.yaml: no such file" in proc.stderr
    proc = _cli("--read-only", cwd=tmp_path)  # options alone still mean the console
    assert proc.returncode == 2 and "driftdeck.yaml: no such file" in proc.stderr
