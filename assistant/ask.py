"""`assistant ask`: one question in, the answer streamed to stdout (or one JSON object)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from .errors import AssistantError
from .events import Completion, TextDelta
from .model.client import ChatClient
from .model.endpoint import open_endpoint
from .model.images import image_to_data_uri, user_message
from .progress import StderrProgress
from .settings import Settings


@dataclass
class AskRequest:
    question: str
    images: list[str] = field(default_factory=list)
    system: str | None = None
    json_output: bool = False
    quiet: bool = False


def build_messages(req: AskRequest, max_image_side: int) -> list[dict]:
    # Images are loaded and validated before any engine starts: a bad file fails in milliseconds.
    uris = [image_to_data_uri(path, max_side=max_image_side) for path in req.images]
    messages = [{"role": "system", "content": req.system}] if req.system else []
    messages.append(user_message(req.question, uris))
    return messages


async def _answer(client: ChatClient, messages: list[dict], settings: Settings, out: TextIO | None) -> Completion:
    m = settings.model
    async for event in client.stream_chat(
        messages, temperature=m.temperature, max_tokens=m.max_tokens, seed=None if m.seed < 0 else m.seed
    ):
        if isinstance(event, TextDelta) and out is not None:
            out.write(event.text)
            out.flush()
        elif isinstance(event, Completion):
            return event
    raise AssertionError("stream ended without a Completion")


def run_ask(settings: Settings, req: AskRequest, out: TextIO = sys.stdout) -> int:
    progress = StderrProgress(quiet=req.quiet or req.json_output)
    started = time.perf_counter()
    messages = build_messages(req, settings.model.max_image_side)
    with open_endpoint(settings, progress, needs_vision=bool(req.images)) as endpoint:
        progress.clear()
        ready = time.perf_counter()

        async def go() -> Completion:
            async with ChatClient(endpoint.client) as client:
                return await _answer(client, messages, settings, None if req.json_output else out)

        result = asyncio.run(go())
    if req.json_output:
        out.write(json.dumps(_as_json(result, endpoint, ready - started), ensure_ascii=False) + "\n")
    elif not result.text.endswith("\n"):
        out.write("\n")
    out.flush()
    return 0


def _as_json(result: Completion, endpoint, setup_s: float) -> dict:
    tps = result.timings.tokens_per_s(result.usage.completion_tokens)
    return {
        "answer": result.text,
        "model": result.model,
        "finish_reason": result.finish_reason,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in result.tool_calls],
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
        },
        "timings": {
            "engine_setup_s": round(setup_s, 3),
            "time_to_first_token_s": None
            if result.timings.time_to_first_token_s is None
            else round(result.timings.time_to_first_token_s, 4),
            "total_s": round(result.timings.total_s, 4),
            "tokens_per_s": None if tps is None else round(tps, 2),
        },
        "engine": {
            "base_url": endpoint.client.base_url,
            "embedded": endpoint.engine is not None,
            "reused_background": bool(endpoint.engine and endpoint.engine.background),
        },
    }


def error_json(exc: AssistantError) -> str:
    error = {"type": type(exc).__name__, "message": exc.args[0] if exc.args else "", "hint": exc.hint}
    if getattr(exc, "partial_text", ""):
        error["partial_answer"] = exc.partial_text
    return json.dumps({"error": error}, ensure_ascii=False)
