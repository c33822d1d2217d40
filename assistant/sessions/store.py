"""The persistent conversation store: one SQLite database plus content-addressed attachment files.

Every write is one transaction that has committed when the method returns, so a process killed
right after `add_message` keeps that message. Several processes may use the same database at
once (WAL mode, a busy timeout, and write transactions that take the lock up front).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..atomic_folder import durable_temp
from ..atomic_folder import fsync_dir as _fsync_dir
from ..errors import UsageError
from .migrations import MIGRATIONS, NewerSchema, migrate

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
ATTACHMENT_REF = "attachment:"  # url of a stored image_url part: "attachment:<sha256>"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATA_URI = re.compile(r"data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*?);base64,(?P<payload>.*)", re.S)


class SessionStoreError(UsageError):
    """The conversation database cannot be opened, read or written."""


class SessionDatabaseTooNew(SessionStoreError):
    """The database was written by a newer version of the assistant."""


class SessionNotFound(UsageError):
    """No session, or more than one, matches the given id or prefix."""


@dataclass(frozen=True)
class SessionSummary:
    id: str
    title: str
    created_at: float
    updated_at: float
    model: str
    message_count: int
    marks: dict[str, str]
    preview: str = ""  # start of the first user message, for listing untitled sessions


def _not_found(session_id: str) -> SessionNotFound:
    return SessionNotFound(f"no session {session_id!r}", hint="`assistant sessions list` shows the sessions")


def _require(conn: sqlite3.Connection, session_id: str) -> None:
    if not conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
        raise _not_found(session_id)


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)  # events.Usage / events.Timings are accepted as they are
    return json.dumps(value, ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def text_of(content: Any) -> str:
    """The text parts of a message's content, joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _image_url(part: Any) -> str | None:
    """The url of an image_url content part, else None."""
    if isinstance(part, dict) and part.get("type") == "image_url" and isinstance(part.get("image_url"), dict):
        url = part["image_url"].get("url")
        return url if isinstance(url, str) else None
    return None


def _with_url(part: dict, url: str) -> dict:
    return {**part, "image_url": {**part["image_url"], "url": url}}


