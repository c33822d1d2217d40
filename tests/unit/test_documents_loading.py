"""Document loading: each format, provenance (page, section, offsets), and every error a user meets.

PDFs are written by `assistant.testing.pdf` with known text per page; DOCX files by python-docx;
the real-world inputs are the Debian FAQ's HTML and PDF (the debian-faq package, which
scripts/test.sh installs).
"""

from __future__ import annotations

import gzip
import io
import time
import zipfile
from pathlib import Path

import pytest

from assistant.documents.loaders import detect_kind, load_document
from assistant.documents.model import Document, DocumentError
from assistant.errors import AttachmentError
from assistant.testing.pdf import Heading, make_pdf

pypdf = pytest.importorskip("pypdf", reason="the documents extra (pypdf) is not installed")
docx = pytest.importorskip("docx", reason="the documents extra (python-docx) is not installed")

FAQ = Path("/usr/share/doc/debian/FAQ")
needs_faq = pytest.mark.skipif(
    not (FAQ / "basic-defs.en.html").exists() or not (FAQ / "debian-faq.en.pdf.gz").exists(),
    reason="the Debian FAQ is not installed (apt-get install debian-faq; scripts/test.sh does it)",
)


def assert_offsets(doc: Document) -> None:
    text = doc.text
    for block in doc.blocks:
        assert text[block.start : block.end] == block.text
    assert [b.start for b in doc.blocks] == sorted(b.start for b in doc.blocks)


def block_with(doc: Document, needle: str):
    found = [b for b in doc.blocks if needle in b.text]
    assert found, f"no block contains {needle!r}; blocks: {[b.text[:60] for b in doc.blocks]}"
    return found[0]


LONG = (
    "Unpack the archive into a folder of your choice and run the installer from there; it asks for "
    "the target folder, checks that there is enough space and copies the files in under a minute."
)


def manual_pdf(**kw) -> bytes:
    pages = [
        [Heading("Introduction", 1), "This manual explains the widget. " + LONG],
        [Heading("Installing", 1), "The quick brown fox installs the widget on page two.",
         Heading("From a CD", 2), "Insert the CD and wait for the menu to appear."],
        [Heading("Troubleshooting", 1), "If the widget hums, unplug it and count to ten."],
    ]
    outline = [("Introduction", 1, 1), ("Installing", 2, 1), ("From a CD", 2, 2), ("Troubleshooting", 3, 1)]
    return make_pdf(pages, title="Widget Manual", outline=outline, **kw)


# --- PDF ----------------------------------------------------------------------------------


def test_pdf_blocks_carry_page_section_and_exact_offsets():
    doc = load_document("manual.pdf", manual_pdf())
    assert doc.kind == "pdf" and doc.pages == 3 and doc.title == "Widget Manual"
    assert_offsets(doc)
    fox = block_with(doc, "quick brown fox")
    assert fox.page == 2 and fox.section == "Installing" and not fox.heading
    cd = block_with(doc, "Insert the CD")
    assert cd.page == 2 and cd.section == "Installing > From a CD"
    heading = block_with(doc, "From a CD")
    assert heading.heading and heading.text == "From a CD"
    assert block_with(doc, "unplug it").section == "Troubleshooting"
    assert block_with(doc, "unplug it").page == 3
    # A wrapped paragraph is one block, its lines joined with spaces.
    intro = block_with(doc, "This manual explains")
    assert intro.text == "This manual explains the widget. " + LONG
    assert len(doc.sha256) == 64


def test_pdf_without_outline_has_empty_sections_and_file_name_title():
    doc = load_document("notes/plain.pdf", make_pdf([["One paragraph."], ["Another one."]]))
    assert [b.section for b in doc.blocks] == ["", ""]
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "One paragraph."), (2, "Another one.")]
    assert doc.title == "plain.pdf"


def test_pdf_repeated_headers_footers_and_page_numbers_are_dropped():
    pages = [[f"Body text of page {n} talks about topic {n}."] for n in range(1, 6)]
    doc = load_document("r.pdf", make_pdf(pages, header="ACME Report - Confidential", footer="Page {page} of 5"))
    assert [b.text for b in doc.blocks] == [f"Body text of page {n} talks about topic {n}." for n in range(1, 6)]
    bare = load_document("r.pdf", make_pdf(pages, footer="{page}"))
    assert [b.text for b in bare.blocks] == [b.text for b in doc.blocks]
    assert [b.page for b in bare.blocks] == [1, 2, 3, 4, 5]


