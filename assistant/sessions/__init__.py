"""Saved conversations: an SQLite store, its schema migrations, and Markdown/JSON export."""

from .export import export_json, export_markdown
from .store import (
    SessionDatabaseTooNew,
    SessionNotFound,
    SessionStore,
    SessionStoreError,
    SessionSummary,
)

__all__ = [
    "SessionDatabaseTooNew",
    "SessionNotFound",
    "SessionStore",
    "SessionStoreError",
    "SessionSummary",
    "export_json",
    "export_markdown",
]
