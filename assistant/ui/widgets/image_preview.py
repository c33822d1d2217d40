"""An image shown inline with textual-image.

textual-image picks the best protocol the terminal has (sixel, the kitty graphics protocol,
else coloured half cells; unicode blocks when not on a terminal, e.g. in tests). It asks the
terminal at import time, which only works before Textual takes over stdin: the program imports
`textual_image.widget` before the app starts (see `assistant/ui/cli.py`), and this module only
imports it when the first preview is built, so the app itself starts without it.
"""

from __future__ import annotations

from pathlib import Path

from textual.containers import Vertical
from textual.widgets import Label


class ImagePreview(Vertical):
    """A small preview of an image file with a caption; a note instead if it cannot be read."""

    def __init__(self, path: str | Path, caption: str = "", *, classes: str = "") -> None:
        super().__init__(classes=("image-preview " + classes).strip())
        self.path = str(path)
        self.caption = caption or Path(path).name
        self.error = ""

    def compose(self):
        try:
            from PIL import Image as PILImage

            with PILImage.open(self.path) as im:
                im.size  # noqa: B018 - reading the header is the check
            from textual_image.widget import Image

            image = Image(self.path, classes="image")
        except Exception as exc:  # noqa: BLE001 - a broken image is a note, not a crash
            self.error = f"{type(exc).__name__}: {exc}"
            yield Label(f"🖼 {self.caption} (no preview: {self.error})", classes="image-caption", markup=False)
            return
        yield image
        yield Label(f"🖼 {self.caption}", classes="image-caption", markup=False)
