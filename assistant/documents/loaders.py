"""Read PDF, DOCX, HTML, Markdown and plain text into a `Document` with provenance.

    doc = load_document("manual.pdf")
    for block in doc.blocks:
        block.page, block.section, doc.text[block.start:block.end]

Blocks are paragraphs in reading order (also headings, list items, table rows, code blocks),
each with its 1-based page where the format has pages, the heading path it sits under
("Chapter 2 > Installing") and its offsets into `Document.text`. The kind is decided by the
content (the attachment sniffer's magic bytes) first and the file name second.

Every failure a user can meet (no such file, password, scanned PDF, corrupt DOCX, empty file)
is a `DocumentError` that names the file and says what to do. pypdf and python-docx are the
`documents` extra and are imported only when a PDF or DOCX is loaded.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from ..dialogue.attachments import DOCX as DOCX_MIME
from ..dialogue.attachments import sniff
from ..errors import AttachmentError
from .model import Block, Document, DocumentError, with_offsets

KINDS = ("pdf", "docx", "html", "markdown", "text")
SECTION_SEP = " > "
_FORMATS = "PDF, DOCX, HTML, Markdown or plain text"


def load_document(source: str | Path, data: bytes | None = None, *, kind: str | None = None) -> Document:
    """Load a document. `data`: the file's bytes when already in memory (then `source` only names
    it); `kind` forces a parser ("pdf", "docx", "html", "markdown", "text") instead of detection."""
    name = Path(str(source)).name or str(source)
    if data is None:
        data = _read(Path(source).expanduser())
    if not data.strip():
        raise DocumentError(f"{source} is empty", hint="attach a file that has text in it")
    if kind is None:
        kind = detect_kind(data, name)
    elif kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}; expected one of {', '.join(KINDS)}")
    parsed = _PARSERS[kind](data, str(source))
    blocks = [b for b in parsed.blocks if b.text.strip()]
    if not blocks:
        raise DocumentError(
            f"{source} contains no text", hint="check that it is the right file; a scanned document needs OCR first"
        )
    return Document(
        source=str(source),
        kind=kind,
        sha256=hashlib.sha256(data).hexdigest(),
        blocks=with_offsets(blocks),
        title=(parsed.title or "").strip() or name,
        pages=parsed.pages,
        metadata=parsed.metadata,
    )


def detect_kind(data: bytes, name: str = "") -> str:
    """"pdf" | "docx" | "html" | "markdown" | "text" for these bytes, or a DocumentError saying
    what the file is instead."""
    ext = Path(name).suffix.lower()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and _decodes_as_text(data):
        return _text_kind(data, ext)  # FF FE also starts an AAC frame: the sniffer would say audio
    try:
        att = sniff(data, filename=name or None)
    except AttachmentError as exc:  # only raised for empty data, which load_document checks first
        raise DocumentError(str(exc).split("\n")[0], hint=exc.hint) from None
    if att.mime == "application/pdf":
        return "pdf"
    if att.mime == DOCX_MIME:
        return "docx"
    if att.mime == "text/html":
        return "html"
    if att.kind == "text":
        return _text_kind(data, ext)
    # Not UTF-8: a text file in another encoding is still text; anything else is a clear error.
    if att.kind == "unknown" and att.mime == "application/octet-stream" and _decodes_as_text(data):
        return _text_kind(data, ext)
    if ext == ".pdf":
        raise DocumentError(
            f"{name} is not a valid PDF (no %PDF header; detected as {att.mime})",
            hint="the file is damaged or not really a PDF: download or export it again",
        )
    if ext == ".docx":
        raise DocumentError(
            f"{name} is not a valid DOCX file (detected as {att.mime})",
            hint="open it in Word or LibreOffice and save it again as .docx, or export it as PDF",
        )
    what = {"image": "an image", "audio": "an audio file"}.get(att.kind, f"not a document ({att.mime})")
    raise DocumentError(f"{name} is {what}", hint=f"attach a {_FORMATS} file")


def _text_kind(data: bytes, ext: str) -> str:
    head = _decode(data[:65536])[0]
    start = head[:1024].lstrip().lower()
    if start.startswith(("<!doctype html", "<html")) or (start.startswith("<") and ext in (".html", ".htm", ".xhtml")):
        return "html"
    return "markdown" if ext in (".md", ".markdown") or _looks_like_markdown(head) else "text"


# --- shared helpers -----------------------------------------------------------------------


@dataclass
class _Parsed:
    blocks: list[Block]
    title: str = ""
    pages: int | None = None
    metadata: dict = field(default_factory=dict)


class _Sections:
    """The heading path: entering a level-n heading closes every open heading of level >= n."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, " ".join(title.split())))
        return self.path

    @property
    def path(self) -> str:
        return SECTION_SEP.join(t for _, t in self._stack if t)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")


