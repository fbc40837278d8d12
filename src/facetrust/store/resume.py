"""Bulk ingestion's resume record (table ``ingested_images``, store/schema.py): which images, by the
SHA-256 of their bytes, are indexed into a collection. The same SQL on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence

__all__ = ["LOOKUP", "hash_key", "record"]


#: The recorded hashes among some hash keys (``{marks}``: the keys, in chunks); the caller keeps
#: those it asked for.
LOOKUP = "SELECT sha256 FROM ingested_images WHERE collection_id = ? AND hash_key IN ({marks})"


def hash_key(sha256: str) -> int:
    """The lookup key of an image hash: its first 16 hex digits (8 bytes) as a signed 64-bit integer;
    for text that is not hex (tests, older callers), the same of its BLAKE2b digest. Stored in every
    record, so it must never change. Distinct hashes may share a key: readers compare the full hash."""
    try:
        head = bytes.fromhex(sha256[:16])
    except ValueError:
        head = hashlib.blake2b(sha256.encode(), digest_size=8).digest()
    return int.from_bytes(head, "big", signed=True)


def record(conn: sqlite3.Connection, collection_id: int, images: Sequence[tuple[str, str]], now: float) -> None:
    """Record each ``(sha256, image_id)`` as indexed into the collection at ``now``, replacing an
    earlier record of the same hash (the last of a repeated hash wins). Two statements per batch."""
    latest = dict(images)
    rows = [(collection_id, hash_key(sha256), sha256, image_id, now) for sha256, image_id in latest.items()]
    conn.executemany(
        "DELETE FROM ingested_images WHERE collection_id = ? AND hash_key = ? AND sha256 = ?", (r[:3] for r in rows)
    )
    conn.executemany(
        "INSERT INTO ingested_images(collection_id, hash_key, sha256, image_id, indexed_at) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
