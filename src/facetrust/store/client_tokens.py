"""SQL of the remembered ``ClientRequestToken`` answers (``client_tokens``).

A request that carries a token is answered once: its answer is kept, with a hash of the request,
in the same transaction as what it did, so the same request sent again under the same token (an
SDK's retry after a lost response) gets that answer back and changes nothing, and another request
under it is refused. ``service/idempotency.py`` decides; these functions only read and write rows,
inside a connection the store opened (a transaction's to write).

Rows are kept for ``WINDOW_S``. An answer that names faces lists their row ids in
``client_token_faces``; erasing, deleting or sweeping (expired) any of those faces deletes the answer (the
trigger), so no remembered answer names a face that is gone. Every answer names its user: deleting
or erasing the user deletes them (``forget_user``, from the store's ``delete_user``), and deleting
the collection deletes its answers (the foreign key's cascade).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DDL", "WINDOW_S", "Remembered", "find", "forget_user", "remember"]

WINDOW_S = 24 * 3600.0  # how long an answer is kept for its token

DDL = """
CREATE TABLE IF NOT EXISTS client_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id        TEXT NOT NULL,
    operation     TEXT NOT NULL,
    token         TEXT NOT NULL,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    result        TEXT NOT NULL,
    created_at    REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS client_tokens_by_token ON client_tokens(key_id, operation, token);
CREATE INDEX IF NOT EXISTS client_tokens_by_time ON client_tokens(created_at);
CREATE INDEX IF NOT EXISTS client_tokens_by_user ON client_tokens(collection_id, user_id);
CREATE TABLE IF NOT EXISTS client_token_faces (
    face_key INTEGER NOT NULL,
    token_id INTEGER NOT NULL REFERENCES client_tokens(id) ON DELETE CASCADE,
    PRIMARY KEY (face_key, token_id)
);
CREATE INDEX IF NOT EXISTS client_token_faces_by_token ON client_token_faces(token_id);
CREATE TRIGGER IF NOT EXISTS client_tokens_face_gone AFTER DELETE ON faces BEGIN
    DELETE FROM client_tokens WHERE id IN (SELECT token_id FROM client_token_faces WHERE face_key = OLD.id);
END;
"""


@dataclass(frozen=True)
class Remembered:
    """A kept answer: the hash of the request it answered, and the answer (JSON text)."""

    request_hash: str
    result: str


def find(conn: sqlite3.Connection, key_id: str, operation: str, token: str, now: float) -> Remembered | None:
    """The answer kept for this key's ``token`` on ``operation``, if it is still within the window."""
    row = conn.execute(
        "SELECT request_hash, result FROM client_tokens WHERE key_id = ? AND operation = ? AND token = ? "
        "AND created_at > ?",
        (key_id, operation, token, now - WINDOW_S),
    ).fetchone()
    return None if row is None else Remembered(str(row[0]), str(row[1]))


def remember(
    conn: sqlite3.Connection,
    *,
    key_id: str,
    operation: str,
    token: str,
    collection_id: int,
    user_id: str,
    request_hash: str,
    result: str,
    face_keys: Sequence[int],
    now: float,
) -> None:
    """Keep ``result`` for the token (inside the transaction that did the work); rows past the
    window go, this token's expired one among them."""
    conn.execute("DELETE FROM client_tokens WHERE created_at <= ?", (now - WINDOW_S,))
    cur = conn.execute(
        "INSERT INTO client_tokens (key_id, operation, token, collection_id, user_id, request_hash, result, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (key_id, operation, token, collection_id, user_id, request_hash, result, now),
    )
    token_id = int(cur.lastrowid or 0)
    if face_keys:
        conn.executemany(
            "INSERT INTO client_token_faces (face_key, token_id) VALUES (?, ?)",
            [(int(k), token_id) for k in dict.fromkeys(face_keys)],
        )


def forget_user(conn: sqlite3.Connection, collection_id: int, user_id: str) -> None:
    """Delete the answers that name ``user_id`` in the collection (it is being deleted or erased)."""
    conn.execute("DELETE FROM client_tokens WHERE collection_id = ? AND user_id = ?", (collection_id, user_id))
