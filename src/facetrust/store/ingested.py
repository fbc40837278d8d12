"""SQL of bulk ingestion's resume record (facetrust.ingest): which images, by the SHA-256 of
their bytes, were indexed into a collection (the ``ingested_images`` table, store/schema.py). The
same SQL on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Collection, Sequence

from facetrust.store.inlist import select_in

__all__ = ["HELD", "LIVE", "LOOKUP", "IngestedRecord", "hash_key", "record", "recorded", "recorded_images"]


#: The recorded hashes, with the image each was indexed as, among some hash keys (``{marks}``: the
#: keys, in chunks); the caller keeps those it asked for.
LOOKUP = "SELECT sha256, image_id FROM ingested_images WHERE collection_id = ? AND hash_key IN ({marks})"


def hash_key(sha256: str) -> int:
    """The lookup key of an image hash: its first 16 hex digits (8 bytes) as a signed 64-bit integer;
    for text that is not hex (tests, older callers), the same of its BLAKE2b digest. Stored in every
    record, so it must never change. Distinct hashes may share a key: readers compare the full hash."""
    try:
        head = bytes.fromhex(sha256[:16])
    except ValueError:
        head = hashlib.blake2b(sha256.encode(), digest_size=8).digest()
    return int.from_bytes(head, "big", signed=True)


#: Which of some images ({marks}) have faces, and which still have one that has not expired at a time.
HELD = "SELECT DISTINCT image_id FROM faces WHERE image_id IN ({marks})"
LIVE = "SELECT DISTINCT image_id FROM faces WHERE (expires_at IS NULL OR expires_at > ?) AND image_id IN ({marks})"


def recorded(
    conn: sqlite3.Connection, collection_id: int, hashes: Collection[str], now: float | None = None
) -> set[str]:
    """Which of ``hashes`` are recorded as indexed into the collection (looked up by their keys, a
    chunk at a time; the full hashes compared); with ``now``, only those whose image still has a
    face that has not expired then (``recorded_images``)."""
    return set(recorded_images(conn, collection_id, hashes, now))


def recorded_images(
    conn: sqlite3.Connection, collection_id: int, hashes: Collection[str], now: float | None = None
) -> dict[str, str]:
    """The image id each of ``hashes`` recorded as indexed into the collection was indexed as; with
    ``now``, less images whose faces have all expired then (not yet swept): those are not indexed
    any more, and indexing them again stores them afresh. An image recorded without a face (none
    found, or none kept) stays recorded."""
    wanted = set(hashes)
    keys = sorted({hash_key(h) for h in wanted})
    found = {str(h): str(i) for h, i in select_in(conn, LOOKUP, (collection_id,), keys) if str(h) in wanted}
    if now is None or not found:
        return found
    images = sorted(set(found.values()))
    held = {str(r[0]) for r in select_in(conn, HELD, (), images)}
    live = {str(r[0]) for r in select_in(conn, LIVE, (now,), images)} if held else set()
    return {h: i for h, i in found.items() if i not in held or i in live}


def record(conn: sqlite3.Connection, collection_id: int, images: Sequence[tuple[str, str]], now: float) -> None:
    """Record each ``(sha256, image_id)`` as indexed into the collection at ``now``, replacing an
    earlier record of the same hash (the last of a repeated hash wins). Earlier records are deleted
    only where there are any (a first run has none)."""
    latest = dict(images)
    earlier = recorded(conn, collection_id, latest)
    if earlier:
        conn.executemany(
            "DELETE FROM ingested_images WHERE collection_id = ? AND hash_key = ? AND sha256 = ?",
            [(collection_id, hash_key(sha256), sha256) for sha256 in earlier],
        )
    conn.executemany(
        "INSERT INTO ingested_images(collection_id, hash_key, sha256, image_id, indexed_at) VALUES (?, ?, ?, ?, ?)",
        [(collection_id, hash_key(sha256), sha256, image_id, now) for sha256, image_id in latest.items()],
    )


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
        """Record each ``(sha256, image_id)`` as indexed into the collection (``record``)."""
        record(conn, collection_id, images, now)

    def ingested_images(
        self, conn: sqlite3.Connection, collection_id: int, hashes: Sequence[str], now: float | None = None
    ) -> dict[str, str]:
        """The image id of each of ``hashes`` recorded as indexed into the collection (``recorded_images``;
        with ``now``, only images with a face not expired then)."""
        return recorded_images(conn, collection_id, hashes, now)

    def ingested(self, collection_id: int, hashes: Sequence[str], now: float | None = None) -> set[str]:
        """Which of ``hashes`` (SHA-256 of image bytes) are recorded as indexed into the collection
        (with ``now``, only images with a face not expired then)."""
        return recorded(self._conn(), collection_id, hashes, now)
