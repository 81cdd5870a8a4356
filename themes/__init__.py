"""The console's stylesheet and its three themes.

* ``driftdeck-dark`` (default) and ``driftdeck-light``: our own palettes.
* ``driftdeck-256``: only colours of the xterm 256-colour cube, so a terminal reached over
  SSH without ``COLORTERM`` (Rich then downsamples to 256 colours) shows exactly these.

Every state is also spelled out in words, so ``NO_COLOR`` (Textual's monochrome filter)
loses nothing but the hint.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

THEMES_DIR = Path(__file__).resolve().parent
MAIN_TCSS = THEMES_DIR / "driftdeck.tcss"

THEMES: tuple[Theme, ...] = (
    Theme(
        name="driftdeck-dark",
        primary="#5fafd7",
        secondary="#87afaf",
        accent="#d7af5f",
        warning="#d7af00",
        error="#ff5f5f",
        success="#5fd75f",
        foreground="#d0d0d0",
        background="#121417",
        surface="#1b1f24",
        panel="#262b33",
        dark=True,
    ),
    Theme(
        name="driftdeck-light",
        primary="#005f87",
        secondary="#5f8787",
        accent="#875f00",
        warning="#af5f00",
        error="#af0000",
        success="#008700",
        foreground="#1c1c1c",
        background="#fafafa",
        surface="#eeeeee",
        panel="#dadada",
        dark=False,
    ),
    Theme(
        # xterm-256 cube/grey values only (16..255), no in-between shades.
        name="driftdeck-256",
        primary="#0087af",
        secondary="#5f8787",
        accent="#d7af00",
        warning="#ffaf00",
        error="#ff0000",
        success="#00d700",
        foreground="#e4e4e4",
        background="#000000",
        surface="#1c1c1c",
        panel="#303030",
        dark=True,
    ),
)


def theme_names() -> list[str]:
    return [t.name for t in THEMES]


__all__ = ["MAIN_TCSS", "THEMES", "THEMES_DIR", "theme_names"]
