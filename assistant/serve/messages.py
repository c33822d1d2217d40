"""An OpenAI chat-completion request -> the turn the assistant runs.

OpenAI clients send the whole conversation every time. The last message is the new turn (it
must be the user's); what came before is the context only when no session is named: with a
session, the saved history is the context and the resent messages are ignored. System (and
developer) messages replace the system prompt, like `ask --system`.

Content parts: text; images as data: URLs (a URL is never fetched: the server may sit where
it should not reach the network on a client's behalf); `file` and `input_audio` parts become
attachments that the plugins read, as `ask --attach` does. Everything is checked here, before
the response starts, so a bad request is a 400, never a broken stream.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from ..dialogue.attachments import _MIME_EXT, Attachment, sniff
from ..errors import AttachmentError
from ..model.images import image_bytes_to_data_uri
from .protocol import RequestInvalid

_DATA_URL = re.compile(r"data:(?P<mime>[^;,]*)(?:;[^;,]*)*?;base64,(?P<payload>.*)", re.S)
SESSION_HINT = "continue a session instead: send the id from the X-Assistant-Session response header back in that header (or as session_id)"


@dataclass
class ChatRequest:
    text: str  # the new user message's text
    attachments: list[Attachment] = field(default_factory=list)  # its images and files
    earlier: list[dict] = field(default_factory=list)  # context to seed a new session with (no session given)
    system: str | None = None  # replaces the system prompt
    session_id: str | None = None
    stream: bool = False
    include_usage: bool = False
    model_settings: dict = field(default_factory=dict)  # [model] overrides: temperature, max_tokens, seed


def parse_chat_request(body: Any, *, header_session: str | None, max_image_side: int) -> ChatRequest:
    if not isinstance(body, dict):
        raise RequestInvalid("the request body must be a JSON object")
    _refuse_unsupported(body)
    session = _session_id(body.get("session_id"), header_session)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestInvalid("messages must be a non-empty list", param="messages")
    system, turns = [], []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestInvalid(f"messages[{i}] must be an object with a role", param=f"messages[{i}]")
        if m["role"] in ("system", "developer"):
            system.append(_only_text(m.get("content"), f"messages[{i}]"))
        elif m["role"] in ("user", "assistant"):
            turns.append((i, m))
        else:
            raise RequestInvalid(
                f"messages[{i}] has role {m['role']!r}: the assistant runs its own tools, so it takes no tool results",
                param=f"messages[{i}].role", hint="send system, user and assistant messages only",
            )  # fmt: skip
    if not turns or turns[-1][1]["role"] != "user" or turns[-1][0] != len(messages) - 1:
        raise RequestInvalid("the last message must be the user's: it is the turn the assistant answers", param="messages")
    last_i, last = turns.pop()
    text, attachments = _user_turn(last.get("content"), f"messages[{last_i}]", max_image_side)
    earlier = [] if session else [_context_message(m, f"messages[{i}]", max_image_side) for i, m in turns]
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestInvalid("stream must be true or false", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestInvalid("stream_options must be an object", param="stream_options")
    return ChatRequest(
        text, attachments, earlier, "\n\n".join(system) if system else None, session, stream,
        bool(options.get("include_usage")), _model_settings(body),
    )  # fmt: skip


def _refuse_unsupported(body: dict) -> None:
    tools = body.get("tools") or body.get("functions")
    if tools and body.get("tool_choice", body.get("function_call")) != "none":
        raise RequestInvalid(
            "this server is the assistant: it runs its own tools (plugins, MCP servers) on the server and "
            "does not hand tool calls to the client",
            param="tools", code="client_tools_not_supported",
            hint='leave out tools (or send tool_choice "none"); the assistant\'s tool calls are reported in the response\'s "assistant" field',
        )  # fmt: skip
    n = body.get("n", 1)
    if n != 1:
        raise RequestInvalid(f"n must be 1 (one answer per turn), got {n!r}", param="n")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestInvalid("model must be a string", param="model")


def _session_id(from_body: Any, from_header: str | None) -> str | None:
    if from_body is not None and not isinstance(from_body, str):
        raise RequestInvalid("session_id must be a string", param="session_id")
    body, header = (from_body or "").strip(), (from_header or "").strip()
    if body and header and body != header:
        raise RequestInvalid(
            f"the X-Assistant-Session header ({header}) and session_id ({body}) name different sessions",
            param="session_id", hint="send one of them",
        )  # fmt: skip
    return body or header or None


def _model_settings(body: dict) -> dict:
    out: dict[str, Any] = {}
    temperature = body.get("temperature")
    if temperature is not None:
        if not _number(temperature) or temperature < 0:
            raise RequestInvalid(f"temperature must be a number of at least 0, got {temperature!r}", param="temperature")
        out["temperature"] = float(temperature)
    for key in ("max_completion_tokens", "max_tokens"):  # the newer name wins when both are sent
        value = body.get(key)
        if value is not None:
            if not _integer(value) or value < 1:
                raise RequestInvalid(f"{key} must be a whole number of at least 1, got {value!r}", param=key)
            out.setdefault("max_tokens", value)
    seed = body.get("seed")
    if seed is not None:
        if not _integer(seed):
            raise RequestInvalid(f"seed must be a whole number, got {seed!r}", param="seed")
        out["seed"] = seed
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- content parts ---------------------------------------------------------------------------


def _parts(content: Any, where: str) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
        raise RequestInvalid(f"{where}.content must be a string or a list of content parts", param=f"{where}.content")
    return content


def _only_text(content: Any, where: str) -> str:
    texts = []
    for j, part in enumerate(_parts(content, where)):
        if part.get("type") != "text":
            raise RequestInvalid(f"{where}.content[{j}]: only text parts are allowed here", param=f"{where}.content[{j}]")
        texts.append(_text(part, f"{where}.content[{j}]"))
    return "\n".join(texts)


def _text(part: dict, where: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise RequestInvalid(f"{where}: a text part needs a string 'text'", param=where)
    return text


def _user_turn(content: Any, where: str, max_side: int) -> tuple[str, list[Attachment]]:
    """The new message's text and its attachments, each checked the way `ask -a` checks a file."""
    texts, attachments = [], []
    for j, part in enumerate(_parts(content, where)):
        at = f"{where}.content[{j}]"
        kind = part.get("type")
        if kind == "text":
            texts.append(_text(part, at))
        elif kind == "image_url":
            attachments.append(_image(part, at, max_side, len(attachments) + 1))
        elif kind == "file":
            attachments.append(_file(part, at))
        elif kind == "input_audio":
            attachments.append(_audio(part, at))
        else:
            raise RequestInvalid(
                f"{at}: unsupported content part type {kind!r}", param=at,
                hint="use text, image_url (a data: URL), file (file_data) or input_audio parts",
            )  # fmt: skip
    text = "\n".join(texts)
    if not text.strip() and not attachments:
        raise RequestInvalid("the last user message is empty", param=where)
    return text, attachments


