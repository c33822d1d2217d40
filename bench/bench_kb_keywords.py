"""Benchmark: the knowledge base's keyword query, all terms ORed vs common terms left out.

Builds the kb's own SQLite schema (chunks + FTS5, porter) with N synthetic chunks made of Debian
FAQ sentences (3-8 each, so common words are in most chunks, as in a real single-topic corpus),
then times FAQ-style questions both ways in one run, interleaved:

  or-all   every content word ORed (what the store did before)
  store    KnowledgeBase._match: words in over half the rows left out (FTS5's bm25 gives them
           an idf of ~0), ANDed when all are common

and reports p50/p95 per mode and how many of the top 10 the two share (10 = same ranking).

Usage:  python bench/bench_kb_keywords.py [--chunks 112000] [--rounds 5]
Needs the debian-faq package (/usr/share/doc/debian/FAQ).
"""

from __future__ import annotations

import argparse
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from assistant.documents.keywords import words  # noqa: E402
from plugins.kb.store import _SCHEMA, KnowledgeBase  # noqa: E402

QUESTIONS = [
    "How do I upgrade my Debian system from stable to testing?",
    "What is the backup mirror for the Antarctic station?",
    "Where can I find the source code of a package?",
    "How do I install a package that is not in Debian?",
    "What architectures does Debian support?",
    "How can I report a bug in a package?",
    "How do I keep my system up to date with security fixes?",
    "What is the difference between main, contrib and non-free?",
]
SQL = ("SELECT c.id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid"
       " WHERE chunks_fts MATCH ? AND c.collection = ? ORDER BY bm25(chunks_fts) LIMIT 20")


def build(path: Path, n: int) -> sqlite3.Connection:
    from bench_read import faq_paragraphs

    paragraphs = [getattr(p, "text", p) for p in faq_paragraphs()]
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p) if len(s) > 20]
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    rng = random.Random(1)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 8)))
        rows.append((f"c{i}", "bench", "sha", i, text))
    with db:
        db.executemany("INSERT INTO chunks(id, collection, sha256, idx, text) VALUES (?, ?, ?, ?, ?)", rows)
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=112000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        db = build(Path(tmp) / "kb.sqlite", args.chunks)
        print(f"built {args.chunks:,} chunks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        kb = KnowledgeBase.__new__(KnowledgeBase)  # only its SQLite side is needed
        kb.db = db
        modes = {
            "or-all": lambda terms: " OR ".join(f'"{t}"' for t in terms),
            "store": kb._match,
        }
        times: dict[str, list[float]] = {m: [] for m in modes}
        tops: dict[str, dict[str, list[str]]] = {m: {} for m in modes}
        for r in range(args.rounds):
            order = list(modes) if r % 2 == 0 else list(reversed(modes))
            for q in QUESTIONS:
                terms = list(dict.fromkeys(words(q)))
                for m in order:
                    t = time.perf_counter()
                    ids = [row[0] for row in db.execute(SQL, (modes[m](terms), "bench"))]
                    times[m].append((time.perf_counter() - t) * 1000)
                    tops[m][q] = ids[:10]
        print(f"\n{args.chunks:,} chunks, {len(QUESTIONS)} questions x {args.rounds} rounds, top 20 by bm25\n")
        print("| mode | p50 ms | p95 ms |\n|---|---:|---:|")
        for m, ts in times.items():
            ts = sorted(ts)
            print(f"| {m} | {statistics.median(ts):.1f} | {ts[int(0.95 * (len(ts) - 1))]:.1f} |")
        print(f"\nstore/or-all p50: {statistics.median(times['store']) / statistics.median(times['or-all']):.2f}\n")
        print("| question | query (store) | top-10 shared |\n|---|---|---:|")
        for q in QUESTIONS:
            shared = len(set(tops["or-all"][q]) & set(tops["store"][q]))
            print(f"| {q} | `{kb._match(list(dict.fromkeys(words(q))))}` | {shared} |")


if __name__ == "__main__":
    main()