class SessionStore:
    """Conversations in `db_path`, attachment bytes under `attachments_dir/<2 hex>/<sha256>`.

    Methods that take a `session_id` want the full id (see `resolve` for prefixes) and raise
    SessionNotFound for an unknown one.
    """

    def __init__(
        self,
        db_path: Path,
        attachments_dir: Path,
        *,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_path = Path(db_path)
        self.attachments_dir = Path(attachments_dir)
        self._clock = clock
        self._lock = threading.RLock()  # one connection, usable from worker threads
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self.attachments_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.db_path.exists():
                # Conversations are private: create the file owner-only (the -wal/-shm files
                # SQLite adds later copy its permissions).
                os.close(os.open(self.db_path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise SessionStoreError(
                f"cannot create the conversation store at {self.db_path.parent}: {exc}",
                hint="check that paths.state_dir points to a writable folder",
            ) from None
        try:
            # isolation_level=None: no implicit transactions; every write below says BEGIN itself.
            self._conn = sqlite3.connect(
                self.db_path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._wrap(exc) from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL does not fsync on every commit, but a commit is in the WAL file
            # (the OS has it) before it returns: a killed process loses nothing, and a power
            # loss can only drop the last few commits, never corrupt the database.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            migrate(self._conn, MIGRATIONS)
        except NewerSchema as exc:
            self._conn.close()
            raise SessionDatabaseTooNew(
                f"{self.db_path} was written by a newer version of the assistant "
                f"(schema version {exc.found}; this version knows up to {exc.known})",
                hint="upgrade the assistant, or move the file aside to start a new conversation history",
            ) from None
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._wrap(exc) from None

    # --- plumbing ---------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wrap(self, exc: sqlite3.Error) -> Exception:
        """User-facing error for what the environment caused; anything else stays a bug."""
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            hint = "another assistant process kept the conversation database busy; try again"
        elif name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
            hint = "free some disk space (or fix the disk), then try again"
        elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            hint = "check that paths.state_dir points to a writable folder"
        elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            hint = f"the file is damaged or not a conversation database; move {self.db_path} aside to start afresh"
        else:
            return exc
        return SessionStoreError(f"conversation database {self.db_path}: {exc}", hint=hint)

    @contextmanager
    def _tx(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction; IMMEDIATE (writes) takes the write lock up front so it waits on the
        busy timeout instead of failing half-way when another process writes."""
        with self._lock:
            try:
                self._conn.execute(f"BEGIN {mode}")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                wrapped = self._wrap(exc)
                if wrapped is exc:
                    raise
                raise wrapped from None

    def _read(self):
        return self._tx("DEFERRED")  # a consistent snapshot across the queries of one call

    @staticmethod
    def _touch(conn: sqlite3.Connection, session_id: str, now: float) -> None:
        if conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id)).rowcount == 0:
            raise _not_found(session_id)

    # --- sessions ---------------------------------------------------------------------

    def create_session(self, *, model: str = "", title: str = "") -> str:
        """New empty session; its id sorts by creation time (UTC), e.g. '20261123-181502-3fa9c1'."""
        now = self._clock()
        with self._tx() as conn:
            while True:
                sid = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(3)
                try:
                    conn.execute(
                        "INSERT INTO sessions (id, title, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                        (sid, title, model, now, now),
                    )
                    return sid
                except sqlite3.IntegrityError:
                    continue  # the same random suffix in the same second: draw again

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of the one session whose id starts with `id_or_prefix`; 'last' is the
        most recently updated session."""
        key = id_or_prefix.strip()
        with self._read() as conn:
            if key == "last":
                row = conn.execute("SELECT id FROM sessions ORDER BY updated_at DESC, id DESC LIMIT 1").fetchone()
                if row:
                    return row[0]
                raise SessionNotFound("there are no sessions yet", hint="a conversation is saved as soon as it starts")
            if not key:
                raise SessionNotFound("no session id given", hint="`assistant sessions list` shows the ids")
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (key,)).fetchone():
                return key
            escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = conn.execute(
                "SELECT id, title FROM sessions WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6", (escaped + "%",)
            ).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            raise SessionNotFound(
                f"no session id starts with {key!r}", hint="`assistant sessions list` shows the ids"
            )
        shown = ", ".join(r[0] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise SessionNotFound(
            f"{key!r} matches more than one session: {shown}",
            hint="type more characters of the id to pick one",
        )

    def get_session(self, session_id: str) -> SessionSummary:
        with self._read() as conn:
            found = self._summaries(conn, "WHERE s.id = ?", (session_id,))
        if not found:
            raise _not_found(session_id)
        return found[0]

    def list_sessions(self, limit: int = 50) -> list[SessionSummary]:
        """Newest updated first."""
        with self._read() as conn:
            return self._summaries(conn, "ORDER BY s.updated_at DESC, s.id DESC LIMIT ?", (limit,))

    @staticmethod
    def _summaries(conn: sqlite3.Connection, tail: str, params: tuple) -> list[SessionSummary]:
        rows = conn.execute(
            "SELECT s.id, s.title, s.created_at, s.updated_at, s.model,"
            " (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id),"
            " (SELECT content FROM messages m WHERE m.session_id = s.id AND m.role = 'user' ORDER BY m.id LIMIT 1)"
            f" FROM sessions s {tail}",
            params,
        ).fetchall()
        marks: dict[str, dict[str, str]] = {r[0]: {} for r in rows}
        if rows:
            qs = ",".join("?" * len(rows))
            for sid, key, value in conn.execute(
                f"SELECT session_id, key, value FROM marks WHERE session_id IN ({qs}) ORDER BY key", list(marks)
            ):
                marks[sid][key] = value
        out = []
        for sid, title, created, updated, model, count, first in rows:
            preview = " ".join(text_of(_loads(first)).split())[:80]
            out.append(SessionSummary(sid, title, created, updated, model, count, marks[sid], preview))
        return out

    def rename(self, session_id: str, title: str) -> None:
        now = self._clock()
        with self._tx() as conn:
            self._touch(conn, session_id, now)
            conn.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))

    def mark(self, session_id: str, key: str, value: str) -> None:
        """Set a free-form mark, e.g. handed_off=ticket-12 (replaces the key's previous value)."""
        if not key:
            raise ValueError("a mark needs a non-empty key")
        now = self._clock()
        with self._tx() as conn:
            self._touch(conn, session_id, now)
            conn.execute(
                "INSERT INTO marks (session_id, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value",
                (session_id, key, str(value)),
            )

    def unmark(self, session_id: str, key: str) -> None:
        now = self._clock()
        with self._tx() as conn:
            self._touch(conn, session_id, now)
            conn.execute("DELETE FROM marks WHERE session_id = ? AND key = ?", (session_id, key))

    def delete(self, session_id: str) -> None:
        """Remove the session with its messages, tool calls and marks, and the attachment files
        that no other session uses."""
        with self._tx() as conn:
            used = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT a.sha256 FROM message_attachments a JOIN messages m ON m.id = a.message_id"
                    " WHERE m.session_id = ?",
                    (session_id,),
                )
            ]
            if conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                raise _not_found(session_id)
            orphans = [
                sha
                for sha in used
                if not conn.execute("SELECT 1 FROM message_attachments WHERE sha256 = ?", (sha,)).fetchone()
            ]
            conn.executemany("DELETE FROM attachments WHERE sha256 = ?", [(s,) for s in orphans])
        self._remove_files(orphans)

    def _remove_files(self, hashes: Iterable[str]) -> None:
        """Unlink attachment files whose row is gone. Done under the write lock, re-checking the
        row: add_attachment also holds it while it (re)creates a file, so a concurrent add of the
        same bytes either keeps its row (the file stays) or re-creates the file after this."""
        hashes = list(hashes)
        if not hashes:
            return
        with self._tx() as conn:
            for sha in hashes:
                if conn.execute("SELECT 1 FROM attachments WHERE sha256 = ?", (sha,)).fetchone():
                    continue
                path = self.attachment_path(sha)
                path.unlink(missing_ok=True)
                try:
                    path.parent.rmdir()  # only succeeds when empty
                except OSError:
                    pass

    def prune_attachments(self, grace_s: float = 86400.0) -> int:
        """Remove attachments no message uses (left by a crash between add_attachment and
        add_message) and stale temp files, if older than `grace_s`; returns how many went."""
        cutoff = self._clock() - grace_s
        with self._tx() as conn:
            orphans = [
                r[0]
                for r in conn.execute(
                    "SELECT sha256 FROM attachments WHERE created_at < ?"
                    " AND sha256 NOT IN (SELECT sha256 FROM message_attachments)",
                    (cutoff,),
                )
            ]
            conn.executemany("DELETE FROM attachments WHERE sha256 = ?", [(s,) for s in orphans])
        self._remove_files(orphans)
        removed = len(orphans)
        with self._read() as conn:
            known = {r[0] for r in conn.execute("SELECT sha256 FROM attachments")}
        for path in self.attachments_dir.glob("??/*"):
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
            except OSError:
                continue
            if path.name.startswith(".tmp-"):  # a writer died before its rename
                path.unlink(missing_ok=True)
                removed += 1
            elif _SHA256.fullmatch(path.name) and path.name not in known:  # a deleter died before unlinking
                self._remove_files([path.name])
                removed += 1
        return removed

    # --- attachments --------------------------------------------------------------------

    def attachment_path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.attachments_dir / sha256[:2] / sha256

    def add_attachment(self, data: bytes, *, mime: str, filename: str = "") -> str:
        """Store bytes once (by sha256) and return the hex hash. The file appears atomically:
        it is written to a temp file, fsynced and renamed, so it is either absent or complete."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.attachment_path(sha)
        tmp: Path | None = None
        if not path.exists():
            tmp = durable_temp(path.parent, data)  # the slow part, outside the write lock
        try:
            with self._tx() as conn:
                conn.execute(
                    "INSERT INTO attachments (sha256, mime, size, filename, created_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (sha256) DO UPDATE SET"
                    " filename = CASE WHEN attachments.filename = '' THEN excluded.filename"
                    " ELSE attachments.filename END",
                    (sha, mime, len(data), filename, self._clock()),
                )
                if not path.exists():  # absent, or removed by a concurrent delete() since the check
                    if tmp is None:
                        tmp = durable_temp(path.parent, data)
                    os.replace(tmp, path)
                    tmp = None
                    _fsync_dir(path.parent)
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        return sha


    def attachment_info(self, sha256: str) -> dict | None:
        """{"sha256", "mime", "size", "filename", "created_at"}, or None if unknown."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT sha256, mime, size, filename, created_at FROM attachments WHERE sha256 = ?", (sha256,)
            ).fetchone()
        return dict(zip(("sha256", "mime", "size", "filename", "created_at"), row)) if row else None

    def _extract_inline_images(self, content: Any) -> tuple[Any, list[str]]:
        """Replace image_url parts holding base64 data URIs by "attachment:<sha>" references."""
        if not isinstance(content, list):
            return content, []
        out, hashes = [], []
        for part in content:
            url = _image_url(part)
            match = _DATA_URI.fullmatch(url) if url else None
            if match:
                try:
                    data = base64.b64decode(match["payload"], validate=True)
                except ValueError:
                    match = None  # not valid base64: keep the part as it came
            if not match:
                out.append(part)
                continue
            sha = self.add_attachment(data, mime=match["mime"] or "application/octet-stream")
            hashes.append(sha)
            out.append(_with_url(part, ATTACHMENT_REF + sha))
        return out, hashes

    # --- messages -----------------------------------------------------------------------

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str | list | None,
        *,
        tool_calls: list[dict] | None = None,
        tool_call_id: str | None = None,
        name: str | None = None,
        attachments: Iterable[str] = (),
        usage: dict | None = None,
        timings: dict | None = None,
    ) -> int:
        """Append one message (OpenAI chat format) and commit; returns its id. Images inlined as
        data URIs are stored once as attachments and referenced from the stored content."""
        if role not in ROLES:
            raise ValueError(f"unknown message role {role!r}; expected one of {sorted(ROLES)}")
        attachments = list(attachments)
        for sha in attachments:
            self.attachment_path(sha)  # validates the form
        # Stored before the message's own transaction: should the process die in between, an
        # unreferenced attachment is left behind (prune_attachments removes it), never a dangling reference.
        content, inline = self._extract_inline_images(content)
        now = self._clock()
        with self._tx() as conn:
            self._touch(conn, session_id, now)
            for sha in attachments:
                if not conn.execute("SELECT 1 FROM attachments WHERE sha256 = ?", (sha,)).fetchone():
                    raise ValueError(f"unknown attachment {sha}: store it with add_attachment() first")
            cur = conn.execute(
                "INSERT INTO messages (session_id, role, content, tool_calls, tool_call_id, name, usage, timings,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, role, _dumps(content), _dumps(tool_calls), tool_call_id, name,
                 _dumps(usage), _dumps(timings), now),  # fmt: skip
            )
            message_id = cur.lastrowid
            conn.executemany(
                "INSERT INTO message_attachments (message_id, position, sha256, inline) VALUES (?, ?, ?, ?)",
                [(message_id, i, sha, 0) for i, sha in enumerate(attachments)]
                + [(message_id, len(attachments) + i, sha, 1) for i, sha in enumerate(inline)],
            )
        return message_id

    def record_tool_call(
        self,
        session_id: str,
        *,
        message_id: int | None,
        call_id: str,
        name: str,
        arguments: str,
        result: str | None,
        error: str | None,
        risk: str,
        decision: str,
        duration_s: float | None,
    ) -> None:
        """Audit one tool call: what was asked, who decided ('auto', 'approved', 'denied',
        'denied-by-policy', ...), and what came back."""
        now = self._clock()
        with self._tx() as conn:
            self._touch(conn, session_id, now)
            conn.execute(
                "INSERT INTO tool_calls (session_id, message_id, call_id, name, arguments, result, error, risk,"
                " decision, duration_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, message_id, call_id, name, arguments, result, error, risk, decision, duration_s, now),
            )

    def _rows(self, session_id: str) -> tuple[list[tuple], dict[int, list[tuple[str, int]]]]:
        with self._read() as conn:
            _require(conn, session_id)
            rows = conn.execute(
                "SELECT id, role, content, tool_calls, tool_call_id, name, usage, timings, created_at"
                " FROM messages WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
            links: dict[int, list[tuple[str, int]]] = {}
            for mid, sha, inline in conn.execute(
                "SELECT a.message_id, a.sha256, a.inline FROM message_attachments a"
                " JOIN messages m ON m.id = a.message_id WHERE m.session_id = ? ORDER BY a.message_id, a.position",
                (session_id,),
            ):
                links.setdefault(mid, []).append((sha, inline))
        return rows, links

    def messages(self, session_id: str) -> list[dict]:
        """Full records: id, role, content (images as "attachment:<sha>" references), tool_calls,
        tool_call_id, name, attachments (hashes passed in), inline_attachments, usage, timings,
        created_at."""
        rows, links = self._rows(session_id)
        out = []
        for mid, role, content, calls, call_id, name, usage, timings, created in rows:
            linked = links.get(mid, [])
            out.append({
                "id": mid, "role": role, "content": _loads(content), "tool_calls": _loads(calls),
                "tool_call_id": call_id, "name": name,
                "attachments": [sha for sha, inline in linked if not inline],
                "inline_attachments": [sha for sha, inline in linked if inline],
                "usage": _loads(usage), "timings": _loads(timings), "created_at": created,
            })  # fmt: skip
        return out

    def history(self, session_id: str, *, inline_roles: tuple[str, ...] = ()) -> list[dict]:
        """The conversation as OpenAI chat messages, as they were sent: images stored from data
        URIs are re-inlined from the stored bytes. Image files passed in `attachments=` were kept
        beside the message, not sent (the dialogue routes those to plugins), so they are added as
        image_url parts only for roles in `inline_roles` (the chat API takes images only from
        the user)."""
        cache: dict[str, str | None] = {}

        def data_uri(sha: str) -> str | None:
            if sha not in cache:
                info = self.attachment_info(sha)
                try:
                    data = self.attachment_path(sha).read_bytes()
                except OSError:
                    cache[sha] = None
                else:
                    mime = info["mime"] if info else "application/octet-stream"
                    cache[sha] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            return cache[sha]

        def missing(sha: str) -> dict:
            # A lost file should not make the whole conversation impossible to continue.
            return {"type": "text", "text": f"[attachment {sha[:12]} is missing from the store]"}

        out = []
        for msg in self.messages(session_id):
            content = msg["content"]
            if isinstance(content, list):
                parts = []
                for part in content:
                    url = _image_url(part) or ""
                    if url.startswith(ATTACHMENT_REF):
                        sha = url[len(ATTACHMENT_REF) :]
                        uri = data_uri(sha)
                        parts.append(_with_url(part, uri) if uri else missing(sha))
                    else:
                        parts.append(part)
                content = parts
            if msg["role"] in inline_roles:
                images = []
                for sha in msg["attachments"]:
                    info = self.attachment_info(sha)
                    if info and info["mime"].startswith("image/"):
                        uri = data_uri(sha)
                        images.append({"type": "image_url", "image_url": {"url": uri}} if uri else missing(sha))
                if images:
                    if isinstance(content, str):
                        content = [{"type": "text", "text": content}] if content else []
                    content = list(content or []) + images
            entry: dict[str, Any] = {"role": msg["role"], "content": content}
            for key in ("tool_calls", "tool_call_id", "name"):
                if msg[key] is not None:
                    entry[key] = msg[key]
            out.append(entry)
        return out

    def tool_calls(self, session_id: str) -> list[dict]:
        """The audit log of the session's tool calls, oldest first."""
        with self._read() as conn:
            _require(conn, session_id)
            cur = conn.execute(
                "SELECT id, message_id, call_id, name, arguments, result, error, risk, decision, duration_s, created_at"
                " FROM tool_calls WHERE session_id = ? ORDER BY id",
                (session_id,),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def usage_totals(self, session_id: str) -> dict:
        """Summed token usage and time: prompt/completion/total tokens, every other numeric usage
        key, messages, model_calls (messages with usage), tool_calls, total_s."""
        rows, _ = self._rows(session_id)
        totals: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        model_calls, total_s = 0, 0.0
        for row in rows:
            usage, timings = _loads(row[6]), _loads(row[7])
            if isinstance(usage, dict):
                model_calls += 1
                for key, value in usage.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "total_tokens":
                        totals[key] = totals.get(key, 0) + value
                totals["total_tokens"] += usage.get("total_tokens") or (
                    (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
                )
            if isinstance(timings, dict) and isinstance(timings.get("total_s"), (int, float)):
                total_s += timings["total_s"]
        with self._read() as conn:
            calls = conn.execute("SELECT COUNT(*) FROM tool_calls WHERE session_id = ?", (session_id,)).fetchone()[0]
        return {
            **totals, "messages": len(rows), "model_calls": model_calls, "tool_calls": calls,
            "total_s": round(total_s, 6),
        }  # fmt: skip
