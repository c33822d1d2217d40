"""Partial answers of the map step, kept by document, chunk, question and model (and final
answers, kept by their exact reduce prompt).

A repeated question, or one asked again after a cancelled read, only pays for the chunks not
read yet. One row is committed per chunk as it finishes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path


class MapCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS findings(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._lock = threading.Lock()

    @staticmethod
    def key(doc_sha: str, chunk, question: str, summary: bool, model: str, prompt: str) -> str:
        # The chunk's span and text hash pin the chunking; the prompt text pins the instructions.
        parts = [doc_sha, str(chunk.start), str(chunk.end), hashlib.sha256(chunk.text.encode()).hexdigest(),
                 " ".join(question.lower().split()), "summary" if summary else "qa", model, prompt]
        return MapCache.text_key(*parts)

    @staticmethod
    def text_key(*parts: str) -> str:
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self.db.execute("SELECT value FROM findings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict) -> None:
        with self._lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO findings VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        self.db.close()
