"""Plain text and Markdown into blocks: paragraphs, headings, fenced code kept whole."""

from __future__ import annotations

import re

from .model import Block
from .parsing import CONTROL_CHARS, Parsed, Sections, clean_text, text_of


_BLANK_LINES = re.compile(r"\n[ \t]*\n[ \t\n]*")
LONG_PARAGRAPH = 4000  # characters: a "paragraph" longer than this (a dump) is split at line ends
LINE_GROUP = 1000  # ...into blocks of about this many characters


def load_text(data: bytes, source: str) -> Parsed:
    meta: dict = {}
    text = text_of(data, meta)
    pages = text.split("\x0c")  # form feeds (pdftotext output, old line-printer files) are page breaks
    paged = len(pages) > 1
    blocks: list[Block] = []
    for number, page in enumerate(pages, 1):
        for para in _BLANK_LINES.split(page.replace("\r\n", "\n").replace("\r", "\n")):
            for piece in _split_long(para):
                piece = clean_text(piece)
                if piece:
                    blocks.append(Block(piece, number if paged else None))
    return Parsed(blocks, pages=len(pages) if paged else None, metadata=meta)


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


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S")
_THEMATIC = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_TABLE_ROW = re.compile(r"^[ \t]*\|")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
_MD_LINK = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)")


def looks_like_markdown(text: str) -> bool:
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


def load_markdown(data: bytes, source: str) -> Parsed:
    meta: dict = {}
    text = text_of(data, meta).replace("\r\n", "\n").replace("\r", "\n")
    fields, text = _front_matter(text)
    if fields:
        meta["front_matter"] = fields
    sections = Sections()
    blocks: list[Block] = []
    para: list[str] = []
    para_kind = ""  # "" | "item" | "table" | "quote"
    first_heading = ""

    def flush() -> None:
        nonlocal para, para_kind
        body = clean_text("\n".join(para))
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
            blocks.append(Block(CONTROL_CHARS.sub("", code), section=sections.path))
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
    return Parsed(blocks, title=title, metadata=meta)
