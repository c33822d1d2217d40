"""The prompt: a one-line input that remembers what was sent (up/down recalls it) and turns a
pasted file path into an attachment.

Terminals paste (bracketed paste) text, never raw clipboard images: dragging a file onto most
terminals, or pasting a copied file, pastes its path, which is what this catches. A screenshot
in the clipboard has to be saved to a file first and then attached (or its path pasted).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


def pasted_path(text: str) -> Path | None:
    """The existing file that `text` names in full, else None. Understands the forms terminals
    and file managers paste: quotes, `file://` URIs, backslash-escaped spaces, `~`."""
    text = text.strip()
    if not text or "\n" in text or len(text) > 4096:
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if text.startswith("file://"):
        text = unquote(urlparse(text).path)
    elif "\\ " in text:
        text = text.replace("\\ ", " ")
    try:
        path = Path(os.path.expanduser(text))
        return path if path.is_file() else None
    except (OSError, ValueError):
        return None


class PromptInput(Input):
    BINDINGS = [
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
    ]

    class PathPasted(Message):
        """A paste that was exactly one existing file's path (it was not inserted as text)."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.history: list[str] = []
        self._cursor: int | None = None  # position while browsing the history
        self._draft = ""

    def remember(self, text: str) -> None:
        if text.strip() and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._cursor = None

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._cursor is None:
            if step > 0:
                return
            self._draft = self.value
            self._cursor = len(self.history)
        self._cursor = max(0, self._cursor + step)
        if self._cursor >= len(self.history):
            self._cursor = None
            self.value = self._draft
        else:
            self.value = self.history[self._cursor]
        self.cursor_position = len(self.value)

    def _on_paste(self, event: events.Paste) -> None:
        path = pasted_path(event.text)
        if path is None:
            return  # Input's own handler inserts the text
        event.prevent_default()
        event.stop()
        self.post_message(self.PathPasted(path))
