"""Read PDF, DOCX, HTML, Markdown and plain text into a `Document` with provenance.

    doc = load_document("manual.pdf")
    for block in doc.blocks:
        block.page, block.section, doc.text[block.start:block.end]

Blocks are paragraphs in reading order (also headings, list items, table rows, code blocks),
each with its 1-based page where the format has pages, the heading path it sits under
("Chapter 2 > Installing") and its offsets into `Document.text`. The kind is decided by the
content (the attachment sniffer's magic bytes) first and the file name second.

Every failure a user can meet (no such file, password, scanned PDF, corrupt DOCX, empty file)
is a `DocumentError` that names the file and says what to do. Each format has its module
(pdf_text, docx_text, html_text, plain_text for text and Markdown), imported only when a file of
that kind is loaded; pypdf and python-docx are the `documents` extra.
"""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

from ..dialogue.attachments import DOCX as DOCX_MIME
from ..dialogue.attachments import sniff
from ..errors import AttachmentError
from .model import Document, DocumentError, with_offsets
from .parsing import SECTION_SEP, decode, decodes_as_text, read_file  # noqa: F401 - SECTION_SEP is re-exported

KINDS = ("pdf", "docx", "html", "markdown", "text")
_FORMATS = "PDF, DOCX, HTML, Markdown or plain text"


def load_document(source: str | Path, data: bytes | None = None, *, kind: str | None = None) -> Document:
    """Load a document. `data`: the file's bytes when already in memory (then `source` only names
    it); `kind` forces a parser ("pdf", "docx", "html", "markdown", "text") instead of detection."""
    name = Path(str(source)).name or str(source)
    if data is None:
        data = read_file(Path(source).expanduser())
    if not data.strip():
        raise DocumentError(f"{source} is empty", hint="attach a file that has text in it")
    if kind is None:
        kind = detect_kind(data, name)
    elif kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}; expected one of {', '.join(KINDS)}")
    parsed = _parse(kind, data, str(source))
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
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and decodes_as_text(data):
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
    if att.kind == "unknown" and att.mime == "application/octet-stream" and decodes_as_text(data):
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
    head = decode(data[:65536])[0]
    start = head[:1024].lstrip().lower()
    if start.startswith(("<!doctype html", "<html")) or (start.startswith("<") and ext in (".html", ".htm", ".xhtml")):
        return "html"
    return "markdown" if ext in (".md", ".markdown") or _looks_like_markdown(head) else "text"


def _parse(kind: str, data: bytes, source: str):
    # Each format's module (and pypdf / python-docx behind it) is imported only when needed.
    if kind == "pdf":
        from .pdf_text import load_pdf as parse
    elif kind == "docx":
        from .docx_text import load_docx as parse
    elif kind == "html":
        from .html_text import load_html as parse
    elif kind == "markdown":
        from .plain_text import load_markdown as parse
    else:
        from .plain_text import load_text as parse
    return parse(data, source)


def _looks_like_markdown(text: str) -> bool:
    from .plain_text import looks_like_markdown

    return looks_like_markdown(text)
