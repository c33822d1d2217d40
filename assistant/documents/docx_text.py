"""DOCX into blocks: paragraphs, list items and table rows in order, sections from heading styles,
pages from Word's breaks.
"""

from __future__ import annotations

import io
import re

from .model import Block, DocumentError
from .parsing import Parsed, Sections, clean_text


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_PAGE = object()  # marker: an explicit page break inside a paragraph
_RENDERED = object()  # marker: where Word's last layout started a new page
_NO_TEXT = {_W + "del", _W + "instrText", _W + "delText", _W + "pPr", _W + "rPr", _MC_FALLBACK,
            _W + "footnoteReference", _W + "endnoteReference", _W + "commentReference"}


def load_docx(data: bytes, source: str) -> Parsed:
    try:
        import docx
    except ImportError:
        raise DocumentError(
            "reading DOCX files needs python-docx", hint="pip install 'assistant[documents]'"
        ) from None
    try:
        document = docx.Document(io.BytesIO(data))
        body = document.element.body
    except Exception as exc:  # BadZipFile, KeyError (missing part), XML syntax errors, ...
        raise DocumentError(
            f"{source} is not a readable DOCX file ({type(exc).__name__}: {exc})",
            hint="open it in Word or LibreOffice and save it again as .docx, or export it as PDF",
        ) from None
    reader = _DocxReader(document)
    reader.read(body)
    meta: dict = {}
    title = ""
    try:
        props = document.core_properties
        title = (props.title or "").strip()
        if props.author:
            meta["author"] = props.author
    except Exception:  # a broken core.xml only loses the metadata
        pass
    if reader.paged:
        meta["page_source"] = reader.paged
    pages = max((b.page for b in reader.blocks if b.page), default=None)  # a trailing break adds no page
    return Parsed(reader.blocks, title=title or reader.first_heading, pages=pages, metadata=meta)


class _DocxReader:
    """Body paragraphs and tables in order, with heading paths, list numbers and page breaks.

    Pages: Word saves `w:lastRenderedPageBreak` where its last layout broke pages; when a file has
    them they are the page numbers. Otherwise explicit breaks count (page breaks, "page break
    before", section breaks that start a new page). With neither, pages are unknown (None)."""

    def __init__(self, document) -> None:
        self.document = document
        body = document.element.body
        rendered = next(body.iter(_W + "lastRenderedPageBreak"), None) is not None
        explicit = (any(br.get(_W + "type") == "page" for br in body.iter(_W + "br"))
                    or next(body.iter(_W + "pageBreakBefore"), None) is not None
                    or len(list(body.iter(_W + "sectPr"))) > 1)
        self.paged = "rendered" if rendered else "explicit" if explicit else ""
        self.page = 1
        self.blocks: list[Block] = []
        self.sections = Sections()
        self.first_heading = ""
        self._styles: dict[str, tuple[int | None, object]] = {}
        try:
            styles = document.styles.element.iterchildren(_W + "style")
            self._style_elements = {el.get(_W + "styleId"): el for el in styles}
        except Exception:  # no styles part: every paragraph is body text
            self._style_elements = {}
        self._numbering = _Numbering(document)
        self._section_types = [_section_type(s) for s in body.iter(_W + "sectPr")]
        self._section_at = 0

    def read(self, container) -> None:
        for child in container.iterchildren():
            if child.tag == _W + "p":
                self._paragraph(child)
            elif child.tag == _W + "tbl":
                self._table(child)
            elif child.tag == _W + "sdt":  # content control: read what it holds
                content = child.find(_W + "sdtContent")
                if content is not None:
                    self.read(content)

    def _block(self, text: str, **kw) -> None:
        text = clean_text(text)
        if text:
            self.blocks.append(Block(text, self.page if self.paged else None, **kw))

    def _paragraph(self, p) -> None:
        ppr = p.find(_W + "pPr")
        if self.paged == "explicit" and ppr is not None and _on(ppr.find(_W + "pageBreakBefore")) and self.blocks:
            self.page += 1
        level, style_numpr = self._style(ppr)
        outline = ppr.find(_W + "outlineLvl") if ppr is not None else None
        if outline is not None and outline.get(_W + "val", "").isdigit():  # set on the paragraph itself
            val = int(outline.get(_W + "val"))
            level = val + 1 if val < 9 else None
        numpr = ppr.find(_W + "numPr") if ppr is not None else None
        prefix = self._numbering.prefix(numpr if numpr is not None else style_numpr) if level is None else ""
        pieces: list[str] = []
        later = 0  # rendered breaks inside the paragraph: it keeps the page it starts on
        for piece in _runs(p):
            if piece is _PAGE:
                if self.paged == "explicit":  # a hard break splits the paragraph
                    self._emit(pieces, prefix, level)
                    pieces, prefix = [], ""
                    self.page += 1
            elif piece is _RENDERED:
                if self.paged == "rendered" and self.blocks:
                    if "".join(pieces).strip():
                        later += 1
                    else:
                        self.page += 1
            else:
                pieces.append(piece)
        self._emit(pieces, prefix, level)
        self.page += later
        if ppr is not None and ppr.find(_W + "sectPr") is not None:  # a section ends here
            self._section_at += 1
            types = self._section_types
            starts = types[self._section_at] if self._section_at < len(types) else "continuous"
            if self.paged == "explicit" and starts in ("nextPage", "oddPage", "evenPage"):  # the next one's start
                self.page += 1

    def _emit(self, pieces: list[str], prefix: str, level: int | None) -> None:
        text = "".join(pieces).strip()
        if not text:
            return
        if level is not None:
            self.first_heading = self.first_heading or text
            self._block(text, section=self.sections.enter(level, text), heading=True)
        else:
            self._block(prefix + text, section=self.sections.path)

    def _style(self, ppr) -> tuple[int | None, object]:
        """(heading level or None, the style's list numbering or None): "Title" is level 0,
        "Heading N" level N, and a style with an outline level is that heading."""
        sid = ""
        if ppr is not None and ppr.find(_W + "pStyle") is not None:
            sid = ppr.find(_W + "pStyle").get(_W + "val", "")
        if sid not in self._styles:
            level, numpr = None, None
            style = self._style_elements.get(sid) if sid else None
            if style is not None:
                name_el = style.find(_W + "name")
                name = (name_el.get(_W + "val") if name_el is not None else "") or sid
                m = re.fullmatch(r"heading\s*(\d)", name, re.I)
                lvl = style.find(f"{_W}pPr/{_W}outlineLvl")
                if name.lower() == "title":
                    level = 0
                elif m:
                    level = int(m.group(1))
                elif lvl is not None and lvl.get(_W + "val", "9").isdigit() and int(lvl.get(_W + "val")) < 9:
                    level = int(lvl.get(_W + "val")) + 1
                numpr = style.find(f"{_W}pPr/{_W}numPr")
            self._styles[sid] = (level, numpr)
        return self._styles[sid]

    def _table(self, tbl) -> None:
        """One block per row, "cell | cell | cell"; breaks inside a row count after it."""
        for tr in tbl.iterchildren(_W + "tr"):
            cells, breaks = [], 0
            for tc in tr.iterchildren(_W + "tc"):
                texts = []
                for par in tc.iter(_W + "p"):
                    pieces = list(_runs(par))
                    breaks += sum(1 for x in pieces if x is (_RENDERED if self.paged == "rendered" else _PAGE))
                    texts.append(" ".join("".join(x for x in pieces if isinstance(x, str)).split()))
                cells.append(" ".join(t for t in texts if t))
            if any(cells):
                self._block(" | ".join(cells), section=self.sections.path)
            if self.paged:
                self.page += breaks


