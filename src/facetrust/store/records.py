"""SQL for governance records: consents, reviews, faces by subject or expiry, WAL scrubbing."""

from __future__ import annotations

import sqlite3

from facetrust.store.sqlite import _FACE_COLUMNS, FaceRow, _face, select_in

__all__ = [
    "expired_faces",
    "face_ids_present",
    "faces_by_external_id",
    "faces_of_user",
    "get_consent",
    "get_review",
    "insert_review",
    "put_consent",
    "revoke_consent",
]

_CONSENT = "subject, basis, granted_at, expires_at, evidence_hash, recorded_at, revoked_at"


def put_consent(
    conn: sqlite3.Connection,
    subject: str,
    basis: str,
    granted_at: float,
    expires_at: float | None,
    evidence_hash: str,
    recorded_at: float,
) -> None:
    """Record (or replace, e.g. after a revocation) a subject's consent."""
    conn.execute(
        f"INSERT OR REPLACE INTO consents({_CONSENT}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
        (subject, basis, granted_at, expires_at, evidence_hash, recorded_at),
    )


def get_consent(conn: sqlite3.Connection, subject: str) -> tuple[object, ...] | None:
    row = conn.execute(f"SELECT {_CONSENT} FROM consents WHERE subject = ?", (subject,)).fetchone()
    return tuple(row) if row else None


def revoke_consent(conn: sqlite3.Connection, subject: str, at: float) -> None:
    conn.execute("UPDATE consents SET revoked_at = ? WHERE subject = ?", (at, subject))


def faces_by_external_id(
    conn: sqlite3.Connection, external_image_id: str, collection_id: int | None = None
) -> dict[int, list[FaceRow]]:
    sql = f"SELECT collection_id, {_FACE_COLUMNS} FROM faces WHERE external_image_id = ?"
    args: list[object] = [external_image_id]
    if collection_id is not None:
        sql += " AND collection_id = ?"
        args.append(collection_id)
    out: dict[int, list[FaceRow]] = {}
    for row in conn.execute(sql, args):
        out.setdefault(int(row[0]), []).append(_face(row[1:]))
    return out


def faces_of_user(conn: sqlite3.Connection, collection_id: int, user_id: str) -> list[FaceRow]:
    return [
        _face(r)
        for r in conn.execute(
            f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)
        )
    ]


def expired_faces(conn: sqlite3.Connection, now: float) -> dict[int, list[FaceRow]]:
    out: dict[int, list[FaceRow]] = {}
    for row in conn.execute(
        f"SELECT collection_id, {_FACE_COLUMNS} FROM faces WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
    ):
        out.setdefault(int(row[0]), []).append(_face(row[1:]))
    return out


def face_ids_present(conn: sqlite3.Connection, face_ids: list[str]) -> list[str]:
    sql = "SELECT face_id FROM faces WHERE face_id IN ({marks})"
    return [row[0] for row in select_in(conn, sql, (), face_ids)]


def insert_review(
    conn: sqlite3.Connection, search_seq: int, decision: str, reviewer: str, note: str, audit_seq: int
) -> None:
    conn.execute(
        "INSERT INTO reviews(search_seq, decision, reviewer, note, audit_seq) VALUES (?, ?, ?, ?, ?)",
        (search_seq, decision, reviewer, note, audit_seq),
    )


def get_review(conn: sqlite3.Connection, search_seq: int) -> tuple[object, ...] | None:
    row = conn.execute(
        "SELECT search_seq, decision, reviewer, note, audit_seq FROM reviews WHERE search_seq = ?", (search_seq,)
    ).fetchone()
    return tuple(row) if row else None