def _clean(text: str) -> str:
    """No control characters (form feeds are counted as pages before this), no trailing spaces."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n").strip()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(
            f"{path} does not exist", hint="check the path (relative paths start at the current folder)"
        ) from None
    except IsADirectoryError:
        raise DocumentError(f"{path} is a folder, not a file", hint="load the files inside it one by one") from None
    except PermissionError:
        raise DocumentError(f"cannot read {path}: permission denied", hint="check the file's permissions") from None
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror or exc}") from None


def _decode(data: bytes) -> tuple[str, str, str]:
    """(text, encoding, note): BOMs first, then UTF-8, then UTF-16 without a BOM, then cp1252/latin-1
    with a note saying so (those decode anything, so the characters may be wrong)."""
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, ""
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8"), "utf-8", ""
    except UnicodeDecodeError:
        pass
    sample = data[:4096]
    if len(sample) >= 4 and sample.count(0) >= len(sample) // 4:  # UTF-16 text without a BOM
        enc = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
        try:
            return data.decode(enc), enc, f"no byte-order mark: decoded as {enc}"
        except UnicodeDecodeError:
            pass
    for enc in ("cp1252", "latin-1"):
        try:
            return data.decode(enc), enc, f"not valid UTF-8: decoded as {enc}, some characters may be wrong"
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def _decodes_as_text(data: bytes) -> bool:
    """Text in a legacy encoding or UTF-16: few control characters once decoded."""
    text, _, _ = _decode(data[:65536])
    if not text:
        return False
    controls = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f") or ch in "\x7f\ufffd")
    return controls <= max(2, len(text) // 200)


def _text_of(data: bytes, metadata: dict) -> str:
    text, enc, note = _decode(data)
    metadata["encoding"] = enc
    if note:
        metadata["encoding_note"] = note
    return text


# --- plain text ---------------------------------------------------------------------------

_BLANK_LINES = re.compile(r"\n[ \t]*\n[ \t\n]*")
LONG_PARAGRAPH = 4000  # characters: a "paragraph" longer than this (a dump) is split at line ends
LINE_GROUP = 1000  # ...into blocks of about this many characters


def _load_text(data: bytes, source: str) -> _Parsed:
    meta: dict = {}
    text = _text_of(data, meta)
    pages = text.split("\x0c")  # form feeds (pdftotext output, old line-printer files) are page breaks
    paged = len(pages) > 1
    blocks: list[Block] = []
    for number, page in enumerate(pages, 1):
        for para in _BLANK_LINES.split(page.replace("\r\n", "\n").replace("\r", "\n")):
            for piece in _split_long(para):
                piece = _clean(piece)
                if piece:
                    blocks.append(Block(piece, number if paged else None))
    return _Parsed(blocks, pages=len(pages) if paged else None, metadata=meta)


def _split_long(para: str) -> list[str]:
    if len(para) <= LONG_PARAGRAPH or "\n" not in para:
        return [para]
    out, group, size = [], [], 0
    for line in para.split("\n"):
        if group and size + len(line) > LINE_GROUP:
            out.append("\n".join(group))
            group, size = [], 0
        group.append(line)
        size += len(line) + 1
    if group:
        out.append("\n".join(group))
    return out


# --- Markdown -----------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S")
_THEMATIC = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_TABLE_ROW = re.compile(r"^[ \t]*\|")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
_MD_LINK = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)")


def _looks_like_markdown(text: str) -> bool:
    """Heading or list syntax plus one more Markdown feature, so a plain note with one "#" line
    (or a shell script) stays text."""
    lines = text.split("\n")
    atx = sum(1 for ln in lines if ln.startswith("#") and _ATX.match(ln) and _ATX.match(ln).group(2))
    fences = sum(1 for ln in lines if _FENCE.match(ln))
    items = sum(1 for ln in lines if _LIST_ITEM.match(ln))
    setext = sum(1 for a, b in zip(lines, lines[1:])
                 if a.strip() and not _LIST_ITEM.match(a) and re.match(r"^(=+|-+)\s*$", b) and len(b.strip()) >= 3)
    links = len(_MD_LINK.findall(text))
    if text.startswith("#!"):  # a script
        return False
    headings = atx + setext
    if atx >= 2 or (headings >= 1 and fences + items + links + headings >= 2):
        return True
    return fences >= 2 and items + links >= 1


def _front_matter(text: str) -> tuple[dict, str]:
    """YAML front matter (--- ... ---) at the very top: its fields, and the text without it.
    Simple `key: value` lines are read without a YAML library; PyYAML is used when installed."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for end in range(1, min(len(lines), 500)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, text
    raw = "\n".join(lines[1:end])
    if raw.strip() and not re.search(r"^[A-Za-z_][\w -]*:", raw, re.M):
        return {}, text  # a thematic break, not front matter
    fields: dict = {}
    try:
        import yaml  # optional

        loaded = yaml.safe_load(raw)
        if isinstance(loaded, dict):
            fields = {str(k): v if v is None or isinstance(v, (str, int, float, bool, list)) else str(v)
                      for k, v in loaded.items()}
    except Exception:  # no PyYAML, or not valid YAML: fall back to key: value lines
        for line in raw.split("\n"):
            m = re.match(r"^([A-Za-z_][\w -]*):[ \t]*(.*)$", line)
            if m:
                fields[m.group(1).strip()] = m.group(2).strip().strip("\"'")
    return fields, "\n".join(lines[end + 1 :])