def test_pdf_chapter_headings_at_page_tops_are_not_mistaken_for_running_heads():
    pages = [[Heading(f"Chapter {n}", 1), f"Text of chapter {n}."] for n in range(1, 6)]
    doc = load_document("book.pdf", make_pdf(pages, footer="{page}"))
    assert [b.text for b in doc.blocks if b.text.startswith("Chapter")] == [f"Chapter {n}" for n in range(1, 6)]


def test_pdf_hyphenation_is_joined_but_real_hyphens_stay():
    pages = [[
        "The instal-\nlation of the well-known tool is fast.",
        "A well-\nknown tool, and a sec-\nond one.",
    ]]
    doc = load_document("h.pdf", make_pdf(pages))
    assert [b.text for b in doc.blocks] == [
        "The installation of the well-known tool is fast.",
        "A well-known tool, and a second one.",
    ]


def test_pdf_empty_pages_are_skipped_and_recorded():
    doc = load_document("e.pdf", make_pdf([["First."], None, ["Third."]]))
    assert doc.pages == 3
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "First."), (3, "Third.")]
    assert doc.metadata["empty_pages"] == [2]


def test_scanned_pdf_says_so_and_suggests_ocr():
    data = make_pdf([None, None, None], image_pages=[1, 2, 3])
    with pytest.raises(DocumentError) as err:
        load_document("scan.pdf", data)
    assert "scan.pdf has no text layer (scanned?)" in str(err.value)
    assert "ocrmypdf" in err.value.hint


def test_mostly_scanned_pdf_is_an_error_too():
    pages = [["Cover page with a title."]] + [None] * 11
    with pytest.raises(DocumentError, match="no text layer"):
        load_document("scan.pdf", make_pdf(pages, image_pages=range(2, 13)))


def test_pdf_with_pages_but_no_text_and_no_images():
    with pytest.raises(DocumentError) as err:
        load_document("blank.pdf", make_pdf([None, None]))
    assert "no extractable text" in str(err.value) and "ocrmypdf" in err.value.hint


def _encrypt(data: bytes, user: str, owner: str = "owner-secret") -> bytes:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_password_protected_pdf_is_an_error_with_a_decrypt_hint():
    data = _encrypt(manual_pdf(), user="hunter2")
    with pytest.raises(DocumentError) as err:
        load_document("locked.pdf", data)
    assert str(err.value).startswith("locked.pdf is password-protected")
    assert "qpdf --decrypt" in err.value.hint


def test_pdf_encrypted_with_an_empty_password_opens():
    doc = load_document("restricted.pdf", _encrypt(manual_pdf(), user=""))
    assert doc.metadata["encrypted"] is True
    assert block_with(doc, "quick brown fox").page == 2


