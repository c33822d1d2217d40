"""OpenAI's chat-completion JSON shapes, and which HTTP status each failure gets.

Only what clients read is built here: the official openai client parses these into its own
models and keeps the `assistant` extension field in `model_extra`.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from ..errors import (
    AssistantError,
    ContextTooLong,
    ImagesNotSupported,
    ModelError,
    RequestTimedOut,
    UsageError,
)
from ..events import Usage
from ..sessions import SessionNotFound

MODEL_ID = "assistant"  # what /v1/models lists and every response names
SESSION_HEADER = "X-Assistant-Session"


class RequestInvalid(UsageError):
    """The client's request is malformed or asks for something this server does not do."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_value",
                 status: int = 400, hint: str | None = None) -> None:  # fmt: skip
        super().__init__(message, hint=hint)
        self.param, self.code, self.status = param, code, status


def error_status(exc: BaseException) -> tuple[int, dict]:
    """(HTTP status, OpenAI error body) for any failure: the client's fault is 4xx, the model
    server's is 502/504, the assistant's own is 500."""
    if isinstance(exc, RequestInvalid):
        return exc.status, error_body(exc, "invalid_request_error", exc.code, exc.param)
    if isinstance(exc, SessionNotFound):
        return 404, error_body(exc, "invalid_request_error", "session_not_found", "session_id")
    if isinstance(exc, ContextTooLong):
        return 400, error_body(exc, "invalid_request_error", "context_length_exceeded", "messages")
    if isinstance(exc, ImagesNotSupported):
        return 400, error_body(exc, "invalid_request_error", "images_not_supported", "messages")
    if isinstance(exc, UsageError):  # a bad attachment, a setting out of range
        return 400, error_body(exc, "invalid_request_error", "invalid_value", None)
    if isinstance(exc, RequestTimedOut):
        return 504, error_body(exc, "server_error", "model_timeout", None)
    if isinstance(exc, ModelError):
        return 502, error_body(exc, "server_error", "model_error", None)
    if isinstance(exc, AssistantError):
        return 500, error_body(exc, "server_error", "internal_error", None)
    message = f"internal error in the assistant or a plugin ({type(exc).__name__}: {exc}); the server log has the traceback"
    return 500, {"error": {"message": message, "type": "server_error", "code": "internal_error", "param": None}}


def error_body(exc: AssistantError, kind: str, code: str, param: str | None) -> dict:
    text = exc.args[0] if exc.args else type(exc).__name__
    message = f"{text} (to fix: {exc.hint})" if exc.hint else text
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


def unauthorized(message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key", "param": None}}


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage_body(usage: Usage) -> dict:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens, "total_tokens": usage.total_tokens}


def completion(cid: str, text: str, finish_reason: str, usage: Usage, extension: dict) -> dict:
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage_body(usage), "assistant": extension,
    }  # fmt: skip


def chunk(cid: str, created: int, *, delta: dict | None = None, finish_reason: str | None = None,
          extension: dict | None = None, usage: Usage | None = None) -> str:  # fmt: skip
    """One SSE event. With no `delta` and no `finish_reason` the chunk has no choices: that is
    how the usage chunk and the assistant's extension events travel (clients skip empty choices)."""
    body: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID}
    if delta is None and finish_reason is None:
        body["choices"] = []
    else:
        body["choices"] = [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}]
    if extension is not None:
        body["assistant"] = extension
    if usage is not None:
        body["usage"] = usage_body(usage)
    return sse(body)


def sse(data: dict | str) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n"