def _load_markdown(data: bytes, source: str) -> _Parsed:
    meta: dict = {}
    text = _text_of(data, meta).replace("\r\n", "\n").replace("\r", "\n")
    fields, text = _front_matter(text)
    if fields:
        meta["front_matter"] = fields
    sections = _Sections()
    blocks: list[Block] = []
    para: list[str] = []
    para_kind = ""  # "" | "item" | "table" | "quote"
    first_heading = ""

    def flush() -> None:
        nonlocal para, para_kind
        body = _clean("\n".join(para))
        if body:
            blocks.append(Block(body, section=sections.path))
        para, para_kind = [], ""

    def heading(level: int, title: str) -> None:
        nonlocal first_heading
        title = title.strip()
        if not title:
            return
        first_heading = first_heading or title
        blocks.append(Block("#" * level + " " + title, section=sections.enter(level, title), heading=True))

    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            mark = fence.group(1)
            body = [line]
            i += 1
            while i < len(lines):
                body.append(lines[i])
                i += 1
                if lines[i - 1].strip().startswith(mark[0] * len(mark)) and not lines[i - 1].strip().strip(mark[0]):
                    break
            code = "\n".join(ln.rstrip() for ln in body).strip("\n")
            blocks.append(Block(_CONTROL.sub("", code), section=sections.path))
            continue
        i += 1
        if not line.strip():
            flush()
            continue
        atx = _ATX.match(line)
        if atx and atx.group(2) is not None:
            flush()
            heading(len(atx.group(1)), atx.group(2))
            continue
        setext = _SETEXT.match(line)
        if setext and para and para_kind == "":
            title = " ".join(p.strip() for p in para)
            para = []
            heading(1 if setext.group(1)[0] == "=" else 2, title)
            continue
        if _THEMATIC.match(line):
            flush()
            continue
        if _LIST_ITEM.match(line):
            flush()
            para, para_kind = [line], "item"
            continue
        if _TABLE_ROW.match(line) or (para_kind == "table" and "|" in line):
            if _TABLE_RULE.match(line) and para_kind == "table":
                para.append(line)  # the rule under the header row stays with it
                continue
            flush()
            para, para_kind = [line], "table"
            continue
        if para_kind == "table":
            flush()
        if line.lstrip().startswith(">") != (para_kind == "quote") and para:
            flush()
        if line.lstrip().startswith(">"):
            para_kind = "quote"
        para.append(line)
    flush()
    title = str(fields.get("title") or first_heading or "")
    return _Parsed(blocks, title=title, metadata=meta)


# --- HTML ---------------------------------------------------------------------------------

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
        self.sections = _Sections()
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
            text = _clean(raw)
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
    return _text_of(data, meta)


