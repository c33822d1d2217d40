"""Who the customer is: identity checks, their limits, and what the session remembers.

A customer proves who they are with an order number *and* the email address on that order.
The orders plugin checks the pair; on success it marks the session (`customer`, `order`), and
the other plugins trust those marks (a customer may list their own tickets once verified).

Failed checks are counted in SQLite, per session and per order, so the limits hold across
processes (every `assistant ask --session ...` is a new process) and cannot be reset by
rephrasing. Every failure gets the same answer, whichever part was wrong, so the assistant
cannot be used to find out which order numbers exist or whose they are.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .storage import connect, migrate, transaction

# Session marks (see SessionStore.mark): visible in `assistant sessions list`.
MARK_CUSTOMER = "customer"  # the verified email address
MARK_ORDER = "order"  # the order number it was verified with
MARK_TICKET = "ticket"  # the latest ticket created in the session
MARK_HANDED_OFF = "handed_off"  # the hand-off reference

_EMAIL = re.compile(r"[^@\s,;<>()\[\]]+@[^@\s,;<>()\[\]]+\.[A-Za-z]{2,}")
_ORDER = re.compile(r"[A-Z0-9][A-Z0-9-]{2,23}")

REFUSAL = (
    "No order matches that order number and email address together. Nothing about any order was "
    "revealed. Ask the customer to check both: the order number is in the order confirmation email "
    "(e.g. A1001), and the email must be the one used for the order."
)


def normalize_email(email: str) -> str:
    """Trimmed and lower-cased; ValueError (not an identity failure) if it is no email address."""
    value = (email or "").strip().strip("<>").strip()
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{email!r} is not an email address; ask the customer for the one used for the order")
    return value.casefold()


def is_email(email: str) -> bool:
    try:
        normalize_email(email)
    except ValueError:
        return False
    return True


def normalize_order_id(order_id: str) -> str:
    """'#a1001 ' -> 'A1001'; ValueError if it cannot be an order number."""
    value = re.sub(r"\s+", "", (order_id or "")).lstrip("#").upper()
    if not _ORDER.fullmatch(value):
        raise ValueError(
            f"{order_id!r} is not an order number; order numbers look like A1001 (letters, digits and dashes)"
        )
    return value


def email_digest(email: str) -> str:
    """A short hash for logs: which address was tried, without storing the address."""
    return hashlib.sha256(email.casefold().encode()).hexdigest()[:16]


def mask_email(email: str) -> str:
    """ana.lima@example.com -> a***@example.com (for messages that may be overheard)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


# --- the session's memory ------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    email: str
    order_id: str


def session_key(ctx: Any, fallback: str) -> str:
    """What attempts are counted against: the session, or (sessions off) the plugin instance."""
    return ctx.session_id or fallback


def new_fallback_key() -> str:
    return f"unsaved-{uuid.uuid4().hex[:12]}"


def session_marks(ctx: Any) -> dict[str, str]:
    if ctx is None or ctx.store is None or not ctx.session_id:
        return {}
    return dict(ctx.store.get_session(ctx.session_id).marks)


def verified_identity(ctx: Any) -> Identity | None:
    marks = session_marks(ctx)
    if marks.get(MARK_CUSTOMER):
        return Identity(marks[MARK_CUSTOMER], marks.get(MARK_ORDER, ""))
    return None


def remember_identity(ctx: Any, identity: Identity) -> bool:
    """Mark the session as belonging to this verified customer; False when sessions are off."""
    if ctx is None or ctx.store is None or not ctx.session_id:
        return False
    ctx.store.mark(ctx.session_id, MARK_CUSTOMER, identity.email)
    ctx.store.mark(ctx.session_id, MARK_ORDER, identity.order_id)
    return True


def mark_session(ctx: Any, key: str, value: str) -> bool:
    if ctx is None or ctx.store is None or not ctx.session_id:
        return False
    ctx.store.mark(ctx.session_id, key, value)
    return True


# --- attempt limits ------------------------------------------------------------------------

_ATTEMPTS_SCHEMA = [
    """
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        session TEXT NOT NULL,
        subject TEXT NOT NULL,      -- the order number (or ticket) the check was about
        email_sha TEXT NOT NULL,    -- a hash of the address tried, never the address
        ok INTEGER NOT NULL
    );
    CREATE INDEX attempts_session ON attempts (session, ok);
    CREATE INDEX attempts_subject ON attempts (subject, ok, at);
    """,
]


class AttemptLog:
    """Identity checks, for limits and for the audit trail."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        conn = connect(self.path)
        try:
            migrate(conn, _ATTEMPTS_SCHEMA)
        finally:
            conn.close()

    def failures(self, session: str) -> int:
        conn = connect(self.path)
        try:
            return conn.execute("SELECT count(*) FROM attempts WHERE session = ? AND ok = 0", (session,)).fetchone()[0]
        finally:
            conn.close()

    def subject_failures(self, subject: str, within_s: float) -> int:
        conn = connect(self.path)
        try:
            return conn.execute(
                "SELECT count(*) FROM attempts WHERE subject = ? AND ok = 0 AND at >= ?", (subject, time.time() - within_s)
            ).fetchone()[0]
        finally:
            conn.close()

    def record(self, session: str, subject: str, email: str, ok: bool) -> None:
        conn = connect(self.path)
        try:
            with transaction(conn):
                conn.execute(
                    "INSERT INTO attempts (at, session, subject, email_sha, ok) VALUES (?, ?, ?, ?, ?)",
                    (time.time(), session, subject, email_digest(email), int(ok)),
                )
        finally:
            conn.close()


def locked_out_message(limit: int) -> str:
    return (
        f"Identity checks are locked for this conversation after {limit} unsuccessful attempts; no more "
        "lookups will be made. Do not guess. Tell the customer you cannot verify them here and offer to hand "
        "the conversation to a human agent (the handoff_request tool), who can verify them another way."
    )
