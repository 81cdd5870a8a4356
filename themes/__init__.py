"""Stylesheets for the driftdeck console (Textual TCSS)."""

from __future__ import annotations

from pathlib import Path

THEMES_DIR = Path(__file__).resolve().parent
MAIN_TCSS = THEMES_DIR / "driftdeck.tcss"

__all__ = ["MAIN_TCSS", "THEMES_DIR"]
