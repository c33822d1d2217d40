"""Benchmark: the knowledge base (plugins/kb) - ingest throughput, query latency, retrieval quality.

Three parts, all through `KnowledgeBase` itself (embedded Chroma + SQLite FTS5, MiniLM vectors):

  ingest    chunks/s for a corpus of N chunks, split into where the time goes:
              load+chunk  reading the files, sentence split, token counting, packing
              embed       MiniLM on the chunks (encode, batch 64)
              chroma      `collection.upsert` of each batch of vectors
              sqlite      inserting the chunk rows (FTS5 index via trigger) and the commits
            measured by wrapping the embedder, the Chroma collection and the SQLite
            connection (timing only; the calls and their arguments are unchanged).
            Up to --embed-limit chunks (default 10k) are embedded for real. Larger sizes
            (100k) would take 40+ min of MiniLM on 2 cores, so there the vectors are
            PRECOMPUTED: real MiniLM vectors of real chunks (those of the smaller real run, or
            --pool chunks embedded once) reused with small random perturbations (cosine ~0.95 to
            the original), so only the store/index side is measured. The table says which.
  query     latency p50/p95 of `search(k=5)` per mode (hybrid, vector, keyword), query
            embedding included (always the real MiniLM), over the Debian FAQ questions as
            queries; plus the first query after the ingest (Chroma may index lazily).
  recall    the Debian FAQ (package debian-faq: /usr/share/doc/debian/FAQ/*.en.html). Every
            numbered heading that is a question ("3.1.11. I am currently tracking stable. Can
            I change ...?") is a query (number stripped); a hit is relevant when its section
            path ends with that heading. hit@k (= recall@k: one relevant section per query) for
            k = 1, 3, 5, 10 and MRR@10, for hybrid vs vector vs keyword. Two variants:
              with-headings  the FAQ as ingested normally. The question text is itself the
                             section heading, indexed in the chunk text, the FTS section
                             column and the embedded text: an easy lookup.
              no-headings    the same FAQ with every numbered heading reduced to its number
                             ("3.1.11.") in both the text and the section paths before
                             ingest, so the question words are nowhere in the answer's chunk
                             (only in cross-references elsewhere, which then count as misses):
                             how well the answer's own words are found from the question.

The corpus for ingest/query: Markdown files of sections and paragraphs whose sentences are
sampled (seeded) from the Debian FAQ, so vocabulary and term frequencies are real.

Usage:  python bench/bench_kb.py [--sizes 10000,100000] [--embed-limit 10000] [--queries 120]
                                 [--pool 3000] [--no-recall] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from assistant.documents.loaders import load_document
from assistant.documents.model import Block, Document, with_offsets

FAQ_GLOB = "/usr/share/doc/debian/FAQ/*.en.html"
NUMBERED = re.compile(r"^(\d+(?:\.\d+)+\.)\s+(.*)$")
MODES = ("hybrid", "vector", "keyword")
KS = (1, 3, 5, 10)


# --- timing wrappers (measure, never change behaviour) ---------------------------------------


@dataclass
class Clock:
    embed: float = 0.0
    count: float = 0.0
    chroma: float = 0.0
    sqlite: float = 0.0
    vectors: list = field(default_factory=list)  # captured real vectors (a pool for precomputed runs)


@contextmanager
def timed(clock: "Clock", part: str):
    """Add the time the block takes to `clock.<part>`, also when it raises."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        setattr(clock, part, getattr(clock, part) + time.perf_counter() - t0)


class TimedEmbedder:
    """The real embedder, timed; or (pool given) one that returns perturbed pool vectors."""

    def __init__(self, real, clock: Clock, capture: int = 0, pool=None, seed: int = 0) -> None:
        self.real, self.clock, self.capture, self.pool = real, clock, capture, pool
        self.dim, self.max_tokens = real.dim, real.max_tokens
        self.rng = __import__("numpy").random.default_rng(seed)
        self.next = 0

    def count_tokens(self, texts):
        with timed(self.clock, "count"):
            return self.real.count_tokens(texts)

    def encode(self, texts, batch_size: int = 64):
        with timed(self.clock, "embed"):
            if self.pool is None:
                out = self.real.encode(texts, batch_size=batch_size)
                if len(self.clock.vectors) < self.capture:
                    self.clock.vectors.extend(out[: self.capture - len(self.clock.vectors)])
                return out
            import numpy as np

            idx = (np.arange(len(texts)) + self.next) % len(self.pool)
            self.next += len(texts)
            v = self.pool[idx] + self.rng.normal(0.0, 0.017, (len(texts), self.pool.shape[1])).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            return v.tolist()


