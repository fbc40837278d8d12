"""SQL for governance records: consents, reviews, faces by subject or expiry, WAL scrubbing."""

from __future__ import annotations

import sqlite3
import unicodedata
from typing import NamedTuple

from facetrust.store.inlist import select_in
from facetrust.store.rows import _FACE_COLUMNS, FaceRow, _face

__all__ = [
    "CONSENT_SUBJECTS_SQL",
    "SUBJECT_FACES_SQL",
    "FaceKey",
    "cap_expiries",
    "expired_in_order",
    "face_ids_present",
    "face_keys_in_collection",
    "faces_by_external_id",
    "faces_of_user",
    "get_consent",
    "get_review",
    "insert_review",
    "live_face_count",
    "put_consent",
    "revoke_consent",
    "set_expiry",
    "subject_key",
]

_CONSENT = "subject, basis, granted_at, expires_at, evidence_hash, recorded_at, revoked_at"


def subject_key(subject: str) -> str:
    """What two subjects must share to be the same subject: Unicode NFKC, then case-folded
    (``Tony``, ``TONY`` and ``ｔｏｎｙ`` are one subject). Applied on compare, so subjects
    stored before this rule match too."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", subject).casefold())


# Lookups by subject narrow with SQLite's lower(), which folds ASCII only: that finds every
# candidate because ExternalImageIds and subjects are ASCII (check_external_image_id); then
# subject_key decides, in Python. Each is a seek on an index of that lower() (store/schema.py;
# a test reads their plans on both stores): a scan of every face cost 53 ms at 200,000 faces per
# consent recorded or erasure by subject, and one of every consent 25 ms at 100,000 subjects per
# face indexed under a purpose that requires consent.
CONSENT_SUBJECTS_SQL = "SELECT subject FROM consents WHERE lower(subject) = ?"
SUBJECT_FACES_SQL = f"SELECT collection_id, {_FACE_COLUMNS} FROM faces WHERE lower(external_image_id) = ?"


def _consent_subjects(conn: sqlite3.Connection, subject: str) -> list[str]:
    """The stored spellings of ``subject`` in the consent table (several only in data from before
    subjects were matched by ``subject_key``)."""
    key = subject_key(subject)
    rows = conn.execute(CONSENT_SUBJECTS_SQL, (key,))  # ASCII fold first
    return [str(r[0]) for r in rows if subject_key(str(r[0])) == key]


def put_consent(
    conn: sqlite3.Connection,
    subject: str,
    basis: str,
    granted_at: float,
    expires_at: float | None,
    evidence_hash: str,
    recorded_at: float,
) -> None:
    """Record (or replace, e.g. after a revocation) a subject's consent, under any spelling of it."""
    for spelling in _consent_subjects(conn, subject):
        conn.execute("DELETE FROM consents WHERE subject = ?", (spelling,))
    conn.execute(
        f"INSERT OR REPLACE INTO consents({_CONSENT}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
        (subject, basis, granted_at, expires_at, evidence_hash, recorded_at),
    )


def get_consent(conn: sqlite3.Connection, subject: str) -> tuple[object, ...] | None:
    """The consent of ``subject`` under any spelling (the latest recorded, if several)."""
    found = [
        tuple(r)
        for spelling in _consent_subjects(conn, subject)
        for r in conn.execute(f"SELECT {_CONSENT} FROM consents WHERE subject = ?", (spelling,))
    ]
    return max(found, key=lambda r: float(str(r[5]))) if found else None


def revoke_consent(conn: sqlite3.Connection, subject: str, at: float) -> None:
    for spelling in _consent_subjects(conn, subject):
        conn.execute("UPDATE consents SET revoked_at = ? WHERE subject = ?", (at, spelling))


def faces_by_external_id(
    conn: sqlite3.Connection, external_image_id: str, collection_id: int | None = None
) -> dict[int, list[FaceRow]]:
    """Faces indexed under ``external_image_id`` in any spelling of it (``subject_key``)."""
    key = subject_key(external_image_id)
    sql = SUBJECT_FACES_SQL  # ASCII fold first
    args: list[object] = [key]
    if collection_id is not None:
        sql += " AND collection_id = ?"
        args.append(collection_id)
    out: dict[int, list[FaceRow]] = {}
    for row in conn.execute(sql, args):
        if subject_key(str(row[4])) == key:
            out.setdefault(int(row[0]), []).append(_face(row[1:]))
    return out


class FaceKey(NamedTuple):
    """A stored face's row key and FaceId: all an erasure of it needs."""

    key: int
    face_id: str


def face_keys_in_collection(conn: sqlite3.Connection, collection_id: int) -> list[FaceKey]:
    """Every face of the collection, by key and FaceId only: whole rows cost 3 s at 200,000 faces."""
    sql = "SELECT id, face_id FROM faces WHERE collection_id = ? ORDER BY id"
    return [FaceKey(int(k), str(f)) for k, f in conn.execute(sql, (collection_id,))]


def faces_of_user(conn: sqlite3.Connection, collection_id: int, user_id: str) -> list[FaceRow]:
    return [
        _face(r)
        for r in conn.execute(
            f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)
        )
    ]


def expired_in_order(conn: sqlite3.Connection, now: float, limit: int | None = None) -> list[tuple[int, FaceKey]]:
    """The faces expired by ``now`` as (collection id, face) pairs: keys and FaceIds, all the sweep
    reads of them; those that expired first first (read off the expiry index), at most ``limit``."""
    sql = (
        "SELECT collection_id, id, face_id FROM faces WHERE expires_at IS NOT NULL AND expires_at <= ? "
        "ORDER BY expires_at, id"
    )
    args: tuple[object, ...] = (now,)
    if limit is not None:
        sql, args = sql + " LIMIT ?", (now, limit)
    return [(int(cid), FaceKey(int(key), str(face_id))) for cid, key, face_id in conn.execute(sql, args)]


def live_face_count(conn: sqlite3.Connection, collection_id: int, now: float) -> int:
    """Faces of a collection that have not expired at ``now``."""
    sql = "SELECT count(*) FROM faces WHERE collection_id = ? AND (expires_at IS NULL OR expires_at > ?)"
    return int(conn.execute(sql, (collection_id, now)).fetchone()[0])


def set_expiry(conn: sqlite3.Connection, face_key: int, expires_at: float) -> None:
    conn.execute("UPDATE faces SET expires_at = ? WHERE id = ?", (expires_at, face_key))


def cap_expiries(conn: sqlite3.Connection, latest: float, *, write: bool = True) -> int:
    """Bring every face's expiry that lies after ``latest`` back to ``latest``, and its end of
    retention with it (``write`` false: only count them); how many. Found through the expiry's index
    (a face's end of retention is never before its expiry), so the sweep reads no other face."""
    found = int(conn.execute("SELECT count(*) FROM faces WHERE expires_at > ?", (latest,)).fetchone()[0])
    if found and write:
        conn.execute(
            "UPDATE faces SET expires_at = ?, retained_until = CASE WHEN retained_until > ? THEN ? "
            "ELSE retained_until END WHERE expires_at > ?",
            (latest, latest, latest, latest),
        )
    return found


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
