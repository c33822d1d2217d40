"""SQLite and file helpers shared by the support plugins: durable, concurrent-safe, atomic.

- `connect(path)`: a connection in WAL mode with a busy timeout, so several assistant processes
  (a chat, a batch run, a human agent's tooling) can read and write the same database at once.
- `migrate(conn, steps)`: append-only migrations tracked in `PRAGMA user_version`.
- `create_database_once(path, build)`: a database that is built completely in a temporary file
  and then linked into place, so a crash or a concurrent first start never leaves half a
  database behind (the orders sample data is created this way).
- `write_file_atomically` / `copy_file_atomically`: temp file, fsync, rename.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from assistant.plugin_api import fsync_dir, write_file_atomic

BUSY_TIMEOUT_S = 30.0


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """Open `path`. Writers get WAL mode (readers never block writers); `read_only` opens it
    with `mode=ro`, which is how the orders plugin treats a team's own orders database."""
    if read_only:
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a commit survives a killed process
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front (waiting on the busy timeout)
    instead of failing half-way when another process writes."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, steps: Sequence[str]) -> None:
    """Apply the migrations `steps[user_version:]`, each in its own transaction. Append new
    steps; never edit a released one. A database from a newer version is refused."""
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(steps):
            raise RuntimeError(
                f"this database was written by a newer version of the plugin (schema {version}, known {len(steps)})"
            )
        for number, sql in enumerate(steps[version:], start=version + 1):
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit the open transaction)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in migration: {current.strip()[:80]}")
    return out


def create_database_once(path: Path, build: Callable[[sqlite3.Connection], None]) -> bool:
    """Create the database at `path` with `build(conn)` unless it exists; True if this call made
    it. Built in a temp file beside it and hard-linked into place: a crash leaves no partial
    database, and of two processes starting at once exactly one wins, the other uses its file."""
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to link into place
            build(conn)
        finally:
            conn.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process created it meanwhile: theirs stays
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def write_file_atomically(path: Path, data: bytes) -> None:
    """`path` holds either its old content or all of `data`, never a part."""
    write_file_atomic(Path(path), data, make_parents=True)


def copy_file_atomically(src: Path, dst: Path) -> None:
    def copy(out) -> None:
        with open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)

    write_file_atomic(Path(dst), copy, make_parents=True)


def resolve_path(setting: str, default: Path) -> Path:
    """A path setting: empty means `default`; `~` is expanded."""
    return Path(setting).expanduser() if setting else Path(default)
