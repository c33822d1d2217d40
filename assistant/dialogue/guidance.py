"""Tool calling for small models (`dialogue.tool_selection = "guided"`, the bundled models' own
setting): fewer tools per turn, and calls the server constrains to real tools and their schemas.

Measured on Qwen2.5-Coder-1.5B with the default plugins (bench/RESULTS-quality.md): offered
every tool with `tool_choice=auto`, it picks the right tool for questions that need one, but
writes the call as (often fenced, pretty-printed) JSON text that vLLM's hermes parser does not
see, invents tools ("utilities_translate"), and invents file paths to call file tools with.
So in guided mode:
- a tool that works on a file (`@tool(needs="file")`) is offered only when the conversation
  attaches or names a file;
- the request carries a structural tag (vLLM structured outputs): text is free, but once the
  model starts a call in any of the shapes it writes (`<tool_call>`, `{"name": "`, or the same
  JSON pretty-printed) the name must be one of the offered tools and the arguments must match
  that tool's schema, so an executed call is never an invented tool or invalid JSON;
- the system prompt says what tools are for (things the model cannot know);
- the same call twice in one turn is not run again: the model is asked for its answer instead;
- an answer that names an offered tool instead of calling it ("I'll use the utilities_calculate
  function...") is followed, once per turn, by that call with the tool named in `tool_choice`;
- an answer that is only JSON after a result (the call written out again, or the result echoed)
  is asked for once more, in words.
A constrained "which tool, or none?" step was tried first and chose worse than the model's own
calls (5-6 of 10 probe questions right, against 7-10 of 10).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from ..errors import RequestRejected

# A path with a folder, or a file name with a common extension: enough to say "a file is named".
_FILE = re.compile(
    r"(?:^|[\s\"'(\[])(?:~|\.{1,2})?/?(?:[\w.-]+/)+[\w.-]+"
    r"|\b[\w-]+\.(?:pdf|docx?|odt|rtf|txt|md|markdown|html?|csv|json|xml|ya?ml|log"
    r"|wav|mp3|ogg|oga|opus|flac|m4a|webm|mp4|png|jpe?g|gif|webp)\b",
    re.I,
)


# "[report.txt]" on a line of its own heads a text attachment inlined into the message: its
# content is already there, so it does not call for a file tool.
_INLINE_HEADER = re.compile(r"^\[[^\]\n]+\]$", re.M)


def mentions_file(messages: Iterable[dict]) -> bool:
    for m in messages:
        if m.get("role") not in ("user", "tool"):
            continue
        content = m.get("content")
        texts = [content] if isinstance(content, str) else [p.get("text", "") for p in content or [] if isinstance(p, dict)]
        if any(_FILE.search(_INLINE_HEADER.sub("", t or "")) for t in texts):
            return True
    return False


def offered(specs: Iterable[Any], messages: list[dict]) -> list[Any]:
    """The tools worth offering for this conversation (file tools only when a file is in it)."""
    specs = list(specs)
    has_file = any(s.needs == "file" for s in specs) and mentions_file(messages)
    return [s for s in specs if s.needs != "file" or has_file]


def call_grammar(tools: list[dict]) -> str:
    """vLLM structural tag: free text, but a call, once begun, names an offered tool and carries
    arguments valid for its schema. One structure per tool and per shape the model writes."""
    structures = []
    for t in tools:
        name, schema = t["function"]["name"], t["function"].get("parameters") or {"type": "object"}
        structures += [
            {"begin": f'<tool_call>\n{{"name": "{name}", "arguments": ', "schema": schema, "end": "}\n</tool_call>"},
            {"begin": f'{{"name": "{name}", "arguments": ', "schema": schema, "end": "}"},
            {"begin": f'{{\n  "name": "{name}",\n  "arguments": ', "schema": schema, "end": "\n}"},
        ]
    return json.dumps({"structures": structures, "triggers": ["<tool_call>", '{"name": "', '{\n  "name": "']})


def said_tool(text: str, names: list[str]) -> str | None:
    """The offered tool an answer names as the one to use ("I'll use the utilities_calculate
    function"): small models often describe the call they should make."""
    for name in sorted(names, key=len, reverse=True):
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
            return name
    return None


def answers_in_json(text: str, messages: list[dict]) -> bool:
    """An answer that is only JSON: a call written out again, or the tool's result echoed (small
    models do both after a result). Not when the user asked for JSON."""
    from .toolcalls import json_values

    if json_values(text) is None:
        return False
    asked = [m.get("content") for m in messages if m.get("role") == "user"]
    return not (asked and isinstance(asked[-1], str) and "json" in asked[-1].lower())


def rejects_structured_outputs(exc: RequestRejected) -> bool:
    """A server that refuses the `structured_outputs` field (not vLLM): go on without the grammar."""
    return exc.status == 400 and "structur" in str(exc).lower()


def same_call(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Two calls with one tool name and equal arguments (as JSON values, not text)."""
    if a[0] != b[0]:
        return False
    try:
        return json.loads(a[1] or "{}") == json.loads(b[1] or "{}")
    except ValueError:
        return a[1] == b[1]
