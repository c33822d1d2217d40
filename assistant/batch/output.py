"""The results file: JSONL, one record per finished item, appended as items finish.

It is also the resume state: on start the file is read back and the last record per id wins,
so a re-run skips ids that already succeeded and retries the failed ones. Each record is one
`os.write` of the whole line, so an interrupted run (Ctrl-C, SIGTERM) always leaves whole lines
(a written line is in the page cache and survives the process); only a hard kill mid-write or a
full disk can leave a torn last line, which the next run cuts off (with a warning).

Every record is then fsynced, against power loss, by a background flusher: a worker does not
wait for the disk before taking its next item (an fsync can stall for 100 ms on a busy disk),
and records written while one fsync runs are covered by the next (group commit). `drain()`
waits for the last one; the runner calls it before the batch ends, interrupted or not, so
every record the summary counts is on disk when it is printed. The trade-off: a record is
durable one fsync after it is written rather than before the next item starts, so a power cut
(not a crash or Ctrl-C: the page cache survives those) can lose the last few; they run again on
resume. Measured on the project's ext4 disk an fsync takes 0.15-0.3 ms, and with it off the
event loop the batch path runs as fast with it as with os.fsync stubbed out.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from pathlib import Path
from typing import Callable

from ..atomic_folder import fsync_dir as _fsync_dir
from .openai_format import record_of, response_line
from .inputs import BatchInputError


class ResultsFile:
    def __init__(self, path: str | Path, *, openai: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.openai = openai  # write OpenAI Batch output lines (the record inside; see openai_format.py)
        self.records: dict[str, dict] = {}  # id -> its last record
        self.lines = 0
        self._fd: int | None = None
        self._unsynced = False
        self._flusher: asyncio.Future | None = None

    # --- reading back and repairing ----------------------------------------------------------

    def open(self, warn: Callable[[str], None]) -> "ResultsFile":
        """Read what is there (repairing a torn last line), then hold the file for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BatchInputError(
                f"another `assistant batch` is writing {self.path}",
                hint="wait for it to finish, or write to a different --out file",
            ) from None
        try:
            self._load(fd, warn)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if created:
            _fsync_dir(self.path.parent)  # the new file's directory entry must survive a crash too
        return self

    def _load(self, fd: int, warn: Callable[[str], None]) -> None:
        data = _read_all(fd)
        keep = len(data)
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1  # 0 when the only line is torn
        lines = data[:keep].split(b"\n")[:-1] if keep else []
        while lines:  # a complete but unparsable *last* line is a torn write too (e.g. disk full)
            try:
                json.loads(lines[-1])
                break
            except ValueError:
                keep -= len(lines.pop()) + 1
        if keep < len(data):
            os.ftruncate(fd, keep)
            os.fsync(fd)
            warn(
                f"warning: {self.path} ended in an incomplete line (the last run was killed mid-write?); "
                f"removed its {len(data) - keep} bytes, and that item will run again"
            )
        for n, raw in enumerate(lines, 1):
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            if isinstance(record, dict) and "custom_id" in record:  # an OpenAI Batch output line
                record = record_of(record)
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise BatchInputError(
                    f"{self.path} line {n} is not a batch record (not a JSON object with an 'id')",
                    hint="this --out file was edited or written by something else: fix or remove that line, "
                    "or write to a new --out file",
                )
            self.records[record["id"]] = record
        self.lines = len(lines)

    def succeeded(self, item_id: str) -> bool:
        record = self.records.get(item_id)
        return record is not None and record.get("error") is None

    # --- appending ---------------------------------------------------------------------------

    def write(self, record: dict) -> None:
        """Append one record as a single write, so a cancelled run never leaves half a line."""
        assert self._fd is not None, "open() first"
        line = (json.dumps(response_line(record) if self.openai else record, ensure_ascii=False, default=str) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # a short write only happens when the disk is full
            raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes): is the disk full?")
        self.records[record["id"]] = record
        self.lines += 1

    def append(self, record: dict) -> None:
        """Write now; fsync soon, off the event loop (call inside it). See the module docstring."""
        self.write(record)
        self._unsynced = True
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        while self._unsynced:
            self._unsynced = False
            await asyncio.to_thread(os.fsync, self._fd)

    async def drain(self) -> None:
        """Wait until every record written so far is fsynced."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing also drops the lock
            self._fd = None


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


