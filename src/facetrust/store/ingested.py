"""SQL of bulk ingestion's resume record (facetrust.ingest): which images, by the SHA-256 of
their bytes, were indexed into a collection (the ``ingested_images`` table, store/schema.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from facetrust.store.rows import select_in

__all__ = ["IngestedRecord"]


class IngestedRecord:
    """The resume record's methods of ``Store`` (a mixin: the store gives it ``_conn``)."""

    _conn: Callable[[], sqlite3.Connection]  # the store's: this thread's connection

    def record_ingested(
        self, conn: sqlite3.Connection, collection_id: int, sha256: str, image_id: str, now: float
    ) -> None:
        self.record_ingested_many(conn, collection_id, [(sha256, image_id)], now)

    def record_ingested_many(
        self, conn: sqlite3.Connection, collection_id: int, images: Sequence[tuple[str, str]], now: float
    ) -> None:
        """Record each ``(sha256, image_id)`` as indexed into the collection (one statement for a batch)."""
        conn.executemany(
            "INSERT OR REPLACE INTO ingested_images(collection_id, sha256, image_id, indexed_at) VALUES (?, ?, ?, ?)",
            ((collection_id, sha256, image_id, now) for sha256, image_id in images),
        )

    def ingested(self, collection_id: int, hashes: Sequence[str]) -> set[str]:
        """Which of ``hashes`` (SHA-256 of image bytes) are recorded as indexed into the collection."""
        sql = "SELECT sha256 FROM ingested_images WHERE collection_id = ? AND sha256 IN ({marks})"
        return {str(row[0]) for row in select_in(self._conn(), sql, (collection_id,), hashes)}
