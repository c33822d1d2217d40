"""A session as a readable Markdown transcript, a complete versioned JSON dump, or a scenario
(assistant/testing/scenarios.py) that replays it with a scripted model."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from ..dialogue.attachments import kind_of_mime
from .store import ATTACHMENT_REF, SessionStore, text_of

FORMAT = "assistant-session"
VERSION = 1  # bump when the JSON layout changes incompatibly


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts is not None else "-"


def _fence(text: str, lang: str = "") -> str:
    """A fenced block that the text cannot close early, however many backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def _pretty_json(text: str | None) -> tuple[str, str]:
    """(text, fence language): arguments are pretty-printed when they parse (small models emit
    invalid JSON, which is shown as it came)."""
    if text is None:
        return "", ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False), "json"
    except ValueError:
        return text, ""


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def _attachment_line(store: SessionStore, sha: str) -> str:
    info = store.attachment_info(sha)
    if not info:
        return f"`{sha}` (unknown)"
    name = info["filename"] or "(unnamed)"
    return f"{name} — {info['mime']}, {_size(info['size'])}, sha256 `{sha}`"


def content_markdown(store: SessionStore, content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    blocks = []
    for part in content if isinstance(content, list) else [content]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append(part.get("text", ""))
        elif kind == "image_url":
            url = part["image_url"].get("url", "") if isinstance(part.get("image_url"), dict) else ""
            if url.startswith(ATTACHMENT_REF):
                blocks.append(f"*[image: {_attachment_line(store, url[len(ATTACHMENT_REF):])}]*")
            elif url.startswith("data:"):
                blocks.append(f"*[image: inline data, {len(url)} characters]*")
            else:
                blocks.append(f"*[image: <{url}>]*")
        else:
            blocks.append(_fence(json.dumps(part, indent=2, ensure_ascii=False), "json"))
    return "\n\n".join(blocks)


def _tool_call_md(call: dict, record: dict | None) -> str:
    fn = call.get("function", {})
    name = fn.get("name") or (record or {}).get("name", "?")
    call_id = call.get("id") or (record or {}).get("call_id", "")
    return _record_md(name, call_id, fn.get("arguments", (record or {}).get("arguments")), record, with_result=False)


def _record_md(name: str, call_id: str, arguments: str | None, record: dict | None, *, with_result: bool) -> str:
    facts = [f"id `{call_id}`"] if call_id else []
    if record:
        facts += [f"risk {record['risk']}", f"decision **{record['decision']}**"]
        if record["duration_s"] is not None:
            facts.append(f"{record['duration_s']:.2f} s")
    args, lang = _pretty_json(arguments)
    lines = [f"**Tool call** `{name}` ({', '.join(facts)})", "", "Arguments:", "", _fence(args, lang)]
    if record and with_result and record["result"] is not None:
        lines += ["", "Result:", "", _fence(record["result"])]
    if record and record["error"]:
        lines += ["", "Error:", "", _fence(record["error"])]
    return "\n".join(lines)


def export_markdown(store: SessionStore, session_id: str) -> str:
    summary = store.get_session(session_id)
    messages = store.messages(session_id)
    records = store.tool_calls(session_id)
    by_call_id = {r["call_id"]: r for r in records}
    shown_calls: set[str] = set()
    names = {c.get("id"): c.get("function", {}).get("name") for m in messages for c in (m["tool_calls"] or [])}

    out = [f"# {summary.title or summary.preview or 'Untitled session'}", ""]
    out.append(f"- Session: `{summary.id}`")
    out.append(f"- Model: {summary.model or '(not recorded)'}")
    out.append(f"- Created: {_when(summary.created_at)}")
    out.append(f"- Updated: {_when(summary.updated_at)}")
    if summary.marks:
        out.append("- Marks: " + ", ".join(f"`{k}={v}`" for k, v in summary.marks.items()))
    for msg in messages:
        role = msg["role"]
        if role == "tool":
            name = msg["name"] or names.get(msg["tool_call_id"]) or "tool"
            heading = f"Tool result: {name}"
        else:
            heading = role.capitalize()
        out += ["", f"## {heading} · {_when(msg['created_at'])}", ""]
        if role == "tool":
            out.append(_fence(content_markdown(store, msg["content"])))
            record = by_call_id.get(msg["tool_call_id"] or "")
            if record and record["error"]:
                out += ["", "Error:", "", _fence(record["error"])]
        else:
            text = content_markdown(store, msg["content"])
            if text:
                out.append(text)
        for call in msg["tool_calls"] or []:
            shown_calls.add(call.get("id", ""))
            out += ["", _tool_call_md(call, by_call_id.get(call.get("id", "")))]
        if msg["attachments"]:
            out += ["", "Attachments:", ""] + [f"- {_attachment_line(store, sha)}" for sha in msg["attachments"]]
        if msg["usage"]:
            u = msg["usage"]
            out += ["", f"*{u.get('prompt_tokens', 0)} prompt + {u.get('completion_tokens', 0)} completion tokens*"]
    # Calls recorded without a matching assistant message (e.g. the turn failed before it was saved).
    others = [r for r in records if r["call_id"] not in shown_calls]
    if others:
        out += ["", "## Other tool calls"]
        for r in others:
            call = _record_md(r["name"], r["call_id"], r["arguments"], r, with_result=True)
            out += ["", f"{_when(r['created_at'])}:", "", call]
    totals = store.usage_totals(session_id)
    out += ["", "## Usage", ""]
    out.append(
        f"{totals['messages']} messages, {totals['model_calls']} model calls, {totals['tool_calls']} tool calls; "
        f"{totals['prompt_tokens']} prompt + {totals['completion_tokens']} completion = "
        f"{totals['total_tokens']} tokens; {totals['total_s']:.1f} s generating"
    )
    return "\n".join(out) + "\n"


def export_json(store: SessionStore, session_id: str, *, embed_attachments: bool = False) -> dict:
    """Everything stored about the session. Attachment bytes are included (base64) only when
    `embed_attachments`; otherwise their hashes and metadata, which name the files in the store."""
    summary = store.get_session(session_id)
    messages = store.messages(session_id)
    attachments: dict[str, dict] = {}
    for msg in messages:
        for sha in msg["attachments"] + msg["inline_attachments"]:
            if sha in attachments:
                continue
            info = store.attachment_info(sha) or {"sha256": sha}
            if embed_attachments:
                try:
                    info["data_base64"] = base64.b64encode(store.attachment_path(sha).read_bytes()).decode("ascii")
                except OSError:
                    info["data_base64"] = None  # the file is missing from the store
            attachments[sha] = info
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": time.time(),
        "session": {
            "id": summary.id,
            "title": summary.title,
            "model": summary.model,
            "created_at": summary.created_at,
            "updated_at": summary.updated_at,
            "marks": summary.marks,
        },
        "messages": messages,
        "tool_calls": store.tool_calls(session_id),
        "attachments": attachments,
        "usage": store.usage_totals(session_id),
    }


