"""The `faq` plugin: answers from a knowledge-base collection, cited, or an honest "I don't know".

    [plugins.faq]
    collection = "faq"        # fill it with `assistant kb ingest your-faq/ --collection faq`
    min_similarity = 0.4      # below this, nothing counts as an answer

Searching goes through one seam, `self.search(question) -> list[Hit]`, built in `setup()` from
the kb plugin's `KnowledgeBase` (the same folder and collections as `assistant kb`). A passage
counts only when its meaning is close to the question (cosine similarity of the vector match
at least `min_similarity`); keyword overlap alone is not an answer. When nothing counts, the
model is told to say it does not know and to offer a hand-off, and the question is logged in
`questions.sqlite` so the team sees what the knowledge base lacks.

With `sample = true` and no such collection yet, the bundled sample FAQ (data/faq.md) is
ingested into the collection `faq-sample` and searched instead, so the pack answers out of the
box; as soon as the configured collection exists, it is used (the sample never mixes with it).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import PluginError
from assistant.plugin_api import Plugin, ToolContext, tool

from .storage import connect, migrate, resolve_path, transaction

PROMPTS = Path(__file__).parent / "prompts"
SAMPLE_FAQ = Path(__file__).parent / "data" / "faq.md"
SAMPLE_COLLECTION = "faq-sample"
PASSAGE_CHARS = 900

Search = Callable[[str], list[Any]]  # question -> hits (plugins/kb/store.py Hit: text, source, page, section, similarity)

MIGRATIONS = [
    """
    CREATE TABLE questions (
        id              INTEGER PRIMARY KEY,
        at              REAL NOT NULL,
        session_id      TEXT,
        question        TEXT NOT NULL,
        answered        INTEGER NOT NULL,
        best_similarity REAL,
        best_source     TEXT
    );
    CREATE INDEX questions_answered ON questions (answered, at);
    """,
]

DONT_KNOW = (
    "The knowledge base has nothing that answers this. Tell the customer honestly that you don't know; do not "
    "guess or make up a policy. Offer to hand the conversation to a person (handoff_request with reason "
    "not_in_knowledge_base) and do it if they agree."
)
HOW_TO_ANSWER = (
    "Answer only from these passages, in your own words, and cite the passage you used after each statement, "
    "e.g. {example}. If they do not actually answer the question, say you don't know and offer a hand-off."
)


class FAQSettings(BaseModel):
    """The [plugins.faq] table of config.toml."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field("faq", description="Knowledge-base collection with the answers (`assistant kb ingest`).")
    kb_folder: str = Field("", description="The knowledge base's folder. Empty: the kb plugin's data folder.")
    embedding_model: str = Field(
        "auto", description="Embedding model of the collection (as in [plugins.kb]); 'auto': the bundled MiniLM."
    )
    min_similarity: float = Field(
        0.4, ge=-1.0, le=1.0,
        description="Least cosine similarity for a passage to count as an answer (0.4 suits the bundled MiniLM).",
    )
    k: int = Field(3, ge=1, le=10, description="Most passages given to the model.")
    sample: bool = Field(
        True, description="While the collection does not exist, answer from the bundled sample FAQ (collection faq-sample)."
    )


def cite(hit: Any) -> str:
    """'[faq.md § Returns]', '[manual.pdf p. 3 § Setup]': the file, the page, and the innermost
    heading (the knowledge base keeps the whole path, 'Customer help > Returns')."""
    parts = [Path(hit.source).name if hit.source else "?"]
    if getattr(hit, "page", None) is not None:
        parts.append(f"p. {hit.page}")
    section = (getattr(hit, "section", "") or "").split(" > ")[-1].strip()
    if section:
        parts.append(f"§ {section}")
    return "[" + " ".join(parts) + "]"


def relevant(hits: list[Any], min_similarity: float) -> list[Any]:
    """Hits whose vector similarity reaches the threshold, best first, one per section."""
    good = [h for h in hits if getattr(h, "similarity", None) is not None and h.similarity >= min_similarity]
    good.sort(key=lambda h: -h.similarity)
    out, seen = [], set()
    for h in good:
        key = (h.source, getattr(h, "page", None), getattr(h, "section", ""))
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out


