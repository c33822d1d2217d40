"""Counting tokens the way the reading model does.

Chunks must fit the served model's context, so they are measured with its own tokenizer:
- the tokenizer files of a local model folder (the local engine, the bundled model, tests),
  loaded with the `tokenizers` library (fast, no transformers import);
- else vLLM's `/tokenize` endpoint: pieces of the document itself are tokenized by the server
  to learn its characters per token, and counts are estimated from that with a safety margin
  (one HTTP request per sentence would cost more than reading the document);
- else (a server without `/tokenize`) a conservative 3 characters per token.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Callable, Sequence

CountFn = Callable[[Sequence[str]], list[int]]
FALLBACK_CHARS_PER_TOKEN = 3.0
_MARGIN = 1.15  # estimated counts are inflated by this much so chunks still fit


def tokenizer_counter(folder: str | Path) -> CountFn | None:
    """A counter from `tokenizer.json` in a model folder, or None when there is none. Loaded once
    per file (and again only if it changes): parsing Qwen's 7 MB tokenizer takes 0.3-0.7 s, and
    every Dialogue (one per batch item, one per `assistant serve` request) asks for it."""
    path = Path(folder) / "tokenizer.json"
    try:
        st = path.stat()
    except OSError:
        return None
    return _load_counter(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _load_counter(path: str, _mtime_ns: int, _size: int) -> CountFn:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    tok.no_padding()  # some tokenizer.json files pad/truncate to a fixed length (MiniLM: 128)
    tok.no_truncation()

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]

    return count


def ratio_counter(chars_per_token: float, margin: float = _MARGIN) -> CountFn:
    def count(texts: Sequence[str]) -> list[int]:
        return [max(1, math.ceil(len(t) / chars_per_token * margin)) for t in texts]

    return count


def samples(text: str, n: int = 3, size: int = 4000) -> str:
    """Pieces from the start, middle and end of a text: what calibration measures."""
    if len(text) <= n * size:
        return text
    step = (len(text) - size) // (n - 1)
    return "\n".join(text[i * step:i * step + size] for i in range(n))


async def served_counter(client: Any, sample: str) -> CountFn:
    """The best counter for the model behind `client` (a ChatClient or a test double), measured
    on `sample` (pieces of the document to be counted) when the server has to be asked."""
    config = getattr(client, "config", None)
    folder = getattr(config, "tokenizer_folder", "") if config is not None else ""
    if folder:
        local = tokenizer_counter(folder)
        if local:
            return local
    tokenize = getattr(client, "tokenize", None)
    if tokenize is not None and sample.strip():
        try:
            n = await tokenize(sample)
        except Exception:  # noqa: BLE001 - servers other than vLLM have no /tokenize
            n = 0
        if n:
            return ratio_counter(len(sample) / n)
    return ratio_counter(FALLBACK_CHARS_PER_TOKEN, margin=1.0)