def _runs(p):
    """The paragraph's text pieces in order, with _PAGE / _RENDERED markers; deleted text, field
    codes and the fallback copies of text boxes left out."""
    stack = [iter(p)]
    while stack:
        el = next(stack[-1], None)
        if el is None:
            stack.pop()
            continue
        tag = el.tag
        if not isinstance(tag, str) or tag in _NO_TEXT:
            continue
        if tag == _W + "t":
            yield el.text or ""
        elif tag == _W + "tab":
            yield "\t"
        elif tag == _W + "br":
            yield _PAGE if el.get(_W + "type") == "page" else "\n"
        elif tag == _W + "cr":
            yield "\n"
        elif tag == _W + "noBreakHyphen":
            yield "-"
        elif tag == _W + "lastRenderedPageBreak":
            yield _RENDERED
        elif len(el):
            stack.append(iter(el))


def _on(el) -> bool:
    return el is not None and el.get(_W + "val", "true") not in ("0", "false", "off")


def _section_type(sect) -> str:
    t = sect.find(_W + "type")
    return t.get(_W + "val", "nextPage") if t is not None else "nextPage"


class _Numbering:
    """List prefixes: "- " for bullets, "3. " for numbered items (counted per list and level)."""

    def __init__(self, document) -> None:
        self.formats: dict[tuple[str, int], tuple[str, int]] = {}
        self.counters: dict[tuple[str, int], int] = {}
        try:
            root = document.part.numbering_part.element
        except Exception:  # no numbering part: no lists
            return
        abstract = {}
        for an in root.iterchildren(_W + "abstractNum"):
            levels = {}
            for lvl in an.iterchildren(_W + "lvl"):
                fmt = lvl.find(_W + "numFmt")
                start = lvl.find(_W + "start")
                levels[int(lvl.get(_W + "ilvl", "0"))] = (
                    fmt.get(_W + "val", "decimal") if fmt is not None else "decimal",
                    int(start.get(_W + "val", "1")) if start is not None else 1,
                )
            abstract[an.get(_W + "abstractNumId")] = levels
        for num in root.iterchildren(_W + "num"):
            ref = num.find(_W + "abstractNumId")
            if ref is not None:
                for ilvl, spec in abstract.get(ref.get(_W + "val"), {}).items():
                    self.formats[(num.get(_W + "numId"), ilvl)] = spec

    def prefix(self, numpr) -> str:
        """The prefix for a paragraph with this `w:numPr` (its own or its style's)."""
        if numpr is None or numpr.find(_W + "numId") is None:
            return ""
        num_id = numpr.find(_W + "numId").get(_W + "val")
        ilvl_el = numpr.find(_W + "ilvl")
        ilvl = int(ilvl_el.get(_W + "val", "0")) if ilvl_el is not None else 0
        fmt, start = self.formats.get((num_id, ilvl), ("bullet", 1))
        if num_id == "0" or fmt == "none":
            return ""
        for key in [k for k in self.counters if k[0] == num_id and k[1] > ilvl]:
            del self.counters[key]  # a deeper level restarts under a new parent item
        if fmt == "bullet":
            return "- "
        n = self.counters.get((num_id, ilvl), start - 1) + 1
        self.counters[(num_id, ilvl)] = n
        return f"{n}. "
