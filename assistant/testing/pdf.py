"""Write small, real PDFs with known text on known pages, for tests and benchmarks.

    from assistant.testing.pdf import Heading, make_pdf

    data = make_pdf(
        [["Intro paragraph.", Heading("Installing", 1), "Run the installer."], ["Second page."]],
        title="Manual", outline=[("Installing", 1, 1)], footer="Page {page}",
    )

Each page is a list of paragraphs (plain strings, or `Heading`s set in a larger bold font).
A paragraph is wrapped into lines of at most `width` characters; a "\\n" inside it forces a line
break (to put a hyphen at a line end, say). Paragraphs are separated by a blank line's worth of
space, the way a typeset page separates them. `None` (or []) instead of a page makes a page with
no text; listing it in `image_pages` gives it a full-page image: a scanned page.

Text is set in the standard Helvetica fonts with WinAnsiEncoding, so it must be Latin-1-ish
(characters outside cp1252 become "?"). No dependency beyond the standard library.
"""

from __future__ import annotations

import textwrap
import zlib
from dataclasses import dataclass
from typing import Sequence

PAGE_W, PAGE_H = 595, 842  # A4 in points
MARGIN = 72
BODY_SIZE = 11
LEADING = 1.25  # line pitch as a multiple of the font size


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1  # 1 is the largest

    @property
    def size(self) -> float:
        return {1: 18, 2: 15, 3: 13}.get(self.level, 12)


def make_pdf(
    pages: Sequence[Sequence[str | Heading] | None],
    *,
    title: str | None = None,
    outline: Sequence[tuple[str, int, int]] = (),
    header: str | None = None,
    footer: str | None = None,
    image_pages: Sequence[int] = (),
    width: int = 80,
    compress: bool = True,
) -> bytes:
    """A PDF with the given pages (see the module docstring).

    outline: bookmarks as (title, 1-based page, level >= 1), in document order.
    header / footer: a line at the top / bottom of every page with text; "{page}" is replaced
    by the page number. image_pages: 1-based pages that also get a full-page grey image.
    """
    w = _Writer()
    catalog, pages_obj = w.reserve(), w.reserve()
    font = w.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    bold = w.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    image = None
    if image_pages:
        pixels = bytes(range(0, 256, 4)) * 64  # 64x64 grey ramp
        image = w.add_stream(
            b"<< /Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceGray /BitsPerComponent 8",
            pixels, compress=compress,
        )
    kids: list[int] = []
    for number, paragraphs in enumerate(pages, 1):
        ops: list[bytes] = []
        if number in image_pages:
            ops.append(f"q {PAGE_W} 0 0 {PAGE_H} 0 0 cm /Im1 Do Q".encode())
        if paragraphs:
            ops.append(_page_text(paragraphs, number, header, footer, width))
        content = w.add_stream(b"<<", b"\n".join(ops), compress=compress)
        resources = f"/Font << /F1 {font} 0 R /F2 {bold} 0 R >>"
        if image is not None and number in image_pages:
            resources += f" /XObject << /Im1 {image} 0 R >>"
        kids.append(w.add(
            f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
            f"/Resources << {resources} >> /Contents {content} 0 R >>".encode()
        ))
    w.set(pages_obj, f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode())
    extra = ""
    if outline:
        extra = f" /Outlines {_outline(w, outline, kids)} 0 R /PageMode /UseOutlines"
    w.set(catalog, f"<< /Type /Catalog /Pages {pages_obj} 0 R{extra} >>".encode())
    info = w.add(b"<< /Title " + _string(title) + b" /Producer (assistant.testing.pdf) >>") if title else None
    return w.finish(catalog, info)


