"""The batch input: JSONL or CSV items, validated in full before any request is made.

Every problem names the file, the line and the field, and all of them (up to a limit) are
reported at once, so a 10,000-line file is fixed in one pass rather than one failed run per
typo. Attachment *files* are not opened here: a missing or damaged file is that item's error
at run time, not a reason to refuse the whole batch.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError
from .openai_format import is_request, parse_request

MODES = ("exact", "normalized", "contains", "regex", "judge")
FIELDS = ("id", "question", "attachments", "system", "expected", "match")
_MAX_REPORTED = 20


class BatchInputError(UsageError):
    """The input file cannot be used as it is."""


@dataclass(frozen=True)
class BatchItem:
    id: str
    question: str
    line: int  # where the item starts in the input file (1-based)
    attachments: tuple[str, ...] = ()  # absolute paths, or http(s) URLs
    system: str | None = None
    expected: tuple[str, ...] = ()  # alternatives; any one counts as correct; empty: not scored
    match: str | None = None  # scoring mode for this item; None: the batch's --score
    meta: dict[str, Any] = field(default_factory=dict)  # other fields, copied to the record
    model_settings: dict[str, Any] = field(default_factory=dict)  # per-item [model] overrides (OpenAI Batch bodies)
    openai: bool = False  # read from an OpenAI Batch request line (its output is written in that format too)


def detect_format(path: Path, text: str) -> str:
    """'jsonl' or 'csv'/'tsv': by extension, else by the first character of the content."""
    ext = path.suffix.lower()
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext in (".csv", ".tsv"):
        return ext[1:]
    start = text.lstrip()[:1]
    if start in ("{", "["):
        return "jsonl"
    try:
        return "tsv" if csv.Sniffer().sniff(text[:8192], delimiters=",\t").delimiter == "\t" else "csv"
    except csv.Error:
        return "csv"


def read_items(path: str | Path, *, fmt: str | None = None, default_match: str = "normalized") -> list[BatchItem]:
    """Every item of the file, validated; raises one BatchInputError listing every problem."""
    path = Path(path).expanduser()
    try:
        text = path.read_bytes().decode("utf-8-sig")  # -sig: spreadsheets write a BOM
    except FileNotFoundError:
        raise BatchInputError(f"input file {path} does not exist", hint="check the path") from None
    except IsADirectoryError:
        raise BatchInputError(f"input {path} is a folder", hint="give a .jsonl or .csv file") from None
    except UnicodeDecodeError as exc:
        raise BatchInputError(
            f"{path} is not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8 (JSONL or CSV)"
        ) from None
    except OSError as exc:
        raise BatchInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    fmt = fmt or detect_format(path, text)
    rows = _jsonl_rows(text) if fmt == "jsonl" else _csv_rows(text, "\t" if fmt == "tsv" else ",")
    problems: list[str] = []
    items: list[BatchItem] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, str):  # the reader's own complaint about this line
            problems.append(f"line {line}: {row}")
            continue
        try:
            item = _openai_item(row, line) if is_request(row) else _item(row, line, path.parent, default_match=default_match)
        except _RowError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if item.id in first_line:
            problems.append(f"line {line}: field 'id': duplicate id {item.id!r} (first used on line {first_line[item.id]})")
            continue
        first_line[item.id] = line
        items.append(item)
    if problems:
        shown = problems[:_MAX_REPORTED]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise BatchInputError(
            f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''} (nothing was sent):\n"
            + "\n".join(f"  {p}" for p in shown) + more,
            hint="each item needs a unique 'id' and a 'question'; optional: " + ", ".join(FIELDS[2:])
            + f"; match is one of {', '.join(MODES)}; or an OpenAI Batch line (custom_id, method, url, body)",
        )
    if not items:
        raise BatchInputError(f"{path} has no items", hint="one JSON object per line, or a CSV with a header row")
    return items


# --- readers: (line, row dict) or (line, problem text) --------------------------------------


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    if text.lstrip().startswith("["):
        yield 1, "this is a JSON array; batch input is JSONL: one JSON object per line"
        return
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield n, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        yield n, row if isinstance(row, dict) else f"expected a JSON object, got {type(row).__name__}"


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, dict | str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1  # a quoted field may span several lines
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [h.strip().lower() for h in record]
                missing = [f for f in ("id", "question") if f not in header]
                if missing:
                    yield line, f"the header row has no {' or '.join(repr(m) for m in missing)} column (it has: {', '.join(header)})"
                    return
                continue
            if len(record) > len(header):
                yield line, f"{len(record)} fields but the header has {len(header)} (an unquoted {delimiter!r} in a value?)"
                continue
            yield line, {k: v for k, v in zip(header, record) if k and v.strip() != ""}
    except csv.Error as exc:
        yield start, f"CSV error: {exc}"


# --- one item --------------------------------------------------------------------------------


class _RowError(Exception):
    pass


def _openai_item(row: dict, line: int) -> BatchItem:
    try:
        fields = parse_request(row)
    except ValueError as exc:
        raise _RowError(f"OpenAI Batch request: {exc}") from None
    return BatchItem(line=line, openai=True, **fields)


def _item(row: dict, line: int, base: Path, *, default_match: str) -> BatchItem:
    meta = {}
    for key in row:
        if key in FIELDS:
            continue
        close = difflib.get_close_matches(str(key).lower(), FIELDS, n=1, cutoff=0.75)
        if close and close[0] not in row:
            raise _RowError(f"unknown field {key!r}: did you mean {close[0]!r}?")
        meta[key] = row[key]
    item_id = row.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or not str(item_id).strip():
        raise _RowError("field 'id' is required: a non-empty string or an integer")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _RowError("field 'question' is required: non-empty text")
    system = row.get("system")
    if system is not None and not isinstance(system, str):
        raise _RowError("field 'system' must be text")
    expected = _expected(row.get("expected"))
    match = row.get("match")
    if match is not None:
        if not isinstance(match, str) or match.strip().lower() not in MODES:
            raise _RowError(f"field 'match': {match!r} is not one of {', '.join(MODES)}")
        match = match.strip().lower()
        if not expected:
            raise _RowError("field 'match' is set but 'expected' is missing")
    if (match or default_match) == "regex":
        for pattern in expected:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _RowError(f"field 'expected': not a valid regular expression ({exc})") from None
    return BatchItem(
        id=str(item_id).strip(), question=question, line=line, attachments=_attachments(row.get("attachments"), base),
        system=system if system else None, expected=expected, match=match, meta=meta,
    )  # fmt: skip


def _expected(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise _RowError("field 'expected' must be text, a number, or a list of them")
        out.append(str(v))
    return tuple(out)


def _attachments(value: Any, base: Path) -> tuple[str, ...]:
    """A list (JSONL) or a ';'-separated string (CSV, or JSONL for convenience), relative to the input file."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(";")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _RowError("field 'attachments' must be a list of file paths (in CSV: paths separated by ';')")
    out = []
    for raw in value:
        raw = raw.strip()
        if not raw:
            continue
        if raw.startswith(("http://", "https://")):
            out.append(raw)
        else:
            p = Path(raw).expanduser()
            out.append(str(p if p.is_absolute() else (base / p).resolve()))
    return tuple(out)
