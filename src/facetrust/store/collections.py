"""SQL of collections: create, find, list, count and delete one (with its faces, users and changes)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from facetrust.store import vacuums
from facetrust.store.rows import CollectionRow

__all__ = ["CollectionTable"]


class CollectionTable:
    """The collections' methods of ``Store`` (a mixin: the store gives it ``_conn``)."""

    _conn: Callable[[], sqlite3.Connection]  # the store's: this thread's connection

    def insert_collection(self, conn: sqlite3.Connection, name: str, model: str, purpose: str) -> CollectionRow:
        now = time.time()
        cur = conn.execute(
            "INSERT INTO collections(name, model, purpose, created_at) VALUES (?, ?, ?, ?)", (name, model, purpose, now)
        )
        return CollectionRow(int(cur.lastrowid or 0), name, model, purpose, now)

    def get_collection(self, name: str, conn: sqlite3.Connection | None = None) -> CollectionRow | None:
        if not name.isascii():  # collection ids are ASCII: other text (argv bytes not UTF-8 too) names none
            return None
        row = (
            (conn or self._conn())
            .execute("SELECT id, name, model, purpose, created_at FROM collections WHERE name = ?", (name,))
            .fetchone()
        )
        return CollectionRow(*row) if row else None

    def list_collections(self, after_id: int, limit: int) -> list[CollectionRow]:
        """Collections in the order they were made: those whose row id is above ``after_id`` (0: all)."""
        rows = (
            self._conn()
            .execute(
                "SELECT id, name, model, purpose, created_at FROM collections WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            )
            .fetchall()
        )
        return [CollectionRow(*r) for r in rows]

    def count_collections(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM collections").fetchone()[0])

    def delete_collection(self, conn: sqlite3.Connection, collection_id: int) -> int:
        faces = conn.execute("SELECT count(*) FROM faces WHERE collection_id = ?", (collection_id,)).fetchone()[0]
        conn.execute("DELETE FROM faces WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM users WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM changes WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
        vacuums.count_erasure(conn)
        return int(faces)

    def counts(self, collection_id: int, conn: sqlite3.Connection | None = None) -> tuple[int, int]:
        c = conn or self._conn()
        faces = c.execute("SELECT count(*) FROM faces WHERE collection_id = ?", (collection_id,)).fetchone()[0]
        users = c.execute("SELECT count(*) FROM users WHERE collection_id = ?", (collection_id,)).fetchone()[0]
        return int(faces), int(users)