def _page_text(paragraphs: Sequence[str | Heading], number: int, header: str | None, footer: str | None,
               width: int) -> bytes:
    out = [b"BT"]
    y = PAGE_H - MARGIN

    def line(text: str, size: float, font: str = "F1", x: float = MARGIN) -> None:
        out.append(f"/{font} {size:g} Tf 1 0 0 1 {x:g} {y:.2f} Tm ".encode() + _string(text) + b" Tj")

    if header:
        line(header.replace("{page}", str(number)), 9)
        y -= 3 * BODY_SIZE
    for para in paragraphs:
        if isinstance(para, Heading):
            y -= 0.5 * para.size
            for text in textwrap.wrap(para.text, width) or [""]:
                line(text, para.size, "F2")
                y -= para.size * LEADING
            y -= 0.5 * BODY_SIZE
            continue
        for forced in para.split("\n"):
            for text in textwrap.wrap(forced, width, break_on_hyphens=False) or [""]:
                line(text, BODY_SIZE)
                y -= BODY_SIZE * LEADING
        y -= BODY_SIZE * LEADING  # a blank line between paragraphs
    if footer:
        y = MARGIN / 2
        line(footer.replace("{page}", str(number)), 9, x=PAGE_W / 2)
    out.append(b"ET")
    return b"\n".join(out)


def _outline(w: "_Writer", entries: Sequence[tuple[str, int, int]], kids: list[int]) -> int:
    """Nested /Outlines from (title, page, level) in document order."""
    root = w.reserve()
    nodes = [(w.reserve(), title, page, level) for title, page, level in entries]
    parent_of: dict[int, int] = {}
    children: dict[int, list[int]] = {root: []}
    stack: list[tuple[int, int]] = [(root, 0)]  # (object, level)
    for obj, _, _, level in nodes:
        while stack[-1][1] >= level:
            stack.pop()
        parent_of[obj] = stack[-1][0]
        children.setdefault(stack[-1][0], []).append(obj)
        children[obj] = []
        stack.append((obj, level))
    for obj, title, page, _ in nodes:
        siblings = children[parent_of[obj]]
        at = siblings.index(obj)
        fields = [b"/Title " + _string(title), f"/Parent {parent_of[obj]} 0 R".encode(),
                  f"/Dest [{kids[page - 1]} 0 R /XYZ 0 {PAGE_H} 0]".encode()]
        if at > 0:
            fields.append(f"/Prev {siblings[at - 1]} 0 R".encode())
        if at + 1 < len(siblings):
            fields.append(f"/Next {siblings[at + 1]} 0 R".encode())
        if children[obj]:
            first, last = children[obj][0], children[obj][-1]
            fields.append(f"/First {first} 0 R /Last {last} 0 R /Count {len(children[obj])}".encode())
        w.set(obj, b"<< " + b" ".join(fields) + b" >>")
    top = children[root]
    w.set(root, f"<< /Type /Outlines /First {top[0]} 0 R /Last {top[-1]} 0 R /Count {len(top)} >>".encode())
    return root


def _string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


class _Writer:
    """Numbered objects, then a cross-reference table with exact byte offsets."""

    def __init__(self) -> None:
        self.objects: list[bytes | None] = []

    def reserve(self) -> int:
        self.objects.append(None)
        return len(self.objects)

    def set(self, number: int, body: bytes) -> None:
        self.objects[number - 1] = body

    def add(self, body: bytes) -> int:
        number = self.reserve()
        self.set(number, body)
        return number

    def add_stream(self, dict_start: bytes, data: bytes, *, compress: bool) -> int:
        if compress:
            data = zlib.compress(data)
            dict_start += b" /Filter /FlateDecode"
        return self.add(dict_start + f" /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream")

    def finish(self, catalog: int, info: int | None) -> bytes:
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, 1):
            assert body is not None, f"object {number} reserved but never written"
            offsets.append(len(out))
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(self.objects) + 1}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
        trailer = f"<< /Size {len(self.objects) + 1} /Root {catalog} 0 R"
        if info:
            trailer += f" /Info {info} 0 R"
        out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
        return bytes(out)
