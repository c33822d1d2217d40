"""Long documents: attach a PDF, DOCX, HTML, Markdown or text file of any length.

How a document reaches the model is a mode the user picks (`ask --read MODE`, `/read MODE` in
the chat, or [plugins.documents] mode):
- inline:   the whole text goes into the prompt (only when it fits);
- read-all: every chunk is read for the question (map), the findings are combined with
            citations (reduce) - slow on big documents, but nothing is skipped;
- retrieve: the document is indexed and only the passages closest to the question are given;
- auto:     inline when it fits, read-all up to `max_read_chunks`, retrieve beyond.
Before a long read the cost (chunks, tokens) is announced; progress follows; cancelling keeps
every chunk already read (cached), so asking again resumes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.plugin_api import AttachmentOutput, Plugin, ToolContext, tool

MODES = ("auto", "inline", "read-all", "retrieve")
_SUMMARY = re.compile(r"\b(summari[sz]\w*|tl;?dr|overview|gist|outline)\b", re.I)


class DocumentsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["auto", "inline", "read-all", "retrieve"] = Field("auto", description="How attached documents reach the model (see the plugin's help).")
    inline_fraction: float = Field(0.5, gt=0, le=0.9, description="auto: a document goes inline when it needs at most this share of the context.")
    max_read_chunks: int = Field(400, ge=1, description="auto: longer documents are retrieved from instead of read whole; read-all refuses beyond it.")
    chunk_tokens: int = Field(0, ge=0, description="Chunk size for reading; 0: as large as the model's context allows (capped by max_chunk_tokens).")
    max_chunk_tokens: int = Field(2000, ge=64, description="Upper bound of the automatic chunk size.")
    overlap: int = Field(100, ge=0, description="Tokens shared by consecutive chunks.")
    concurrency: int = Field(8, ge=1, le=256, description="Chunks read at once (the engine batches them).")
    map_max_tokens: int = Field(256, ge=16, description="Longest reply per chunk.")
    answer_max_tokens: int = Field(512, ge=16, description="Longest combined answer.")
    context_tokens: int = Field(0, ge=0, description="The model's context; 0: ask the server (vLLM reports it).")
    retrieve_k: int = Field(6, ge=1, le=50, description="retrieve: passages given to the model.")
    recall_passages: int = Field(6, ge=0, le=50, description="read-all: original passages matching the question's words shown with the findings (0: findings only).")
    cache: bool = Field(True, description="Keep partial answers so repeated and resumed reads skip finished chunks.")


def wants_summary(text: str) -> bool:
    return not text.strip() or bool(_SUMMARY.search(text))


class Documents(Plugin):
    name = "documents"
    description = "Read long documents whole (map-reduce with citations) or retrieve from them"
    consumes = frozenset({"document", "text"})  # long text too: inline only when it fits
    Settings = DocumentsSettings
    prompts_dir = Path(__file__).parent / "prompts"

    async def setup(self) -> None:
        from assistant.dialogue.prompts import default_library, user_prompts_dir

        self.prompts = default_library(user_prompts_dir(), [self.prompts_dir])
        self._cache = None

    @property
    def cache(self):
        if self._cache is None and self.settings.cache:
            from .cache import MapCache

            self._cache = MapCache(self.data_dir / "map-cache.sqlite")
        return self._cache

    # --- attachments ------------------------------------------------------------------------

    async def handle_attachment(self, attachment, ctx: ToolContext) -> AttachmentOutput:
        import asyncio

        from assistant.documents.loaders import load_document

        doc = await asyncio.to_thread(load_document, attachment.filename, attachment.read_bytes())
        return await self.present(doc, ctx.turn_text, ctx)

    async def present(self, doc, question: str, ctx: ToolContext) -> AttachmentOutput:
        """The document as the mode says: inline text, read-all findings, or retrieved passages."""
        from .session import ReadSession

        rs = await ReadSession.open(self, ctx)
        await rs.calibrate(doc)
        mode = self.settings.mode
        doc_tokens = sum(rs.count([b.text for b in doc.blocks])) if doc.blocks else 0
        fits = doc_tokens <= self.settings.inline_fraction * rs.context
        name = Path(doc.source).name
        if mode == "inline" or (mode == "auto" and fits):
            if not fits:
                from assistant.errors import ContextTooLong

                raise ContextTooLong(f"{name} needs ~{doc_tokens:,} tokens; the model's context is {rs.context:,}",
                                     hint="use --read read-all or --read retrieve for long documents")
            return AttachmentOutput(render_inline(doc), f"{name} ({_size(doc, doc_tokens)})",
                                    {"mode": "inline", "tokens": doc_tokens})
        summary = wants_summary(question)
        chunks = await rs.chunks(doc, question, summary)
        if mode == "retrieve" or (mode == "auto" and len(chunks) > self.settings.max_read_chunks):
            if summary and mode == "retrieve":
                ctx.progress("retrieve mode cannot summarise a whole document; giving its closest passages")
            text, n = await rs.retrieve(doc, question)
            why = "" if mode == "retrieve" else f" (auto: {len(chunks)} chunks is more than max_read_chunks)"
            return AttachmentOutput(text, f"{n} passages retrieved from {name}{why}",
                                    {"mode": "retrieve", "chunks": len(chunks), "tokens": doc_tokens})
        if len(chunks) > self.settings.max_read_chunks:
            from assistant.errors import UsageError

            est = rs.reader().estimate(chunks, question, summary)
            raise UsageError(f"reading all of {name} would take {est.describe()}, over max_read_chunks="
                             f"{self.settings.max_read_chunks}",
                             hint="use --read retrieve, or raise it: --set plugins.documents.max_read_chunks=N")
        result = await rs.read(doc, chunks, question, summary)
        what = "Summary" if summary else "Findings"
        body = (f"{what} from reading all {result.chunks} parts of {name}:\n\n{result.text()}\n\n"
                "(Reply to the user from these findings and keep the [n] citations and the sources list.)")
        title = (f"read all {result.chunks} parts of {name}: {result.relevant} relevant, "
                 f"{result.seconds:.0f} s" + (f", {result.cached} cached" if result.cached else ""))
        return AttachmentOutput(body, title, {"mode": "read-all", "chunks": result.chunks, "relevant": result.relevant,
                                              "requests": result.requests, "seconds": round(result.seconds, 2),
                                              "sources": result.sources})

    # --- tools --------------------------------------------------------------------------------

    @tool(needs="file")
    async def read(self, path: str, question: str, ctx: ToolContext) -> str:
        """Answer a question by reading every part of a long document file (slow but thorough).

        Args:
            path: The document's file path (PDF, DOCX, HTML, Markdown or text).
            question: The question to answer from the document.
        """
        return await self._tool(path, question, False, ctx)

    @tool(needs="file")
    async def summarize(self, path: str, ctx: ToolContext, focus: str = "") -> str:
        """Summarise a whole document file, however long, citing its parts.

        Args:
            path: The document's file path.
            focus: Optional topic to concentrate on.
        """
        return await self._tool(path, focus, True, ctx)

    async def _tool(self, path: str, question: str, summary: bool, ctx: ToolContext) -> str:
        import asyncio

        from assistant.documents.loaders import load_document

        from .session import ReadSession

        file = Path(path).expanduser()
        if not file.is_file():
            raise ValueError(f"no such file: {path}")
        doc = await asyncio.to_thread(load_document, file)
        rs = await ReadSession.open(self, ctx)
        chunks = await rs.chunks(doc, question, summary)
        result = await rs.read(doc, chunks, question, summary)
        return result.text()


def _size(doc, tokens: int) -> str:
    pages = f"{doc.pages} pages, " if doc.pages else ""
    return f"{pages}~{tokens:,} tokens"


def render_inline(doc) -> str:
    """The text with [p. N] and section markers, so the model can cite pages of an inline document."""
    out, page = [], None
    for b in doc.blocks:
        if b.page is not None and b.page != page:
            page = b.page
            out.append(f"[p. {page}]")
        out.append(("## " + b.text) if b.heading else b.text)
    return "\n\n".join(out)