# --- a session as a replayable scenario (assistant/testing/scenarios.py) ----------------------

SCENARIO_FORMAT = "assistant-scenario"
SCENARIO_VERSION = 1


def _user_text(store: SessionStore, msg: dict) -> str:
    """The words the user typed. The dialogue put the text of each file a plugin read (or a
    short text file) before them, as "[title]\n<text>" blocks separated by blank lines; those
    blocks are taken off again, since replaying the files makes them anew: exactly when the
    file's own text is in the block (text files, whatever the title), else up to the next blank
    line (a transcript is one paragraph; a plugin's many-paragraph output may leave some behind)."""
    content = text_of(msg["content"])
    for sha in msg["attachments"]:
        if not content.startswith("["):
            break
        title_end = content.find("\n")
        info = store.attachment_info(sha) or {}
        body = None
        if (info.get("mime") or "").startswith("text/") or info.get("mime") == "application/json":
            try:
                body = store.attachment_path(sha).read_bytes().decode("utf-8", errors="replace")
            except OSError:
                pass
        rest = content[title_end + 1:] if title_end > 0 and content[:title_end].endswith("]") else None
        exact = next((b for b in (body, (body or "").strip()) if b and rest is not None and rest.startswith(b + "\n\n")),
                     None)  # fmt: skip
        if exact is not None:
            content = rest[len(exact) + 2:]
        else:
            end = content.find("\n\n")
            content = content[end + 2:] if end >= 0 else ""
    return content


def _scenario_attachment(store: SessionStore, sha: str, n: int) -> dict:
    info = store.attachment_info(sha) or {}
    mime = info.get("mime") or "application/octet-stream"
    name = info.get("filename") or f"image-{n}{_image_ext(mime)}"
    try:
        data = base64.b64encode(store.attachment_path(sha).read_bytes()).decode("ascii")
    except OSError:
        data = ""
    return {"name": name, "base64": data}


def _image_ext(mime: str) -> str:
    return {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}.get(mime, ".bin")


def _arguments(raw: str | None) -> Any:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return raw or ""  # replayed as the same invalid text
    return value if isinstance(value, dict) else (raw or "")


