"""`assistant ask`: one turn of the dialogue; the answer streams to stdout (or one JSON object).

Tool calls, attachment notes and progress go to stderr so stdout stays the answer alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from .errors import AssistantError
from .events import (
    ApprovalDecided,
    AttachmentProcessed,
    AttachmentProduced,
    Progress,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFailed,
    TurnFinished,
)
from .progress import StderrProgress
from .settings import Settings


@dataclass
class AskRequest:
    question: str
    attachments: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # like attachments, but must be images
    system: str | None = None
    json_output: bool = False
    quiet: bool = False
    session: str | None = None  # continue this session
    save: bool = True
    force_tool: str | None = None


class TerminalApprover:
    """Asks on the terminal (stderr + the tty) before a side-effecting tool runs."""

    async def __call__(self, request) -> str:
        args = json.dumps(request.arguments, ensure_ascii=False)
        prompt = f"\nallow {request.tool}({args[:300]})? [y]es / [n]o / [a]lways: "

        def ask() -> str:
            sys.stderr.write(prompt)
            sys.stderr.flush()
            answer = sys.stdin.readline().strip().lower()
            return {"y": "approve", "yes": "approve", "a": "always", "always": "always"}.get(answer, "deny")

        return await asyncio.to_thread(ask)


class _Renderer:
    """Turns dialogue events into stdout text and stderr notes; collects what --json reports."""

    def __init__(self, out: TextIO, json_output: bool, progress: StderrProgress):
        self.out, self.json_output, self.progress = out, json_output, progress
        self.first_token: float | None = None
        self.finished_at: float | None = None
        self.tools: dict[str, dict] = {}
        self.files: list[dict] = []
        self.attachments: list[dict] = []

    def note(self, text: str) -> None:
        if not self.json_output and not self.progress.quiet:
            self.progress.clear()
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def __call__(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            self.first_token = self.first_token or time.perf_counter()
            if not self.json_output:
                self.progress.clear()
                self.out.write(event.text)
                self.out.flush()
        elif isinstance(event, Progress):
            self.progress(event)
        elif isinstance(event, AttachmentProcessed):
            self.attachments.append({"filename": event.filename, "kind": event.kind, "handled_by": event.handled_by, "title": event.title})
            self.note(f"[{event.filename}: {event.kind} → {event.handled_by}{': ' + event.title if event.title else ''}]")
        elif isinstance(event, ToolCallStarted):
            self.tools[event.call_id] = {"id": event.call_id, "name": event.name, "arguments": event.arguments, "risk": event.risk}
            self.note(f"[tool {event.name}({json.dumps(event.arguments, ensure_ascii=False)[:200]})]")
        elif isinstance(event, ApprovalDecided):
            self.tools[event.call_id]["decision"] = event.decision
        elif isinstance(event, ToolCallFinished):
            self.tools[event.call_id].update(result=event.result, error=event.error, duration_s=round(event.duration_s, 4))
            self.note(f"[tool {event.name} → {(event.error or event.result)[:200]}]")
        elif isinstance(event, AttachmentProduced):
            self.files.append({"path": event.path, "mime": event.mime, "title": event.title, "tool": event.tool})
            self.note(f"[{event.tool} made {event.filename}: {event.path}]")


def _load_attachment(source: str, settings: Settings, *, image: bool = False):
    """A path or an http(s) URL, typed by content; images are decoded once to catch damage early."""
    from .dialogue.attachments import sniff
    from .errors import AttachmentError
    from .model.images import fetch_bytes, image_bytes_to_data_uri

    if source.startswith(("http://", "https://")):
        att = sniff(fetch_bytes(source, settings.model.read_timeout), filename=source.rsplit("/", 1)[-1] or "download")
    else:
        att = sniff(source)
    if image and att.kind != "image":
        raise AttachmentError(
            f"{att.filename} is not a readable image (its content is {att.mime})",
            hint="attach a PNG, JPEG, WebP or GIF file with --image, or use --attach for other files",
        )
    if att.kind == "image":
        image_bytes_to_data_uri(att.read_bytes(), att.filename, settings.model.max_image_side)
    return att


def run_ask(settings: Settings, req: AskRequest, out: TextIO = sys.stdout) -> int:
    from .dialogue.attachments import route_attachments
    from .dialogue.turn import Dialogue
    from .model.client import ChatClient
    from .model.endpoint import open_endpoint, tool_modes
    from .runtime import load_registry, open_store, prompt_library, report_plugin_failures

    progress = StderrProgress(quiet=req.quiet or req.json_output)
    started = time.perf_counter()
    # Everything that can fail on the user's input fails here, before any engine starts.
    attachments = [_load_attachment(src, settings, image=True) for src in req.images]
    attachments += [_load_attachment(src, settings) for src in req.attachments]
    registry = load_registry(settings)
    route_attachments(attachments, model_accepts_images=None, consumers=registry.consumers())
    if not req.json_output:
        report_plugin_failures(registry, sys.stderr.write)
    prompts = prompt_library(settings, registry)
    store = open_store(settings) if req.save else None
    session_id = store.resolve(req.session) if (store and req.session) else None
    if req.session and not store:
        raise AssistantError("--session needs sessions to be saved; drop --no-save")
    needs_vision = any(a.kind == "image" for a in attachments) and "image" not in registry.consumers()
    render = _Renderer(out, req.json_output, progress)
    interactive = sys.stdin is not None and sys.stdin.isatty() and not req.json_output

    with open_endpoint(settings, progress, needs_vision=needs_vision) as endpoint:
        progress.clear()
        ready = time.perf_counter()
        native, selection = tool_modes(settings, endpoint.spec)

        model_name = endpoint.client.model

        async def go() -> TurnFinished:
            async with ChatClient(endpoint.client) as client:
                nonlocal model_name  # with --base-url alone, the server says what it serves
                model_name = endpoint.client.model or await client.model_name()
                dialogue = Dialogue(
                    client, settings=settings, registry=registry, prompts=prompts,
                    approver=TerminalApprover() if interactive else None, store=store, session_id=session_id,
                    model_name=model_name, model_accepts_images=endpoint.client.vision, native_tools=native,
                    tool_selection=selection,
                )  # fmt: skip
                if req.system:
                    dialogue.system_override = req.system
                try:
                    async for event in dialogue.turn(req.question, attachments, force_tool=req.force_tool):
                        if isinstance(event, TurnFailed):
                            raise event.error
                        render(event)
                        if isinstance(event, TurnFinished):
                            render.finished_at = time.perf_counter()
                            return event
                finally:
                    await registry.aclose()  # MCP servers this turn started
            raise AssertionError("a turn always ends with TurnFinished or TurnFailed")

        try:
            result = asyncio.run(go())
        finally:
            if store is not None:
                store.close()
    if req.json_output:
        out.write(json.dumps(_as_json(result, render, endpoint, model_name, started, ready), ensure_ascii=False) + "\n")
    else:
        if not result.text.endswith("\n"):
            out.write("\n")
        if result.session_id:
            render.note(f"[session {result.session_id}: continue with --session {result.session_id}]")
    out.flush()
    return 0


def _as_json(result: TurnFinished, render: _Renderer, endpoint, model: str, started: float, ready: float) -> dict:
    return {
        "answer": result.text,
        "model": model,
        "session_id": result.session_id,
        "finish_reason": result.finish_reason,
        "steps": result.steps,
        "tool_calls": list(render.tools.values()),
        "attachments": render.attachments,
        "files": render.files,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
        },
        "timings": {
            "engine_setup_s": round(ready - started, 3),
            "time_to_first_token_s": None if render.first_token is None else round(render.first_token - ready, 4),
            "turn_s": round(result.total_s, 4),
            # Over the whole turn (all model calls); bench/bench_ask.py measures one call exactly.
            "tokens_per_s": _rate(result.usage.completion_tokens, render.first_token, render.finished_at),
        },
        "engine": {
            "base_url": endpoint.client.base_url,
            "embedded": endpoint.engine is not None,
            "reused_background": bool(endpoint.engine and endpoint.engine.background),
        },
    }


def _rate(tokens: int, first: float | None, end: float | None) -> float | None:
    if first is None or end is None or tokens < 2 or end <= first:
        return None
    return round((tokens - 1) / (end - first), 2)


def error_json(exc: AssistantError) -> str:
    error = {"type": type(exc).__name__, "message": exc.args[0] if exc.args else "", "hint": exc.hint}
    if getattr(exc, "partial_text", ""):
        error["partial_answer"] = exc.partial_text
    return json.dumps({"error": error}, ensure_ascii=False)