def _load_html(data: bytes, source: str) -> _Parsed:
    meta: dict = {}
    text = _html_text(data, meta)
    parser = _HTMLBlocks()
    parser.feed(text)
    parser.close()
    if parser.unclosed_skip:  # an unclosed navigation/TOC element swallowed the rest: read it all
        parser = _HTMLBlocks(lenient=True)
        parser.feed(text)
        parser.close()
    return _Parsed(parser.blocks, title=parser.title or parser.first_h1, metadata=meta)


# --- DOCX ---------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_PAGE = object()  # marker: an explicit page break inside a paragraph
_RENDERED = object()  # marker: where Word's last layout started a new page
_NO_TEXT = {_W + "del", _W + "instrText", _W + "delText", _W + "pPr", _W + "rPr", _MC_FALLBACK,
            _W + "footnoteReference", _W + "endnoteReference", _W + "commentReference"}


def _load_docx(data: bytes, source: str) -> _Parsed:
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
    return _Parsed(reader.blocks, title=title or reader.first_heading, pages=pages, metadata=meta)


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
        self.sections = _Sections()
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
        text = _clean(text)
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


# --- PDF ----------------------------------------------------------------------------------

SCANNED_TEXT_PAGES = 0.10  # below this share of pages with text (and with images), call it scanned
_WORD_GAP = 150.0  # a TJ offset of 0.15 em or more between glyph runs is a word space


_GLUED_BULLET = re.compile(r"^([•◦▪▫‣∙●○■□])(?=\S)")
_DOT_LEADER = re.compile(r"(?:\s?\.){5,}\s*")  # table-of-contents leaders ". . . . ."


@dataclass
class _Line:
    text: str
    x: float | None
    y: float | None
    size: float