def export_scenario(store: SessionStore, session_id: str, *, registry: Any = None) -> dict:
    """The session as a scenario whose scripted replies are the recorded assistant messages, so
    that replaying it makes the same tool calls with the same approval decisions.

    Each user message starts a turn, with its files embedded (base64). Each turn's approval
    levels and the person's answers are worked out from the recorded decisions. Plugin options
    are not exported: the replay runs each plugin with its defaults in a fresh folder, so it
    never touches the databases the conversation used. `registry` (the installed plugins) tells
    which plugins the replay needs: those of the tools called and those that read the files;
    without it, the replay loads every installed plugin."""
    summary = store.get_session(session_id)
    messages = store.messages(session_id)
    records = store.tool_calls(session_id)
    by_message: dict[int, list[dict]] = {}
    for r in records:
        by_message.setdefault(r["message_id"], []).append(r)
    turns: list[dict] = []
    images = 0
    for msg in messages:
        if msg["role"] == "user":
            attachments = []
            for sha in msg["attachments"] + msg["inline_attachments"]:
                images += sha in msg["inline_attachments"]
                attachments.append(_scenario_attachment(store, sha, len(attachments) + 1))
            turns.append({"user": _user_text(store, msg), "attachments": attachments, "replies": [], "_records": []})
        elif msg["role"] == "assistant" and turns:
            reply: dict[str, Any] = {"text": text_of(msg["content"])}
            if msg["tool_calls"]:
                reply["tool_calls"] = [
                    {"id": c.get("id"), "name": c.get("function", {}).get("name"),
                     "arguments": _arguments(c.get("function", {}).get("arguments"))}
                    for c in msg["tool_calls"]
                ]  # fmt: skip
                turns[-1]["_records"] += by_message.get(msg["id"], [])
            turns[-1]["replies"].append(reply if msg["tool_calls"] else reply["text"])
    plugins: set[str] = set()
    known = registry is not None and all(r["name"] in registry.tools for r in records)
    if registry is not None:
        consumers = registry.consumers()
        for msg in messages:
            for sha in msg["attachments"] if msg["role"] == "user" else ():
                kind = kind_of_mime((store.attachment_info(sha) or {}).get("mime", ""))
                if consumers.get(kind):
                    plugins.add(consumers[kind][0])
    answered = _answers(records)
    for turn in turns:
        recs = turn.pop("_records")
        if not turn["attachments"]:
            del turn["attachments"]
        approval, answers = _approval_of(recs, answered)
        if approval:
            turn["approval"] = approval
        if answers:
            turn["approvals"] = answers
        turn["expect"] = {"tool_calls": [
            {"name": r["name"], "arguments": _arguments(r["arguments"]), "decision": r["decision"]} for r in recs
        ]}  # fmt: skip
        if known:
            plugins.update(registry.tools[r["name"]].plugin.name for r in recs)
    scenario: dict[str, Any] = {
        "format": SCENARIO_FORMAT,
        "version": SCENARIO_VERSION,
        "name": summary.title or summary.preview or f"session {summary.id}",
        "description": f"Exported from session {summary.id} ({_when(summary.created_at)}).",
        "source_session": summary.id,
    }
    if known:
        scenario["plugins"] = sorted(plugins)
    if images:
        scenario["model_accepts_images"] = True
    scenario["turns"] = turns
    if summary.marks:
        scenario["expect"] = {"marks": {key: "*" for key in summary.marks}}
    return scenario


def _answers(records: list[dict]) -> dict[int, str]:
    """Record id -> what the person answered. An "approved" call was answered "always" when a
    later call of the same tool was approved without asking ("approved-always")."""
    out: dict[int, str] = {}
    for i, r in enumerate(records):
        if r["decision"] == "denied":
            out[r["id"]] = "deny"
        elif r["decision"] == "approved":
            later = [x["decision"] for x in records[i + 1:] if x["name"] == r["name"]]
            always = bool(later) and later[0] == "approved-always"
            out[r["id"]] = "always" if always else "approve"
    return out


def _approval_of(records: list[dict], answers: dict[int, str]) -> tuple[dict, list[str]]:
    """The [approval] levels and the person's answers that give these recorded decisions."""
    approval: dict[str, str] = {}
    asked: list[str] = []
    for r in records:
        level = "read_only" if r["risk"] == "read_only" else "side_effects"
        decision = r["decision"]
        if decision == "auto":
            approval[level] = "auto"
        elif decision == "denied-by-policy":
            approval.setdefault(level, "deny")
        elif decision == "approved-by-policy":
            approval[level], approval["non_interactive"] = "ask", "auto"
        elif decision in ("approved", "denied", "approved-always"):
            approval[level] = "ask"
            if r["id"] in answers:
                asked.append(answers[r["id"]])
        # "none": the policy was not reached (unknown tool, invalid arguments).
    return approval, asked
