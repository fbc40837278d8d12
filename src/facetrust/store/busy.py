"""How long a store waits for another process's write lock (SQLite's, or PostgreSQL's writer lock), and the
error when that runs out."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from facetrust.errors import StoreBusyError

__all__ = ["BUSY_TIMEOUT_S", "store_busy"]

BUSY_TIMEOUT_S = 30.0  # SQLite's busy timeout on every connection of a store


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
