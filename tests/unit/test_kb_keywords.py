"""The knowledge base's keyword query leaves out words found in most chunks: FTS5's bm25 gives
them no weight, so the ranking is unchanged, but they would make every query sort the whole
collection."""

import sqlite3

from assistant_plugins.kb.store import _SCHEMA, KnowledgeBase


def fts(rows: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.executescript(_SCHEMA)
    with db:
        db.executemany("INSERT INTO chunks(id, collection, sha256, idx, text) VALUES (?, 'c', 's', ?, ?)",
                       [(f"c{i}", i, text) for i, text in enumerate(rows)])
    return db


def top(db, match: str, n: int = 10) -> list[int]:
    return [r[0] for r in db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? "
                                     "ORDER BY bm25(chunks_fts), rowid LIMIT ?", (match, n))]


def test_common_words_are_dropped_without_changing_the_ranking():
    rows = [f"Debian package notes number {i}." + (" The backup mirror is icefloe." if i % 97 == 0 else "")
            + (" Mirror sites are listed." if i % 7 == 0 else "") for i in range(3000)]
    db = fts(rows)
    kb = KnowledgeBase.__new__(KnowledgeBase)
    kb.db = db
    match = kb._match(["debian", "backup", "mirror", "package"])
    assert match == '"backup" OR "mirror"'  # 'debian' and 'package' are in every row
    full = '"debian" OR "backup" OR "mirror" OR "package"'
    assert top(db, match) == top(db, full)
    assert top(db, match, 31) == top(db, full, 31)  # every row with 'backup' first, as before
    # every term common: ANDed, so only rows with all of them match
    assert kb._match(["debian", "package"]) == '"debian" AND "package"'
    # small collections keep the plain OR (nothing to gain)
    kb.db = fts(rows[:500])
    assert kb._match(["debian", "backup"]) == '"debian" OR "backup"'
