"""Tool calls that small local models write as text instead of through the server's parser.

Two shapes are recovered: hermes-style `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
blocks (what Qwen/Hermes-trained models emit when the server has no parser, or when the
parser misses one), and a whole reply that is a bare JSON object naming a known tool.
A bare JSON object only counts when it names a known tool, so JSON *answers* stay answers.
"""

from __future__ import annotations

import itertools
import json
import re

from ..events import ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
_ids = itertools.count(1)


def _as_call(obj: object) -> ToolCall | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return ToolCall(f"text_call_{next(_ids)}", obj["name"], arguments)


def recover_tool_calls(text: str, known_tools: set[str]) -> tuple[str, list[ToolCall]]:
    """Return (text without the recovered calls, calls). Unparseable blocks become calls with
    the raw text as arguments, so the validation error can be fed back to the model."""
    if OPEN in text:
        calls = []
        for block in _BLOCK.findall(text):
            try:
                call = _as_call(json.loads(block))
            except json.JSONDecodeError:
                name = re.search(r'"name"\s*:\s*"([^"]+)"', block)
                call = ToolCall(f"text_call_{next(_ids)}", name.group(1), block) if name else None
            if call:
                calls.append(call)
        if calls:
            return text[: text.index(OPEN)].rstrip(), calls
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    candidate = fenced.group(1) if fenced else stripped
    if candidate.startswith("{") and candidate.endswith("}"):
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            return text, []
        call = _as_call(obj)
        if call and call.name in known_tools:
            return "", [call]
    return text, []


class ToolTextFilter:
    """Holds back streamed text that may turn out to be a tool call, so users see answers,
    not JSON. Everything held back is released by `finish()` if it was not a call."""

    def __init__(self) -> None:
        self.buffer = ""
        self.emitted = 0
        self.holding = False

    def feed(self, delta: str) -> str:
        self.buffer += delta
        if self.holding:
            return ""
        if self.emitted == 0 and self.buffer.lstrip()[:1] in ("{", "`"):
            self.holding = True  # may be a bare JSON call: wait for the whole reply
            return ""
        start = self.buffer.find(OPEN, self.emitted)
        if start >= 0:
            out, self.emitted, self.holding = self.buffer[self.emitted : start], start, True
            return out
        # Keep back a tail that could be the beginning of "<tool_call>".
        safe = len(self.buffer)
        for k in range(min(len(OPEN) - 1, len(self.buffer)), 0, -1):
            if self.buffer.endswith(OPEN[:k]):
                safe -= k
                break
        out, self.emitted = self.buffer[self.emitted : safe], max(self.emitted, safe)
        return out

    def finish(self, consumed: bool) -> str:
        """The rest of the text; nothing when the held part was a tool call."""
        rest = "" if consumed else self.buffer[self.emitted :]
        self.emitted = len(self.buffer)
        return rest
