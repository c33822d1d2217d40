"""The OpenAI Batch file format, in and out, so files made for the OpenAI Batch API or vLLM's
`run_batch` work unchanged.

In:  {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions",
      "body": {"model": "...", "messages": [...], "temperature": 0, "max_tokens": 64}}
Out: {"id": "batch_req_...", "custom_id": "q1", "response": {"status_code": 200, "request_id": "...",
      "body": {a chat.completion}}, "error": null, "assistant": {the batch record}}
     or, for an item that failed, "response": null and "error": {"code": ..., "message": ...}.

Each request is one assistant turn (plugins, tools and approval as for any batch item): the
system messages become the item's system prompt and the last message, a user message, its
question; text parts are joined, `image_url` parts (http(s) or data: URLs) become attachments.
The `assistant` field keeps the whole batch record, which is what resume reads back.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import tempfile
import time
from pathlib import Path
from typing import Any

from ..sessions.store import text_of

PATHS = ("/v1/chat/completions", "/chat/completions")
# Request fields that map onto settings of the turn; the rest of the body (model, stream, n, ...)
# describes the raw API call and does not apply to an assistant turn.
SAMPLING = {"temperature": "temperature", "max_tokens": "max_tokens", "max_completion_tokens": "max_tokens", "seed": "seed"}


def is_request(row: dict) -> bool:
    return "custom_id" in row and "body" in row


def parse_request(row: dict) -> dict:
    """The BatchItem fields of one request line; ValueError says what is wrong with it."""
    cid = row.get("custom_id")
    if not isinstance(cid, str) or not cid.strip():
        raise ValueError("'custom_id' must be a non-empty string")
    method = str(row.get("method", "POST")).upper()
    if method != "POST" or row.get("url", PATHS[0]) not in PATHS:
        raise ValueError(f"only POST {PATHS[0]} requests can be answered, not {method} {row.get('url')}")
    body = row.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise ValueError("'body' must be an object with a non-empty 'messages' list")
    if body.get("tools") and body.get("tool_choice") != "none":
        raise ValueError("the request sends its own 'tools': the assistant runs its own tools, so leave them out")
    messages = body["messages"]
    system = [text_of(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    turns = [m for m in messages if isinstance(m, dict) and m.get("role") not in ("system", "developer")]
    if len(turns) != 1 or turns[0].get("role") != "user":
        raise ValueError("each request must hold one user message (and optional system messages); earlier turns of a "
                         "conversation are not supported in a batch line")  # fmt: skip
    question = text_of(turns[0].get("content"))
    attachments = _images(turns[0].get("content"))
    if not question.strip() and not attachments:
        raise ValueError("the user message has no text")
    settings = {}
    for key, name in SAMPLING.items():
        if body.get(key) is not None:
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"body.{key} must be a number")
            settings[name] = value
    return {"id": cid.strip(), "question": question or "(see the attached image)", "system": "\n\n".join(system) or None,
            "attachments": tuple(attachments), "model_settings": settings}  # fmt: skip


def _images(content: Any) -> list[str]:
    """http(s) URLs as they are (downloaded when the item runs); data: URLs written to a temp file."""
    out = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict) or part.get("type") != "image_url":
            continue
        url = (part.get("image_url") or {}).get("url", "")
        if url.startswith(("http://", "https://")):
            out.append(url)
        elif url.startswith("data:"):
            out.append(_data_url_file(url))
        else:
            raise ValueError(f"image_url must be an http(s) or data: URL, not {url[:40]!r}")
    return out


def _data_url_file(url: str) -> str:
    head, _, data = url.partition(",")
    mime = head[5:].split(";")[0] or "application/octet-stream"
    try:
        raw = base64.b64decode(data, validate=True) if ";base64" in head else data.encode()
    except ValueError:
        raise ValueError("an image data: URL is not valid base64") from None
    folder = Path(tempfile.gettempdir()) / "assistant-batch-images"
    folder.mkdir(exist_ok=True)
    path = folder / (hashlib.sha256(raw).hexdigest()[:24] + (mimetypes.guess_extension(mime) or ".bin"))
    if not path.exists():
        path.write_bytes(raw)
    return str(path)


def response_line(record: dict) -> dict:
    """The OpenAI Batch output line of a batch record (the record itself rides along)."""
    rid = "batch_req_" + hashlib.sha256(f"{record['id']}:{record.get('finished_at', time.time())}".encode()).hexdigest()[:24]
    line: dict[str, Any] = {"id": rid, "custom_id": record["id"], "response": None, "error": None, "assistant": record}
    if record.get("error"):
        err = record["error"]
        line["error"] = {"code": err.get("type") or "error", "message": err.get("message") or ""}
        return line
    usage = record.get("usage") or {}
    line["response"] = {"status_code": 200, "request_id": rid.replace("batch_req_", "req_"), "body": {
        "id": "chatcmpl-" + rid[10:], "object": "chat.completion", "created": int(time.time()), "model": record.get("model") or "",
        "choices": [{"index": 0, "finish_reason": record.get("finish_reason") or "stop",
                     "message": {"role": "assistant", "content": record.get("answer") or ""}}],
        "usage": {"prompt_tokens": usage.get("prompt_tokens", 0), "completion_tokens": usage.get("completion_tokens", 0),
                  "total_tokens": usage.get("total_tokens", 0)},
    }}  # fmt: skip
    return line


def record_of(line: dict) -> dict | None:
    """The batch record inside an output line written by `response_line` (None: not one)."""
    inner = line.get("assistant")
    return inner if "custom_id" in line and isinstance(inner, dict) and isinstance(inner.get("id"), str) else None