def test_truncated_pdf_names_the_file():
    data = manual_pdf()
    with pytest.raises(DocumentError) as err:
        load_document("cut.pdf", data[: len(data) // 2])
    assert str(err.value).startswith("cut.pdf is not a readable PDF")
    assert "download or export it again" in err.value.hint


def test_garbage_named_pdf():
    with pytest.raises(DocumentError) as err:
        load_document("fake.pdf", bytes(range(256)) * 10)
    assert "fake.pdf is not a valid PDF" in str(err.value)


def test_pdf_header_with_garbage_after_it():
    with pytest.raises(DocumentError, match="not a readable PDF"):
        load_document("bad.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 100)


# --- DOCX ---------------------------------------------------------------------------------


def handbook_docx(*, page_breaks: bool = True) -> bytes:
    from docx.enum.text import WD_BREAK

    d = docx.Document()
    d.core_properties.title = "Handbook"
    d.add_paragraph("The Handbook", style="Title")
    d.add_heading("Getting started", 1)
    d.add_paragraph("Read this first.")
    d.add_paragraph("First bullet", style="List Bullet")
    d.add_paragraph("Second bullet", style="List Bullet")
    d.add_paragraph("Step one", style="List Number")
    d.add_paragraph("Step two", style="List Number")
    d.add_heading("Installing", 2)
    p = d.add_paragraph("Before the break.")
    if page_breaks:
        p.add_run().add_break(WD_BREAK.PAGE)
    p.add_run("After the break.")
    table = d.add_table(rows=2, cols=3)
    for i, row in enumerate(table.rows):
        for j, cell in enumerate(row.cells):
            cell.text = ["Name", "Size", "Notes"][j] if i == 0 else ["widget", "3 cm", "blue"][j]
    if page_breaks:
        d.add_page_break()
    d.add_heading("Reference", 1)
    d.add_paragraph("Last page text.")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def test_docx_headings_lists_tables_and_page_breaks():
    doc = load_document("handbook.docx", handbook_docx())
    assert doc.kind == "docx" and doc.title == "Handbook" and doc.pages == 3
    assert_offsets(doc)
    got = [(b.page, b.heading, b.section, b.text) for b in doc.blocks]
    assert got == [
        (1, True, "The Handbook", "The Handbook"),
        (1, True, "The Handbook > Getting started", "Getting started"),
        (1, False, "The Handbook > Getting started", "Read this first."),
        (1, False, "The Handbook > Getting started", "- First bullet"),
        (1, False, "The Handbook > Getting started", "- Second bullet"),
        (1, False, "The Handbook > Getting started", "1. Step one"),
        (1, False, "The Handbook > Getting started", "2. Step two"),
        (1, True, "The Handbook > Getting started > Installing", "Installing"),
        (1, False, "The Handbook > Getting started > Installing", "Before the break."),
        (2, False, "The Handbook > Getting started > Installing", "After the break."),
        (2, False, "The Handbook > Getting started > Installing", "Name | Size | Notes"),
        (2, False, "The Handbook > Getting started > Installing", "widget | 3 cm | blue"),
        (3, True, "The Handbook > Reference", "Reference"),
        (3, False, "The Handbook > Reference", "Last page text."),
    ]


def test_docx_without_page_breaks_has_no_pages():
    doc = load_document("handbook.docx", handbook_docx(page_breaks=False))
    assert doc.pages is None and {b.page for b in doc.blocks} == {None}
    assert block_with(doc, "Before the break.").text == "Before the break.After the break."


def test_docx_pages_from_section_breaks_and_from_words_rendered_page_breaks():
    from docx.enum.section import WD_SECTION
    from docx.oxml import OxmlElement

    d = docx.Document()
    d.add_paragraph("Section one.")
    d.add_section(WD_SECTION.NEW_PAGE)
    d.add_paragraph("Section two.")
    d.add_section(WD_SECTION.CONTINUOUS)
    d.add_paragraph("Still page two.")
    out = io.BytesIO()
    d.save(out)
    doc = load_document("s.docx", out.getvalue())
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "Section one."), (2, "Section two."), (2, "Still page two.")]

    # Word saves where its layout broke pages; those win over counting explicit breaks.
    d = docx.Document()
    d.add_paragraph("Page one.")
    long = d.add_paragraph("Starts on one")
    long.add_run(" and ends on two.")._r.insert(0, OxmlElement("w:lastRenderedPageBreak"))
    d.add_paragraph("Page two.")
    third = d.add_paragraph()
    third.add_run("Page three.")._r.insert(0, OxmlElement("w:lastRenderedPageBreak"))
    out = io.BytesIO()
    d.save(out)
    doc = load_document("r.docx", out.getvalue())
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "Page one."), (1, "Starts on one and ends on two."), (2, "Page two."), (3, "Page three.")
    ]
    assert doc.pages == 3 and doc.metadata["page_source"] == "rendered"


def test_docx_that_is_not_a_zip():
    with pytest.raises(DocumentError) as err:
        load_document("broken.docx", b"PK\x03\x04" + b"\x00not really a zip" * 50)
    assert "broken.docx is not a" in str(err.value)
    assert "save it again" in err.value.hint


def test_docx_zip_with_a_missing_part():
    # A DOCX's document.xml but no [Content_Types].xml: the sniffer says DOCX, python-docx cannot open it.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(DocumentError) as err:
        load_document("parts.docx", buf.getvalue())
    assert str(err.value).startswith("parts.docx is not a readable DOCX file")


