"""The HTTP app: /health, /v1/models, /v1/chat/completions, bearer auth on /v1.

Starlette rather than FastAPI: three routes whose bodies are checked by hand (messages.py, for
errors that say what to do) need no schema layer. The streaming response is OpenAI's: `data:`
chunks, then `data: [DONE]`; the assistant's own events (tool calls, files, progress) travel in
chunks with an empty `choices` list and an `assistant` object, which OpenAI clients pass over
(the official client keeps it in `model_extra`).
"""

from __future__ import annotations

import asyncio
import hmac
import sys
import time
import traceback
from functools import partial
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import events as ev
from ..errors import AssistantError
from . import protocol
from .backend import Backend, PreparedTurn
from .messages import parse_chat_request
from .protocol import MODEL_ID, SESSION_HEADER, RequestInvalid, chunk, error_status, sse


class TurnReport:
    """What one turn's events add up to: the answer and the `assistant` extension field."""

    def __init__(self, session_id: str, backed_by: str) -> None:
        self.session_id, self.backed_by = session_id, backed_by
        self.tool_calls: dict[str, dict] = {}
        self.files: list[dict] = []
        self.attachments: list[dict] = []
        self.finished: ev.TurnFinished | None = None
        self.failed: Exception | None = None

    def feed(self, event: Any) -> dict | None:
        """Take one event; returns the extension event a stream sends for it, if any."""
        if isinstance(event, ev.ToolCallStarted):
            self.tool_calls[event.call_id] = {
                "id": event.call_id, "name": event.name, "arguments": event.arguments, "risk": event.risk,
                "decision": None, "result": None, "error": None,
            }  # fmt: skip
            return {"event": "tool_call_started", "id": event.call_id, "name": event.name, "arguments": event.arguments}
        if isinstance(event, ev.ApprovalDecided):
            self.tool_calls[event.call_id]["decision"] = event.decision
        elif isinstance(event, ev.ToolCallFinished):
            record = self.tool_calls[event.call_id]
            record.update(result=event.result, error=event.error, duration_s=round(event.duration_s, 4))
            return {"event": "tool_call", **record}
        elif isinstance(event, ev.AttachmentProcessed):
            self.attachments.append({"filename": event.filename, "kind": event.kind, "handled_by": event.handled_by, "title": event.title})
            return {"event": "attachment", **self.attachments[-1]}
        elif isinstance(event, ev.AttachmentProduced):
            self.files.append({"filename": event.filename, "mime": event.mime, "title": event.title, "tool": event.tool, "path": event.path})
            return {"event": "file", **self.files[-1]}
        elif isinstance(event, ev.Progress):
            return {"event": "progress", "task": event.task, "message": event.message, "fraction": event.fraction}
        elif isinstance(event, ev.TurnFinished):
            self.finished = event
        elif isinstance(event, ev.TurnFailed):
            self.failed = event.error
        return None

    def extension(self) -> dict:
        return {
            "session_id": self.session_id, "backed_by": self.backed_by,
            "steps": self.finished.steps if self.finished else None, "tool_calls": list(self.tool_calls.values()),
            "files": self.files, "attachments": self.attachments,
        }  # fmt: skip

    def finish_reason(self) -> str:
        return "length" if self.finished and self.finished.finish_reason == "length" else "stop"


