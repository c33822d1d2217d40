"""A knowledge base: documents chunked, embedded into Chroma, and keyword-indexed in SQLite.

SQLite (`catalog.sqlite`, WAL) is the source of truth: which files were ingested with which
content hash, every chunk's text and provenance, and an FTS5 index for BM25. Chroma holds the
vectors under the same chunk ids. Ingest writes a batch of vectors to Chroma first and then
commits the batch's rows in SQLite, so an interrupted ingest loses nothing committed and a
re-run resumes at the first chunk SQLite lacks (Chroma upserts by id, so repeating a batch is
harmless). Search only returns chunks SQLite knows, so vectors orphaned by a crash never surface.

Search is hybrid: vector neighbours and BM25 matches fused by reciprocal rank.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from assistant.documents.keywords import words
from assistant.errors import UsageError

SUPPORTED_SUFFIXES = {".pdf", ".docx", ".html", ".htm", ".xhtml", ".md", ".markdown", ".txt", ".text", ".rst"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
FILTER_KEYS = ("source", "kind", "section", "page")
RRF_K = 60  # the usual reciprocal-rank-fusion constant: ranks matter, raw scores do not
BATCH = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections(
    name TEXT PRIMARY KEY, embedding_model TEXT NOT NULL, dim INTEGER NOT NULL,
    chunk_tokens INTEGER NOT NULL, overlap INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
    collection TEXT NOT NULL, sha256 TEXT NOT NULL, kind TEXT, title TEXT, pages INTEGER,
    chunks INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(collection, sha256));
CREATE TABLE IF NOT EXISTS files(
    collection TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,
    ingested REAL, PRIMARY KEY(collection, path));
CREATE TABLE IF NOT EXISTS chunks(
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, collection TEXT NOT NULL, sha256 TEXT NOT NULL,
    idx INTEGER NOT NULL, text TEXT NOT NULL, source TEXT, kind TEXT, page_start INTEGER, page_end INTEGER,
    section TEXT, start INTEGER, end_ INTEGER);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(collection, sha256, idx);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, section, content='chunks', content_rowid='rowid', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, section) VALUES (new.rowid, new.text, new.section); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, section) VALUES ('delete', old.rowid, old.text, old.section); END;
"""


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    text: str
    score: float  # fused reciprocal-rank score: for ordering, not an absolute relevance
    source: str
    page: int | None
    section: str
    start: int
    end: int
    page_end: int | None = None
    kind: str = ""
    similarity: float | None = None  # cosine similarity of the vector match, when there was one
    vector_rank: int | None = None
    keyword_rank: int | None = None

    def citation(self) -> str:
        name = Path(self.source).name if self.source else "?"
        parts = [name]
        if self.page is not None:
            parts.append(f"p. {self.page}" if self.page_end in (None, self.page) else f"p. {self.page}-{self.page_end}")
        if self.section:
            parts.append(f"§ {self.section}")
        return " ".join(parts)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # same content already ingested from another path
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0  # chunks embedded in this run
    seconds: float = 0.0


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    files: int
    chunks: int
    embedding_model: str
    created: float


