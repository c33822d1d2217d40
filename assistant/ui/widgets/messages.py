"""The conversation view: user messages, streamed answers (Markdown), notes, tool panels, images."""

from __future__ import annotations

from typing import Iterable

from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Static

from .image_preview import ImagePreview
from .tool_panel import ToolCallPanel


class UserMessage(Vertical, can_focus=True):
    """What the person sent, with the files attached to it (images previewed)."""

    def __init__(self, text: str, files: Iterable[tuple[str, str, str | None]] = ()) -> None:
        super().__init__(classes="message user")
        self.text = text
        self.files = list(files)  # (filename, kind, path or None)
        self.border_title = "You"

    def compose(self):
        if self.text:
            yield Static(self.text, classes="user-text", markup=False)
        for filename, kind, path in self.files:
            if kind == "image" and path:
                yield ImagePreview(path, caption=filename)
            else:
                yield Label(f"📎 {filename} ({kind})", classes="file-note", markup=False)


class AssistantMessage(Vertical, can_focus=True):
    """One answer. Streams into its Markdown; `text` is the answer as the model wrote it, and a
    status line marks an answer that was cut short: "(cancelled)" or "(failed)"."""

    def __init__(self, text: str = "") -> None:
        super().__init__(classes="message assistant")
        self.text = text
        self.status = ""
        self.border_title = "Assistant"

    def compose(self):
        from textual.widgets import Markdown  # markdown-it and pygments: loaded with the first answer

        yield Markdown(self.text or None, classes="answer-body")
        yield Label("", classes="answer-status")

    @property
    def markdown(self):
        """The Markdown widget the answer streams into."""
        return self.query_one(".answer-body")

    def mark(self, status: str) -> None:
        self.status = status
        label = self.query_one(".answer-status", Label)
        label.update(status)
        label.display = bool(status)
        self.set_class(bool(status), "interrupted")


class Note(Label):
    """A one-line note in the conversation (attachment routing, waiting for the engine...)."""

    def __init__(self, text: str, classes: str = "") -> None:
        super().__init__(text, classes=f"note {classes}".strip(), markup=False)


class ProducedFile(Vertical):
    """A file a tool made: images are previewed, other files named with their path."""

    def __init__(self, path: str, mime: str, title: str, tool: str) -> None:
        super().__init__(classes="produced")
        self.path, self.mime, self.title, self.tool = path, mime, title, tool

    def compose(self):
        caption = f"{self.tool} made {self.title or self.path}"
        if self.mime.startswith("image/"):
            yield ImagePreview(self.path, caption=caption)
        else:
            yield Label(f"📄 {caption}: {self.path}", markup=False)


class MessageList(VerticalScroll):
    """The scrolling conversation. Anchored: it follows new content (a streaming answer) until
    the person scrolls up."""

    def on_mount(self) -> None:
        self.anchor()

    async def _add(self, widget: Widget) -> Widget:
        await self.mount(widget)
        return widget

    async def add_user(self, text: str, files: Iterable[tuple[str, str, str | None]] = ()) -> UserMessage:
        message = await self._add(UserMessage(text, files))
        self.anchor()  # a new question brings the view back to the end
        return message

    async def add_answer(self, text: str = "") -> AssistantMessage:
        return await self._add(AssistantMessage(text))

    async def add_note(self, text: str, classes: str = "") -> Note:
        return await self._add(Note(text, classes))

    async def add_tool(self, call_id: str, name: str, arguments: dict, risk: str = "") -> ToolCallPanel:
        return await self._add(ToolCallPanel(call_id, name, arguments, risk))

    async def add_file(self, path: str, mime: str, title: str, tool: str) -> ProducedFile:
        return await self._add(ProducedFile(path, mime, title, tool))

    def answers(self) -> list[AssistantMessage]:
        return list(self.query(AssistantMessage))

    async def clear(self) -> None:
        await self.remove_children()
