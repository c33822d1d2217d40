"""The attachments waiting to be sent: one removable chip per file, image previews below."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button

from .image_preview import ImagePreview

_ICONS = {"image": "🖼", "audio": "🎤", "document": "📄", "text": "📝"}


class AttachmentChip(Button):
    """`🖼 cat.png · image ✕`: press it (Enter, click or Delete) to remove the attachment."""

    BINDINGS = [Binding("delete,backspace", "remove", "Remove", show=False)]

    def __init__(self, index: int, filename: str, kind: str) -> None:
        label = Content(f"{_ICONS.get(kind, '📎')} {filename} · {kind} ✕")  # Content: no markup in names
        super().__init__(label, classes="chip", compact=True, tooltip="remove this attachment")
        self.index, self.filename, self.kind = index, filename, kind

    def action_remove(self) -> None:
        self.press()


class AttachmentTray(Vertical):
    """Holds the pending attachments (opaque objects with `filename`, `kind` and `path`)."""

    class Changed(Message):
        """The attachments changed; `removed` when the person removed one (with a chip)."""

        def __init__(self, tray: "AttachmentTray", removed: bool = False) -> None:
            super().__init__()
            self.tray, self.removed = tray, removed

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.items: list[Any] = []
        self._serial = 0

    def on_mount(self) -> None:
        self.display = bool(self.items)

    def compose(self):
        yield Horizontal(classes="chips")
        yield Horizontal(classes="previews")

    async def add(self, attachment: Any) -> None:
        self.items.append(attachment)
        await self._rebuild()

    async def remove(self, index: int) -> Any:
        item = self.items.pop(index)
        await self._rebuild(removed=True)
        return item

    def take(self) -> list[Any]:
        """All pending attachments, emptying the tray (they are being sent)."""
        items, self.items = self.items, []
        self.call_later(self._rebuild)
        return items

    async def restore(self, items: list[Any]) -> None:
        """Put attachments back (a turn failed before using them)."""
        self.items = list(items) + [i for i in self.items if i not in items]
        await self._rebuild()

    async def _rebuild(self, removed: bool = False) -> None:
        chips = self.query_one(".chips", Horizontal)
        previews = self.query_one(".previews", Horizontal)
        await chips.remove_children()
        await previews.remove_children()
        await chips.mount_all(AttachmentChip(i, a.filename, a.kind) for i, a in enumerate(self.items))
        await previews.mount_all(
            ImagePreview(a.path, caption=a.filename) for a in self.items if a.kind == "image" and a.path is not None
        )
        self.display = bool(self.items)
        self.post_message(self.Changed(self, removed))

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if isinstance(event.button, AttachmentChip):
            event.stop()
            await self.remove(event.button.index)
