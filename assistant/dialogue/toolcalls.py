"""Tool calls that small local models write as text instead of through the server's parser.

Two shapes are recovered: hermes-style `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
blocks (what Qwen/Hermes-trained models emit when the server has no parser, or when the
parser misses one), and a whole reply made of JSON objects (bare or fenced) that each name a
known tool. Bare JSON only counts when every object names a known tool, so JSON *answers* stay
answers.
"""

from __future__ import annotations

import itertools
import json
import re

from ..events import ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE_START = re.compile(r"```(?:json)?\s*")
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
    objects, after = leading_json(text)
    calls = [_as_call(obj) for obj in objects]
    if calls and all(c and c.name in known_tools for c in calls):
        unique: dict[tuple[str, str], ToolCall] = {}
        for c in calls:  # the same call written twice (fenced, then bare) is one call
            unique.setdefault((c.name, _canonical(c.arguments)), c)
        return after, list(unique.values())
    return text, []


def leading_json(text: str) -> tuple[list, str]:
    """The JSON values a reply begins with (each bare or in a ``` fence), and the text after
    them. Small models write a call twice, fenced and then bare, sometimes with a line after."""
    rest, values, decoder = text.strip(), [], json.JSONDecoder()
    while rest:
        fenced = _FENCE_START.match(rest)
        body = rest[fenced.end():] if fenced else rest
        if not body.startswith(("{", "[")):
            break
        try:
            value, end = decoder.raw_decode(body)
        except json.JSONDecodeError:
            break
        tail = body[end:].lstrip()
        if fenced:
            if not tail.startswith("```"):
                break
            tail = tail[3:].lstrip()
        values.append(value)
        rest = tail
    return values, rest


def json_values(text: str) -> list | None:
    """The JSON values a reply consists of, or None when it holds anything else."""
    values, rest = leading_json(text)
    return values if values and not rest else None


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except ValueError:
        return arguments


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
