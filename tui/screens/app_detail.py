"""Placeholder: replaced by the App screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from core.events import Event


class AppDetailScreen(Screen[None]):
    HELP_TITLE = "app"

    def __init__(self, app_name: str, show_diff: bool = False) -> None:
        super().__init__()
        self.app_name = app_name
        self.show_diff = show_diff

    def compose(self) -> ComposeResult:
        yield Static(self.app_name)

    def apply_events(self, events: list[Event]) -> None:
        pass
