"""Operator actions shared by every screen: read-only guard, confirm modal, command worker.

Screens never call the client's commands directly; they call ``app.request_*`` so that
``--read-only``, confirmation of destructive actions, auditing (done by the client) and
error reporting work the same way from a key, the command palette or the ``:`` line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from textual.app import App

    from tui.app import ConsoleClient

    _Base = App[None]
else:
    _Base = object


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no for a destructive action: ``y``/enter confirms, ``n``/escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, body: str, confirm: str = "Yes") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(f"[b]{self._title}[/b]", id="confirm-title", markup=True)
            yield Static(self._body, id="confirm-body", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self._confirm} (y)", id="confirm-yes", variant="error")
                yield Button("Cancel (n)", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class StopScreen(ModalScreen[str]):
    """CodePipeline's two ways to stop a run: ``w`` wait for in-flight actions, ``a`` abandon them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "answer('wait')", "Stop and wait", id="stop.wait"),
        Binding("a", "answer('abandon')", "Stop and abandon", id="stop.abandon"),
        Binding("n,escape", "answer('')", "Cancel", id="stop.cancel"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(f"[b]Stop run {self.run_id}?[/b]", id="confirm-title", markup=True)
            yield Static("Stop and wait: running actions finish, nothing new starts.\n"
                         "Stop and abandon: running actions are terminated (SIGTERM, then SIGKILL after "
                         "their grace period).", id="confirm-body", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button("Wait (w)", id="stop-wait", variant="warning")
                yield Button("Abandon (a)", id="stop-abandon", variant="error")
                yield Button("Cancel (n)", id="stop-cancel")

    def on_mount(self) -> None:
        self.query_one("#stop-cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"stop-wait": "wait", "stop-abandon": "abandon"}.get(event.button.id or "", ""))

    def action_answer(self, value: str) -> None:
        self.dismiss(value)


class OperatorActions(_Base):
    """Mixin for :class:`~tui.app.DriftdeckApp`: every operator command goes through here."""

    client: ConsoleClient
    read_only: bool
    command_results: list[tuple[str, bool, str]]

    def note_activity(self, text: str) -> None:
        raise NotImplementedError

    def _guard(self, what: str) -> bool:
        if self.read_only:
            self.notify(f"read-only: {what} is disabled (started with --read-only)", severity="warning",
                        title="read-only")
            return False
        return True

    def _confirm_then(self, title: str, body: str, confirm: str,
                      label: str, command: Callable[[], Awaitable[Any]]) -> None:
        def done(answer: bool | None) -> None:
            if answer:
                self.run_command(label, command)
            else:
                self.notify(f"{label}: cancelled")

        self.push_screen(ConfirmScreen(title, body, confirm), done)

    @work(group="commands", exit_on_error=False, description="operator command")
    async def run_command(self, label: str, command: Callable[[], Awaitable[Any]]) -> None:
        """Run one client command; its outcome becomes a notification and an activity line."""
        self.notify(f"{label}…", timeout=2)
        try:
            result = await command()
        except Exception as exc:  # an operator command must never take the console down
            message = str(exc) or type(exc).__name__
            self.command_results.append((label, False, message))
            self.notify(f"{label} failed: {message}", severity="error", title="command failed", timeout=8)
            self.note_activity(f"{label} failed: {message}")
            return
        ok = bool(getattr(result, "ok", True))
        message = str(getattr(result, "message", "") or (result if isinstance(result, str) else "done"))
        self.command_results.append((label, ok, message))
        self.notify(f"{label}: {message}", severity="information" if ok else "error", timeout=5 if ok else 8)
        self.note_activity(f"{label}: {message}")

    # ----- apps ---------------------------------------------------------------------------------

    def request_sync(self, app: str) -> None:
        if self._guard(f"sync {app}"):
            self._confirm_then(
                f"Sync {app}?",
                f"Apply the manifests of {app} at its source head to the cluster\n"
                "(server-side apply; drifted fields are set back to Git; pruning as configured).",
                "Sync", f"sync {app}", lambda: self.client.sync(app),
            )

    def request_revert(self, app: str, to: str | None = None) -> None:
        if not self._guard(f"revert {app}"):
            return
        what = f"every commit after {to[:7]}" if to else "the last commit"
        self._confirm_then(
            f"Revert {app}?",
            f"Commit a git revert of {what} on {app}'s source branch, then sync {app}.\n"
            "This writes to the repository (and pushes remote sources).",
            "Revert", f"revert {app}" + (f" to {to[:7]}" if to else ""),
            lambda: self.client.revert(app, to=to),
        )

    def request_suspend(self, app: str, suspend: bool) -> None:
        verb = "suspend" if suspend else "resume"
        if self._guard(f"{verb} {app}"):
            self.run_command(f"{verb} {app}", lambda: self.client.suspend(app) if suspend else self.client.resume(app))

    # ----- pipelines -----------------------------------------------------------------------------

    def request_run(self, pipeline: str) -> None:
        if self._guard(f"run {pipeline}"):
            self.run_command(f"run {pipeline}", lambda: self.client.start_run(pipeline))

    def request_approve(self, run_id: str, action: str) -> None:
        if self._guard(f"approve {run_id}"):
            self._confirm_then(f"Approve {action}?", f"Approve {action} of run {run_id}: the run goes on.",
                               "Approve", f"approve {run_id} {action}", lambda: self.client.approve(run_id, action))

    def request_reject(self, run_id: str, action: str) -> None:
        if self._guard(f"reject {run_id}"):
            self._confirm_then(f"Reject {action}?", f"Reject {action} of run {run_id}: the run fails.",
                               "Reject", f"reject {run_id} {action}", lambda: self.client.reject(run_id, action))

    def request_retry(self, run_id: str, stage: str) -> None:
        if self._guard(f"retry {run_id}"):
            self.run_command(f"retry {run_id} {stage}", lambda: self.client.retry(run_id, stage))

    def request_stop(self, run_id: str) -> None:
        if not self._guard(f"stop {run_id}"):
            return

        def done(how: str | None) -> None:
            if not how:
                self.notify(f"stop {run_id}: cancelled")
                return
            abandon = how == "abandon"
            self.run_command(f"stop {run_id}" + (" (abandon)" if abandon else ""),
                             lambda: self.client.stop(run_id, abandon=abandon))

        self.push_screen(StopScreen(run_id), done)
