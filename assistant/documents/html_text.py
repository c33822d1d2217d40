"""HTML into blocks with the standard library's parser: headings give the section path; navigation,
scripts and page chrome are skipped.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from .model import Block
from .parsing import Parsed, Sections, clean_text, text_of


_ALWAYS_SKIP = {"script", "style", "noscript", "template", "svg", "math", "head"}
_SKIP_TAGS = _ALWAYS_SKIP | {"nav", "iframe", "object", "canvas", "select", "button"}
_SKIP_TOP_LEVEL = {"header", "footer"}  # page banners; an <article>'s own header is content
_SKIP_CLASSES = {"navheader", "navfooter", "toc", "breadcrumb", "breadcrumbs", "skip-link", "sr-only",
                 "visually-hidden", "cookie-banner"}
_SKIP_ROLES = {"navigation", "banner", "contentinfo", "search"}
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "aside", "blockquote", "ul", "ol", "li", "dl", "dt",
               "dd", "table", "thead", "tbody", "tfoot", "tr", "caption", "figure", "figcaption", "address",
               "hr", "details", "summary", "form", "fieldset", "legend", "center", "body", "html", "header",
               "footer"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_LAYOUT_SIGNS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "blockquote", "table"}
_VOID = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "param", "source",
         "track", "wbr"}
_SPACES = re.compile(r"\s+")


class _HTMLBlocks(HTMLParser):
    def __init__(self, *, lenient: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.lenient = lenient  # skip only what is never content (scripts, styles, <head>)
        self.blocks: list[Block] = []
        self.sections = Sections()
        self.title = ""
        self.first_h1 = ""
        self._parts: list[str] = []
        self._prefix = ""  # "- " or "3. " waiting for a list item's first text
        self._skip: list[str] = []  # open skipped elements (nested same-name ones counted)
        self._open: list[str] = []  # open content elements, to tell top-level headers from article ones
        self._in_title = False
        self._title_parts: list[str] = []
        self._heading: int = 0  # level of the open heading, 0 outside
        self._pre = 0
        self._lists: list[list] = []  # ["ul"|"ol", next number]
        self._row: list[str] | None = None  # cells of the open table row
        self._cell: list[str] | None = None
        self._tables: list[bool] = []  # open tables: True for a data table, False for a layout table
        self.unclosed_skip = False  # a skipped element (navigation, TOC...) was still open at the end

    # -- skipping

    def _skips(self, tag: str, attrs: dict) -> bool:
        if tag in _ALWAYS_SKIP:
            return True
        if self.lenient:
            return False
        if tag in _SKIP_TAGS or "hidden" in attrs or attrs.get("aria-hidden") == "true":
            return True
        if tag in _SKIP_TOP_LEVEL and not {"article", "main", "section"} & set(self._open):
            return True
        if (attrs.get("role") or "") in _SKIP_ROLES:
            return True
        classes = set((attrs.get("class") or "").split())
        return bool(classes & _SKIP_CLASSES)

    @property
    def _table(self) -> bool:
        """Inside a data table (not a layout table, whose cells are read as ordinary blocks)."""
        return bool(self._tables) and self._tables[-1]

    def handle_starttag(self, tag: str, attrs_list) -> None:
        attrs = {k: (v or "") for k, v in attrs_list}
        if tag == "title" and not self.title and (not self._skip or self._skip == ["head"]):
            self._in_title = True  # the page's <title>, not an SVG's
            return
        if self._skip:
            if tag == "body" and self._skip[0] == "head":  # a page that never closed its <head>
                self._skip = []
            elif tag == self._skip[-1] and tag not in _VOID:
                self._skip.append(tag)
                return
            else:
                return
        if tag not in _VOID and self._skips(tag, attrs):
            self._skip.append(tag)
            return
        if tag in _VOID:
            if tag == "br":
                self._text("\n", raw=True)
            elif tag == "hr":
                self._flush()
            return
        self._open.append(tag)
        if self._table and tag in _LAYOUT_SIGNS and self._cell is not None:
            # Paragraphs, headings or tables in a cell: a layout table. Its cells are read as blocks.
            self._parts = [" | ".join(self._row or []) + (" | " if self._row else "") + "".join(self._cell)]
            self._row, self._cell = None, None
            self._tables[-1] = False
        if tag == "table":
            self._flush()
            self._tables.append(True)
            return
        if self._table and tag in ("td", "th"):
            self._cell = []
            return
        if self._table and tag == "tr":
            self._row = []
            return
        if self._table:  # other markup inside a cell is just spacing
            self._text(" ", raw=True)
            return
        if tag in ("td", "th", "tr"):  # a layout table's cells
            self._flush()
            return
        if tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in ("ul", "ol"):
            self._flush()
            start = attrs.get("start", "1")
            self._lists.append([tag, int(start) if start.lstrip("-").isdigit() else 1])
        elif tag == "li":
            self._flush()
            if self._lists and self._lists[-1][0] == "ol":
                self._prefix = f"{self._lists[-1][1]}. "
                self._lists[-1][1] += 1
            else:
                self._prefix = "- "
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = _SPACES.sub(" ", "".join(self._title_parts)).strip()
            return
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag in _VOID:
            return
        if tag in self._open:  # close it (and anything left open inside it)
            while self._open and self._open.pop() != tag:
                pass
        if tag == "table" and self._tables:
            if self._table and self._row:
                self._end_row()
            self._tables.pop()
            self._flush()
            return
        if self._table:
            if tag in ("td", "th") and self._cell is not None:
                if self._row is None:
                    self._row = []
                self._row.append(_SPACES.sub(" ", "".join(self._cell)).strip())
                self._cell = None
            elif tag == "tr" and self._row is not None:
                self._end_row()
            return
        if tag in _HEADINGS and self._heading:
            title = _SPACES.sub(" ", "".join(self._parts)).strip()
            self._parts = []
            if title:
                self.first_h1 = self.first_h1 or (title if tag == "h1" else "")
                path = self.sections.enter(self._heading, title)
                self.blocks.append(Block(title, section=path, heading=True))
            self._heading = 0
        elif tag == "pre":
            self._flush()
            self._pre = max(0, self._pre - 1)
        elif tag in ("ul", "ol"):
            self._flush()
            if self._lists:
                self._lists.pop()
        elif tag in _BLOCK_TAGS or tag in ("li", "td", "th"):
            self._flush()

    def _end_row(self) -> None:
        if self._row and any(self._row):
            self.blocks.append(Block(" | ".join(self._row), section=self.sections.path))
        self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
        elif not self._skip:
            self._text(data)

    def _text(self, data: str, raw: bool = False) -> None:
        if self._cell is not None:
            self._cell.append(data if raw else _SPACES.sub(" ", data))
            return
        if self._table:
            return  # text between cells (whitespace)
        if not raw and not self._pre:
            data = _SPACES.sub(" ", data)
        if self._prefix and data.strip() and not self._heading:
            data = self._prefix + data.lstrip()
            self._prefix = ""
        self._parts.append(data)

    def _flush(self) -> None:
        if self._heading:
            return  # a heading's text is taken when it closes
        raw = "".join(self._parts)
        self._parts = []
        if self._pre:
            text = clean_text(raw)
        else:
            text = "\n".join(" ".join(line.split()) for line in raw.split("\n")).strip()
            text = re.sub(r"\n{2,}", "\n", text)
        if text:
            self.blocks.append(Block(text, section=self.sections.path))

    def close(self) -> None:
        super().close()
        self._heading = 0
        self._flush()
        self.unclosed_skip = any(t not in _ALWAYS_SKIP for t in self._skip)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""")


def _html_text(data: bytes, meta: dict) -> str:
    """Decode: byte-order mark, then the declared charset, then the text fallbacks."""
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        m = _META_CHARSET.search(data[:4096]) or _XML_ENCODING.search(data[:200])
        if m:
            enc = m.group(1).decode("ascii").lower()
            try:
                text = data.decode(enc)
                meta["encoding"] = codecs.lookup(enc).name
                return text
            except (LookupError, UnicodeDecodeError):
                meta["encoding_note"] = f"declared charset {enc} did not decode the page"
    return text_of(data, meta)


def load_html(data: bytes, source: str) -> Parsed:
    meta: dict = {}
    text = _html_text(data, meta)
    parser = _HTMLBlocks()
    parser.feed(text)
    parser.close()
    if parser.unclosed_skip:  # an unclosed navigation/TOC element swallowed the rest: read it all
        parser = _HTMLBlocks(lenient=True)
        parser.feed(text)
        parser.close()
    return Parsed(parser.blocks, title=parser.title or parser.first_h1, metadata=meta)
