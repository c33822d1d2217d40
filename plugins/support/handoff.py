"""The `handoff` plugin: hand the conversation to a human, with everything they need in one packet.

    [plugins.handoff]
    queue = "both"            # "folder": one JSON file per hand-off; "sqlite": a table; "both"
    queue_dir = ""            # empty: queue/ in the plugin's data folder
    response_time = "one business day"

A packet holds the summary and reason, the customer (verified or not), the order (with the last
verified lookup), the tickets opened, the evidence (results of the support tools in this
conversation), the customer's files (photos, voice messages, with transcripts) and the transcript.
In the folder it is `<queue_dir>/<reference>.json`, written atomically after its files were
copied to `<reference>.files/`: a consumer that sees the JSON sees a complete packet. In SQLite
it is a row of `handoffs` with a `state` (queued, claimed, resolved) the team's tooling updates
(see `HandoffQueue`, and `assistant support queue` for a terminal). The session is marked
`handed_off=<reference>` (`assistant sessions list` shows it) and the tool returns the message
to give the customer.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.plugin_api import Plugin, Risk, ToolContext, ToolOutput, tool

from .conversation import customer_files, tool_results, transcript
from .identity import MARK_HANDED_OFF, is_email, mark_session, mask_email, session_marks, verified_identity
from .storage import connect, copy_file_atomically, migrate, resolve_path, transaction, write_file_atomically

PROMPTS = Path(__file__).parent / "prompts"
PACKET_FORMAT = "assistant-handoff"
PACKET_VERSION = 1
STATES = ("queued", "claimed", "resolved")
EVIDENCE_TOOLS = ("orders_", "tickets_", "faq_")
SUMMARY_CHARS = 4000

Reason = Literal[
    "customer_asked", "not_in_knowledge_base", "identity_not_verified", "complaint", "refund_or_compensation",
    "safety", "other",
]

MIGRATIONS = [
    """
    CREATE TABLE handoffs (
        reference   TEXT PRIMARY KEY,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL,
        session_id  TEXT,
        state       TEXT NOT NULL CHECK (state IN ('queued', 'claimed', 'resolved')),
        urgency     TEXT NOT NULL,
        reason      TEXT NOT NULL,
        email       TEXT,
        order_id    TEXT,
        summary     TEXT NOT NULL,
        assignee    TEXT,
        packet      TEXT NOT NULL               -- the whole packet as JSON
    );
    CREATE INDEX handoffs_state ON handoffs (state, urgency, created_at);
    CREATE INDEX handoffs_session ON handoffs (session_id);
    """,
]


class HandoffSettings(BaseModel):
    """The [plugins.handoff] table of config.toml."""

    model_config = ConfigDict(extra="forbid")

    queue: Literal["folder", "sqlite", "both"] = Field(
        "both", description="Where packets go: JSON files in queue_dir, the handoffs table of `database`, or both."
    )
    queue_dir: str = Field("", description="Folder of JSON packets. Empty: queue/ in the data folder.")
    database: str = Field("", description="SQLite queue. Empty: handoffs.sqlite in the data folder.")
    copy_attachments: bool = Field(
        True, description="Copy the customer's files into the queue folder next to the packet."
    )
    transcript_messages: int = Field(0, ge=0, description="Messages of the transcript in the packet; 0: all.")
    team: str = Field("our support team", description="How the customer is told who takes over.")
    response_time: str = Field("one business day", description="When the customer can expect an answer.")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80]


class HandoffQueue:
    """The SQLite side of the queue, for the plugin and for a support team's own tooling:

        q = HandoffQueue(Path(".../handoffs.sqlite"))
        for row in q.list("queued"): ...
        q.set_state("H-20261123-101500-3fa9", "claimed", assignee="maria")
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        conn = connect(self.path)
        try:
            migrate(conn, MIGRATIONS)
        finally:
            conn.close()

    def add(self, packet: dict) -> None:
        conn = connect(self.path)
        try:
            with transaction(conn):
                conn.execute(
                    "INSERT INTO handoffs (reference, created_at, updated_at, session_id, state, urgency, reason, email,"
                    " order_id, summary, packet) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                    (packet["reference"], packet["created_at"], packet["created_at"], packet["session_id"],
                     packet["urgency"], packet["reason"], packet["customer"]["email"], packet["order"]["id"],
                     packet["summary"], json.dumps(packet, ensure_ascii=False)),
                )  # fmt: skip
        finally:
            conn.close()

    def get(self, reference: str) -> dict | None:
        conn = connect(self.path)
        try:
            row = conn.execute("SELECT * FROM handoffs WHERE reference = ?", (reference,)).fetchone()
        finally:
            conn.close()
        return dict(row) if row else None

    def list(self, state: str | None = None) -> list[dict]:
        """Packets (without the packet JSON), urgent first, then oldest first."""
        conn = connect(self.path)
        try:
            sql = "SELECT reference, created_at, state, urgency, reason, email, order_id, summary, assignee FROM handoffs"
            args: tuple = ()
            if state:
                sql, args = sql + " WHERE state = ?", (state,)
            sql += " ORDER BY urgency = 'urgent' DESC, created_at"
            return [dict(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()

    def set_state(self, reference: str, state: str, *, assignee: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
        conn = connect(self.path)
        try:
            with transaction(conn):
                done = conn.execute(
                    "UPDATE handoffs SET state = ?, assignee = coalesce(?, assignee), updated_at = ? WHERE reference = ?",
                    (state, assignee, time.time(), reference),
                ).rowcount
        finally:
            conn.close()
        if not done:
            raise KeyError(f"no hand-off {reference!r}")


class Handoff(Plugin):
    name = "handoff"
    opt_in = True  # the customer-service pack: [plugins] enabled = ["orders", "faq", "tickets", "handoff"]
    description = "Hand the conversation to a human agent: a complete packet in the support queue"
    Settings = HandoffSettings
    prompts_dir = PROMPTS

    async def setup(self) -> None:
        s = self.settings
        self.queue_dir = resolve_path(s.queue_dir, self.data_dir / "queue")
        self.queue = HandoffQueue(resolve_path(s.database, self.data_dir / "handoffs.sqlite")) if s.queue != "folder" else None

    @tool(risk=Risk.SIDE_EFFECTS)
    def request(
        self,
        summary: str,
        reason: Reason,
        ctx: ToolContext,
        urgency: Literal["normal", "urgent"] = "normal",
        email: str = "",
        order_id: str = "",
    ) -> dict:
        """Hand the conversation to a human agent (with the transcript, files and findings) when the
        customer asks for a person or you cannot help. Then give the customer the returned message.

        Args:
            summary: Two or three sentences for the agent: the problem and what the customer wants.
            reason: Why a person is needed.
            urgency: urgent only for safety issues or double charges.
            email: The customer's email address, if given.
            order_id: The order concerned, e.g. "A1007".
        """
        # A hand-off is the way out when everything else failed: it never fails on its arguments.
        # The agent has the transcript; a missing or rambling summary is flagged, not refused.
        summary = " ".join((summary or "").split())
        if not summary:
            summary = "(no summary given: read the transcript)"
        elif len(summary) > SUMMARY_CHARS:
            summary = summary[: SUMMARY_CHARS - 1] + "…"
        now = time.time()
        reference = f"H-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{secrets.token_hex(2)}"
        packet = self._packet(reference, now, summary, reason, urgency, email, order_id, ctx)
        self._enqueue(packet, ctx)
        mark_session(ctx, MARK_HANDED_OFF, reference)
        result = {
            "reference": reference,
            "queued": True,
            "needs_contact": packet["customer"]["email"] is None,
            "message_for_customer": packet["customer_message"],
        }
        # The customer must get the reference even from a model that paraphrases it away.
        return ToolOutput(json.dumps(result, ensure_ascii=False), say=packet["customer_message"])

    def status(self, reference: str, session_id: str | None) -> str | None:
        """The queue state of a hand-off of this conversation (None if unknown or another's)."""
        if self.queue is not None:
            row = self.queue.get(reference)
            return row["state"] if row and row["session_id"] == session_id else None
        path = self.queue_dir / f"{reference}.json"
        if path.exists() and json.loads(path.read_text(encoding="utf-8")).get("session_id") == session_id:
            return "queued"
        return None

    # --- the packet -----------------------------------------------------------------------

    def _packet(self, reference: str, now: float, summary: str, reason: str, urgency: str, email: str,
                order_id: str, ctx: ToolContext) -> dict:
        identity = verified_identity(ctx)
        evidence = tool_results(ctx, EVIDENCE_TOOLS)
        given = (email or "").strip()
        contact = given.casefold() if is_email(given) else (identity.email if identity else None)
        order = re.sub(r"\s+", "", order_id or "").lstrip("#").upper() or (identity.order_id if identity else None)
        lookup = _last_verified_lookup(evidence, order)
        customer: dict[str, Any] = {
            "email": contact,
            "verified": bool(identity and contact == identity.email),
            "name": (lookup or {}).get("customer_first_name"),
        }
        if given and not is_email(given):
            customer["email_as_given"] = given  # kept for the agent, flagged: not usable to reply
        files = customer_files(ctx)
        previous = session_marks(ctx).get(MARK_HANDED_OFF)
        message = (
            f"I've passed your conversation to {self.settings.team}; your reference is {reference}. "
            + (f"A person will get back to you by email at {mask_email(contact)} within {self.settings.response_time}. "
               if contact else
               f"A person will get back to you within {self.settings.response_time}: please tell me an email address "
               "where they can reach you. ")
            + f"They can see everything you've told me{' and the files you sent' if files else ''}, "
            "so you won't need to repeat it."
        )
        return {
            "format": PACKET_FORMAT,
            "version": PACKET_VERSION,
            "reference": reference,
            "created_at": now,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "session_id": ctx.session_id,
            "follows": previous,
            "reason": reason,
            "urgency": urgency,
            "summary": summary,
            "customer": customer,
            "order": {"id": order, "verified": bool(identity and order == identity.order_id), "last_lookup": lookup},
            "tickets": sorted({e["result"]["ticket"] for e in evidence
                               if e["tool"] == "tickets_create" and isinstance(e["result"], dict) and e["result"].get("ticket")}),
            "evidence": evidence,
            "attachments": [f.as_dict() for f in files],
            "transcript": transcript(ctx, limit=self.settings.transcript_messages),
            "customer_message": message,
        }

    def _enqueue(self, packet: dict, ctx: ToolContext) -> None:
        s = self.settings
        if s.queue in ("folder", "both"):
            ref = packet["reference"]
            if s.copy_attachments and packet["attachments"]:
                folder = self.queue_dir / f"{ref}.files"
                for item in packet["attachments"]:
                    src = ctx.store.attachment_path(item["sha256"])
                    name = _safe_name(item["filename"]) or f"{item['kind']}{_extension(item['mime'])}"
                    dst = folder / f"{item['sha256'][:12]}-{name}"
                    if src.exists():
                        copy_file_atomically(src, dst)
                        item["file"] = str(dst.relative_to(self.queue_dir))
            # The JSON appears last and atomically: whoever sees it sees a complete packet.
            data = json.dumps(packet, ensure_ascii=False, indent=2).encode("utf-8")
            write_file_atomically(self.queue_dir / f"{ref}.json", data)
        if self.queue is not None:
            self.queue.add(packet)


def _last_verified_lookup(evidence: list[dict], order: str | None) -> dict | None:
    for e in reversed(evidence):
        r = e["result"]
        if e["tool"] == "orders_lookup" and isinstance(r, dict) and r.get("verified") and (not order or r.get("order_id") == order):
            return r
    return None


def _extension(mime: str) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif", "audio/wav": ".wav",
            "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/mp4": ".m4a", "audio/webm": ".webm",
            "audio/flac": ".flac"}.get(mime, "")
