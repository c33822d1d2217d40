"""Reading a whole document with a model whose context is far smaller: map, then reduce.

Map: every chunk is asked the question on its own, with bounded concurrency, and answers in a
fixed JSON shape (`relevant`, `answer`, `quotes`), enforced by vLLM's structured output when
the server supports it. The instructions and the question come first in every map request, so
the engine's prefix cache serves that part once for all chunks. Quotes are checked against
the chunk: only verbatim ones survive, so the reduce step answers from the original text
rather than from what a small model thinks it read.

Findings count as evidence only with a verified quote. A small model often calls a chunk
relevant and then answers from the question's own words; such claims only steer the next step.

Re-retrieval: the document is also cut into short passages, ranked by BM25 against the
question's words (plus, weighted lower, the words of what the map step found), and the best
passages go to the reduce step verbatim. This is the safety net for a map step that missed
or garbled the fact: the final answer still sees the original sentence, with its page.

Reduce: the verified findings and the passages, numbered with their citations, are combined
into one answer that cites them as [n]. When the findings do not fit the context they are
reduced in groups first (hierarchically), keeping their numbers. With nothing relevant the
reader says so instead of asking the model to guess. The final answer is cached like the map.

Compared with Qwen-Agent's ParallelDocQA (map over ~1000-token chunks, then keyword re-retrieval
and an answer from the retrieved original text): chunks here fill the context the model
actually has (fewer requests), map replies are short and schema-bound, partial answers are
cached so a cancelled or repeated read resumes, and the evidence reaching the final answer is
verified verbatim quotes and original passages, each with its page/section citation.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from assistant.documents.chunking import Chunk, chunk_document
from assistant.documents.keywords import KeywordIndex, terms
from assistant.documents.model import Document
from assistant.documents.tokens import ratio_counter
from assistant.events import Progress

FINDING_SCHEMA = {
    "type": "object",
    "properties": {
        "relevant": {"type": "boolean"},
        "answer": {"type": "string", "maxLength": 800},
        "quotes": {"type": "array", "items": {"type": "string", "maxLength": 400}, "maxItems": 3},
    },
    "required": ["relevant", "answer", "quotes"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Finding:
    chunk: int  # chunk index
    relevant: bool
    answer: str
    quotes: tuple[str, ...] = ()
    cached: bool = False
    pages: tuple[int, ...] = ()  # pages the verified quotes are on: a citation narrower than the chunk's
    error: str = ""  # the chunk could not be read (after one retry)


@dataclass(frozen=True)
class Estimate:
    chunks: int
    document_tokens: int
    prompt_tokens: int  # document + per-request instructions, summed over the map step
    max_output_tokens: int  # map replies at their cap, plus the reduce

    def describe(self) -> str:
        return (f"{self.chunks} chunks, ~{self.prompt_tokens:,} prompt tokens "
                f"(document {self.document_tokens:,}) and at most {self.max_output_tokens:,} output tokens")


@dataclass
class ReadResult:
    answer: str
    sources: list[str]  # "[n] citation" lines for the numbers the answer uses
    findings: list[Finding]
    chunks: int
    relevant: int
    cached: int
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reduce_rounds: int = 0
    passages: int = 0  # original passages the final answer was shown (re-retrieval)
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)

    def text(self) -> str:
        return self.answer + ("\n\nSources:\n" + "\n".join(self.sources) if self.sources else "")


class Reader:
    """Map-reduce reading over one document's chunks, through any chat client
    (ChatClient, or ScriptedModel in tests)."""

    def __init__(self, model: Any, prompts: Any, *, context_tokens: int, count: Callable[[list[str]], list[int]],
                 concurrency: int = 8, map_max_tokens: int = 256, answer_max_tokens: int = 512,
                 temperature: float = 0.0, seed: int | None = None, cache: Any = None, model_name: str = "",
                 progress: Callable[[Progress], None] | None = None, structured: bool = True,
                 recall_passages: int = 6, passage_tokens: int = 160) -> None:
        self.model, self.prompts, self.count = model, prompts, count
        self.context_tokens = context_tokens
        self.concurrency = max(1, concurrency)
        self.map_max_tokens, self.answer_max_tokens = map_max_tokens, answer_max_tokens
        self.temperature, self.seed = temperature, seed
        self.cache, self.model_name = cache, model_name
        self.progress = progress or (lambda event: None)
        self.structured = structured
        self.recall_passages, self.passage_tokens = recall_passages, passage_tokens
        self._passages: dict[str, tuple[list[Chunk], KeywordIndex]] = {}
        self.requests = self.prompt_tokens = self.completion_tokens = 0
        self._versions: dict[bool, str] = {}

    # --- sizes ----------------------------------------------------------------------------

    def map_overhead(self, question: str, summary: bool = False) -> int:
        """Tokens of a map request besides the chunk (instructions, question, chat markup)."""
        msgs = self._map_messages(question, "", "", 1, 1, summary)
        return sum(self.count([m["content"] for m in msgs])) + 16 * len(msgs)

    def chunk_budget(self, question: str = "x" * 200, summary: bool = False) -> int:
        """Largest chunk a map request can carry in this context."""
        return self.context_tokens - self.map_overhead(question, summary) - self.map_max_tokens - 32

    def estimate(self, chunks: list[Chunk], question: str, summary: bool = False) -> Estimate:
        doc_tokens = sum(c.tokens for c in chunks)
        overhead = self.map_overhead(question, summary)
        return Estimate(len(chunks), doc_tokens, doc_tokens + overhead * len(chunks),
                        self.map_max_tokens * len(chunks) + self.answer_max_tokens * 2)

    # --- public -----------------------------------------------------------------------------

    async def answer(self, doc: Document, chunks: list[Chunk], question: str) -> ReadResult:
        return await self._read(doc, chunks, question, summary=False)

    async def summarize(self, doc: Document, chunks: list[Chunk], focus: str = "") -> ReadResult:
        return await self._read(doc, chunks, focus, summary=True)

    # --- map --------------------------------------------------------------------------------

    async def _read(self, doc: Document, chunks: list[Chunk], question: str, summary: bool) -> ReadResult:
        started = time.perf_counter()
        est = self.estimate(chunks, question, summary)
        what = "summarising" if summary else "reading"
        self.progress(Progress("documents", f"{what} all of {doc.title or doc.source}: {est.describe()}", 0.0))
        findings: list[Finding | None] = [None] * len(chunks)
        sem = asyncio.Semaphore(self.concurrency)
        done = relevant = 0

        errors: list[BaseException] = []
        # The passage index for re-retrieval is built in a thread while the chunks are read.
        indexing = None if summary or not self.recall_passages else asyncio.ensure_future(
            asyncio.to_thread(self._passage_index, doc))

        async def one(c: Chunk) -> None:
            nonlocal done, relevant
            from assistant.errors import ContextTooLong, ModelError

            async with sem:
                for attempt in (1, 2):
                    try:
                        f = await self._map_one(doc, c, len(chunks), question, summary)
                        break
                    except ContextTooLong:  # token counts were estimates and this chunk ran over
                        f = await self._map_halves(doc, c, len(chunks), question, summary)
                        break
                    except ModelError as exc:  # one bad chunk (a dropped stream, a 500) does not sink the read
                        if attempt == 2:
                            errors.append(exc)
                            f = Finding(c.index, False, "", error=str(exc))
            findings[c.index] = f
            done += 1
            relevant += f.relevant
            rate = done / max(1e-6, time.perf_counter() - started)
            eta = (len(chunks) - done) / rate if rate else 0
            self.progress(Progress("documents", f"read {done}/{len(chunks)} chunks ({relevant} relevant), "
                                                f"{rate:.1f} chunks/s, ETA {eta:.0f} s", done / len(chunks) * 0.9))

        tasks = [asyncio.ensure_future(one(c)) for c in chunks]
        try:
            await asyncio.gather(*tasks)
        finally:  # cancelled (Ctrl-C, Esc): stop the rest; finished chunks are already cached
            for t in tasks:
                t.cancel()
        got = [f for f in findings if f is not None]
        failed = [f for f in got if f.error]
        if errors and len(failed) == len(got):
            raise errors[0]
        claimed = [f for f in got if f.relevant]
        if summary:
            useful, passages = [f for f in claimed if f.answer.strip()], []
        else:  # evidence is what the text says: findings with a verified quote, and matching passages
            useful = _dedupe([f for f in claimed if f.quotes])
            passages = self._recall(chunks, question, claimed, useful, *(await indexing)) if indexing else []
        if not useful and not passages:
            result = ReadResult(self._nothing_found(doc, question, len(chunks), summary), [], got, len(chunks), 0,
                                sum(f.cached for f in got))
        else:
            if passages:
                self.progress(Progress("documents", f"{len(passages)} passages of the original text match the "
                                                    "question; writing the answer", 0.91))
            answer, rounds, shown = await self._reduce(doc, chunks, useful, passages, question, summary)
            name = doc.source.rsplit("/", 1)[-1]
            cites = [_cite(chunks[f.chunk], f, name) for f in useful] + [p.citation(name) for p in shown]
            result = ReadResult(answer, _sources(cites, answer), got, len(chunks), len(useful),
                                sum(f.cached for f in got), reduce_rounds=rounds, passages=len(shown))
        result.requests, result.prompt_tokens, result.completion_tokens = self.requests, self.prompt_tokens, self.completion_tokens
        result.seconds = time.perf_counter() - started
        if failed:
            pages = ", ".join(chunks[f.chunk].citation() for f in failed[:5])
            result.answer += (f"\n\n(Note: {len(failed)} of {len(chunks)} parts could not be read ({pages}"
                              f"{', ...' if len(failed) > 5 else ''}): {failed[0].error})")
        result.stats["failed"] = len(failed)
        result.stats["unverified"] = len(claimed) - len(useful)  # said relevant, but quoted nothing from the text
        self.progress(Progress("documents", f"read {len(chunks)} chunks in {result.seconds:.1f} s "
                                            f"({result.relevant} relevant, {result.cached} from cache)", 1.0))
        return result

    def _map_messages(self, question: str, text: str, citation: str, n: int, total: int, summary: bool) -> list[dict]:
        name = "documents_summarize_map.md.j2" if summary else "documents_map.md.j2"
        system = self.prompts.render(name, question=question)
        user = f"Excerpt {n} of {total} ({citation}):\n\n{text}\n\n" + (
            "Summarise this excerpt." if summary else f"Question: {question}")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    async def _map_one(self, doc: Document, c: Chunk, total: int, question: str, summary: bool) -> Finding:
        key = None
        if self.cache is not None:
            key = self.cache.key(doc.sha256, c, question, summary, self.model_name, self._prompt_version(summary))
            hit = self.cache.get(key)
            if hit is not None:
                return Finding(c.index, hit["relevant"], hit["answer"], tuple(hit["quotes"]), True,
                               tuple(hit.get("pages", ())))
        messages = self._map_messages(question, c.text, c.citation(), c.index + 1, total, summary)
        if summary:
            reply = await self._ask(messages, self.map_max_tokens)
            finding = Finding(c.index, bool(reply.strip()), reply.strip())
        else:
            finding = await self._map_question(messages, c, doc)
        if self.cache is not None:
            self.cache.put(key, {"relevant": finding.relevant, "answer": finding.answer, "quotes": list(finding.quotes),
                                 "pages": list(finding.pages)})
        return finding

    async def _map_halves(self, doc: Document, c: Chunk, total: int, question: str, summary: bool) -> Finding:
        """Read an over-long chunk as two halves cut at a sentence end, and join what they found."""
        text = c.text
        cut = text.rfind(". ", 0, len(text) // 2 + 200)
        cut = cut + 2 if cut > len(text) // 4 else len(text) // 2
        halves = [Chunk(c.index, text[:cut], c.start, c.start + cut, c.tokens // 2, c.page_start, c.page_end, c.section),
                  Chunk(c.index, text[cut:], c.start + cut, c.end, c.tokens // 2, c.page_start, c.page_end, c.section)]
        found = [await self._map_one(doc, h, total, question, summary) for h in halves]
        hits = [f for f in found if f.relevant]
        return Finding(c.index, bool(hits), " ".join(f.answer for f in hits).strip(),
                       tuple(q for f in hits for q in f.quotes), pages=tuple(sorted({p for f in hits for p in f.pages})))

    async def _map_question(self, messages: list[dict], c: Chunk, doc: Document) -> Finding:
        extra = None
        if self.structured:
            extra = {"response_format": {"type": "json_schema",
                                         "json_schema": {"name": "finding", "schema": FINDING_SCHEMA, "strict": True}}}
        try:
            reply = await self._ask(messages, self.map_max_tokens, extra)
        except Exception as exc:  # a server without structured output: ask for the JSON in words
            from assistant.errors import RequestRejected

            if not (self.structured and isinstance(exc, RequestRejected)):
                raise
            self.structured = False
            reply = await self._ask(messages, self.map_max_tokens)
        relevant, answer, quotes = parse_finding(reply)
        spans = [(q, quote_span(q, c.text)) for q in quotes]
        verified = tuple(q for q, span in spans if span)
        pages = sorted({p for _, span in spans if span for p in _pages_at(doc, c.start + span[0], c.start + span[1])})
        # A claim of relevance with neither an answer nor a verifiable quote carries nothing.
        return Finding(c.index, relevant and bool(answer or verified), answer, verified, pages=tuple(pages))

    def _prompt_version(self, summary: bool) -> str:
        """The map instructions as a cache-key part, rendered once per reader (not per chunk)."""
        if summary not in self._versions:
            name = "documents_summarize_map.md.j2" if summary else "documents_map.md.j2"
            self._versions[summary] = self.prompts.render(name, question="{q}")
        return self._versions[summary]

    async def _ask(self, messages: list[dict], max_tokens: int, extra: dict | None = None) -> str:
        kwargs: dict[str, Any] = {"temperature": self.temperature, "max_tokens": max_tokens}
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if extra:
            kwargs["extra"] = extra
        done = await self.model.chat(messages, **kwargs)
        self.requests += 1
        if done.usage:
            self.prompt_tokens += done.usage.prompt_tokens
            self.completion_tokens += done.usage.completion_tokens
        return done.text or ""

    # --- reduce ------------------------------------------------------------------------------

    def _finding_text(self, n: int, f: Finding, chunks: list[Chunk]) -> str:
        quotes = "".join(f'\n  > "{q}"' for q in f.quotes)
        return f"[{n}] ({_cite(chunks[f.chunk], f)}) {f.answer.strip()}{quotes}"

    # --- re-retrieval -------------------------------------------------------------------------

    def _passage_index(self, doc: Document) -> tuple[list[Chunk], KeywordIndex]:
        if doc.sha256 not in self._passages:
            # Passages are only ranked, never packed to a limit, so a character estimate sizes them
            # (the tokenizer would cost as much again as chunking the document did).
            passages = chunk_document(doc, ratio_counter(4.0, margin=1.0), max_tokens=self.passage_tokens)
            self._passages[doc.sha256] = (passages, KeywordIndex(p.text for p in passages))
        return self._passages[doc.sha256]

    def _recall(self, chunks: list[Chunk], question: str, claimed: list[Finding],
                useful: list[Finding], passages: list[Chunk], index: KeywordIndex) -> list[Chunk]:
        """Original passages that best match the question, best first (Qwen-Agent's keyword
        re-retrieval, steered by the map step: its words weigh in, its chunks rank higher)."""
        wanted = set(terms(question))
        if not wanted:
            return []
        query = dict.fromkeys(wanted, 1.0)
        for f in claimed:
            for t in terms(f.answer + " " + " ".join(f.quotes)):
                query.setdefault(t, 0.3)
        spans = [(chunks[f.chunk].start, chunks[f.chunk].end) for f in claimed]
        quotes = [q for f in useful for q in f.quotes]
        # With no chunk claiming relevance, only a passage holding most of the question's rare
        # words is worth showing; otherwise a third of them is enough.
        need = 0.34 if claimed else 0.6
        hits = []
        for i, score in index.search(query, 4 * self.recall_passages + 20):
            p = passages[i]
            if index.coverage(i, wanted) < need or any(quote_in(q, p.text) for q in quotes):
                continue  # too loose a match, or already in front of the model as a verified quote
            if any(start <= p.start and p.end <= end for start, end in spans):
                score *= 1.5
            hits.append((score, p))
        hits.sort(key=lambda h: -h[0])
        return [p for score, p in hits if score >= 0.3 * hits[0][0]][: self.recall_passages] if hits else []

    # --- reduce ------------------------------------------------------------------------------

    def _finding_text(self, n: int, f: Finding, chunks: list[Chunk]) -> str:
        quotes = "".join(f'\n  > "{q}"' for q in f.quotes)
        return f"[{n}] ({_cite(chunks[f.chunk], f)}) {f.answer.strip()}{quotes}"

    async def _reduce(self, doc: Document, chunks: list[Chunk], useful: list[Finding], passages: list[Chunk],
                      question: str, summary: bool) -> tuple[str, int, list[Chunk]]:
        """The final answer, the reduce rounds it took, and the passages it was shown."""
        numbered = [self._finding_text(n, f, chunks) for n, f in enumerate(useful, 1)]
        template = "documents_summarize_reduce.md.j2" if summary else "documents_reduce.md.j2"
        title = doc.title or doc.source
        fixed = sum(self.count([self.prompts.render(template, question=question, title=title, findings="")])) + 64
        budget = self.context_tokens - self.answer_max_tokens - fixed
        # Passages take at most a third of the room when there are findings too (all of it otherwise).
        shown, extra, room = [], [], budget // 3 if numbered else budget
        for p in passages:
            text = f"[{len(useful) + len(shown) + 1}] ({p.citation()}, original text) {' '.join(p.text.split())}"
            size = sum(self.count([text])) + 1
            if size > room:
                break
            shown.append(p)
            extra.append(text)
            room -= size
            budget -= size
        rounds = 0
        while True:
            rounds += 1
            counts = self.count(numbered)
            if sum(counts) + len(numbered) <= budget or len(numbered) <= 1:
                system = self.prompts.render(template, question=question, title=title,
                                             findings="\n".join(numbered + extra))
                messages = [{"role": "system", "content": system},
                            {"role": "user", "content": question or "Summarise the document."}]
                return (await self._final(messages)).strip(), rounds, shown
            # Too many findings for one request: combine neighbours in groups, keeping their [n] labels.
            groups, cur, size = [], [], 0
            for text, tokens in zip(numbered, counts):
                tokens = min(tokens, budget)
                if cur and size + tokens > budget:
                    groups.append(cur)
                    cur, size = [], 0
                cur.append(text if tokens < budget else text[: len(text) * budget // max(1, tokens + 1)])
                size += tokens
            groups.append(cur)
            self.progress(Progress("documents", f"combining {len(numbered)} findings in {len(groups)} groups", 0.92))
            merged = await asyncio.gather(*(self._merge(g, question, summary) for g in groups))
            if len(merged) >= len(numbered):  # no progress possible (each finding alone is too big)
                numbered = [m[: max(200, len(m) // 2)] for m in merged]
            else:
                numbered = merged

    async def _final(self, messages: list[dict]) -> str:
        """The reduce request, cached by its exact prompt: asking again costs nothing."""
        key = None
        if self.cache is not None:
            key = self.cache.text_key("reduce", self.model_name, json.dumps(messages), str(self.answer_max_tokens),
                                      str(self.temperature), str(self.seed))
            hit = self.cache.get(key)
            if hit is not None:
                return hit["answer"]
        answer = await self._ask(messages, self.answer_max_tokens)
        if key is not None:
            self.cache.put(key, {"answer": answer})
        return answer

    async def _merge(self, group: list[str], question: str, summary: bool) -> str:
        system = self.prompts.render("documents_merge.md.j2", question=question, summary=summary,
                                     findings="\n".join(group))
        # Every label a line starts with: a note merged in an earlier round carries several.
        heads = re.findall(r"^((?:\[\d+\]\s*)+)", "\n".join(group), flags=re.M)
        labels = " ".join(dict.fromkeys(re.findall(r"\[\d+\]", " ".join(heads))))
        merged = await self._ask([{"role": "system", "content": system},
                                  {"role": "user", "content": "Combine these notes."}], self.map_max_tokens * 2)
        # The merged note keeps the numbers it came from, so the final answer can still cite them.
        return f"{labels} {merged.strip()}"

    def _nothing_found(self, doc: Document, question: str, n: int, summary: bool) -> str:
        name = doc.title or doc.source
        if summary:
            return f"No part of {name} produced a summary ({n} chunks read)."
        return (f"I read all {n} parts of {name} and none of them answers: {question.strip()} "
                "The document does not seem to cover it.")


def _sources(citations: list[str], answer: str, limit: int = 12) -> list[str]:
    """Source lines for the numbers the answer cites (the first few when it cites none)."""
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    picked = [(n, c) for n, c in enumerate(citations, 1) if n in cited] or list(enumerate(citations, 1))
    lines = [f"[{n}] {c}" for n, c in picked[:limit]]
    if len(picked) > limit:
        lines.append(f"... and {len(picked) - limit} more")
    return lines


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Overlapping chunks find the same sentence twice: keep the first finding of each quote set."""
    seen: set[str] = set()
    out = []
    for f in findings:
        keys = {" ".join(q.lower().split()) for q in f.quotes}
        if keys and keys <= seen:
            continue
        seen |= keys
        out.append(f)
    return out


