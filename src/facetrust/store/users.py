"""SQL of users: the identities a collection's faces are associated with."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from facetrust.store import client_tokens, vacuums
from facetrust.store.rows import UserRow

__all__ = ["UserTable"]


class UserTable:
    """The users' methods of ``Store`` (a mixin: the store gives it ``_conn``)."""

    _conn: Callable[[], sqlite3.Connection]  # the store's: this thread's connection

    def insert_user(self, conn: sqlite3.Connection, collection_id: int, user_id: str) -> None:
        conn.execute(
            "INSERT INTO users(collection_id, user_id, created_at) VALUES (?, ?, ?)",
            (collection_id, user_id, time.time()),
        )

    def get_user(
        self, collection_id: int, user_id: str, conn: sqlite3.Connection | None = None, now: float | None = None
    ) -> UserRow | None:
        """The user and how many faces it has (with ``now``, only those not expired then)."""
        c = conn or self._conn()
        row = c.execute(
            "SELECT user_id, created_at FROM users WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)
        ).fetchone()
        if row is None:
            return None
        count = c.execute(
            "SELECT count(*) FROM faces WHERE collection_id = ? AND user_id = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (collection_id, user_id, float("-inf") if now is None else now),
        ).fetchone()[0]
        return UserRow(row[0], row[1], int(count))

    def delete_user(self, conn: sqlite3.Connection, collection_id: int, user_id: str) -> None:
        conn.execute(
            "UPDATE faces SET user_id = NULL WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)
        )
        if conn.execute("DELETE FROM users WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)).rowcount:
            vacuums.count_erasure(conn)  # a UserId names a person: its bytes are due for a vacuum, as an erased face's
        client_tokens.forget_user(conn, collection_id, user_id)

    def list_users(self, collection_id: int, after: str | None, limit: int, now: float | None = None) -> list[UserRow]:
        """A page of users and how many faces each has (with ``now``, only those not expired then)."""
        rows = (
            self._conn()
            .execute(
                "SELECT u.user_id, u.created_at, (SELECT count(*) FROM faces f WHERE f.collection_id = u.collection_id "
                "AND f.user_id = u.user_id AND (f.expires_at IS NULL OR f.expires_at > ?)) FROM users u "
                "WHERE u.collection_id = ? AND u.user_id > ? ORDER BY u.user_id LIMIT ?",
                (float("-inf") if now is None else now, collection_id, after or "", limit),
            )
            .fetchall()
        )
        return [UserRow(r[0], r[1], int(r[2])) for r in rows]

    def count_user_faces(self, collection_id: int, now: float) -> int:
        """Faces of the collection associated with a user and not expired by ``now``."""
        sql = (
            "SELECT count(*) FROM faces WHERE collection_id = ? AND user_id IS NOT NULL "
            "AND (expires_at IS NULL OR expires_at > ?)"
        )
        return int(self._conn().execute(sql, (collection_id, now)).fetchone()[0])

    def set_user(self, conn: sqlite3.Connection, collection_id: int, keys: Sequence[int], user_id: str | None) -> None:
        for key in keys:
            conn.execute(
                "UPDATE faces SET user_id = ? WHERE collection_id = ? AND id = ?", (user_id, collection_id, key)
            )
