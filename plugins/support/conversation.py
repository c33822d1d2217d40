"""What the session store knows about the current conversation, in the shape support needs:
the files the customer sent (photos, voice messages, documents), the transcript, and the
results of earlier support tool calls.

Everything comes from `ctx.store` (the SessionStore) and `ctx.session_id`; with sessions off
there is no conversation to read and these return empty lists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from assistant.dialogue.attachments import kind_of_mime as kind_of

NOTE_CHARS = 2000  # of the message that carried a file (it holds e.g. a voice message's transcript)


@dataclass(frozen=True)
class CustomerFile:
    """One file the customer attached, as stored (content-addressed) in the session store."""

    sha256: str
    filename: str
    mime: str
    size: int
    kind: str  # image, audio, document, text
    message_id: int
    note: str  # the text of the message it came with: a transcript, a document's text, the customer's words

    def as_dict(self) -> dict:
        return asdict(self)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def has_conversation(ctx: Any) -> bool:
    return ctx is not None and ctx.store is not None and bool(ctx.session_id)


def customer_files(ctx: Any) -> list[CustomerFile]:
    """Files on the customer's messages, oldest first, each once. Images the model looked at
    are stored inline (without a filename); files a plugin read are stored beside the message."""
    if not has_conversation(ctx):
        return []
    store, out, seen = ctx.store, [], set()
    for msg in store.messages(ctx.session_id):
        if msg["role"] != "user":
            continue
        note = _text(msg["content"])[:NOTE_CHARS]
        for sha in msg["attachments"] + msg["inline_attachments"]:
            if sha in seen:
                continue
            seen.add(sha)
            info = store.attachment_info(sha) or {}
            mime = info.get("mime") or "application/octet-stream"
            out.append(CustomerFile(sha, info.get("filename") or "", mime, int(info.get("size") or 0), kind_of(mime),
                                    msg["id"], note))
    return out


def transcript(ctx: Any, *, limit: int = 0) -> list[dict]:
    """The conversation as {role, text, at, tool_calls?, tool?}; images and files as
    "[image]"/"[file]" markers (their bytes are listed separately). `limit`: last N messages."""
    if not has_conversation(ctx):
        return []
    out = []
    for msg in ctx.store.messages(ctx.session_id):
        entry: dict[str, Any] = {"role": msg["role"], "text": _text(msg["content"]), "at": msg["created_at"]}
        files = len(msg["attachments"]) + len(msg["inline_attachments"])
        if files:
            entry["files"] = files
        if msg["tool_calls"]:
            entry["tool_calls"] = [
                {"name": c.get("function", {}).get("name"), "arguments": c.get("function", {}).get("arguments")}
                for c in msg["tool_calls"]
            ]
        if msg["role"] == "tool" and msg["name"]:
            entry["tool"] = msg["name"]
        out.append(entry)
    return out[-limit:] if limit > 0 else out


def tool_results(ctx: Any, prefixes: tuple[str, ...]) -> list[dict]:
    """Earlier tool calls of this session whose names start with one of `prefixes`: name,
    arguments, decision, and the result as the model saw it (parsed when it is JSON)."""
    if not has_conversation(ctx):
        return []
    out = []
    for rec in ctx.store.tool_calls(ctx.session_id):
        if not rec["name"].startswith(prefixes):
            continue
        try:
            arguments = json.loads(rec["arguments"] or "{}")
        except ValueError:
            arguments = rec["arguments"]
        result: Any = rec["result"]
        if isinstance(result, str):
            try:
                result = json.loads(result)
            except ValueError:
                pass
        out.append({"tool": rec["name"], "arguments": arguments, "decision": rec["decision"], "result": result,
                    "error": rec["error"], "at": rec["created_at"]})
    return out