def parse_finding(reply: str) -> tuple[bool, str, list[str]]:
    """(relevant, answer, quotes) from a map reply: the JSON object, or plain words as a fallback."""
    text = reply.strip()
    if text.startswith("{") and not text.endswith("}"):
        return False, "", []  # cut off at the token limit: nothing usable
    m = re.search(r"\{.*\}", text, flags=re.S)
    if m:
        try:
            data = json.loads(m.group(0))
            if isinstance(data, dict):
                quotes = data.get("quotes") or []
                if isinstance(quotes, str):
                    quotes = [quotes]
                return bool(data.get("relevant")), str(data.get("answer") or "").strip(), [str(q) for q in quotes]
        except json.JSONDecodeError:
            pass
    if not text or re.match(r"^\W*(not relevant|irrelevant|no relevant|none)\b", text, flags=re.I):
        return False, "", []
    return True, text, []


def quote_span(quote: str, text: str) -> tuple[int, int] | None:
    """Where `quote` occurs in `text`, ignoring case and whitespace differences; None if it does not."""
    words = quote.strip().strip("\"'“”‘’").rstrip(".…").split()
    if len(" ".join(words)) < 8:
        return None
    m = re.search(r"\s+".join(map(re.escape, words)), text, flags=re.I)
    return (m.start(), m.end()) if m else None


def quote_in(quote: str, text: str) -> bool:
    return quote_span(quote, text) is not None


def _pages_at(doc: Document, start: int, end: int) -> list[int]:
    import bisect

    starts = [b.start for b in doc.blocks]
    first = max(0, bisect.bisect_right(starts, start) - 1)
    last = max(0, bisect.bisect_right(starts, max(start, end - 1)) - 1)
    return [b.page for b in doc.blocks[first:last + 1] if b.page is not None]


def _cite(chunk: Chunk, f: Finding, source: str = "") -> str:
    """The chunk's citation, narrowed to the pages its verified quotes are on."""
    if not f.pages:
        return chunk.citation(source)
    pages = str(f.pages[0]) if len(f.pages) == 1 else f"{f.pages[0]}-{f.pages[-1]}"
    parts = [source] if source else []
    parts.append(f"p. {pages}")
    if chunk.section:
        parts.append(f"§ {chunk.section}")
    return " ".join(parts)
