"""Modal dialogs: approving a tool call, renaming a session, confirming a deletion."""

from __future__ import annotations

import json

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ApprovalScreen(ModalScreen[str]):
    """Asks whether a tool may run. Dismisses with "approve", "deny" or "always"."""

    BINDINGS = [
        Binding("y", "answer('approve')", "Approve"),
        Binding("n", "answer('deny')", "Deny"),
        Binding("a", "answer('always')", "Always"),
        Binding("escape", "answer('deny')", "Deny", show=False),
    ]

    def __init__(self, tool: str, arguments: dict, *, plugin: str = "", risk: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.tool, self.arguments, self.plugin, self.risk = tool, arguments, plugin, risk

    def compose(self):
        args = json.dumps(self.arguments, indent=2, ensure_ascii=False, default=str)
        what = f"{self.plugin} · {self.risk.replace('_', ' ')}" if self.plugin else self.risk.replace("_", " ")
        with Vertical(classes="dialog", id="approval"):
            yield Label(f"Allow the tool {self.tool} to run?", classes="dialog-title", markup=False)
            if what:
                yield Label(what, classes="dialog-detail", markup=False)
            yield Static(args, classes="dialog-arguments", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Approve (y)", id="approve", variant="success")
                yield Button("Deny (n)", id="deny", variant="error")
                yield Button("Always (a)", id="always", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#deny", Button).focus()  # Enter on an unread dialog must not approve

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id)

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)


class RenameScreen(ModalScreen[str | None]):
    """Asks for a new title; dismisses with it, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.current = title

    def compose(self):
        with Vertical(classes="dialog", id="rename"):
            yield Label("Rename the session", classes="dialog-title")
            yield Input(value=self.current, placeholder="a title", id="title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Rename", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._done()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._done() if event.button.id == "ok" else self.dismiss(None)

    def _done(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        self.dismiss(title or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; Escape and n say no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Delete") -> None:
        super().__init__(classes="dialog-screen")
        self.question, self.yes = question, yes

    def compose(self):
        with Vertical(classes="dialog", id="confirm"):
            yield Label(self.question, classes="dialog-title", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
