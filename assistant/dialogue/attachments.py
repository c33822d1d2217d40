"""What an attached file is, decided by its content, and who handles it.

The extension lies often enough (a PDF saved as `.png`, a voice note called `.webm`) that
the magic bytes decide; the extension only picks between formats that share a container
(MP4 audio vs video, WebM audio vs video) and names plain-text subtypes. Only the first
64 KiB are read, since attachments can be 1 GB recordings; the one exception is a ZIP,
whose central directory (at the end of the file) says whether it is a DOCX.

Routing happens before any request: every file nobody can handle is reported at once, so
the user fixes them all in one go instead of one failed request per file.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import AttachmentError

Kind = Literal["image", "audio", "document", "text", "unknown"]

SNIFF_BYTES = 64 * 1024
INLINE_TEXT_LIMIT = 100_000  # bytes; larger text goes to a document plugin instead of the prompt
OCTET = "application/octet-stream"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

_TEXT_SUBTYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
}
# Extensions that settle a generic container (ISO-BMFF, Matroska) as audio.
_AUDIO_EXTS = {".m4a", ".m4b", ".aac", ".weba", ".mka", ".opus", ".oga", ".ogg"}
_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_MP4_GENERIC_BRANDS = {b"mp41", b"mp42", b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"dash"}
_MP4_IMAGE_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"mif1": "image/heif", b"avif": "image/avif"}
_MKV_AUDIO_CODECS = (b"A_OPUS", b"A_VORBIS", b"A_AAC", b"A_FLAC", b"A_MPEG", b"A_PCM", b"A_AC3")
_MKV_VIDEO_CODECS = (b"V_VP8", b"V_VP9", b"V_AV1", b"V_MPEG", b"V_MS/", b"V_THEORA", b"V_UNCOMPRESSED")
_MIME_EXT = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "image/bmp": ".bmp", "image/tiff": ".tiff", "audio/wav": ".wav", "audio/mpeg": ".mp3",
    "audio/flac": ".flac", "audio/ogg": ".ogg", "audio/mp4": ".m4a", "audio/webm": ".webm",
    "application/pdf": ".pdf", DOCX: ".docx", "text/html": ".html", "text/markdown": ".md",
    "text/plain": ".txt",
}


@dataclass(frozen=True)
class Attachment:
    path: Path | None  # local file, or None for in-memory data
    data: bytes | None  # raw bytes when not a file (e.g. pasted image)
    filename: str
    mime: str  # e.g. "image/png", "audio/wav", "application/pdf", "text/markdown"
    kind: Kind
    size: int

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except OSError as exc:  # it may have moved or changed since it was sniffed
            raise AttachmentError(
                f"cannot read attachment {self.path}: {exc.strerror or exc}",
                hint="check that the file still exists and is readable",
            ) from None


@dataclass(frozen=True)
class Route:
    attachment: Attachment
    target: str  # "model" (image sent as image part) | "plugin:<name>" | "inline-text"


# --- sniffing ---------------------------------------------------------------------------


def sniff(path_or_bytes: str | os.PathLike | bytes | bytearray | memoryview, *, filename: str | None = None) -> Attachment:
    """Type a file (or in-memory bytes) by its content. `filename` names in-memory data and may
    carry the extension used to disambiguate; for a path it defaults to the file's name."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        if not data:
            raise AttachmentError(
                f"attachment {filename or '(pasted data)'} is empty", hint="attach a file with content"
            )
        mime, kind = _detect(data[:SNIFF_BYTES], _ext(filename), len(data), lambda: io.BytesIO(data))
        name = filename or "pasted" + _MIME_EXT.get(mime, "")
        return Attachment(None, data, name, mime, kind, len(data))

    path = Path(path_or_bytes).expanduser()
    head, size = _read_head(path)
    name = filename or path.name
    mime, kind = _detect(head, _ext(name) or _ext(path.name), size, lambda: path)
    return Attachment(path, None, name, mime, kind, size)


