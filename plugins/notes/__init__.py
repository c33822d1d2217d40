"""Notes the assistant can save and find again: Markdown files in a folder you choose."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from assistant.plugin_api import Plugin, Risk, tool, write_file_atomic


class NotesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str = Field("", description="Where notes are kept. Empty: the plugin's data folder.")
    max_chars: int = Field(20000, ge=1, description="Longest note accepted.")


def _slug(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80]
    if not slug:
        raise ValueError("the title needs at least one letter or digit")
    return slug


class Notes(Plugin):
    name = "notes"
    description = "Save, read and search your notes"
    Settings = NotesSettings

    @property
    def folder(self) -> Path:
        folder = Path(self.settings.folder).expanduser() if self.settings.folder else self.data_dir
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @tool(risk=Risk.SIDE_EFFECTS)
    def save(self, title: str, text: str) -> str:
        """Save a note (replaces a note with the same title).

        Args:
            title: Short title, e.g. "Shopping list".
            text: The note's content in Markdown.
        """
        if len(text) > self.settings.max_chars:
            raise ValueError(f"note too long ({len(text)} characters, at most {self.settings.max_chars})")
        path = self.folder / f"{_slug(title)}.md"
        write_file_atomic(path, f"# {title}\n\n{text}\n".encode())  # a crash never leaves half a note
        return f"saved note {title!r} ({path.name})"

    @tool
    def read(self, title: str) -> str:
        """Read a note by its title.

        Args:
            title: The note's title.
        """
        path = self.folder / f"{_slug(title)}.md"
        if not path.is_file():
            return f"There is no note titled {title!r}. Notes: {', '.join(self._titles()) or 'none'}."
        return path.read_text()

    @tool
    def search(self, query: str) -> list[dict]:
        """Find notes containing all words of a query.

        Args:
            query: Words to look for, e.g. "milk eggs".
        """
        words = [w.lower() for w in query.split()]
        hits = []
        for path in sorted(self.folder.glob("*.md")):
            text = path.read_text()
            if all(w in text.lower() for w in words):
                hits.append({"title": text.splitlines()[0].lstrip("# ").strip(), "preview": text[:200]})
        return hits

    def _titles(self) -> list[str]:
        return [p.read_text().splitlines()[0].lstrip("# ").strip() for p in sorted(self.folder.glob("*.md"))]
