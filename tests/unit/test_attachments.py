"""Attachments are typed by content (magic bytes), then routed to the model, a plugin or the prompt."""

import io
import os
import random
import struct
import wave
import zipfile

import pytest
from PIL import Image

from assistant.dialogue import attachments as att_mod
from assistant.dialogue.attachments import INLINE_TEXT_LIMIT, SNIFF_BYTES, Attachment, Route, route_attachments, sniff
from assistant.errors import AttachmentError, UsageError

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# --- file makers ---------------------------------------------------------------------------


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def image(path, fmt):
    Image.new("RGB", (8, 6), (10, 200, 30)).save(path, format=fmt)
    return path


def wav(path, seconds=0.1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01" * int(16000 * seconds))
    return path


def docx(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("_rels/.rels", "<Relationships/>")
        z.writestr("word/document.xml", "<w:document><w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>")
    return path


def ogg(codec_packet: bytes) -> bytes:
    # One Ogg page: 27-byte header, a one-entry segment table, then the codec's first packet.
    header = b"OggS" + b"\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 4 + b"\x00" * 4 + b"\x01"
    assert len(header) == 27
    return header + bytes([len(codec_packet)]) + codec_packet


def ftyp(major: bytes, *compatible: bytes, extra: bytes = b"") -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + extra


def hdlr(handler: bytes) -> bytes:
    return struct.pack(">I", 32) + b"hdlr" + b"\x00" * 4 + b"\x00" * 4 + handler + b"\x00" * 12


def ebml(doctype: bytes, codec: bytes) -> bytes:
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82" + bytes([0x80 | len(doctype)]) + doctype + b"\x00" * 20 + b"\x86" + bytes([0x80 | len(codec)]) + codec


# --- sniffing: images ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, ext, mime",
    [
        ("PNG", "png", "image/png"),
        ("JPEG", "jpg", "image/jpeg"),
        ("GIF", "gif", "image/gif"),
        ("WEBP", "webp", "image/webp"),
        ("BMP", "bmp", "image/bmp"),
        ("TIFF", "tif", "image/tiff"),
    ],
)
def test_images_are_typed_by_content(tmp_path, fmt, ext, mime):
    path = image(tmp_path / f"pic.{ext}", fmt)
    a = sniff(path)
    assert (a.kind, a.mime, a.filename, a.path, a.data) == ("image", mime, f"pic.{ext}", path, None)
    assert a.size == path.stat().st_size
    assert a.read_bytes() == path.read_bytes()


def test_extension_does_not_decide(tmp_path):
    assert sniff(image(tmp_path / "photo.pdf", "JPEG")).mime == "image/jpeg"
    pdf_as_png = sniff(write(tmp_path / "scan.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"))
    assert (pdf_as_png.kind, pdf_as_png.mime) == ("document", "application/pdf")
    wav_as_txt = sniff(wav(tmp_path / "notes.txt"))
    assert (wav_as_txt.kind, wav_as_txt.mime) == ("audio", "audio/wav")


def test_in_memory_bytes(tmp_path):
    data = image(tmp_path / "x.png", "PNG").read_bytes()
    a = sniff(data)
    assert (a.path, a.data, a.kind, a.mime, a.size) == (None, data, "image", "image/png", len(data))
    assert a.filename == "pasted.png"  # named after its detected type, so it can be stored
    assert sniff(bytearray(data), filename="clip.png").filename == "clip.png"
    assert sniff(data).read_bytes() == data


# --- sniffing: audio -----------------------------------------------------------------------


def test_real_wav(tmp_path):
    a = sniff(wav(tmp_path / "voice.wav"))
    assert (a.kind, a.mime) == ("audio", "audio/wav")


@pytest.mark.parametrize(
    "name, data, mime",
    [
        ("a.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 100, "audio/mpeg"),
        ("b.mp3", b"\xff\xfb\x90\x64" + b"\x00" * 400, "audio/mpeg"),  # MPEG-1 layer III frame, no tag
        ("c.aac", b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 100, "audio/aac"),
        ("d.flac", b"fLaC\x00\x00\x00\x22" + b"\x00" * 34, "audio/flac"),
        ("e.opus", ogg(b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"), "audio/ogg"),
        ("f.ogg", ogg(b"\x01vorbis\x00\x00\x00\x00\x01\x44\xac\x00\x00"), "audio/ogg"),
        ("g.m4a", ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio/mp4"),
        ("h.m4b", ftyp(b"M4B ", b"isom"), "audio/mp4"),
        ("i.m4a", ftyp(b"mp42", b"mp42", b"isom"), "audio/mp4"),  # generic brand: the extension decides
        ("j.mp4", ftyp(b"isom", b"isom", extra=hdlr(b"soun")), "audio/mp4"),  # only a sound track
        ("k.webm", ebml(b"webm", b"A_OPUS"), "audio/webm"),
        ("l.weba", ebml(b"webm", b""), "audio/webm"),
        ("m.mka", ebml(b"matroska", b"A_FLAC"), "audio/x-matroska"),
    ],
)
def test_audio_by_magic(tmp_path, name, data, mime):
    a = sniff(write(tmp_path / name, data))
    assert (a.kind, a.mime) == ("audio", mime)


@pytest.mark.parametrize(
    "name, data, mime",
    [
        ("clip.mp4", ftyp(b"isom", b"isom", b"avc1", b"mp41"), "video/mp4"),  # generic brand, video extension
        ("clip.mp4", ftyp(b"mp42", extra=hdlr(b"vide") + hdlr(b"soun")), "video/mp4"),
        ("clip.m4a", ftyp(b"isom", extra=hdlr(b"vide")), "video/mp4"),  # the track beats the extension
        ("clip.mov", ftyp(b"qt  "), "video/quicktime"),
        ("clip.webm", ebml(b"webm", b"V_VP9"), "video/webm"),
        ("clip.webm", ebml(b"webm", b""), "video/webm"),  # no codec seen, video extension
        ("clip.ogv", ogg(b"\x80theora\x03\x02\x01"), "video/ogg"),
        ("photo.heic", ftyp(b"heic", b"mif1", b"heic"), "image/heic"),  # not something PIL opens
    ],
)
def test_video_and_unsupported_containers_are_unknown(tmp_path, name, data, mime):
    a = sniff(write(tmp_path / name, data))
    assert (a.kind, a.mime) == ("unknown", mime)


# --- sniffing: documents and text ----------------------------------------------------------------


def test_pdf(tmp_path):
    a = sniff(write(tmp_path / "paper.pdf", b"%PDF-1.4\n" + b"x" * 100))
    assert (a.kind, a.mime) == ("document", "application/pdf")


def test_real_docx(tmp_path):
    a = sniff(docx(tmp_path / "report.docx"))
    assert (a.kind, a.mime) == ("document", DOCX_MIME)
    mislabelled = sniff(docx(tmp_path / "report.zip"))
    assert mislabelled.kind == "document"
    in_memory = sniff(docx(tmp_path / "r2.docx").read_bytes())
    assert (in_memory.kind, in_memory.filename) == ("document", "pasted.docx")


def test_zip_that_is_not_docx_is_unknown(tmp_path):
    path = tmp_path / "fake.docx"  # the PK signature and the extension are not enough
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    a = sniff(path)
    assert (a.kind, a.mime) == ("unknown", "application/zip")
    xlsx = tmp_path / "sheet.xlsx"
    with zipfile.ZipFile(xlsx, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    assert sniff(xlsx).kind == "unknown"
    assert sniff(write(tmp_path / "broken.docx", b"PK\x03\x04" + b"\x00" * 50)).mime == "application/zip"


def test_large_docx_is_read_through_its_central_directory(tmp_path):
    path = tmp_path / "big.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("media/blob.bin", os.urandom(SNIFF_BYTES * 3))  # word/document.xml lies past 64 KiB
        z.writestr("word/document.xml", "<w:document/>")
    assert sniff(path).kind == "document"


@pytest.mark.parametrize(
    "text",
    [
        "<!DOCTYPE html>\n<html><body>hi</body></html>",
        "  \n<HTML lang='en'><p>hi</p></HTML>",
        "<!-- saved page -->\n<html><body>x</body></html>",
    ],
)
def test_html(tmp_path, text):
    a = sniff(write(tmp_path / "page.txt", text.encode()))
    assert (a.kind, a.mime) == ("document", "text/html")


def test_markdown_and_plain_text(tmp_path):
    md = sniff(write(tmp_path / "notes.md", "# Title\n\nSome *text* with <html> mentioned later.\n".encode()))
    assert (md.kind, md.mime) == ("text", "text/markdown")
    assert sniff(write(tmp_path / "notes.markdown", b"# x\n")).mime == "text/markdown"
    txt = sniff(write(tmp_path / "notes.txt", "Grüße, 世界 — plain text\n".encode()))
    assert (txt.kind, txt.mime) == ("text", "text/plain")
    no_ext = sniff(write(tmp_path / "README", b"just words\n"))
    assert (no_ext.kind, no_ext.mime) == ("text", "text/plain")
    assert sniff(b"# pasted\n", filename="x.md").mime == "text/markdown"


def test_text_cut_inside_a_multibyte_character_at_64k_is_still_text(tmp_path):
    data = b"a" * (SNIFF_BYTES - 1) + "é".encode() * 10  # 'é' straddles the 64 KiB boundary
    a = sniff(write(tmp_path / "long.txt", data))
    assert (a.kind, a.size) == ("text", len(data))


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,  # NULs
        b"\xde\xad\xbe\xef" * 300,  # not UTF-8
        b"\x01\x02\x03\x04\x05\x06\x07" * 100,  # valid UTF-8, but control characters
        "text\x00with a NUL".encode(),
    ],
)
def test_binary_garbage_is_unknown(tmp_path, data):
    a = sniff(write(tmp_path / "data.txt", data))
    assert (a.kind, a.mime) == ("unknown", "application/octet-stream")


def test_text_starting_with_BM_is_not_a_bitmap(tmp_path):
    assert sniff(write(tmp_path / "b.txt", b"BMW and Audi are car makers.\n")).kind == "text"


def test_sniffing_reads_only_the_first_64k(tmp_path, monkeypatch):
    path = wav(tmp_path / "long.wav", seconds=10)  # ~320 KB
    reads = []
    real_open = open

    class Spy:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n=-1):
            reads.append(n)
            return self.fh.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(att_mod, "open", lambda p, mode="r": Spy(real_open(p, mode)), raising=False)
    a = sniff(path)
    assert a.kind == "audio" and a.size > SNIFF_BYTES
    assert reads == [SNIFF_BYTES]


# --- sniffing: files that cannot be attached ---------------------------------------------------------


def test_empty_file(tmp_path):
    with pytest.raises(AttachmentError, match="empty") as info:
        sniff(write(tmp_path / "empty.png", b""))
    assert "empty.png" in str(info.value) and info.value.hint
    with pytest.raises(AttachmentError, match="empty"):
        sniff(b"", filename="clip.png")


def test_missing_file(tmp_path):
    with pytest.raises(AttachmentError, match="does not exist") as info:
        sniff(tmp_path / "nope.pdf")
    assert "nope.pdf" in str(info.value) and info.value.hint
    assert isinstance(info.value, UsageError)  # exit code 2: the user's input


def test_folder(tmp_path):
    with pytest.raises(AttachmentError, match="is a folder") as info:
        sniff(tmp_path)
    assert info.value.hint


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path / "secret.pdf", b"%PDF-1.4\n")

    def denied(*a, **kw):  # the tests may run as root, so chmod 000 would not stop a read
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(att_mod, "open", denied, raising=False)
    with pytest.raises(AttachmentError, match="Permission denied") as info:
        sniff(path)
    assert "secret.pdf" in str(info.value) and "permission" in info.value.hint


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(AttachmentError, match="not a regular file"):
        sniff(fifo)


def test_file_removed_after_sniffing(tmp_path):
    a = sniff(write(tmp_path / "gone.txt", b"hello"))
    (tmp_path / "gone.txt").unlink()
    with pytest.raises(AttachmentError, match="gone.txt"):
        a.read_bytes()


# --- routing ---------------------------------------------------------------------------------------


def mk(kind, name=None, mime=None, size=10) -> Attachment:
    defaults = {
        "image": ("photo.png", "image/png"),
        "audio": ("voice.mp3", "audio/mpeg"),
        "document": ("paper.pdf", "application/pdf"),
        "text": ("notes.md", "text/markdown"),
        "unknown": ("archive.zip", "application/zip"),
    }
    dname, dmime = defaults[kind]
    return Attachment(None, b"x", name or dname, mime or dmime, kind, size)


FULL = {"audio": ["speech"], "document": ["longdoc", "retrieval"]}


def targets(routes):
    return [(r.attachment.filename, r.target) for r in routes]


@pytest.mark.parametrize("accepts", [True, None])  # None: unknown (remote server) -> assume yes
def test_images_go_to_a_vision_model(accepts):
    routes = route_attachments([mk("image")], model_accepts_images=accepts, consumers={})
    assert routes == [Route(mk("image"), "model")]


def test_images_on_a_text_only_model_go_to_an_image_plugin_or_fail():
    routes = route_attachments([mk("image")], model_accepts_images=False, consumers={"image": ["ocr", "captioner"]})
    assert targets(routes) == [("photo.png", "plugin:ocr")]
    with pytest.raises(AttachmentError) as info:
        route_attachments([mk("image")], model_accepts_images=False, consumers=FULL)
    msg = str(info.value)
    assert "photo.png" in msg and "image/png" in msg and "does not take images" in msg
    assert "vision" in info.value.hint


def test_audio_documents_and_text_go_to_their_first_consumer():
    items = [mk("audio"), mk("document"), mk("text")]
    routes = route_attachments(items, model_accepts_images=True, consumers={**FULL, "text": ["summariser"]})
    assert targets(routes) == [("voice.mp3", "plugin:speech"), ("paper.pdf", "plugin:longdoc"), ("notes.md", "plugin:summariser")]


def test_text_is_inlined_when_small_else_goes_to_a_document_plugin():
    small, big = mk("text", size=INLINE_TEXT_LIMIT - 1), mk("text", "big.txt", "text/plain", size=INLINE_TEXT_LIMIT)
    assert targets(route_attachments([small], model_accepts_images=True, consumers={})) == [("notes.md", "inline-text")]
    assert targets(route_attachments([big], model_accepts_images=True, consumers=FULL)) == [("big.txt", "plugin:longdoc")]
    with pytest.raises(AttachmentError, match="too large") as info:
        route_attachments([big], model_accepts_images=True, consumers={"audio": ["speech"]})
    assert "big.txt" in str(info.value) and "document plugin" in info.value.hint


def test_missing_audio_plugin_names_the_file_type_and_fix(tmp_path):
    voice = sniff(wav(tmp_path / "voice-note.wav"))
    with pytest.raises(AttachmentError) as info:
        route_attachments([voice], model_accepts_images=True, consumers={"document": ["longdoc"]})
    err = info.value
    assert "voice-note.wav" in str(err) and "audio/wav" in str(err) and "no enabled plugin handles audio" in str(err)
    assert "speech plugin" in err.hint
    assert err.exit_code == 2


def test_unknown_types_are_refused_with_what_to_do(tmp_path):
    blob = sniff(write(tmp_path / "dump.bin", random.Random(7).randbytes(2048)))
    with pytest.raises(AttachmentError) as info:
        route_attachments([blob], model_accepts_images=True, consumers=FULL)
    assert "dump.bin" in str(info.value) and "unrecognised" in str(info.value)
    assert "convert" in info.value.hint


def test_every_unroutable_file_is_reported_at_once():
    items = [mk("image"), mk("audio"), mk("document"), mk("unknown"), mk("text")]
    with pytest.raises(AttachmentError) as info:
        route_attachments(items, model_accepts_images=True, consumers={})
    msg, hint = str(info.value), info.value.hint
    assert msg.startswith("3 attachments cannot be used")
    for name in ("voice.mp3", "paper.pdf", "archive.zip"):
        assert name in msg and name in hint
    assert "photo.png" not in msg and "notes.md" not in msg  # these were routable
    assert "application/zip" in msg and "speech plugin" in hint and "convert" in hint


def test_no_attachments_no_routes():
    assert route_attachments([], model_accepts_images=False, consumers={}) == []


def test_routes_keep_order():
    items = [mk("text", "a.md"), mk("image", "b.png"), mk("text", "c.md")]
    assert [r.attachment.filename for r in route_attachments(items, model_accepts_images=True, consumers={})] == ["a.md", "b.png", "c.md"]


def test_sniffed_in_memory_image_round_trips_through_routing():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    routes = route_attachments([sniff(buf.getvalue())], model_accepts_images=None, consumers={})
    assert routes[0].target == "model" and routes[0].attachment.read_bytes() == buf.getvalue()