def _read_head(path: Path) -> tuple[bytes, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AttachmentError(
            f"attachment {path} does not exist", hint="check the path (relative paths start at the current folder)"
        ) from None
    except OSError as exc:
        raise AttachmentError(f"cannot read attachment {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise AttachmentError(f"attachment {path} is a folder, not a file", hint="attach the files inside it one by one")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise AttachmentError(f"attachment {path} is not a regular file", hint="attach an ordinary file")
    if st.st_size == 0:
        raise AttachmentError(f"attachment {path} is empty", hint="attach a file with content")
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES), st.st_size
    except OSError as exc:
        raise AttachmentError(
            f"cannot read attachment {path}: {exc.strerror or exc}",
            hint="check the file's permissions" if isinstance(exc, PermissionError) else "",
        ) from None


def _ext(name: str | None) -> str:
    if not name:
        return ""
    return Path(name).suffix.lower()


def _detect(head: bytes, ext: str, size: int, opener) -> tuple[str, Kind]:
    """(mime, kind) from the first bytes; `opener()` gives a path/file for the ZIP check."""
    # Images.
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "image"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif", "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff", "image"
    if _is_bmp(head):
        return "image/bmp", "image"
    # Audio.
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav", "audio"
    if head.startswith(b"fLaC"):
        return "audio/flac", "audio"
    if head.startswith(b"ID3") or _is_mpeg_frame(head):
        return "audio/mpeg", "audio"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:  # ADTS: raw AAC
        return "audio/aac", "audio"
    if head.startswith(b"OggS"):
        return _ogg(head)
    if head[4:8] == b"ftyp":
        return _iso_bmff(head, ext)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska(head, ext)
    # Documents.
    if b"%PDF-" in head[:1024]:  # some writers put junk before the header; readers allow it
        return "application/pdf", "document"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip(opener)
    text = _as_text(head, truncated=size > len(head))
    if text is None:
        return OCTET, "unknown"
    if _is_html(text, ext):
        return "text/html", "document"
    return _TEXT_SUBTYPES.get(ext, "text/plain"), "text"


def _is_bmp(head: bytes) -> bool:
    # "BM" alone is too weak (a text file can start with it): also require a known DIB header size.
    return len(head) >= 18 and head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)


def _is_mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header (an MP3 without ID3 tag). The 11-bit sync alone matches too
    much binary data, so the version, layer, bitrate and sample-rate fields must be valid too."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def _ogg(head: bytes) -> tuple[str, Kind]:
    # The first page carries one packet that names the codec; it follows the segment table.
    packet = head[27 + head[26] :] if len(head) > 27 else b""
    if packet.startswith((b"OpusHead", b"\x01vorbis", b"\x7fFLAC", b"Speex   ")):
        return "audio/ogg", "audio"
    if packet.startswith((b"\x80theora", b"\x01video")):
        return "video/ogg", "unknown"
    return "application/ogg", "unknown"


def _iso_bmff(head: bytes, ext: str) -> tuple[str, Kind]:
    box = int.from_bytes(head[:4], "big")
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, min(box, 64, len(head)) - 3, 4)}
    if major in _MP4_AUDIO_BRANDS:
        return "audio/mp4", "audio"
    for brand, mime in _MP4_IMAGE_BRANDS.items():
        if major == brand:
            return mime, "unknown"
    if major == b"qt  ":
        return "video/quicktime", "unknown"
    # Generic brands are used for audio and video alike: the track handlers, when the movie
    # header is near the start, settle it; otherwise the extension does.
    handlers = {head[i + 12 : i + 16] for i in _find_all(head, b"hdlr")}
    if b"vide" in handlers:
        return "video/mp4", "unknown"
    if b"soun" in handlers or (brands & (_MP4_AUDIO_BRANDS | _MP4_GENERIC_BRANDS) and ext in _AUDIO_EXTS):
        return "audio/mp4", "audio"
    return "video/mp4", "unknown"


def _matroska(head: bytes, ext: str) -> tuple[str, Kind]:
    doctype = b""
    at = head.find(b"\x42\x82", 0, 64)  # DocType element
    if at >= 0 and at + 3 <= len(head) and head[at + 2] & 0x80:  # one-byte size
        doctype = head[at + 3 : at + 3 + (head[at + 2] & 0x7F)]
    base = "webm" if doctype == b"webm" else "x-matroska"
    if any(c in head for c in _MKV_VIDEO_CODECS):
        return f"video/{base}", "unknown"
    if any(c in head for c in _MKV_AUDIO_CODECS) or ext in _AUDIO_EXTS:
        return f"audio/{base}", "audio"
    return f"video/{base}", "unknown"