def _load_pdf(data: bytes, source: str) -> _Parsed:
    try:
        import pypdf
        from pypdf.errors import DependencyError, PdfReadError
    except ImportError:
        raise DocumentError("reading PDF files needs pypdf", hint="pip install 'assistant[documents]'") from None
    corrupt_hint = ("the file is damaged or incomplete: download or export it again "
                    "(qpdf in.pdf out.pdf can sometimes repair it)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except (PdfReadError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise DocumentError(f"{source} is not a readable PDF ({exc})", hint=corrupt_hint) from None
    meta: dict = {}
    if encrypted:
        try:
            opened = reader.decrypt("")  # many "protected" PDFs only restrict printing or copying
        except DependencyError as exc:
            raise DocumentError(f"{source} is encrypted with a cipher that needs another library ({exc})",
                                hint="pip install cryptography") from None
        except Exception as exc:
            raise DocumentError(f"{source} is encrypted and could not be opened ({exc})", hint=corrupt_hint) from None
        if not opened:
            raise DocumentError(
                f"{source} is password-protected",
                hint="decrypt it first: qpdf --decrypt --password=PASSWORD in.pdf out.pdf (then load out.pdf)",
            )
        meta["encrypted"] = True
    try:
        pages = list(reader.pages)
    except Exception as exc:
        raise DocumentError(f"{source} is not a readable PDF ({exc})", hint=corrupt_hint) from None
    if not pages:
        raise DocumentError(f"{source} has no pages", hint=corrupt_hint)

    page_lines: list[list[_Line]] = []
    failed, with_images = [], 0
    font_cache: dict = {}
    for number, page in enumerate(pages, 1):
        try:
            lines = _page_lines(page, font_cache)
        except Exception:  # one damaged page does not lose the others
            failed.append(number)
            lines = []
        page_lines.append(lines)
        if not lines and _has_images(page):
            with_images += 1
    text_pages = sum(1 for lines in page_lines if lines)
    if failed and len(failed) == len(pages):
        raise DocumentError(f"{source} is not a readable PDF (no page could be read)", hint=corrupt_hint)
    empty_with_images = with_images >= (len(pages) - text_pages) / 2
    if text_pages == 0 or (text_pages < SCANNED_TEXT_PAGES * len(pages) and empty_with_images):
        if with_images:
            raise DocumentError(
                f"{source} has no text layer (scanned?): {text_pages} of {len(pages)} pages have text",
                hint="run OCR on it first, e.g. ocrmypdf in.pdf out.pdf, then load out.pdf",
            )
        raise DocumentError(
            f"{source} has no extractable text",
            hint="its text may be drawn as shapes: run OCR on it (ocrmypdf --force-ocr in.pdf out.pdf)",
        )

    _drop_headers_footers(page_lines)
    vocabulary = _vocabulary(page_lines)
    paragraphs: list[tuple[int, str]] = []
    empty = []
    for number, lines in enumerate(page_lines, 1):
        paras = _paragraphs(lines, vocabulary)
        if not paras:
            empty.append(number)
        paragraphs.extend((number, text) for text in paras)
    if empty:
        meta["empty_pages"] = empty
    if failed:
        meta["failed_pages"] = failed
    outline = _outline(reader)
    blocks = _assign_sections(paragraphs, outline)
    if outline:
        meta["outline_entries"] = len(outline)
    return _Parsed(blocks, title=_pdf_title(reader), pages=len(pages), metadata=meta)


def _pdf_title(reader) -> str:
    try:
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except Exception:
        return ""
    lowered = title.lower()
    if not title or lowered in ("untitled", "title") or lowered.endswith((".doc", ".docx", ".pdf", ".tex", ".dvi")):
        return ""
    return title


def _page_lines(page, font_cache: dict | None = None) -> list[_Line]:
    """The page's text as lines with position and font size, from pypdf's extraction.

    pypdf decides word spaces from the font's space width; a font whose "space" is implausibly
    wide (a CID font whose code 32 is some other 1-em glyph, common in TeX output) makes it glue
    words together. Two repairs for such fonts: gaps in TJ arrays of `_WORD_GAP` or more are
    rewritten so that pypdf sees them as spaces (the pen still moves by the same amount), and
    where a run of text in such a font meets the next run on the same line (a link, a bold
    word) a space goes between a word and the next word."""
    fonts = _space_thresholds(page, {} if font_cache is None else font_cache)
    current: list[float | None] = [None]
    chunks: list[tuple[str, float, float, float, bool]] = []

    def before(op, operands, cm, tm) -> None:
        if op == b"Tf" and operands:
            current[0] = fonts.get(operands[0], (None, None))[0]
        elif op == b"TJ" and current[0] and current[0] > _WORD_GAP and operands:
            _widen_gaps(operands, current[0])

    wide = {id(obj) for threshold, obj in fonts.values() if threshold and threshold > _WORD_GAP}

    def visit(text, cm, tm, font, size) -> None:
        if text:
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
            chunks.append((text, x, y, abs(size * scale) or size, id(font) in wide))

    page.extract_text(visitor_operand_before=before, visitor_text=visit)
    lines: list[_Line] = []
    parts: list[str] = []
    pos: tuple[float, float] | None = None
    started = False
    sizes: Counter = Counter()
    last = (0.0, False)  # size and font suspicion of the previous piece on this line

    def end_line() -> None:
        nonlocal parts, pos, sizes, started
        text = _DOT_LEADER.sub(" ... ", " ".join("".join(parts).split())).strip()
        text = _GLUED_BULLET.sub(r"\1 ", text)
        if text:
            lines.append(_Line(text, pos[0] if pos else None, pos[1] if pos else None,
                               sizes.most_common(1)[0][0] if sizes else 0.0))
        parts, pos, sizes, started = [], None, Counter(), False

    for text, x, y, size, suspect in chunks:
        for k, piece in enumerate(text.split("\n")):
            if k:
                end_line()
            if not piece:
                continue
            if not started and piece.strip():
                # The chunk's position is where its first line starts; later lines' are unknown.
                pos, started = ((x, y) if k == 0 else None), True
            elif k == 0 and parts and (suspect or last[1]) and abs(size - last[0]) <= 0.05 * max(size, 1.0):
                if _GLUED_END.search(parts[-1]) and _GLUED_START.match(piece):
                    parts.append(" ")
            parts.append(piece)
            sizes[round(size, 1)] += len(piece.strip())
            last = (size, suspect)
    end_line()
    return lines


_GLUED_END = re.compile(r"(?:[^\W_][.,;:!?)\]”’\"]?|://\S*/)$")  # a word (and its punctuation), a URL ...
_GLUED_START = re.compile(r"[^\W_]|[(“]")  # ... then a word or an opening bracket


def _space_thresholds(page, cache: dict) -> dict:
    """Per font resource name: (the TJ gap pypdf needs before it writes a space, the font dict).
    `cache` keeps the answer per font object across pages (pages share their fonts)."""
    from pypdf.generic._font import Font  # pypdf's own font metrics, so the threshold matches its own

    out: dict = {}
    try:
        fonts = page["/Resources"]["/Font"]
        names = list(fonts.keys())
    except Exception:
        return out
    for name in names:
        try:
            obj = fonts[name].get_object()
            if id(obj) not in cache:
                font = Font.from_font_resource(obj)
                width = font.space_width if font.character_widths.get(font.space_char, 0) != 0 else 200.0
                cache[id(obj)] = (float(width) / 2 * 0.95, obj)  # holding obj keeps its id unique
            out[name] = cache[id(obj)]
        except Exception:
            continue
    return out


def _widen_gaps(operands, threshold: float) -> None:
    from pypdf.generic import ArrayObject, FloatObject

    array = operands[0]
    if not isinstance(array, ArrayObject):
        return
    push = -(math.floor(threshold) + 1)
    out, changed = [], False
    for item in array:
        if isinstance(item, (int, float)) and not isinstance(item, bool) and _WORD_GAP <= -float(item) < threshold:
            out += [FloatObject(push), FloatObject(float(item) - push)]  # same total move, space written
            changed = True
        else:
            out.append(item)
    if changed:
        operands[0] = ArrayObject(out)


def _has_images(page) -> bool:
    try:
        xobjects = page["/Resources"]["/XObject"]
        for name in xobjects:
            obj = xobjects[name].get_object()
            if obj.get("/Subtype") == "/Image":
                return True
            if obj.get("/Subtype") == "/Form" and "/XObject" in obj.get("/Resources", {}):
                return True
    except Exception:
        pass
    try:
        content = page.get_contents()
        data = content.get_data() if content is not None else b""
    except Exception:
        return False
    return b"BI" in data and b"ID" in data  # an inline image


_PAGE_NUMBER = re.compile(
    r"^(?:[-–—]\s*)?(?:page\s+)?(\d{1,5}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,5})?(?:\s*[-–—])?$", re.I
)
EDGE_LINES = 2  # header / footer lines looked at on each page edge


def _fold(line: str) -> tuple[str, tuple[int, ...]]:
    """The line with numbers folded to "#", and the numbers."""
    text = " ".join(line.lower().split())
    return re.sub(r"\d+", "#", text), tuple(int(n) for n in re.findall(r"\d+", text)[:4])


def _caps_key(line: str) -> str | None:
    """For running heads set in capitals ("CHAPTER 4. COMPATIBILITY ISSUES 4.2 ..."): the first
    two words with digits folded, so the chapter's heads on different pages match."""
    letters = [c for c in line if c.isalpha()]
    if len(letters) < 6 or sum(c.isupper() for c in letters) < 0.8 * len(letters) or len(line.split()) < 3:
        return None
    return " ".join(_fold(line)[0].split()[:2])


def _drop_headers_footers(page_lines: list[list[_Line]]) -> None:
    """Remove, in place, the lines at the top or bottom of pages that are page furniture: page
    numbers, a line repeated on several pages (numbers in it may follow the page number), or a
    running head in capitals. Only lines no larger than the body text qualify, so a chapter
    heading at the top of each chapter's first page stays."""
    with_text = [(p, lines) for p, lines in enumerate(page_lines, 1) if lines]
    if len(with_text) < 2:
        return
    weights: Counter = Counter()
    for _, lines in with_text:
        for line in lines:
            weights[round(line.size)] += len(line.text)
    body = weights.most_common(1)[0][0]

    def small(line: _Line) -> bool:
        return not line.size or line.size <= body * 1.05 + 0.5

    seen: dict[str, list[tuple[int, tuple[int, ...], bool]]] = {}
    caps: Counter = Counter()
    numbered = 0
    for page, lines in with_text:
        edge = [ln for ln in lines[:EDGE_LINES] + lines[-EDGE_LINES:] if small(ln)]
        outer = {id(lines[0]), id(lines[-1])}
        hits = {}
        for ln in edge:
            key, nums = _fold(ln.text)
            hits[key] = (page, nums, hits.get(key, (0, (), False))[2] or id(ln) in outer)
        for key, hit in hits.items():
            seen.setdefault(key, []).append(hit)
        caps.update({k for k in (_caps_key(ln.text) for ln in edge) if k})
        numbered += any(_PAGE_NUMBER.match(ln.text) for ln in (lines[0], lines[-1]) if small(ln))
    need = 3 if len(with_text) > 3 else len(with_text)
    furniture = set()
    for key, hits in seen.items():
        if len(hits) < need:
            continue
        if len({nums for _, nums, _ in hits}) == 1:  # the same line every time
            furniture.add(key)
            continue
        # A short line at the very top or bottom with a number that follows the page number.
        outermost = [(page, nums) for page, nums, outer in hits if outer]
        if len(outermost) < need or len(key.split()) > 8:
            continue
        for j in range(min(len(nums) for _, nums in outermost)):
            offsets = Counter(page - nums[j] for page, nums in outermost)
            if offsets.most_common(1)[0][1] >= 0.8 * len(outermost):
                furniture.add(key)
                break
    running = {k for k, n in caps.items() if n >= 3}
    strip_numbers = numbered >= max(2, len(with_text) // 3)

    def is_furniture(line: _Line) -> bool:
        return small(line) and (
            _fold(line.text)[0] in furniture
            or (strip_numbers and bool(_PAGE_NUMBER.match(line.text)))
            or _caps_key(line.text) in running
        )

    for lines in page_lines:
        for _ in range(EDGE_LINES):
            if lines and is_furniture(lines[0]):
                del lines[0]
            if lines and is_furniture(lines[-1]):
                del lines[-1]


_BULLET = re.compile(r"^(?:[•◦▪▫‣∙●○■□]\s?|[–—*-]\s|\(?\d{1,3}[.)]\s|\(?[a-z][.)]\s)")
_SENTENCE_END = tuple(".!?:;)\"”’»")
_WORDS = re.compile(r"[^\W\d_][\w'’-]*[^\W\d_]|[^\W\d_]")


def _vocabulary(page_lines: list[list[_Line]]) -> set[str]:
    """Words seen in the document, to decide whether a line-end hyphen is part of the word."""
    vocab: set[str] = set()
    for lines in page_lines:
        for line in lines:
            vocab.update(w.lower() for w in _WORDS.findall(line.text))
    return vocab


def _paragraphs(lines: list[_Line], vocabulary: set[str]) -> list[str]:
    """Join a page's lines into paragraphs: a break at a larger vertical gap, a change of font
    size, a bullet, an indented first line after a finished sentence, or after a short line
    that ends a sentence."""
    if not lines:
        return []
    lines = _attach_markers(lines)
    gaps: dict[int, list[float]] = {}
    for a, b in zip(lines, lines[1:]):
        if a.y is not None and b.y is not None and abs(a.size - b.size) < 0.5 and 0 < a.y - b.y < 3 * max(a.size, 1):
            gaps.setdefault(round(b.size), []).append(a.y - b.y)
    pitch = {size: statistics.median(values) for size, values in gaps.items()}  # line pitch per font size
    lengths = sorted(len(line.text) for line in lines)
    full = lengths[int(0.8 * (len(lengths) - 1))] if lengths else 0
    paras: list[list[str]] = [[lines[0].text]]
    for prev, line in zip(lines, lines[1:]):
        if _breaks(prev, line, pitch, full):
            paras.append([line.text])
        else:
            paras[-1].append(line.text)
    return [text for text in (_join_lines(p, vocabulary) for p in paras) if text]


_MARKER = re.compile(r"^[\d*†‡§¶]{1,3}$")


def _attach_markers(lines: list[_Line]) -> list[_Line]:
    """A footnote mark set as a small superscript comes out as a line of its own: put it back at
    the end of the line before it."""
    body = Counter(round(ln.size) for ln in lines).most_common(1)[0][0]
    out: list[_Line] = []
    for line in lines:
        if out and _MARKER.match(line.text) and line.size and line.size < 0.8 * max(body, out[-1].size):
            prev = out[-1]
            out[-1] = _Line(prev.text + line.text, prev.x, prev.y, prev.size)
        else:
            out.append(line)
    return out


def _breaks(prev: _Line, line: _Line, pitch: dict[int, float], full: int) -> bool:
    if _BULLET.match(line.text):
        return True
    size = max(prev.size, line.size, 1.0)
    if prev.size and line.size and abs(prev.size - line.size) > 0.12 * size:
        return True
    ended = prev.text.endswith(_SENTENCE_END) and not _url_continues(prev.text)
    if prev.y is not None and line.y is not None:
        dy = prev.y - line.y
        if dy < -0.5 * size:  # moved up: a new column or a float
            return True
        expected = pitch.get(round(line.size), 1.2 * size) if abs(prev.size - line.size) < 0.5 else 1.2 * size
        if dy > 1.45 * expected:
            return True
        indented = prev.x is not None and line.x is not None and line.x > prev.x + 0.6 * size
        if indented and ended and not _BULLET.match(prev.text):  # a first-line indent
            return True
    return ended and full >= 40 and len(prev.text) < 0.6 * full and prev.text[-1] in ".!?:"


def _join_lines(lines: list[str], vocabulary: set[str]) -> str:
    out = lines[0]
    for line in lines[1:]:
        if re.search(r"[^\W\d_]-$", out) and line[:1].islower():
            head = re.search(r"([^\W\d_][\w'’-]*)-$", out).group(1)
            tail = re.match(r"[\w'’]*", line).group(0)
            hyphenated, joined = f"{head}-{tail}".lower(), f"{head}{tail}".lower()
            if hyphenated in vocabulary and joined not in vocabulary:  # "little-endian" split at its hyphen
                out += line
            else:  # "Pen-" + "tium": hyphenation
                out = out[:-1] + line
        elif (out.endswith("-") and line[:1].isalnum()) or _url_continues(out, line):
            out += line
        elif _cjk(out[-1:]) and _cjk(line[:1]):
            out += line
        else:
            out += " " + line
    return out.strip()


def _url_continues(text: str, following: str = "") -> bool:
    """`text` ends inside a URL that the next line goes on with ("https://www." + "debian.org")."""
    if following.startswith("//") and text.endswith(":"):
        return True
    last = text.rsplit(" ", 1)[-1]
    url = "://" in last or last.startswith(("www.", "(http"))
    return url and last.endswith(("/", ".", "-", "_", "#", "?", "=", "&"))


def _cjk(ch: str) -> bool:
    return bool(ch) and ("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")


@dataclass
class _OutlineEntry:
    path: str
    page: int  # 1-based
    title: str


def _outline(reader) -> list[_OutlineEntry]:
    """Bookmarks flattened in document order, each with its heading path and page."""
    out: list[_OutlineEntry] = []

    def walk(items, parents: list[str]) -> None:
        last = None
        for item in items:
            if isinstance(item, list):
                if last is not None:
                    walk(item, parents + [last])
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            try:
                number = reader.get_destination_page_number(item)
            except Exception:
                number = None
            if title and number is not None and number >= 0:
                out.append(_OutlineEntry(SECTION_SEP.join(parents + [title]), number + 1, title))
            last = title or last

    try:
        walk(reader.outline, [])
    except Exception:  # a broken outline only loses the sections
        return []
    return out


_LABEL = re.compile(r"^(?:chapter|part|appendix|book|kapitel|chapitre|cap[ií]tulo|teil)\s+[\w.]+$", re.I)


def _squash(text: str) -> str:
    return re.sub(r"\W+", "", text.lower())


def _assign_sections(paragraphs: list[tuple[int, str]], outline: list[_OutlineEntry]) -> list[Block]:
    """Blocks with the section from the outline: an entry starts at the paragraph on its page
    that is its heading (compared without spaces and punctuation, which extraction mangles),
    or at the top of its page when no paragraph matches."""
    blocks = [Block(text, page) for page, text in paragraphs]
    if not outline:
        return blocks
    starts: dict[int, tuple[str, bool]] = {}  # block index -> (path, is the heading itself)
    cursor = 0
    for entry in sorted(outline, key=lambda e: e.page):  # stable: keeps document order on a page
        key = _squash(entry.title)
        first = next((i for i in range(cursor, len(blocks)) if blocks[i].page >= entry.page), None)
        if first is None:
            break
        match = None
        for i in range(first, len(blocks)):
            if blocks[i].page != entry.page and i > first:
                break
            squashed = _squash(blocks[i].text)
            bare = squashed.lstrip("0123456789")  # without its number ("41onwhat...")
            if key and ((key in squashed and len(squashed) <= len(key) + 12)
                        or (len(bare) >= 15 and key.startswith(bare))):  # the first line of a long heading
                match = i
                break
        at = match if match is not None else first
        if match is not None and match > first and _LABEL.match(blocks[match - 1].text):
            starts[match - 1] = (entry.path, True)  # "Chapter 2" set above the chapter's title
        starts[at] = (entry.path, match is not None)
        cursor = at + 1 if match is not None else at
    out, path = [], ""
    for i, block in enumerate(blocks):
        heading = False
        if i in starts:
            path, heading = starts[i]
        out.append(Block(block.text, block.page, path, heading=heading))
    return out


_PARSERS = {"pdf": _load_pdf, "docx": _load_docx, "html": _load_html, "markdown": _load_markdown, "text": _load_text}
