"""PDF into blocks with pypdf: pages, outline sections, repaired word gaps and hyphenation, running
headers and footers dropped; encrypted and scanned files refused with what to do.
"""

from __future__ import annotations

import io
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass

from .model import Block, DocumentError
from .parsing import SECTION_SEP, Parsed


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


def load_pdf(data: bytes, source: str) -> Parsed:
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
    return Parsed(blocks, title=_pdf_title(reader), pages=len(pages), metadata=meta)


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