class TimedCollection:
    def __init__(self, inner, clock: Clock) -> None:
        self._inner, self._clock = inner, clock

    def upsert(self, **kw):
        with timed(self._clock, "chroma"):
            return self._inner.upsert(**kw)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class TimedConnection:
    """sqlite3.Connection proxy: executemany and commits (the `with db:` exit) are timed."""

    def __init__(self, inner, clock: Clock) -> None:
        self._inner, self._clock = inner, clock

    def executemany(self, *a):
        with timed(self._clock, "sqlite"):
            return self._inner.executemany(*a)

    def __enter__(self):
        return self._inner.__enter__()

    def __exit__(self, *exc):
        with timed(self._clock, "sqlite"):
            return self._inner.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def open_kb(root: Path, clock: Clock, embedder):
    from plugins.kb.store import KnowledgeBase

    kb = KnowledgeBase(root)
    kb._embedder = embedder
    kb.db = TimedConnection(kb.db, clock)
    original = kb._vectors
    kb._vectors = lambda collection, create=False: TimedCollection(original(collection, create), clock)
    return kb


# --- the FAQ ------------------------------------------------------------------------------


def faq_files() -> list[str]:
    files = sorted(glob.glob(FAQ_GLOB))
    if not files:
        sys.exit(f"no Debian FAQ at {FAQ_GLOB}: apt-get install -y debian-faq")
    return files


def faq_questions(docs: list[Document]) -> list[tuple[str, str, str]]:
    """(query, heading, number) for every numbered heading that asks a question and has a body."""
    out = []
    for doc in docs:
        for i, b in enumerate(doc.blocks):
            m = NUMBERED.match(b.text)
            if (
                b.heading
                and m
                and b.text.rstrip().endswith("?")
                and i + 1 < len(doc.blocks)
                and not doc.blocks[i + 1].heading
            ):
                out.append((m.group(2).strip(), b.text, m.group(1)))
    return out


def strip_headings(doc: Document) -> Document:
    """The same document with every numbered heading reduced to its number, in text and sections."""

    def short(part: str) -> str:
        m = NUMBERED.match(part)
        return m.group(1) if m else part

    blocks = [
        Block(
            short(b.text) if b.heading else b.text,
            b.page,
            " > ".join(short(p) for p in b.section.split(" > ")),
            heading=b.heading,
        )
        for b in doc.blocks
    ]
    import hashlib

    return Document(
        doc.source.replace(".en.html", ".noheadings.html"),
        doc.kind,
        hashlib.sha256(("noheadings" + doc.sha256).encode()).hexdigest(),
        with_offsets(blocks),
        doc.title,
        doc.pages,
    )


def sentence_pool(docs: list[Document]) -> tuple[list[str], list[str]]:
    sentences, headings = [], []
    for doc in docs:
        for b in doc.blocks:
            if b.heading:
                headings.append(NUMBERED.sub(r"\2", b.text))
            else:
                sentences += [s for s in re.split(r"(?<=[.!?])\s+", b.text) if len(s) > 20]
    return sentences, headings


