"""A loaded document: paragraphs in reading order, each with where it came from.

Offsets are character offsets into `Document.text`, which is the blocks joined by blank
lines, so a citation can point at a page, a section and an exact span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ..errors import AttachmentError

SEPARATOR = "\n\n"


class DocumentError(AttachmentError):
    """A file that cannot be read as a document (corrupt, encrypted, scanned, empty)."""


@dataclass(frozen=True)
class Block:
    """One paragraph (or heading, list item, table row...) the chunker never splits across."""

    text: str
    page: int | None = None  # 1-based page number (PDF, DOCX page breaks); None when the format has none
    section: str = ""  # heading path, e.g. "Installing > From a CD"; "" before the first heading
    start: int = 0  # offsets into Document.text
    end: int = 0
    heading: bool = False  # this block is itself a heading


@dataclass(frozen=True)
class Document:
    source: str  # the path or name the user gave
    kind: str  # "pdf" | "docx" | "html" | "markdown" | "text"
    sha256: str  # of the file's bytes: the cache and de-duplication key
    blocks: tuple[Block, ...]
    title: str = ""
    pages: int | None = None
    metadata: dict = field(default_factory=dict)

    @cached_property  # sliced once per unit when chunking: rebuilding it each time was O(units x size)
    def text(self) -> str:
        return SEPARATOR.join(b.text for b in self.blocks)


def with_offsets(blocks: list[Block]) -> tuple[Block, ...]:
    """Fill in start/end so they index `SEPARATOR.join(texts)`."""
    out, pos = [], 0
    for b in blocks:
        out.append(Block(b.text, b.page, b.section, pos, pos + len(b.text), b.heading))
        pos += len(b.text) + len(SEPARATOR)
    return tuple(out)