class BearerAuth:
    """Every /v1 request must carry `Authorization: Bearer <key>` (compared in constant time)."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1"):
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.key):
                why = "no API key was sent" if not header else "the API key is wrong"
                body = protocol.unauthorized(f"{why}: send the server's key as 'Authorization: Bearer <key>' (the openai client: api_key=...)")
                await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(backend: Backend, *, api_key: str | None) -> Starlette:
    """The ASGI app around `backend`; `api_key` None serves without auth (the CLI allows that
    only on loopback with --no-auth)."""
    started = int(time.time())

    def model_card() -> dict:
        info = backend.info
        return {
            "id": MODEL_ID, "object": "model", "created": started, "owned_by": "assistant", "max_model_len": info.max_model_len,
            "assistant": {
                "backed_by": info.model_name, "base_url": info.base_url, "embedded": info.embedded, "vision": info.vision,
                "tools": backend.tool_names(), "max_concurrent": backend.settings.serve.max_concurrent,
            },
        }  # fmt: skip

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [model_card()]})

    async def model(request: Request) -> Response:
        if request.path_params["model"] != MODEL_ID:
            return _error(RequestInvalid(f"no model {request.path_params['model']!r}: this server serves {MODEL_ID!r}", param="model",
                                         code="model_not_found", status=404))  # fmt: skip
        return JSONResponse(model_card())

    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(RequestInvalid("the request body is not valid JSON"))
        try:
            parse = partial(
                parse_chat_request, body, header_session=request.headers.get(SESSION_HEADER),
                max_image_side=backend.settings.model.max_image_side,
            )  # fmt: skip
            # Decoding an image to check it can take a while: then off the event loop. Text
            # stays on it (the thread hop costs more than parsing text: ~1 ms a request on a busy 2-core machine).
            req = await asyncio.to_thread(parse) if _has_binary_parts(body) else parse()
            turn = backend.prepare(req)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OpenAI error response
            return _error(exc)
        headers = {SESSION_HEADER: turn.session_id}
        if req.stream:
            return StreamingResponse(_stream(backend, turn), media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})
        report = TurnReport(turn.session_id, backend.info.model_name)
        async for event in backend.events(turn):
            report.feed(event)
        if report.failed is not None:
            return _error(report.failed, headers)
        answer = protocol.completion(
            protocol.completion_id(), report.finished.text, report.finish_reason(), report.finished.usage, report.extension()
        )
        return JSONResponse(answer, headers=headers)

    async def not_found(request: Request, exc: HTTPException) -> Response:
        what = "not found" if exc.status_code == 404 else f"{request.method} is not allowed here"
        return JSONResponse(
            {"error": {"message": f"{request.url.path}: {what} (this server has /v1/models and /v1/chat/completions)",
                       "type": "invalid_request_error", "code": "not_found" if exc.status_code == 404 else "method_not_allowed", "param": None}},
            status_code=exc.status_code,
        )  # fmt: skip

    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/models/{model:path}", model),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    ]
    middleware = [Middleware(BearerAuth, key=api_key)] if api_key else []
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found})


async def _stream(backend: Backend, turn: PreparedTurn) -> AsyncIterator[str]:
    cid, created = protocol.completion_id(), int(time.time())
    report = TurnReport(turn.session_id, backend.info.model_name)
    yield chunk(cid, created, extension={"event": "session", "session_id": turn.session_id, "backed_by": report.backed_by})
    yield chunk(cid, created, delta={"role": "assistant", "content": ""})
    async for event in backend.events(turn):
        if isinstance(event, ev.TextDelta):
            yield chunk(cid, created, delta={"content": event.text})
        elif (extension := report.feed(event)) is not None:
            yield chunk(cid, created, extension=extension)
    if report.failed is not None:
        # Mid-stream the status is already 200: the error goes in the stream (as vLLM does),
        # and the openai client raises it as an APIError.
        yield sse(_logged(report.failed)[1])
    else:
        yield chunk(cid, created, extension={"event": "turn_finished", **report.extension()})
        yield chunk(cid, created, delta={}, finish_reason=report.finish_reason())
        if turn.request.include_usage:
            yield chunk(cid, created, usage=report.finished.usage)
    yield sse("[DONE]")


def _has_binary_parts(body: Any) -> bool:
    messages = body.get("messages") if isinstance(body, dict) else None
    return isinstance(messages, list) and any(
        isinstance(m, dict) and isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") != "text" for p in m["content"])
        for m in messages
    )  # fmt: skip


def _error(exc: BaseException, headers: dict | None = None) -> Response:
    status, body = _logged(exc)
    return JSONResponse(body, status_code=status, headers=headers)


def _logged(exc: BaseException) -> tuple[int, dict]:
    """The error response; the server's own failures are also written to stderr, with a traceback
    when they are not one of the assistant's errors (a plugin's bug)."""
    status, body = error_status(exc)
    if status >= 500:
        print(f"[turn failed ({status}): {body['error']['message']}]", file=sys.stderr, flush=True)
        if not isinstance(exc, AssistantError):
            traceback.print_exception(exc, file=sys.stderr)
    return status, body