def test_zip_that_is_not_a_docx():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DocumentError, match="not a valid DOCX"):
        load_document("archive.docx", buf.getvalue())


# --- HTML ---------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>Widget &amp; Co. guide</title><style>p { color: red }</style>
<script>var hidden = "do not show";</script></head>
<body>
<header><a href="/">Home</a> | <a href="/shop">Shop</a></header>
<nav><ul><li>Menu entry</li></ul></nav>
<main>
<h1>Widget guide</h1>
<p>Widgets are   small
   and <b>useful</b>&nbsp;tools &mdash; mostly.</p>
<h2>Installing</h2>
<p>First line<br>second line</p>
<ol><li>Unpack it</li><li>Run <code>setup</code></li></ol>
<h3>From a CD</h3>
<ul><li><p>Insert the CD</p></li><li>Wait</li></ul>
<table><tr><th>Name</th><th>Size</th></tr><tr><td>widget</td><td>3 cm</td></tr></table>
<pre>line one
    indented  line</pre>
<h2>Support</h2>
<div>Mail us at help@example.com.</div>
<div hidden>secret</div>
</main>
<footer>Copyright 2024</footer>
</body></html>"""


def test_html_structure_sections_and_cleanup():
    doc = load_document("guide.html", PAGE.encode())
    assert doc.kind == "html" and doc.title == "Widget & Co. guide"
    assert_offsets(doc)
    got = [(b.heading, b.section, b.text) for b in doc.blocks]
    assert got == [
        (True, "Widget guide", "Widget guide"),
        (False, "Widget guide", "Widgets are small and useful tools — mostly."),
        (True, "Widget guide > Installing", "Installing"),
        (False, "Widget guide > Installing", "First line\nsecond line"),
        (False, "Widget guide > Installing", "1. Unpack it"),
        (False, "Widget guide > Installing", "2. Run setup"),
        (True, "Widget guide > Installing > From a CD", "From a CD"),
        (False, "Widget guide > Installing > From a CD", "- Insert the CD"),
        (False, "Widget guide > Installing > From a CD", "- Wait"),
        (False, "Widget guide > Installing > From a CD", "Name | Size"),
        (False, "Widget guide > Installing > From a CD", "widget | 3 cm"),
        (False, "Widget guide > Installing > From a CD", "line one\n    indented  line"),
        (True, "Widget guide > Support", "Support"),
        (False, "Widget guide > Support", "Mail us at help@example.com."),
    ]
    for hidden in ("do not show", "Menu entry", "Home", "Copyright", "secret", "color: red"):
        assert hidden not in doc.text


def test_html_layout_table_is_read_as_blocks_and_title_falls_back_to_h1():
    html = ("<html><body><table><tr><td><h1>Site</h1><p>Welcome text.</p></td>"
            "<td><h2>News</h2><p>Nothing new.</p></td></tr></table></body></html>")
    doc = load_document("old.html", html.encode())
    assert doc.title == "Site"
    assert [(b.section, b.text) for b in doc.blocks] == [
        ("Site", "Site"), ("Site", "Welcome text."), ("Site > News", "News"), ("Site > News", "Nothing new.")
    ]


def test_html_unclosed_skipped_element_does_not_swallow_the_page():
    html = '<html><body><div class="toc"><div>Contents<p>Real text one.</p><p>Real text two.</p></body></html>'
    doc = load_document("x.html", html.encode())
    assert "Real text two." in doc.text


def test_html_nested_tables_unclosed_navigation_and_unclosed_head():
    nested = (b"<html><body><table><tr><td>Outer text <table><tr><td>inner a</td><td>inner b</td></tr></table>"
              b"</td><td>right</td></tr></table></body></html>")
    assert [b.text for b in load_document("t.html", nested).blocks] == ["Outer text", "inner a | inner b", "right"]
    unclosed = b"<html><body><nav><ul><li>Home</ul><p>Story text.</p></body></html>"
    assert "Story text." in load_document("t.html", unclosed).text
    no_head_end = b"<html><head><title>T</title><body><p>Body text.</p><svg><title>icon</title></svg></body></html>"
    doc = load_document("t.html", no_head_end)
    assert doc.title == "T" and doc.text == "Body text."


def test_html_declared_charset():
    html = ('<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head>'
            "<body><p>Cr\xe8me br\xfbl\xe9e</p></body></html>")
    doc = load_document("menu.html", html.encode("cp1252"))
    assert doc.title == "Café" and doc.text == "Crème brûlée"


@needs_faq
def test_debian_faq_html_chapter():
    doc = load_document(FAQ / "basic-defs.en.html")
    assert doc.kind == "html" and doc.title == "Chapter 1. Definitions and overview"
    assert_offsets(doc)
    chapter = "Chapter 1. Definitions and overview"
    question = block_with(doc, "What is Debian GNU/Linux?")
    assert question.heading and question.section == f"{chapter} > 1.2. What is Debian GNU/Linux?"
    answer = doc.blocks[doc.blocks.index(question) + 1]
    assert answer.section == question.section and not answer.heading
    assert answer.text.startswith("Debian GNU/Linux is a particular distribution of the Linux operating system")
    sections = {b.section for b in doc.blocks if b.heading}
    assert len(sections) >= 8  # the chapter and its seven questions
    # Navigation bars and the table of contents are not content.
    assert "Prev" not in doc.text.split() and "Table of Contents" not in doc.text


# --- Markdown -----------------------------------------------------------------------------

MARKDOWN = """---
title: Widget notes
tags: [a, b]
---
Widget notes
============

