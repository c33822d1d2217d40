"""Schema of the conversation database, as ordered, append-only migrations.

`PRAGMA user_version` holds how many of MIGRATIONS have been applied. Never edit or reorder an
entry once released: a database in the field has already run it. Change the schema by appending.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: sessions, messages, content-addressed attachments, tool-call audit log, free-form marks.
    """
    CREATE TABLE sessions (
        id          TEXT PRIMARY KEY,
        title       TEXT NOT NULL DEFAULT '',
        model       TEXT NOT NULL DEFAULT '',
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );
    CREATE INDEX sessions_by_update ON sessions (updated_at DESC, id DESC);

    CREATE TABLE marks (
        session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    );

    -- One row per distinct content; the bytes live in files named by their sha256.
    CREATE TABLE attachments (
        sha256      TEXT PRIMARY KEY,
        mime        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        filename    TEXT NOT NULL DEFAULT '',
        created_at  REAL NOT NULL
    );

    -- AUTOINCREMENT: ids are never reused, so they also give the order of messages.
    CREATE TABLE messages (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        role          TEXT NOT NULL,
        content       TEXT,            -- JSON: string, list of parts, or null
        tool_calls    TEXT,            -- JSON list in OpenAI format, or null
        tool_call_id  TEXT,
        name          TEXT,
        usage         TEXT,            -- JSON object, or null
        timings       TEXT,            -- JSON object, or null
        created_at    REAL NOT NULL
    );
    CREATE INDEX messages_by_session ON messages (session_id, id);

    -- Which message uses which attachment. inline=1: an image the content refers to
    -- ("attachment:<sha256>" in an image_url part); inline=0: passed in `attachments=`.
    CREATE TABLE message_attachments (
        message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        sha256      TEXT NOT NULL REFERENCES attachments (sha256),
        inline      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (message_id, position)
    );
    CREATE INDEX message_attachments_by_sha ON message_attachments (sha256);

    CREATE TABLE tool_calls (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        message_id  INTEGER REFERENCES messages (id) ON DELETE SET NULL,
        call_id     TEXT NOT NULL,
        name        TEXT NOT NULL,
        arguments   TEXT NOT NULL,
        result      TEXT,
        error       TEXT,
        risk        TEXT NOT NULL,
        decision    TEXT NOT NULL,
        duration_s  REAL,
        created_at  REAL NOT NULL
    );
    CREATE INDEX tool_calls_by_session ON tool_calls (session_id, id);
    """,
]


def split_statements(script: str) -> list[str]:
    """Split a script into complete statements (quotes and trigger bodies may hold ';')."""
    statements, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:80]!r}")
    return statements


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, migrations: list[str] | None = None) -> tuple[int, int]:
    """Apply the pending migrations, each in its own transaction; returns (before, after).

    `conn` must be in autocommit mode (isolation_level=None). Raises `NewerSchema` when the
    database has more migrations applied than this code knows.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    before = schema_version(conn)
    while True:
        # BEGIN IMMEDIATE takes the write lock before the version is read, so two processes
        # opening a fresh database at once cannot both apply the same migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            if version > len(migrations):
                raise NewerSchema(version, len(migrations))
            if version == len(migrations):
                conn.execute("COMMIT")
                return before, version
            for statement in split_statements(migrations[version]):
                conn.execute(statement)
            # user_version is part of the database header, so it commits (or rolls back) with
            # the migration's own changes.
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


class NewerSchema(Exception):
    """Raised by migrate(); the store turns it into a user-facing error."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(f"schema version {found}, this version knows {known}")
        self.found = found
        self.known = known