def write_corpus(folder: Path, target_chunks: int, sentences: list[str], headings: list[str], seed: int = 1) -> int:
    """Markdown files of about `target_chunks` 200-token chunks in all (about 3 per section)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sections = max(1, target_chunks // 3)
    files = 0
    for f in range(0, sections, 10):
        parts = [f"# Handbook volume {f // 10 + 1}"]
        for s in range(f, min(sections, f + 10)):
            parts.append(f"## {s + 1}. {rng.choice(headings)}")
            for _ in range(4):
                parts.append(" ".join(rng.choice(sentences) for _ in range(rng.randint(3, 6))))
        (folder / f"vol{f // 10 + 1:05d}.md").write_text("\n\n".join(parts) + "\n")
        files += 1
    return files


# --- measurements -------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def query_latency(kb, collection: str, queries: list[str]) -> dict:
    first_t0 = time.perf_counter()
    kb.search(queries[0], collection, k=5, mode="hybrid")
    out = {"first": time.perf_counter() - first_t0}
    for q in queries[1:6]:  # warm-up
        for mode in MODES:
            kb.search(q, collection, k=5, mode=mode)
    for mode in MODES:
        times = []
        for q in queries:
            t0 = time.perf_counter()
            kb.search(q, collection, k=5, mode=mode)
            times.append(time.perf_counter() - t0)
        out[mode] = (pct(times, 0.5), pct(times, 0.95))
    times = []
    for q in queries:
        t0 = time.perf_counter()
        kb.embedder.encode([q])
        times.append(time.perf_counter() - t0)
    out["embed"] = (pct(times, 0.5), pct(times, 0.95))
    return out


def recall(kb, collection: str, questions: list[tuple[str, str, str]], target) -> dict:
    res = {}
    for mode in MODES:
        ranks = []
        for query, heading, number in questions:
            hits = kb.search(query, collection, k=max(KS), mode=mode)
            want = target(heading, number)
            rank = next((i + 1 for i, h in enumerate(hits) if h.section.split(" > ")[-1] == want), None)
            ranks.append(rank)
        res[mode] = (
            {k: sum(1 for r in ranks if r and r <= k) / len(ranks) for k in KS},
            sum(1 / r for r in ranks if r) / len(ranks),
        )
    return res


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="corpus sizes in chunks (approximate)")
    ap.add_argument("--embed-limit", type=int, default=10000, help="sizes above this use precomputed vectors")
    ap.add_argument("--pool", type=int, default=3000, help="real vectors reused for precomputed sizes")
    ap.add_argument("--queries", type=int, default=120, help="latency queries per mode (FAQ questions, cycled)")
    ap.add_argument("--no-recall", action="store_true")
    ap.add_argument("--work", default="", help="working folder (default: a new temp folder, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    import numpy as np

    from plugins.kb.embed import get_embedder

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-kb-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    real = get_embedder()
    print(f"MiniLM loaded in {time.perf_counter() - t0:.1f} s ({real.name})", file=sys.stderr)
    files = faq_files()
    docs = [load_document(f) for f in files]
    questions = faq_questions(docs)
    sentences, headings = sentence_pool(docs)
    queries = [q for q, _, _ in questions]
    queries = (queries * (args.queries // max(1, len(queries)) + 1))[: args.queries]
    recall_rows, ingest_rows, query_rows = {}, [], []
    try:
        if not args.no_recall:
            for variant in ("with-headings", "no-headings"):
                clock = Clock()
                kb = open_kb(work / f"faq-{variant}", clock, TimedEmbedder(real, clock))
                t0 = time.perf_counter()
                for doc in docs:
                    kb.ingest_document(doc if variant == "with-headings" else strip_headings(doc), "faq")
                chunks = kb.collections()[0].chunks
                print(
                    f"FAQ {variant}: {chunks} chunks ingested in {time.perf_counter() - t0:.1f} s (load {_load()})",
                    file=sys.stderr,
                )
                target = (lambda h, n: h) if variant == "with-headings" else (lambda h, n: n)
                recall_rows[variant] = (chunks, recall(kb, "faq", questions, target))
                kb.close()
        pool, captured = None, []
        for size in sizes:
            clock = Clock()
            precomputed = size > args.embed_limit
            if precomputed and pool is None:
                if len(captured) < 100:  # no real run before this one: embed a pool now
                    tmp = Clock()
                    kb = open_kb(work / "pool", tmp, TimedEmbedder(real, tmp, capture=args.pool))
                    write_corpus(work / "pool-docs", args.pool, sentences, headings, seed=99)
                    kb.ingest([work / "pool-docs"], "pool")
                    kb.close()
                    captured = tmp.vectors
                    print(
                        f"embedded {len(captured)} real chunks for the vector pool in {tmp.embed:.1f} s",
                        file=sys.stderr,
                    )
                pool = np.asarray(captured, dtype=np.float32)
            embedder = TimedEmbedder(
                real, clock, capture=args.pool if not precomputed else 0, pool=pool if precomputed else None
            )
            corpus = work / f"corpus-{size}"
            nfiles = write_corpus(corpus, size, sentences, headings, seed=size)
            kb = open_kb(work / f"kb-{size}", clock, embedder)
            load_before = _load()
            rep = kb.ingest([corpus], "bench")
            if rep.failed:
                sys.exit(f"ingest failed: {rep.failed[:3]}")
            if not precomputed:
                captured = clock.vectors
            disk = sum(p.stat().st_size for p in (work / f"kb-{size}").rglob("*") if p.is_file())
            ingest_rows.append((size, rep.chunks, nfiles, precomputed, rep.seconds, clock, disk, load_before, _load()))
            print(
                f"{size}: {rep.chunks} chunks in {rep.seconds:.1f} s (embed {clock.embed:.1f}, chroma {clock.chroma:.1f}, "
                f"sqlite {clock.sqlite:.1f}; load {_load()})",
                file=sys.stderr,
            )
            kb._embedder = real  # queries are always embedded by the real model
            query_rows.append((size, rep.chunks, precomputed, query_latency(kb, "bench", queries), _load()))
            kb.close()
            shutil.rmtree(corpus, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nKnowledge base (plugins/kb): embedded Chroma + SQLite FTS5, all-MiniLM-L6-v2 on CPU "
        f"({os.cpu_count()} cores), chunk_tokens 200, overlap 40, batch 64. Load (1/5/15 min) at the end: {_load()}\n"
    )
    print("### Ingest\n")
    print(
        "Corpus: Markdown files of sentences sampled from the Debian FAQ. 'vectors: real' = MiniLM embedded every "
        "chunk; 'vectors: PRECOMPUTED' = real MiniLM vectors of real chunks reused with small perturbations, so "
        "the embed column is ~0 and the row measures load+chunk and the store/index side only.\n"
    )
    print(
        "| chunks | files | vectors | total s | chunks/s | load+chunk s | embed s | chroma upsert s | sqlite insert+commit s "
        "| store-only chunks/s (chroma+sqlite) | embed share | disk MB | load before -> after |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for size, chunks, nfiles, pre, secs, c, disk, before, after in ingest_rows:
        other = secs - c.embed - c.chroma - c.sqlite
        print(
            f"| {chunks:,} | {nfiles} | {'PRECOMPUTED' if pre else 'real'} | {secs:.1f} | {chunks / secs:,.0f} | {other:.1f} "
            f"| {c.embed:.1f} | {c.chroma:.1f} | {c.sqlite:.1f} | {chunks / max(1e-9, c.chroma + c.sqlite):,.0f} "
            f"| {c.embed / secs:.0%} | {disk / 1e6:,.0f} | {before} -> {after} |"
        )
    print("\n### Query latency (search k=5, query embedding included; milliseconds)\n")
    print(
        f"{len(queries)} queries (Debian FAQ questions) per mode after 5 warm-up queries; 'first' is the first "
        "search after the ingest.\n"
    )
    print(
        "| chunks | vectors | first query | hybrid p50 | hybrid p95 | vector p50 | vector p95 | keyword p50 | keyword p95 "
        "| query embed p50 | load after |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for size, chunks, pre, q, after in query_rows:
        ms = lambda x: f"{x * 1000:.1f}"
        print(
            f"| {chunks:,} | {'PRECOMPUTED' if pre else 'real'} | {ms(q['first'])} | {ms(q['hybrid'][0])} | {ms(q['hybrid'][1])} "
            f"| {ms(q['vector'][0])} | {ms(q['vector'][1])} | {ms(q['keyword'][0])} | {ms(q['keyword'][1])} "
            f"| {ms(q['embed'][0])} | {after} |"
        )
    if recall_rows:
        print(
            f"\n### Retrieval quality on the Debian FAQ ({len(questions)} question headings as queries, "
            f"{len(files)} HTML files)\n"
        )
        print(
            "hit@k = share of questions whose section is among the top k hits (one relevant section each, so it is "
            "recall@k); MRR over the top 10. with-headings: the question text is the indexed section heading (easy). "
            "no-headings: numbered headings reduced to their numbers before ingest (the question words are gone "
            "from the answer's chunks).\n"
        )
        print("| variant | chunks | mode | hit@1 | hit@3 | hit@5 | hit@10 | MRR@10 |")
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        for variant, (chunks, res) in recall_rows.items():
            for mode in MODES:
                at, mrr = res[mode]
                print(
                    f"| {variant} | {chunks} | {mode} | " + " | ".join(f"{at[k]:.2f}" for k in KS) + f" | {mrr:.3f} |"
                )


if __name__ == "__main__":
    main()
