"""Token-aware chunking that keeps paragraphs and sentences whole and carries provenance.

A chunk is always an exact slice of `Document.text` (`text == doc.text[start:end]`), so a
citation can quote it and point at its pages and section. Token counts come from a counter
for the model that will read the chunk (see `tokens.py`); the chunker only packs units:

1. units: headings, and the sentences of every other block (overlong ones cut at spaces);
2. pack units greedily up to `max_tokens`, preferring to break between paragraphs and where a
   new section starts, never ending a chunk on a heading (it moves to the chunk it introduces);
3. the next chunk begins with the last whole sentences of the previous one, up to `overlap`
   tokens, so an answer that straddles a boundary is seen whole by one chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from .model import Document

CountFn = Callable[[Sequence[str]], list[int]]

# A sentence ends at . ! ? (optionally closed by quotes/brackets) followed by space, or at CJK stops.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)|(?<=[。！？])")
_SEPARATOR_TOKENS = 1  # "\n\n" or " " between units costs about one token


@dataclass(frozen=True)
class Unit:
    start: int
    end: int
    block: int  # index of the block it comes from
    heading: bool
    sentence_start: bool = True  # False for a hard split inside an overlong sentence


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int  # offsets into Document.text
    end: int
    tokens: int
    page_start: int | None
    page_end: int | None
    section: str

    def citation(self, source: str = "") -> str:
        """`manual.pdf p. 3-4 § Installing` - the form answers cite."""
        parts = [source] if source else []
        if self.page_start is not None:
            pages = str(self.page_start) if self.page_end in (None, self.page_start) else f"{self.page_start}-{self.page_end}"
            parts.append(f"p. {pages}")
        if self.section:
            parts.append(f"§ {self.section}")
        return " ".join(parts) or f"chunk {self.index + 1}"


def split_units(doc: Document) -> list[Unit]:
    """Headings whole, everything else by sentence (packing puts sentences of a paragraph back together)."""
    units: list[Unit] = []
    for i, block in enumerate(doc.blocks):
        if block.heading:
            units.append(Unit(block.start, block.end, i, True))
            continue
        pos = 0
        for m in _SENTENCE_END.finditer(block.text):
            units.append(Unit(block.start + pos, block.start + m.start(), i, False))
            pos = m.end()
        units.append(Unit(block.start + pos, block.end, i, False))
    return [u for u in units if u.end > u.start]


def _hard_split(text: str, unit: Unit, tokens: int, max_tokens: int) -> list[Unit]:
    """An overlong sentence (a table dump, a URL list): cut at spaces into near-equal pieces."""
    pieces = -(-tokens // max(1, int(max_tokens * 0.8)))
    target = max(1, len(text) // pieces)
    out, pos = [], 0
    while pos < len(text):
        cut = min(len(text), pos + target)
        if cut < len(text):
            space = text.rfind(" ", pos + target // 2, cut)
            cut = space + 1 if space > pos else cut
        out.append(Unit(unit.start + pos, unit.start + cut, unit.block, unit.heading, pos == 0))
        pos = cut
    return out


def _fit_units(doc: Document, units: list[Unit], counts: list[int], max_tokens: int, count: CountFn) -> tuple[list[Unit], list[int]]:
    text = doc.text
    for _ in range(4):  # a piece can still be too long when its tokens are unevenly spread
        if all(c <= max_tokens for c in counts):
            break
        out_u, out_c, redo = [], [], []
        for unit, c in zip(units, counts):
            if c <= max_tokens:
                out_u.append(unit)
                out_c.append(c)
            else:
                for piece in _hard_split(text[unit.start:unit.end], unit, c, max_tokens):
                    redo.append(len(out_u))
                    out_u.append(piece)
                    out_c.append(0)
        for pos, n in zip(redo, count([text[out_u[p].start:out_u[p].end] for p in redo])):
            out_c[pos] = n
        units, counts = out_u, out_c
    return units, [min(c, max_tokens) for c in counts]


def pack(doc: Document, units: list[Unit], counts: list[int], *, max_tokens: int, overlap: int = 0,
         section_break: float = 0.5) -> list[Chunk]:
    """Greedy packing of counted units into chunks (see the module docstring)."""
    text, blocks = doc.text, doc.blocks
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total, running = i, 0, []
        while j < len(units):
            cost = counts[j] + (_SEPARATOR_TOKENS if j > i else 0)
            if j > i and total + cost > max_tokens:
                break
            # A new section starting when the chunk is already `section_break` full: break here.
            if j > i and units[j].heading and not units[j - 1].heading and total >= max_tokens * section_break:
                break
            total += cost
            running.append(total)
            j += 1
        if j < len(units) and units[j].block == units[j - 1].block:
            # Full in mid-paragraph: end at the last paragraph boundary if that keeps it 60% full.
            for k in range(j - 1, i, -1):
                if units[k].block != units[k - 1].block and running[k - 1 - i] >= 0.6 * max_tokens:
                    j, total = k, running[k - 1 - i]
                    break
        # Never end on headings when more follows: they belong to what they introduce.
        while j - 1 > i and units[j - 1].heading and j < len(units):
            j -= 1
            total = running[j - 1 - i]
        first, last = units[i], units[j - 1]
        pages = [blocks[u.block].page for u in units[i:j] if blocks[u.block].page is not None]
        chunks.append(Chunk(len(chunks), text[first.start:last.end], first.start, last.end, total,
                            min(pages) if pages else None, max(pages) if pages else None, _section(doc, units[i:j])))
        if j >= len(units):
            break
        # Overlap: back up over whole sentences (not headings) worth at most `overlap` tokens;
        # none when the next chunk starts a new section.
        k, back = j, 0
        while overlap and not units[j].heading and k - 1 > i and not units[k - 1].heading and back + counts[k - 1] <= overlap:
            k -= 1
            back += counts[k] + _SEPARATOR_TOKENS
        while k < j and not units[k].sentence_start:  # do not start mid-sentence
            k += 1
        i = k
    return chunks


def _section(doc: Document, units: Sequence[Unit]) -> str:
    """The section a chunk is about: the first non-heading unit's section (headings name the next)."""
    for u in units:
        block = doc.blocks[u.block]
        if not u.heading:
            return block.section
    return doc.blocks[units[0].block].section if units else ""


def chunk_document(doc: Document, count: CountFn, *, max_tokens: int, overlap: int = 0,
                   section_break: float = 0.5) -> list[Chunk]:
    """Chunks of at most `max_tokens` (as `count` measures them), `overlap` tokens shared. A
    heading starts a new chunk when the current one is `section_break` full (0: always)."""
    if max_tokens < 8:
        raise ValueError(f"max_tokens={max_tokens} is too small to chunk with")
    units = split_units(doc)
    counts = count([doc.text[u.start:u.end] for u in units])
    units, counts = _fit_units(doc, units, counts, max_tokens, count)
    return pack(doc, units, counts, max_tokens=max_tokens, overlap=min(overlap, max_tokens // 2),
                section_break=section_break)
