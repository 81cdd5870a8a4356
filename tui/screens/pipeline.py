"""Placeholder: replaced by the Pipeline screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from core.events import Event


class PipelineScreen(Screen[None]):
    HELP_TITLE = "pipeline"

    def __init__(self, pipeline: str, run_id: str | None = None) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        yield Static(self.pipeline)

    def apply_events(self, events: list[Event]) -> None:
        pass