def _context_message(m: dict, where: str, max_side: int) -> dict:
    """An earlier message as history: text, and a user's images as data URIs (downscaled, as the
    Dialogue stores them). Files are read by plugins only when they arrive, so an earlier one is
    refused rather than silently dropped."""
    if m["role"] == "assistant":
        return {"role": "assistant", "content": _only_text_or_refusal(m.get("content"), where)}
    texts, images = [], []
    for j, part in enumerate(_parts(m.get("content"), where)):
        at = f"{where}.content[{j}]"
        if part.get("type") == "text":
            texts.append(_text(part, at))
        elif part.get("type") == "image_url":
            att = _image(part, at, max_side, len(images) + 1)
            images.append({"type": "image_url", "image_url": {"url": image_bytes_to_data_uri(att.read_bytes(), att.filename, max_side)}})
        else:
            raise RequestInvalid(
                f"{at}: a {part.get('type')!r} part is only read in the last message (plugins read files as they arrive)",
                param=at, hint=SESSION_HINT,
            )  # fmt: skip
    text = "\n".join(texts)
    return {"role": "user", "content": images + [{"type": "text", "text": text}] if images else text}


def _only_text_or_refusal(content: Any, where: str) -> str:
    # The openai client echoes assistant content back as text parts or "refusal" parts.
    parts = [{"type": "text", "text": p.get("refusal", "")} if p.get("type") == "refusal" else p for p in _parts(content, where)]
    return _only_text(parts, where)


def _image(part: dict, where: str, max_side: int, n: int) -> Attachment:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise RequestInvalid(f"{where}: an image_url part needs image_url.url", param=where)
    if url.startswith(("http://", "https://")):
        raise RequestInvalid(
            f"{where}: image URLs are not fetched (the server makes no requests on a client's behalf)",
            param=where, code="image_url_not_allowed",
            hint="send the image itself as a data URL: data:image/png;base64,...",
        )  # fmt: skip
    mime, data = _data_url(url, where)
    att = _sniffed(data, f"image{n}{_ext(mime)}", where)
    if att.kind != "image":
        raise RequestInvalid(f"{where}: the image_url data is not an image (its content is {att.mime})", param=where, code="invalid_image")
    _checked(lambda: image_bytes_to_data_uri(data, att.filename, max_side), where, "invalid_image")
    return att


def _file(part: dict, where: str) -> Attachment:
    spec = part.get("file")
    if not isinstance(spec, dict):
        raise RequestInvalid(f"{where}: a file part needs a 'file' object with file_data", param=where)
    if spec.get("file_id") and not spec.get("file_data"):
        raise RequestInvalid(
            f"{where}: file_id is not supported (this server has no Files API)", param=where,
            hint='send the content in file_data: "data:application/pdf;base64,..."',
        )  # fmt: skip
    raw = spec.get("file_data")
    if not isinstance(raw, str) or not raw:
        raise RequestInvalid(f"{where}: file.file_data must be a data: URL or base64 text", param=where)
    mime, data = _data_url(raw, where) if raw.startswith("data:") else ("", _b64(raw, where))
    name = spec.get("filename")
    return _sniffed(data, name if isinstance(name, str) and name.strip() else "file" + _ext(mime), where)


def _audio(part: dict, where: str) -> Attachment:
    spec = part.get("input_audio")
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), str):
        raise RequestInvalid(f"{where}: an input_audio part needs input_audio.data (base64)", param=where)
    fmt = spec.get("format") if isinstance(spec.get("format"), str) else "wav"
    return _sniffed(_b64(spec["data"], where), f"audio.{fmt}", where)


def _data_url(url: str, where: str) -> tuple[str, bytes]:
    match = _DATA_URL.fullmatch(url)
    if not match:
        raise RequestInvalid(f"{where}: expected a base64 data URL (data:<type>;base64,...), got {url[:40]!r}", param=where)
    return match["mime"], _b64(match["payload"], where)


def _b64(payload: str, where: str) -> bytes:
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestInvalid(f"{where}: the data is not valid base64", param=where, code="invalid_base64") from None


def _sniffed(data: bytes, filename: str, where: str) -> Attachment:
    return _checked(lambda: sniff(data, filename=filename), where, "invalid_attachment")


def _checked(make, where: str, code: str):
    try:
        return make()
    except AttachmentError as exc:
        raise RequestInvalid(f"{where}: {exc.args[0]}", param=where, code=code, hint=exc.hint) from None


def _ext(mime: str) -> str:
    return _MIME_EXT.get(mime, "")
