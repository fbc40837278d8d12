"""How long a store waits for another process's write lock (SQLite's, or PostgreSQL's writer lock), and the
error when that runs out."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from facetrust.errors import StoreBusyError

__all__ = ["BUSY_TIMEOUT_S", "commits", "count_commit", "store_busy"]

BUSY_TIMEOUT_S = 30.0  # SQLite's busy timeout on every connection of a store

# Write transactions committed in this context (a thread's, or a task's): the audit recorder compares
# the count across an operation refused as busy, to tell whether it had written anything before.
_COMMITS: ContextVar[int] = ContextVar("facetrust_store_commits", default=0)


def count_commit() -> None:
    """Count a write transaction this context committed."""
    _COMMITS.set(_COMMITS.get() + 1)


def commits() -> int:
    """How many write transactions this context has committed."""
    return _COMMITS.get()


@contextmanager
def store_busy(where: str) -> Iterator[None]:
    """SQLite's "database is locked" (the busy timeout spent waiting for another process's write
    lock: an upgrade of an older store, a long import; on PostgreSQL the writer lock, store/pg_conn.py)
    as ``StoreBusyError`` naming ``where``."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_LOCKED") and "locked" not in str(exc):
            raise
        raise StoreBusyError(
            f"{where} is locked by another process writing to it (an upgrade of an older store, a long import, "
            "a replica stalled inside a write) "
            f"for longer than {BUSY_TIMEOUT_S:g} s; nothing was done: try again when it is done",
            where=where,
            waited_s=BUSY_TIMEOUT_S,
        ) from None
