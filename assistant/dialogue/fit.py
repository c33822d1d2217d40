"""Keeping a conversation inside the model's context window.

Without this a chat on a 4096-token model fails after a handful of turns with "the request does
not fit". When the history outgrows what is left after the system prompt, the tool schemas and
the answer's max_tokens, the oldest whole turns are left out of the request. The session store
keeps every message; only what is sent shrinks. A turn is cut only where a user message starts,
so a tool call is never separated from its result, and the turn in progress is always sent.
"""

from __future__ import annotations

import json
from typing import Callable, Sequence

CountFn = Callable[[Sequence[str]], list[int]]

IMAGE_TOKENS = 1024  # varies by model (~256 to a few thousand); a middle guess, only for budgeting
MESSAGE_OVERHEAD = 8  # chat-template markup per message


def message_tokens(messages: Sequence[dict], count: CountFn) -> list[int]:
    """An estimate per message: its text, tool calls and images, plus template markup."""
    texts, images = [], []
    for m in messages:
        content = m.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        text = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
        if m.get("tool_calls"):
            text += json.dumps(m["tool_calls"])
        texts.append(text)
        images.append(sum(p.get("type") == "image_url" for p in parts))
    return [n + IMAGE_TOKENS * i + MESSAGE_OVERHEAD for n, i in zip(count(texts), images)]


def fit_history(history: list[dict], limit: int, count: CountFn) -> tuple[list[dict], int]:
    """(the newest part of `history` whose estimate fits `limit`, how many messages were left out).

    Cuts only before a user message and never inside the last turn (from the last user message
    on), even if that alone is over the limit: the server's error then says so."""
    sizes = message_tokens(history, count)
    total = sum(sizes)
    if total <= limit:
        return history, 0
    starts = [i for i, m in enumerate(history) if m.get("role") == "user"]
    last = starts[-1] if starts else 0
    cut = 0
    for start in starts[1:] + [last]:
        if start > last:
            break
        total -= sum(sizes[cut:start])
        cut = start
        if total <= limit:
            break
    return history[cut:], cut
