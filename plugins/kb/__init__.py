"""Knowledge bases: your documents in Chroma, searched by meaning and by keyword, cited.

`assistant kb ingest PATH... --collection NAME` fills a collection; the `kb_search` tool lets
the model search it during a conversation, and every hit carries its source, page and section.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from assistant.plugin_api import Plugin, tool


class KBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: str = Field("default", description="Collection searched when the model names none.")
    folder: str = Field("", description="Where the catalogue and the embedded Chroma live. Empty: the plugin's data folder.")
    chroma_url: str = Field("", description="A Chroma server (e.g. http://127.0.0.1:8000) instead of the embedded store.")
    embedding_model: str = Field("auto", description="sentence-transformers model id or folder; 'auto': the bundled all-MiniLM-L6-v2.")
    chunk_tokens: int = Field(200, ge=16, le=8192, description="Chunk size in the embedding model's tokens.")
    overlap: int = Field(40, ge=0, description="Tokens shared by consecutive chunks.")
    k: int = Field(5, ge=1, le=50, description="Hits the kb_search tool returns.")


def open_knowledge_base(settings: KBSettings, data_dir: Path):
    from .store import KnowledgeBase

    root = Path(settings.folder).expanduser() if settings.folder else data_dir
    return KnowledgeBase(root, embedding_model=settings.embedding_model, chroma_url=settings.chroma_url,
                         chunk_tokens=settings.chunk_tokens, overlap=settings.overlap)


def format_hits(hits) -> str:
    """Numbered passages with their citations, the form the model is asked to cite from."""
    if not hits:
        return "No passage in the knowledge base matches."
    lines = ["Passages (cite them as [n] with the source shown):"]
    for n, h in enumerate(hits, 1):
        lines.append(f"[{n}] {h.citation()}\n{h.text.strip()}")
    return "\n\n".join(lines)


class KB(Plugin):
    name = "kb"
    description = "Search knowledge-base collections ingested with `assistant kb ingest`"
    Settings = KBSettings

    async def setup(self) -> None:
        self.kb = open_knowledge_base(self.settings, self.data_dir)

    @tool
    async def search(self, query: str, collection: str = "", k: int = 0) -> str:
        """Search a knowledge base of the user's documents; returns passages with their sources.

        Args:
            query: What to look for, in words likely to appear in the answer.
            collection: Collection to search; empty for the default one.
            k: How many passages (0 for the configured default).
        """
        hits = await asyncio.to_thread(self.kb.search, query, collection or self.settings.collection,
                                       k=k or self.settings.k)
        return format_hits(hits)
