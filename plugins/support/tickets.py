"""The `tickets` plugin: support tickets in SQLite, with the customer's photos and voice messages
attached as evidence.

    [plugins.tickets]
    database = ""          # empty: tickets.sqlite in the plugin's data folder
    copy_evidence = true   # keep a copy of every evidence file beside the database

Creating and updating tickets are side effects: the `[approval]` policy decides whether they run
(by default the person is asked; with nobody to ask, they are not run). Evidence is every file
the customer attached in the conversation (a photo of a damaged item, a voice message with its
transcript), referenced by its sha256 in the session store and, with `copy_evidence`, copied
into `evidence/` so the ticket keeps it when the conversation is deleted.

Who may see a ticket: the conversation that created it; anyone giving its number *and* the
email on it (checked like an order, with the same limits); and a customer verified by the
orders plugin, who can list their own tickets.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.plugin_api import Plugin, Risk, ToolContext, ToolOutput, tool

from .conversation import CustomerFile, customer_files
from .identity import (
    MARK_TICKET,
    AttemptLog,
    locked_out_message,
    mark_session,
    new_fallback_key,
    normalize_email,
    session_key,
    verified_identity,
)
from .storage import connect, copy_file_atomically, migrate, resolve_path, transaction

PROMPTS = Path(__file__).parent / "prompts"

Category = Literal["order", "delivery", "damaged_item", "return", "refund", "warranty", "account", "other"]
Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["open", "pending_customer", "escalated", "solved", "closed"]
FIRST_TICKET = 1001

MIGRATIONS = [
    """
    CREATE TABLE tickets (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,   -- shown as T-<id>
        created_at         REAL NOT NULL,
        updated_at         REAL NOT NULL,
        status             TEXT NOT NULL CHECK (status IN ('open', 'pending_customer', 'escalated', 'solved', 'closed')),
        priority           TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
        category           TEXT NOT NULL,
        subject            TEXT NOT NULL,
        description        TEXT NOT NULL,
        email              TEXT COLLATE NOCASE,                 -- NULL: reply in the conversation
        order_id           TEXT,
        identity_verified  INTEGER NOT NULL,                    -- the email was verified with an order
        session_id         TEXT                                 -- the conversation it came from
    );
    CREATE INDEX tickets_email ON tickets (email, updated_at);
    CREATE INDEX tickets_session ON tickets (session_id);
    INSERT INTO sqlite_sequence (name, seq) VALUES ('tickets', 1000);
    CREATE TABLE ticket_events (
        id         INTEGER PRIMARY KEY,
        ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
        at         REAL NOT NULL,
        session_id TEXT,
        kind       TEXT NOT NULL,        -- created, note, status, priority, evidence
        detail     TEXT NOT NULL
    );
    CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);
    CREATE TABLE ticket_evidence (
        ticket_id    INTEGER NOT NULL REFERENCES tickets (id),
        sha256       TEXT NOT NULL,
        filename     TEXT NOT NULL,
        mime         TEXT NOT NULL,
        size         INTEGER NOT NULL,
        kind         TEXT NOT NULL,      -- image, audio, document, text
        note         TEXT NOT NULL,      -- the customer's message it came with (e.g. a transcript)
        stored_path  TEXT,               -- the copy under evidence/, when copy_evidence is on
        added_at     REAL NOT NULL,
        PRIMARY KEY (ticket_id, sha256)
    );
    """,
]

TICKET_REFUSAL = (
    "No ticket matches that ticket number and email address together. Nothing about any ticket was revealed. "
    "Ask the customer to check the ticket number (e.g. T-1001) and the email address they gave."
)


class TicketsSettings(BaseModel):
    """The [plugins.tickets] table of config.toml."""

    model_config = ConfigDict(extra="forbid")

    database: str = Field("", description="Path of the tickets SQLite database. Empty: tickets.sqlite in the data folder.")
    copy_evidence: bool = Field(
        True, description="Copy evidence files (photos, voice messages) next to the database, so tickets keep them."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Failed ticket-number-plus-email checks allowed per conversation."
    )


def ticket_ref(ticket_id: int) -> str:
    return f"T-{ticket_id}"


def parse_ticket_ref(ref: str) -> int:
    match = re.fullmatch(r"#?\s*(?:T\s*-?\s*)?(\d{1,12})", (ref or "").strip(), flags=re.I)
    if not match:
        raise ValueError(f"{ref!r} is not a ticket number; ticket numbers look like T-1001")
    return int(match.group(1))


def _text(value: str, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > limit:
        raise ValueError(f"{what} is too long ({len(value)} characters, at most {limit}); shorten it")
    return value


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


class Tickets(Plugin):
    name = "tickets"
    opt_in = True  # the customer-service pack: [plugins] enabled = ["orders", "faq", "tickets", "handoff"]
    description = "Create, update and look up support tickets, with the customer's files as evidence"
    Settings = TicketsSettings
    prompts_dir = PROMPTS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._fallback = new_fallback_key()

    async def setup(self) -> None:
        self.path = resolve_path(self.settings.database, self.data_dir / "tickets.sqlite")
        conn = connect(self.path)
        try:
            migrate(conn, MIGRATIONS)
        finally:
            conn.close()
        self.evidence_dir = self.path.parent / "evidence"
        self.attempts = AttemptLog(self.data_dir / "identity-checks.sqlite")

    # --- storage --------------------------------------------------------------------------

    def _connect(self):
        return connect(self.path)

    def _add_evidence(self, conn, ticket_id: int, files: list[CustomerFile], ctx: ToolContext) -> list[CustomerFile]:
        """Attach the files not yet on the ticket; returns those added."""
        have = {r[0] for r in conn.execute("SELECT sha256 FROM ticket_evidence WHERE ticket_id = ?", (ticket_id,))}
        added = []
        for f in files:
            if f.sha256 in have:
                continue
            stored = None
            if self.settings.copy_evidence:
                src = ctx.store.attachment_path(f.sha256)
                dst = self.evidence_dir / f.sha256[:2] / f.sha256
                if not dst.exists() and src.exists():
                    copy_file_atomically(src, dst)  # content-addressed: one copy, however many tickets
                stored = str(dst) if dst.exists() else None
            conn.execute(
                "INSERT INTO ticket_evidence (ticket_id, sha256, filename, mime, size, kind, note, stored_path, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ticket_id, f.sha256, f.filename, f.mime, f.size, f.kind, f.note, stored, time.time()),
            )
            added.append(f)
        if added:
            conn.execute(
                "INSERT INTO ticket_events (ticket_id, at, session_id, kind, detail) VALUES (?, ?, ?, 'evidence', ?)",
                (ticket_id, time.time(), ctx.session_id, ", ".join(_label(f) for f in added)),
            )
        return added

    def _ticket(self, conn, ticket_id: int) -> dict | None:
        row = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        return dict(row) if row else None

    def _may_see(self, ticket: dict | None, email: str, ctx: ToolContext) -> tuple[bool, dict | None]:
        """(allowed, refusal). The conversation that created the ticket may always see it;
        otherwise the ticket's email is needed (given now, or verified earlier in the session)."""
        if ticket and ctx.session_id and ticket["session_id"] == ctx.session_id:
            return True, None
        key = session_key(ctx, self._fallback)
        limit = self.settings.max_attempts
        failures = self.attempts.failures(key)
        if failures >= limit:
            return False, {"found": False, "locked": True, "message": locked_out_message(limit)}
        identity = verified_identity(ctx)
        claimed = normalize_email(email) if email else (identity.email if identity else "")
        if not claimed:
            raise ValueError("give the email address the ticket was opened with, to prove it is the customer's ticket")
        ok = bool(ticket and ticket["email"] and ticket["email"].casefold() == claimed)
        self.attempts.record(key, ticket_ref(ticket["id"]) if ticket else "unknown", claimed, ok)
        if ok:
            return True, None
        left = limit - failures - 1
        return False, {"found": False, "attempts_left": left,
                       "message": TICKET_REFUSAL + (f" {left} attempt(s) left." if left else " " + locked_out_message(limit))}

    def _summary(self, conn, ticket: dict, *, events: int = 10) -> dict:
        tid = ticket["id"]
        evidence = conn.execute(
            "SELECT filename, kind, mime, size FROM ticket_evidence WHERE ticket_id = ? ORDER BY added_at", (tid,)
        ).fetchall()
        history = conn.execute(
            "SELECT at, kind, detail FROM ticket_events WHERE ticket_id = ? ORDER BY id DESC LIMIT ?", (tid, events)
        ).fetchall()
        return {
            "ticket": ticket_ref(tid),
            "status": ticket["status"],
            "priority": ticket["priority"],
            "category": ticket["category"],
            "subject": ticket["subject"],
            "order_id": ticket["order_id"],
            "created": _when(ticket["created_at"]),
            "updated": _when(ticket["updated_at"]),
            "evidence": [_label_row(r) for r in evidence],
            "history": [f"{_when(r['at'])} {r['kind']}: {r['detail'][:300]}" for r in reversed(history)],
        }

    # --- tools ----------------------------------------------------------------------------

    @tool(risk=Risk.SIDE_EFFECTS)
    def create(
        self,
        subject: str,
        description: str,
        category: Category,
        ctx: ToolContext,
        priority: Priority = "normal",
        email: str = "",
        order_id: str = "",
    ) -> dict:
        """Open a support ticket. Files the customer sent in this conversation are attached.

        Args:
            subject: One line, e.g. "Teapot arrived broken".
            description: What happened and what the customer wants.
            category: The kind of problem.
            priority: urgent only for safety issues or double charges.
            email: Where to reply; empty: the verified customer's email.
            order_id: The order concerned, e.g. "A1007".
        """
        subject = _text(subject, "subject", 200)
        description = _text(description, "description", 5000)
        identity = verified_identity(ctx)
        contact = normalize_email(email) if email else (identity.email if identity else None)
        verified = bool(identity and contact == identity.email)
        order = re.sub(r"\s+", "", order_id).lstrip("#").upper() or None
        files = customer_files(ctx)
        now = time.time()
        conn = self._connect()
        try:
            with transaction(conn):
                if ctx.session_id:  # the same ticket asked for twice (a retry): one ticket
                    same = conn.execute(
                        "SELECT * FROM tickets WHERE session_id = ? AND subject = ? AND description = ?"
                        " AND status NOT IN ('solved', 'closed')",
                        (ctx.session_id, subject, description),
                    ).fetchone()
                    if same:
                        self._add_evidence(conn, same["id"], files, ctx)
                        return {**self._summary(conn, dict(same)), "message": f"Ticket {ticket_ref(same['id'])} already exists."}
                tid = conn.execute(
                    "INSERT INTO tickets (created_at, updated_at, status, priority, category, subject, description, email,"
                    " order_id, identity_verified, session_id) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (now, now, priority, category, subject, description, contact, order, int(verified), ctx.session_id),
                ).lastrowid
                conn.execute(
                    "INSERT INTO ticket_events (ticket_id, at, session_id, kind, detail) VALUES (?, ?, ?, 'created', ?)",
                    (tid, now, ctx.session_id, f"{category}, {priority}: {subject}"),
                )
                added = self._add_evidence(conn, tid, files, ctx)
        finally:
            conn.close()
        ref = ticket_ref(tid)
        mark_session(ctx, MARK_TICKET, ref)
        reply_to = f"by email to {contact}" if contact else "in this conversation"
        result = {
            "ticket": ref,
            "status": "open",
            "priority": priority,
            "category": category,
            "evidence": [_label(f) for f in added],
            "message": f"Ticket {ref} is open. The team will reply {reply_to}. Give the customer the number {ref}.",
        }
        return ToolOutput(json.dumps(result, ensure_ascii=False), say=f"Your ticket number is {ref}.")

    @tool(risk=Risk.SIDE_EFFECTS)
    def update(
        self,
        ticket_id: str,
        ctx: ToolContext,
        note: str = "",
        status: Literal["", "open", "pending_customer", "solved", "closed"] = "",
        priority: Literal["", "low", "normal", "high", "urgent"] = "",
        email: str = "",
    ) -> dict:
        """Add a note to a ticket or change its status or priority; attaches new files from the customer.

        Args:
            ticket_id: The ticket number, e.g. "T-1001".
            note: New information, in a sentence or two.
            status: New status; empty: unchanged.
            priority: New priority; empty: unchanged.
            email: The ticket's email; not needed for tickets opened in this conversation.
        """
        tid = parse_ticket_ref(ticket_id)
        note = note.strip()
        if len(note) > 5000:
            raise ValueError(f"the note is too long ({len(note)} characters, at most 5000)")
        files = customer_files(ctx)
        conn = self._connect()
        try:
            ticket = self._ticket(conn, tid)
            allowed, refusal = self._may_see(ticket, email, ctx)
            if not allowed:
                return refusal
            now, changes = time.time(), []
            with transaction(conn):
                event = "INSERT INTO ticket_events (ticket_id, at, session_id, kind, detail) VALUES (?, ?, ?, ?, ?)"
                if note:
                    conn.execute(event, (tid, now, ctx.session_id, "note", note))
                    changes.append("note added")
                for field, value in (("status", status), ("priority", priority)):
                    if value and value != ticket[field]:
                        conn.execute(f"UPDATE tickets SET {field} = ? WHERE id = ?", (value, tid))
                        conn.execute(event, (tid, now, ctx.session_id, field, f"{ticket[field]} -> {value}"))
                        changes.append(f"{field} {ticket[field]} -> {value}")
                added = self._add_evidence(conn, tid, files, ctx)
                if added:
                    changes.append("evidence added: " + ", ".join(_label(f) for f in added))
                if not changes:
                    raise ValueError("nothing to update: give a note, a new status or priority, or attach a file first")
                conn.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, tid))
            return {"ticket": ticket_ref(tid), "changes": changes, "status": status or ticket["status"]}
        finally:
            conn.close()

    @tool
    def get(self, ctx: ToolContext, ticket_id: str = "", email: str = "") -> dict:
        """A ticket's status, history and evidence; without a number, the verified customer's open tickets.

        Args:
            ticket_id: The ticket number, e.g. "T-1001"; empty to list the customer's tickets.
            email: The ticket's email; not needed for tickets opened in this conversation.
        """
        if not ticket_id.strip():
            return self._list(ctx)
        tid = parse_ticket_ref(ticket_id)
        conn = self._connect()
        try:
            ticket = self._ticket(conn, tid)
            allowed, refusal = self._may_see(ticket, email, ctx)
            if not allowed:
                return refusal
            return {"found": True, **self._summary(conn, ticket)}
        finally:
            conn.close()

    def _list(self, ctx: ToolContext) -> dict:
        """The verified customer's open tickets, newest first (verified by orders_lookup)."""
        identity = verified_identity(ctx)
        if identity is None:
            return {"verified": False, "message": (
                "The customer is not verified in this conversation. Verify them first with orders_lookup "
                "(order number and email), or ask for the ticket number and the email on it.")}
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT * FROM tickets WHERE email = ? AND status NOT IN ('solved', 'closed')"
                " ORDER BY updated_at DESC LIMIT 20",
                (identity.email,),
            ).fetchall()
        finally:
            conn.close()
        return {
            "verified": True,
            "tickets": [
                {"ticket": ticket_ref(r["id"]), "subject": r["subject"], "status": r["status"], "updated": _when(r["updated_at"])}
                for r in rows
            ],
        }


def _label(f: CustomerFile) -> str:
    return f"{f.filename or f.kind} ({f.mime}, {f.size} bytes)"


def _label_row(r) -> str:
    return f"{r['filename'] or r['kind']} ({r['mime']}, {r['size']} bytes)"
