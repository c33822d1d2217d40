"""What the format readers share: the parse result, the heading path, text decoding."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path

from .model import Block, DocumentError

SECTION_SEP = " > "

@dataclass
class Parsed:
    blocks: list[Block]
    title: str = ""
    pages: int | None = None
    metadata: dict = field(default_factory=dict)


class Sections:
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


CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")


def clean_text(text: str) -> str:
    """No control characters (form feeds are counted as pages before this), no trailing spaces."""
    text = CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n").strip()


def read_file(path: Path) -> bytes:
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


def decode(data: bytes) -> tuple[str, str, str]:
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


def decodes_as_text(data: bytes) -> bool:
    """Text in a legacy encoding or UTF-16: few control characters once decoded."""
    text, _, _ = decode(data[:65536])
    if not text:
        return False
    controls = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f") or ch in "\x7f\ufffd")
    return controls <= max(2, len(text) // 200)


def text_of(data: bytes, metadata: dict) -> str:
    text, enc, note = decode(data)
    metadata["encoding"] = enc
    if note:
        metadata["encoding_note"] = note
    return text