ProgressFn = Callable[[str, float | None], None]


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(f"invalid collection name {name!r}",
                         hint="use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


class KnowledgeBase:
    def __init__(self, root: str | Path, *, embedding_model: str = "auto", chroma_url: str = "",
                 chunk_tokens: int = 200, overlap: int = 40) -> None:
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.embedding_model = embedding_model
        self.chroma_url = chroma_url
        self.chunk_tokens, self.overlap = chunk_tokens, overlap
        self.db = sqlite3.connect(self.root / "catalog.sqlite", timeout=30, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed batch survives a process crash
        self.db.executescript(_SCHEMA)
        self._client = None
        self._embedder = None

    # --- resources (lazy: chromadb and sentence-transformers import in seconds) ---------

    @property
    def embedder(self):
        if self._embedder is None:
            from .embed import get_embedder

            self._embedder = get_embedder(self.embedding_model)
        return self._embedder

    def _chroma(self):
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            settings = Settings(anonymized_telemetry=False)
            if self.chroma_url:
                from urllib.parse import urlparse

                u = urlparse(self.chroma_url if "://" in self.chroma_url else f"http://{self.chroma_url}")
                self._client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                                   ssl=u.scheme == "https", settings=settings)
            else:
                self._client = chromadb.PersistentClient(path=str(self.root / "chroma"), settings=settings)
        return self._client

    def _vectors(self, collection: str, create: bool = False):
        name = f"kb-{collection}"
        client = self._chroma()
        if create:
            # No embedding function: Chroma's default would download a model. Vectors come from us.
            return client.get_or_create_collection(name, embedding_function=None,
                                                   configuration={"hnsw": {"space": "cosine"}})
        return client.get_collection(name, embedding_function=None)

    def close(self) -> None:
        self.db.close()

    # --- collections ---------------------------------------------------------------------

    def _collection_row(self, name: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM collections WHERE name=?", (name,)).fetchone()

    def _require(self, name: str) -> sqlite3.Row:
        row = self._collection_row(check_name(name))
        if row is None:
            known = ", ".join(c.name for c in self.collections()) or "none yet"
            raise UsageError(f"no knowledge-base collection named {name!r} (collections: {known})",
                             hint=f"create it with `assistant kb ingest PATH --collection {name}`")
        return row

    def _ensure_collection(self, name: str) -> sqlite3.Row:
        from .embed import resolve_embedding_model

        row = self._collection_row(check_name(name))
        model = resolve_embedding_model(self.embedding_model)  # compared without loading the model
        if row is None:
            self._vectors(name, create=True)
            with self.db:
                self.db.execute("INSERT INTO collections VALUES (?,?,?,?,?,?)",
                                (name, model, self.embedder.dim, self.chunk_tokens, self.overlap, time.time()))
            return self._collection_row(name)
        if row["embedding_model"] != model:
            raise UsageError(
                f"collection {name!r} was embedded with {row['embedding_model']!r}, not {model!r}",
                hint=f"use the same embedding model, or `assistant kb drop {name}` and ingest again")
        return row

    def collections(self) -> list[CollectionInfo]:
        rows = self.db.execute(
            "SELECT c.name, c.embedding_model, c.created,"
            " (SELECT count(*) FROM files f WHERE f.collection=c.name) AS files,"
            " (SELECT count(*) FROM chunks k WHERE k.collection=c.name) AS chunks"
            " FROM collections c ORDER BY c.name").fetchall()
        return [CollectionInfo(r["name"], r["files"], r["chunks"], r["embedding_model"], r["created"]) for r in rows]

    def files(self, collection: str) -> list[dict]:
        self._require(collection)
        rows = self.db.execute(
            "SELECT f.path, f.sha256, f.size, f.ingested, d.kind, d.title, d.pages, d.chunks, d.done"
            " FROM files f LEFT JOIN documents d ON d.collection=f.collection AND d.sha256=f.sha256"
            " WHERE f.collection=? ORDER BY f.path", (collection,)).fetchall()
        return [dict(r) for r in rows]

    def drop(self, collection: str) -> None:
        self._require(collection)
        with self.db:
            for table in ("chunks", "files", "documents", "collections"):
                key = "name" if table == "collections" else "collection"
                self.db.execute(f"DELETE FROM {table} WHERE {key}=?", (collection,))
        try:
            self._chroma().delete_collection(f"kb-{collection}")
        except Exception:  # noqa: BLE001 - already gone (e.g. a crash between the two steps)
            pass

    # --- ingest --------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], collection: str, *, progress: ProgressFn | None = None,
               sync: bool = True) -> IngestReport:
        """Add new and changed files, skip unchanged ones; with `sync`, files that vanished from
        an ingested folder are removed. Each batch of chunks is committed as it is embedded."""
        started = time.perf_counter()
        report = IngestReport()
        say = progress or (lambda msg, frac: None)
        self._ensure_collection(collection)
        files, folders = self._expand(paths, report)
        for n, path in enumerate(files):
            say(f"{path.name} ({n + 1}/{len(files)})", n / max(1, len(files)))
            try:
                self._ingest_file(path, collection, report, say, n, len(files))
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the ingest
                report.failed.append((str(path), _describe(exc)))
        if sync:
            seen = {str(p) for p in files}
            for folder in folders:
                prefix = str(folder).rstrip(os.sep) + os.sep
                gone = [r["path"] for r in self.db.execute(
                    "SELECT path FROM files WHERE collection=? AND substr(path, 1, ?)=?",
                    (collection, len(prefix), prefix)) if r["path"] not in seen and not Path(r["path"]).exists()]
                report.removed += self.remove(gone, collection)
        report.seconds = time.perf_counter() - started
        say(f"{report.chunks} chunks in {report.seconds:.1f} s", 1.0)
        return report

    def _expand(self, paths: Iterable[str | Path], report: IngestReport) -> tuple[list[Path], list[Path]]:
        files, folders = [], []
        for raw in paths:
            p = Path(raw).expanduser().resolve()
            if p.is_dir():
                folders.append(p)
                files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                                and not any(part.startswith(".") for part in f.relative_to(p).parts))
            elif p.is_file():
                files.append(p)
            else:
                report.failed.append((str(raw), "no such file or folder"))
        return list(dict.fromkeys(files)), folders

    def _ingest_file(self, path: Path, collection: str, report: IngestReport, say: ProgressFn, n: int, total: int) -> None:
        st = path.stat()
        key = str(path)
        row = self.db.execute("SELECT * FROM files WHERE collection=? AND path=?", (collection, key)).fetchone()
        if row and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns and self._done(collection, row["sha256"]):
            report.unchanged.append(key)
            return
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        old_sha = row["sha256"] if row else None
        if old_sha == sha and self._done(collection, sha):
            self._record_file(collection, key, sha, st)
            report.unchanged.append(key)
            return
        if self._done(collection, sha):
            self._record_file(collection, key, sha, st)
            report.duplicates.append(key)
        else:
            self._embed_document(path, data, sha, collection, report, say, n, total)
            self._record_file(collection, key, sha, st)
            (report.updated if old_sha else report.added).append(key)
        if old_sha and old_sha != sha:
            self._release(collection, old_sha)

    def _done(self, collection: str, sha: str) -> bool:
        r = self.db.execute("SELECT done FROM documents WHERE collection=? AND sha256=?", (collection, sha)).fetchone()
        return bool(r and r["done"])

    def _record_file(self, collection: str, path: str, sha: str, st: os.stat_result) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)",
                            (collection, path, sha, st.st_size, st.st_mtime_ns, time.time()))

    def _embed_document(self, path: Path, data: bytes, sha: str, collection: str, report: IngestReport,
                        say: ProgressFn, n: int, total: int) -> None:
        from assistant.documents.loaders import load_document

        self._embed_loaded(load_document(path, data), str(path), sha, collection, report, say, n, total)

    def ingest_document(self, doc, collection: str, *, progress: ProgressFn | None = None) -> IngestReport:
        """Index an already loaded Document (e.g. an attachment) under its content hash."""
        report = IngestReport()
        self._ensure_collection(collection)
        if not self._done(collection, doc.sha256):
            self._embed_loaded(doc, doc.source, doc.sha256, collection, report, progress or (lambda m, f: None), 0, 1)
            report.added.append(doc.source)
        else:
            report.unchanged.append(doc.source)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)",
                            (collection, doc.source, doc.sha256, None, None, time.time()))
        return report

    def _embed_loaded(self, doc, source: str, sha: str, collection: str, report: IngestReport,
                      say: ProgressFn, n: int, total: int) -> None:
        from assistant.documents.chunking import chunk_document

        name = Path(source).name
        # Chunks are sized by the embedding model's tokenizer: it truncates at max_seq_length,
        # so a longer chunk's tail would be invisible to vector search.
        size = min(self.chunk_tokens, self.embedder.max_tokens - 8)
        # Every heading starts a chunk (section_break=0): a hit then names the section it answers.
        chunks = chunk_document(doc, self.embedder.count_tokens, max_tokens=size, overlap=self.overlap, section_break=0.0)
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO documents VALUES (?,?,?,?,?,?,0)",
                            (collection, sha, doc.kind, doc.title, doc.pages, len(chunks)))
        have = {r[0] for r in self.db.execute("SELECT idx FROM chunks WHERE collection=? AND sha256=?", (collection, sha))}
        todo = [c for c in chunks if c.index not in have]
        vectors = self._vectors(collection)
        t0 = time.perf_counter()
        for b in range(0, len(todo), BATCH):
            batch = todo[b:b + BATCH]
            ids = [f"{sha[:16]}-{c.index}" for c in batch]
            embeddings = self.embedder.encode([_embed_text(doc.title, c.section, c.text) for c in batch])
            metas = [_meta(sha, doc.kind, source, c) for c in batch]
            vectors.upsert(ids=ids, embeddings=embeddings, metadatas=metas)
            with self.db:  # the batch is committed only once its vectors are stored
                self.db.executemany(
                    "INSERT OR REPLACE INTO chunks(id, collection, sha256, idx, text, source, kind, page_start,"
                    " page_end, section, start, end_) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(i, collection, sha, c.index, c.text, source, doc.kind, c.page_start, c.page_end,
                      c.section, c.start, c.end) for i, c in zip(ids, batch)])
            report.chunks += len(batch)
            done = b + len(batch)
            rate = done / max(1e-6, time.perf_counter() - t0)
            say(f"{name} ({n + 1}/{total}): {done}/{len(todo)} chunks, {rate:.0f} chunks/s",
                (n + done / max(1, len(todo))) / max(1, total))
        with self.db:
            self.db.execute("UPDATE documents SET done=1 WHERE collection=? AND sha256=?", (collection, sha))

    def remove(self, paths: Iterable[str | Path], collection: str) -> list[str]:
        """Forget files; their chunks go when no other ingested file has the same content."""
        self._require(collection)
        removed = []
        for raw in paths:
            key = str(Path(raw).expanduser().resolve())
            row = self.db.execute("SELECT sha256 FROM files WHERE collection=? AND path=?", (collection, key)).fetchone()
            if row is None:
                continue
            with self.db:
                self.db.execute("DELETE FROM files WHERE collection=? AND path=?", (collection, key))
            self._release(collection, row["sha256"])
            removed.append(key)
        return removed

    def _release(self, collection: str, sha: str) -> None:
        if self.db.execute("SELECT 1 FROM files WHERE collection=? AND sha256=?", (collection, sha)).fetchone():
            return  # another path still has this content
        with self.db:  # SQLite first: once these rows are gone, search can no longer return the chunks
            self.db.execute("DELETE FROM chunks WHERE collection=? AND sha256=?", (collection, sha))
            self.db.execute("DELETE FROM documents WHERE collection=? AND sha256=?", (collection, sha))
        self._vectors(collection).delete(where={"sha256": sha})

    # --- search --------------------------------------------------------------------------

    def search(self, query: str, collection: str, *, k: int = 5, where: dict | None = None,
               mode: str = "hybrid") -> list[Hit]:
        """Best `k` chunks for `query`. mode: hybrid (default), vector or keyword.
        `where` filters on source, kind, section (equality) and page (within the chunk's pages)."""
        self._require(collection)
        if mode not in ("hybrid", "vector", "keyword"):
            raise UsageError(f"unknown search mode {mode!r}", hint="use hybrid, vector or keyword")
        where = dict(where or {})
        bad = set(where) - set(FILTER_KEYS)
        if bad:
            raise UsageError(f"cannot filter on {', '.join(sorted(bad))}", hint=f"filters: {', '.join(FILTER_KEYS)}")
        pool = max(k * 4, 20)
        vec: list[tuple[str, float]] = self._vector_search(query, collection, where, pool) if mode != "keyword" else []
        kw: list[str] = self._keyword_search(query, collection, where, pool) if mode != "vector" else []
        fused: dict[str, float] = {}
        for rank, (cid, _) in enumerate(vec):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, cid in enumerate(kw):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        sims = dict(vec)
        vrank = {cid: r for r, (cid, _) in enumerate(vec)}
        krank = {cid: r for r, cid in enumerate(kw)}
        order = sorted(fused, key=lambda c: -fused[c])
        rows = self._rows(order[: k * 2])
        hits = []
        for cid in order:
            r = rows.get(cid)
            if r is None:  # a vector without a committed row (crash mid-ingest): not part of the KB
                continue
            hits.append(Hit(cid, r["text"], fused[cid], r["source"] or "", r["page_start"], r["section"] or "",
                            r["start"], r["end_"], r["page_end"], r["kind"] or "", sims.get(cid),
                            vrank.get(cid), krank.get(cid)))
            if len(hits) == k:
                break
        return hits

    def _vector_search(self, query: str, collection: str, where: dict, n: int) -> list[tuple[str, float]]:
        vectors = self._vectors(collection)
        count = vectors.count()
        if not count or not query.strip():
            return []
        res = vectors.query(query_embeddings=self.embedder.encode([query]), n_results=min(n, count),
                            where=_chroma_where(where), include=["distances"])
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])]

    def _keyword_search(self, query: str, collection: str, where: dict, n: int) -> list[str]:
        match = self._match(list(dict.fromkeys(words(query))))
        if not match:
            return []
        sql = ("SELECT c.id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid"
               " WHERE chunks_fts MATCH ? AND c.collection = ?")
        args: list[Any] = [match, collection]
        for key, value in where.items():
            if key == "page":
                sql += " AND c.page_start <= ? AND coalesce(c.page_end, c.page_start) >= ?"
                args += [int(value), int(value)]
            else:
                sql += f" AND c.{key} = ?"
                args.append(value)
        sql += " ORDER BY bm25(chunks_fts) LIMIT ?"
        return [r[0] for r in self.db.execute(sql, (*args, n))]

    def _match(self, terms: list[str]) -> str:
        """The FTS5 query: the terms ORed, less those in over half of all rows. FTS5's bm25 gives
        such a term an idf of ~0, so it changes no score, yet ORing it in makes the query match
        (and sort) most of the collection: at 112k chunks that is most of a 150-200 ms query.
        Counting a term's rows stops at half (a few ms). If every term is that common they are
        ANDed, which keeps the rows that have them all."""
        quoted = [f'"{t}"' for t in terms]
        half = (self.db.execute("SELECT max(rowid) FROM chunks").fetchone()[0] or 0) // 2  # >= half the rows
        if len(terms) < 2 or half < 1000:  # small collections are fast anyway
            return " OR ".join(quoted)
        rare = [q for q in quoted if self.db.execute(
            "SELECT count(*) FROM (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
            (q, half + 1)).fetchone()[0] <= half]
        return " OR ".join(rare) if rare else " AND ".join(quoted)

    def _rows(self, ids: list[str]) -> dict[str, sqlite3.Row]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {r["id"]: r for r in self.db.execute(f"SELECT * FROM chunks WHERE id IN ({marks})", ids)}


def _embed_text(title: str, section: str, text: str) -> str:
    # The section heading tells the vector what a terse paragraph is about ("How do I ...?").
    return f"{section}\n{text}" if section and section not in text[:200] else text


def _meta(sha: str, kind: str, source: str, c) -> dict:
    meta = {"sha256": sha, "kind": kind, "source": source, "section": c.section, "idx": c.index}
    if c.page_start is not None:
        meta["page_start"], meta["page_end"] = c.page_start, c.page_end
    return meta


def _chroma_where(where: dict) -> dict | None:
    clauses = []
    for key, value in where.items():
        if key == "page":
            clauses += [{"page_start": {"$lte": int(value)}}, {"page_end": {"$gte": int(value)}}]
        else:
            clauses.append({key: value})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _describe(exc: Exception) -> str:
    hint = getattr(exc, "hint", None)
    return f"{exc}" + (f" ({hint})" if hint else "")
