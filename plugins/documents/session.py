"""What one read needs from its surroundings: the model, its context size and tokenizer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from assistant.documents.chunking import Chunk, chunk_document
from assistant.documents.tokens import served_counter
from assistant.errors import UsageError

DEFAULT_CONTEXT = 4096


class ReadSession:
    def __init__(self, plugin: Any, ctx: Any, context: int, count, model_name: str) -> None:
        self.plugin, self.ctx, self.context, self.count, self.model_name = plugin, ctx, context, count, model_name
        self.settings = plugin.settings

    @classmethod
    async def open(cls, plugin: Any, ctx: Any) -> "ReadSession":
        model = ctx.model
        if model is None:
            raise UsageError("reading a document needs the model, and this tool was called outside a conversation")
        context = plugin.settings.context_tokens
        if not context and hasattr(model, "context_length"):
            context = await model.context_length() or 0
        count = None  # measured on the document itself: see calibrate()
        name = ""
        if hasattr(model, "model_name"):
            name = await model.model_name()
        return cls(plugin, ctx, context or DEFAULT_CONTEXT, count, name)

    async def calibrate(self, doc) -> None:
        from assistant.documents.tokens import samples

        self.count = await served_counter(self.ctx.model, samples(doc.text))

    def reader(self):
        from .reader import Reader

        s = self.settings
        return Reader(self.ctx.model, self.plugin.prompts, context_tokens=self.context, count=self.count,
                      concurrency=s.concurrency, map_max_tokens=s.map_max_tokens,
                      answer_max_tokens=min(s.answer_max_tokens, self.context // 4), cache=self.plugin.cache,
                      model_name=self.model_name, progress=self.ctx.emit, recall_passages=s.recall_passages)

    async def chunks(self, doc, question: str, summary: bool) -> list[Chunk]:
        if self.count is None:
            await self.calibrate(doc)
        s = self.settings
        budget = self.reader().chunk_budget(question or "x" * 200, summary)
        size = min(s.chunk_tokens or s.max_chunk_tokens, budget)
        if size < 64:
            raise UsageError(f"the model's context ({self.context} tokens) leaves no room for document chunks",
                             hint="use a model with a longer context, or lower plugins.documents.map_max_tokens")
        return await asyncio.to_thread(chunk_document, doc, self.count, max_tokens=size,
                                       overlap=min(s.overlap, size // 4))

    async def read(self, doc, chunks: list[Chunk], question: str, summary: bool):
        reader = self.reader()
        if summary:
            return await reader.summarize(doc, chunks, "" if _only_summary(question) else question)
        return await reader.answer(doc, chunks, question)

    async def retrieve(self, doc, question: str) -> tuple[str, int]:
        """Index the document (once per content) and return its passages closest to the question."""
        from assistant_plugins.kb import format_hits
        from assistant_plugins.kb.store import KnowledgeBase

        def work():
            kb = KnowledgeBase(self.plugin.data_dir / "index")
            try:
                collection = f"doc-{doc.sha256[:16]}"
                kb.ingest_document(doc, collection, progress=lambda m, f: self.ctx.progress(f"indexing {m}", f))
                return kb.search(question or doc.title or "summary", collection, k=self.settings.retrieve_k)
            finally:
                kb.close()

        hits = await asyncio.to_thread(work)
        return format_hits(hits), len(hits)


def _only_summary(text: str) -> bool:
    """'summarise this' carries no focus; 'summarise the security parts' does."""
    import re

    rest = re.sub(r"(?i)\b(please|can you|could you|summari[sz]e|give me|a|an|the|this|that|it|document|file|"
                  r"pdf|summary|of|tl;?dr|overview|gist|outline)\b", " ", text)
    return not re.sub(r"[\W_]+", "", rest)
