"""A scripted model for fast tests: no server, no sockets, deterministic.

    model = ScriptedModel(
        call("weather_forecast", {"city": "Oslo"}),   # first reply: a native tool call
        "It will rain in Oslo.",                      # second reply: text
    )
    dialogue = Dialogue(model, settings=..., registry=...)

Each reply is a `str` (streamed word by word), a `Reply` from `call(...)`/`text(...)`, an
exception instance (raised when that reply is due), or a callable `(messages, tools) -> reply`
to answer based on what was sent. `ScriptedModel(responder=fn)` answers every request (after
any scripted ones) with `fn(messages, tools)`, for callers that send requests concurrently.
`model.requests` records every request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from ..events import Completion, TextDelta, Timings, ToolCall, Usage


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None


def text(content: str) -> Reply:
    return Reply(text=content)


def call(name: str, arguments: dict | str, *, call_id: str | None = None, text: str = "") -> Reply:
    """A native tool call (as vLLM's parser returns it). `arguments` may be invalid JSON text."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Reply(text=text, tool_calls=(ToolCall(call_id or f"call_{name}", name, args),))


@dataclass
class ScriptedModel:
    replies: list[Any] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def __init__(self, *replies: Any, responder: "Responder | None" = None) -> None:
        self.replies = list(replies)
        self.requests = []
        # Answers every request once the scripted replies are used up (for concurrent callers,
        # e.g. a document read whose chunk requests finish in any order).
        self.responder = responder

    async def stream_chat(self, messages: list[dict], **kwargs: Any) -> AsyncIterator[TextDelta | Completion]:
        self.requests.append({"messages": [dict(m) for m in messages], **kwargs})
        if not self.replies and self.responder is not None:
            self.replies.append(self.responder)
        if not self.replies:
            raise AssertionError(f"ScriptedModel ran out of replies at request {len(self.requests)}")
        reply = self.replies.pop(0)
        if callable(reply) and not isinstance(reply, Reply):
            reply = reply(messages, kwargs.get("tools"))
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            reply = Reply(text=reply)
        for piece in re.findall(r"\S+\s*|\s+", reply.text):
            yield TextDelta(piece)
        prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4
        yield Completion(
            text=reply.text,
            finish_reason=reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"),
            usage=Usage(prompt, max(1, len(reply.text) // 4)),
            timings=Timings(0.001, 0.002),
            model="scripted",
            tool_calls=reply.tool_calls,
        )

    async def chat(self, messages: list[dict], **kwargs: Any) -> Completion:
        async for event in self.stream_chat(messages, **kwargs):
            if isinstance(event, Completion):
                return event
        raise AssertionError("stream_chat always ends with a Completion")


Responder = Callable[[list[dict], list[dict] | None], Any]