def _passage(text: str) -> str:
    """One paragraph, without the Markdown heading lines the chunk starts with (the citation names
    the section), cut at a word near PASSAGE_CHARS."""
    lines = text.strip().splitlines()
    while lines and lines[0].lstrip().startswith("#"):
        lines.pop(0)
    text = " ".join(" ".join(lines).split())
    return text if len(text) <= PASSAGE_CHARS else text[: PASSAGE_CHARS - 1].rsplit(" ", 1)[0] + " …"


class FAQ(Plugin):
    name = "faq"
    opt_in = True  # the customer-service pack: [plugins] enabled = ["orders", "faq", "tickets", "handoff"]
    description = "Answers customer questions from the FAQ knowledge base, with citations"
    Settings = FAQSettings
    prompts_dir = PROMPTS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.search: Search | None = None  # the seam: tests set it before the first call

    async def setup(self) -> None:
        if self.search is None:
            self.search = await asyncio.to_thread(self._open_knowledge_base)
        conn = connect(self.data_dir / "questions.sqlite")
        try:
            migrate(conn, MIGRATIONS)
        finally:
            conn.close()

    def kb_folder(self) -> Path:
        return resolve_path(self.settings.kb_folder, self.data_dir.parent / "kb")

    def _open_knowledge_base(self) -> Search:
        try:
            from ..kb.store import KnowledgeBase
        except ImportError as exc:
            raise PluginError(
                f"the faq plugin needs the knowledge-base plugin (assistant_plugins.kb): {exc}",
                hint="pip install 'assistant[documents]'",
            ) from exc
        s = self.settings
        kb = KnowledgeBase(self.kb_folder(), embedding_model=s.embedding_model)
        collection = s.collection
        if s.sample and collection not in {c.name for c in kb.collections()}:
            # A collection of its own, so the sample never mixes with the team's FAQ: once
            # `assistant kb ingest ... --collection faq` has run, the next start uses that.
            collection = SAMPLE_COLLECTION
            if collection not in {c.name for c in kb.collections()}:
                report = kb.ingest([SAMPLE_FAQ], collection)
                if report.failed:
                    raise PluginError(f"could not ingest the sample FAQ: {report.failed}")
        self.collection = collection

        def search(question: str) -> list[Any]:
            return kb.search(question, collection, k=max(s.k * 2, 5))

        return search

    @tool
    def answer(self, question: str, ctx: ToolContext) -> dict:
        """Search the shop's FAQ (shipping, returns, refunds, damage, warranty, account, payment,
        contact and opening hours): for any question about the shop's policies. Returns passages
        with citations to answer from, or says the FAQ has no answer.

        Args:
            question: The customer's question, e.g. "How long do refunds take?".
        """
        question = " ".join((question or "").split())
        if not question:
            raise ValueError("question is empty")
        assert self.search is not None
        hits = self.search(question)
        good = relevant(hits, self.settings.min_similarity)[: self.settings.k]
        best = max((h for h in hits if getattr(h, "similarity", None) is not None), key=lambda h: h.similarity,
                   default=None)
        self._log(ctx, question, bool(good), best)
        if not good:
            return {"found": False, "message": DONT_KNOW}
        passages = [{"cite": cite(h), "text": _passage(h.text)} for h in good]
        return {"found": True, "passages": passages, "how_to_answer": HOW_TO_ANSWER.format(example=passages[0]["cite"])}

    def _log(self, ctx: ToolContext, question: str, answered: bool, best: Any) -> None:
        conn = connect(self.data_dir / "questions.sqlite")
        try:
            with transaction(conn):
                conn.execute(
                    "INSERT INTO questions (at, session_id, question, answered, best_similarity, best_source)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), ctx.session_id, question, int(answered),
                     None if best is None else round(float(best.similarity), 4), None if best is None else cite(best)),
                )  # fmt: skip
        finally:
            conn.close()
