"""Keyword matching: the content words of a question, and BM25 over a document's passages.

The knowledge base takes `words()` for its SQLite FTS5 queries; the long-document reader ranks
a document's passages in memory with `KeywordIndex` to put the original text that matches the
question (and what the map step found) in front of the final answer.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from typing import Iterable

STOP = frozenset("""a about after all also am an and any are as at be been but by can could did do does
for from had has have he her his how i if in into is it its just me my no not of on or our she so
than that the their them then there these they this those to us was we were what when where which
who whom why will with would you your""".split())


def words(text: str) -> list[str]:
    """Lower-cased content words in order (no stop words, no single letters), repeats kept."""
    return [t for t in re.findall(r"\w+", text.lower()) if len(t) > 1 and t not in STOP]


def stem(term: str) -> str:
    """A light plural/verb-form fold so 'mirrors' meets 'mirror' and 'maintained' meets 'maintainer'.

    Deliberately crude: it only has to map related forms to one key, not to a real word."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ers", ""), ("er", ""), ("ed", ""), ("s", "")):
        if term.endswith(suffix) and len(term) - len(suffix) >= 4 and not term.endswith("ss"):
            return term[: len(term) - len(suffix)] + keep
    return term


def terms(text: str) -> list[str]:
    return [stem(t) for t in words(text)]


class KeywordIndex:
    """Okapi BM25 over a few thousand passages, in memory (a document's worth)."""

    def __init__(self, texts: Iterable[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(terms(t)) for t in texts]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = (sum(self.lengths) / len(self.lengths)) if self.docs else 1.0
        self.k1, self.b = k1, b
        n = len(self.docs)
        df = Counter(t for d in self.docs for t in d)
        self._unseen = math.log(1 + (n + 0.5) / 0.5)  # a term no passage has is as rare as can be
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def weight(self, term: str) -> float:
        return self.idf.get(term, self._unseen)

    def score(self, i: int, query: dict[str, float]) -> float:
        d, norm = self.docs[i], self.k1 * (1 - self.b + self.b * self.lengths[i] / max(1e-9, self.avg))
        total = 0.0
        for term, w in query.items():
            tf = d.get(term)
            if tf:
                total += w * self.idf[term] * tf * (self.k1 + 1) / (tf + norm)
        return total

    def coverage(self, i: int, query_terms: Iterable[str]) -> float:
        """Share of the query's rarity (idf mass) that passage i contains: 1.0 = every term."""
        wanted = set(query_terms)
        total = sum(self.weight(t) for t in wanted)
        return sum(self.weight(t) for t in wanted if t in self.docs[i]) / total if total else 0.0

    def search(self, query: dict[str, float], k: int) -> list[tuple[int, float]]:
        scored = ((i, self.score(i, query)) for i in range(len(self.docs)))
        return heapq.nlargest(k, (s for s in scored if s[1] > 0), key=lambda s: s[1])