Intro paragraph
over two lines.

## Install

- step one
- step two
  continued

```python
def f():

    return 1
```

Setext two
----------

| a | b |
|---|---|
| 1 | 2 |

> quoted
> text
"""


def test_markdown_headings_fences_lists_and_front_matter():
    doc = load_document("notes.md", MARKDOWN.encode())
    assert doc.kind == "markdown" and doc.title == "Widget notes"
    assert doc.metadata["front_matter"]["title"] == "Widget notes"
    assert "tags:" not in doc.text
    assert_offsets(doc)
    got = [(b.heading, b.section, b.text) for b in doc.blocks]
    assert got == [
        (True, "Widget notes", "# Widget notes"),
        (False, "Widget notes", "Intro paragraph\nover two lines."),
        (True, "Widget notes > Install", "## Install"),
        (False, "Widget notes > Install", "- step one"),
        (False, "Widget notes > Install", "- step two\n  continued"),
        (False, "Widget notes > Install", "```python\ndef f():\n\n    return 1\n```"),
        (True, "Widget notes > Setext two", "## Setext two"),
        (False, "Widget notes > Setext two", "| a | b |\n|---|---|"),
        (False, "Widget notes > Setext two", "| 1 | 2 |"),
        (False, "Widget notes > Setext two", "> quoted\n> text"),
    ]


def test_markdown_is_recognised_by_content_and_plain_text_is_not():
    md = b"# Title\n\nSome text.\n\n## Part\n\n- item\n"
    assert detect_kind(md, "notes.txt") == "markdown"
    assert detect_kind(b"Dear Ann,\n\n# not a heading, just a hash\n\nBye.\n", "letter.txt") == "text"
    assert detect_kind(b"#!/bin/sh\n# comment\n# another\necho hi\n", "run") == "text"


# --- plain text and encodings -------------------------------------------------------------


def test_text_paragraphs_and_long_dumps():
    text = "First paragraph\nstill first.\n\n\n  \nSecond paragraph.\n"
    doc = load_document("a.txt", text.encode())
    assert [b.text for b in doc.blocks] == ["First paragraph\nstill first.", "Second paragraph."]
    assert doc.kind == "text" and doc.pages is None and doc.blocks[0].page is None
    dump = "\n".join(f"log line {i} with some words in it" for i in range(2000))
    doc = load_document("dump.txt", dump.encode())
    assert len(doc.blocks) > 50 and max(len(b.text) for b in doc.blocks) <= 1100
    assert doc.text.replace("\n\n", "\n") == dump


def test_text_form_feeds_are_pages():
    doc = load_document("pdftotext.txt", b"Page one.\x0cPage two.\n\nStill two.\x0c")
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "Page one."), (2, "Page two."), (2, "Still two.")]


@pytest.mark.parametrize(
    ("data", "encoding", "noted"),
    [
        ("Café – naïve".encode("utf-8"), "utf-8", False),
        ("\ufeffCafé – naïve".encode("utf-8"), "utf-8-sig", False),
        ("Café – naïve".encode("utf-16"), "utf-16", False),
        ("Café – naïve".encode("cp1252"), "cp1252", True),
    ],
)
def test_text_encodings(data, encoding, noted):
    doc = load_document("c.txt", data)
    assert doc.text == "Café – naïve"
    assert doc.metadata["encoding"] == encoding
    assert ("encoding_note" in doc.metadata) is noted


# --- errors shared by all formats -----------------------------------------------------------


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for data in (None, b"   \n\n"):
        with pytest.raises(DocumentError) as err:
            load_document(empty, data)
        assert "is empty" in str(err.value) and err.value.hint
    with pytest.raises(DocumentError, match="does not exist"):
        load_document(tmp_path / "nope.pdf")
    with pytest.raises(DocumentError, match="is a folder"):
        load_document(tmp_path)
    with pytest.raises(DocumentError, match="contains no text"):
        load_document("blank.html", b"<html><body><script>x()</script></body></html>")
    assert issubclass(DocumentError, AttachmentError)


def test_an_image_is_not_a_document():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    with pytest.raises(DocumentError, match="photo.png is an image"):
        load_document("photo.png", png)


def test_kind_can_be_forced_and_content_beats_the_extension():
    assert load_document("page.txt", PAGE.encode()).kind == "html"
    forced = load_document("page.html", PAGE.encode(), kind="text")
    assert forced.kind == "text" and "<h1>" in forced.text
    assert load_document("manual.txt", manual_pdf()).kind == "pdf"
    with pytest.raises(ValueError):
        load_document("x.txt", b"x", kind="rtf")


def test_load_reads_the_file_when_no_data_is_given(tmp_path):
    path = tmp_path / "m.pdf"
    path.write_bytes(manual_pdf())
    doc = load_document(path)
    assert doc.source == str(path) and block_with(doc, "quick brown fox").page == 2


# --- the real Debian FAQ PDF --------------------------------------------------------------


@pytest.fixture(scope="module")
def faq_pdf(tmp_path_factory) -> Document:
    path = tmp_path_factory.mktemp("faq") / "debian-faq.en.pdf"
    path.write_bytes(gzip.decompress((FAQ / "debian-faq.en.pdf.gz").read_bytes()))
    return load_document(path)


@needs_faq
def test_debian_faq_pdf_sections_pages_and_clean_text(faq_pdf):
    doc = faq_pdf
    assert doc.kind == "pdf" and doc.title == "The Debian GNU/Linux FAQ"
    assert doc.pages and doc.pages > 40
    assert all(1 <= b.page <= doc.pages for b in doc.blocks)
    assert_offsets(doc)
    # The table of contents mentions the question first; the heading is the one in chapter 1.
    question = next(b for b in doc.blocks if b.heading and "What is Debian GNU/Linux?" in b.text)
    assert question.section == "Definitions and overview > What is Debian GNU/Linux?"
    answer = doc.blocks[doc.blocks.index(question) + 1]
    assert answer.section == question.section and answer.page == question.page
    # Words are separated (pypdf alone glues this TeX font's words together) and lines joined.
    assert answer.text.startswith("Debian GNU/Linux is a particular distribution of the Linux operating system")
    # Running heads ("CHAPTER 1. DEFINITIONS AND OVERVIEW ...") and page numbers are gone.
    assert "CHAPTER 1. DEFINITIONS" not in doc.text
    assert not [b for b in doc.blocks if b.text.strip().isdigit()]
    assert doc.metadata["empty_pages"]  # the blank versos between chapters
    headings = [b for b in doc.blocks if b.heading]
    assert len(headings) > 100


# --- size -----------------------------------------------------------------------------------


def test_large_text_loads_in_linear_time():
    para = "A sentence about nothing in particular, repeated to make a large file. " * 8
    data = ("\n\n".join([para] * 17_000)).encode()  # ~10 MB
    assert len(data) > 9_000_000
    started = time.perf_counter()
    doc = load_document("big.txt", data)
    elapsed = time.perf_counter() - started
    assert len(doc.blocks) == 17_000 and doc.blocks[-1].end == len(doc.text)
    assert elapsed < 20, f"10 MB of text took {elapsed:.1f}s"