def _find_all(data: bytes, needle: bytes):
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def _zip(opener) -> tuple[str, Kind]:
    """A ZIP is a DOCX only if its entries say so; the PK signature fits every Office file."""
    try:
        with zipfile.ZipFile(opener()) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return "application/zip", "unknown"
    if "word/document.xml" in names:
        return DOCX, "document"
    if "xl/workbook.xml" in names:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "unknown"
    if "ppt/presentation.xml" in names:
        return "application/vnd.openxmlformats-officedocument.presentationml.presentation", "unknown"
    return "application/zip", "unknown"


def _as_text(head: bytes, *, truncated: bool) -> str | None:
    """The head as text if it is UTF-8 without NULs; a cut multi-byte character at the end of
    a truncated head is allowed."""
    if b"\x00" in head:
        return None
    import codecs

    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=not truncated)
    except UnicodeDecodeError:
        return None
    # Valid UTF-8 can still be binary (e.g. packed small integers): few control characters in text.
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f\b\x1b")
    return None if controls > max(2, len(text) // 100) else text


def _is_html(text: str, ext: str) -> bool:
    start = text[:1024].lstrip().lower()
    if start.startswith(("<!doctype html", "<html")):
        return True
    # After a leading comment or XML declaration, or a fragment the extension calls HTML.
    return start.startswith("<") and ("<html" in start or ext in (".html", ".htm", ".xhtml"))


# --- routing ----------------------------------------------------------------------------

_WHAT_TO_DO = {
    "image": "use a vision model (e.g. model.name = \"qwen2.5-vl-3b\", or model.vision = \"yes\" if this "
    "model does take images), or enable a plugin that reads images",
    "audio": "install and enable the speech plugin (pip install 'assistant[speech]'), or attach a "
    "transcript as a .txt file",
    "document": "install and enable a document plugin (pip install 'assistant[documents]'), or convert "
    "the file to text (.txt or .md)",
    "long-text": "install and enable a document plugin (pip install 'assistant[documents]'), or attach a "
    "shorter excerpt",
    "unknown": "convert the file to a supported format: an image (PNG, JPEG, WebP, GIF), audio (WAV, MP3, "
    "FLAC, OGG, M4A), a document (PDF, DOCX, HTML) or text",
}


def kind_of_mime(mime: str) -> str:
    """The attachment kind a stored file (known only by its MIME type) was routed as."""
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("audio/"):
        return "audio"
    if mime.startswith("text/") or mime == "application/json":
        return "text"
    return "document"


def route_attachments(
    attachments: list[Attachment], *, model_accepts_images: bool | None, consumers: dict[str, list[str]]
) -> list[Route]:
    """Where each attachment goes. `consumers`: kind -> plugins that consume it, first one wins.
    Raises one AttachmentError listing every file nobody can handle."""
    routes: list[Route] = []
    problems: list[tuple[Attachment, str, str]] = []  # (attachment, why, what to do)

    def plugin(kind: str) -> str | None:
        names = consumers.get(kind) or []
        return f"plugin:{names[0]}" if names else None

    for att in attachments:
        target: str | None = None
        why, todo = "", _WHAT_TO_DO.get(att.kind, _WHAT_TO_DO["unknown"])
        if att.kind == "image":
            target = "model" if model_accepts_images is not False else plugin("image")
            why = "the model does not take images and no plugin reads them"
        elif att.kind in ("audio", "document"):
            target = plugin(att.kind)
            why = f"no enabled plugin handles {att.kind} files"
        elif att.kind == "text":
            target = plugin("text") or ("inline-text" if att.size < INLINE_TEXT_LIMIT else plugin("document"))
            why = f"it is too large to put in the prompt ({att.size // 1000} KB) and no document plugin is enabled"
            todo = _WHAT_TO_DO["long-text"]
        else:
            why = "this type is not supported"
        if target is None:
            problems.append((att, why, todo))
        else:
            routes.append(Route(att, target))

    if problems:
        lines = [f"{a.filename} ({_describe(a)}): {why}" for a, why, _ in problems]
        if len(problems) == 1:
            raise AttachmentError(f"cannot use attachment {lines[0]}", hint=problems[0][2])
        todos = list(dict.fromkeys(f"{a.filename}: {todo}" for a, _, todo in problems))
        raise AttachmentError(
            f"{len(problems)} attachments cannot be used (nothing was sent):\n"
            + "\n".join(f"  - {line}" for line in lines),
            hint="\n    ".join(todos),
        )
    return routes


def _describe(att: Attachment) -> str:
    if att.kind == "unknown":
        return "unrecognised binary data" if att.mime == OCTET else f"detected as {att.mime}"
    return f"{att.kind}, {att.mime}"
