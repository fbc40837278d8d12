"""SQL of per-face cohort statistics: each gallery face's top-K scores against its collection.

A row holds a face's ``K`` highest scores against the other faces of its collection (float16,
highest first) and the keys of those faces (int64), which is what mapping scores from the
face's side needs (``fairness.tailnorm``) and what keeping them current needs: a new face
enters the rows whose K-th score it beats; a deleted face leaves the rows that held it.
``face_tail_refs`` lists, per face, whose rows hold it, so a deletion finds exactly those.

The rows derive from templates, so they never outlive them: a face's own row and references
go with it (``ON DELETE CASCADE``), and ``forget`` (called in the deleting transaction) drops
the scores of every row that held a deleted face and marks it stale, to be recomputed. A face
with no row, or a stale one, is simply scored from the probe's side only. Plain SQL only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.store.inlist import in_chunks, select_in

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "BOUNDS_SQL",
    "CHANGES_SQL",
    "COUNT_ADDED_SQL",
    "COUNT_STALE_SQL",
    "LACKING_SQL",
    "STALE_SQL",
    "FaceTail",
    "change_log_bounds",
    "changes_after",
    "collection_names",
    "count_added_after",
    "count_missing",
    "count_stale",
    "floors",
    "forget",
    "forget_collection",
    "lacking",
    "last_key",
    "mark_stale",
    "missing",
    "pending_collections",
    "present",
    "put",
    "read",
    "stale",
]


@dataclass(frozen=True)
class FaceTail:
    """A face's top scores against its collection, highest first, and whose they are; ``upto``:
    the largest face key stored when they were computed (every face up to it was considered)."""

    scores: np.ndarray
    neighbours: np.ndarray
    upto: int


def _decode(scores: bytes, neighbours: bytes, upto: int) -> FaceTail:
    import numpy as np

    vals = np.frombuffer(scores, dtype="<f2").astype(np.float32)
    return FaceTail(vals, np.frombuffer(neighbours, dtype="<i8"), upto)


def read(conn: sqlite3.Connection, keys: Sequence[int]) -> dict[int, FaceTail]:
    """The current (not stale) rows of these faces."""
    sql = "SELECT face_key, scores, neighbours, upto FROM face_tails WHERE stale = 0 AND face_key IN ({marks})"
    return {int(k): _decode(bytes(s), bytes(n), int(u)) for k, s, n, u in select_in(conn, sql, (), list(keys))}


def floors(conn: sqlite3.Connection, keys: Sequence[int]) -> dict[int, tuple[float, int]]:
    """For these faces' current rows: the score a newer face must beat to enter them (their K-th
    score, or -2 while they hold fewer than ``k``) and ``upto``, read without the rows: which
    rows an offer can change."""
    sql = "SELECT face_key, entry_score, upto FROM face_tails WHERE stale = 0 AND face_key IN ({marks})"
    return {int(k): (float(f), int(u)) for k, f, u in select_in(conn, sql, (), list(keys))}


def _values(tail: FaceTail, k: int) -> tuple[float, int, bytes, bytes]:
    import numpy as np

    scores = tail.scores.astype("<f2")
    entry = float(scores[-1]) if len(scores) >= k else -2.0
    return entry, tail.upto, scores.tobytes(), np.asarray(tail.neighbours, dtype="<i8").tobytes()


def put(
    conn: sqlite3.Connection,
    collection_id: int,
    rows: dict[int, FaceTail],
    k: int,
    previous: dict[int, FaceTail] | None = None,
) -> None:
    """Write (replace) these faces' rows and their references; the faces must exist. ``k``: the
    number of scores a full row holds; ``previous``: the current rows of faces being updated (as
    ``read`` gave them in this transaction), updated in place."""
    previous = {key: t for key, t in (previous or {}).items() if key in rows}
    fresh = [key for key in rows if key not in previous]
    before: dict[int, set[int]] = {key: set(t.neighbours.tolist()) for key, t in previous.items()}
    before.update({key: set() for key in fresh})
    sql = "SELECT face_key, neighbour_key FROM face_tail_refs WHERE face_key IN ({marks})"
    for key, held in select_in(conn, sql, (), fresh):
        before[int(key)].add(int(held))
    for marks, chunk in in_chunks(fresh, conn):
        conn.execute(f"DELETE FROM face_tails WHERE face_key IN ({marks})", chunk)
    conn.executemany(
        "INSERT INTO face_tails(face_key, collection_id, stale, entry_score, upto, scores, neighbours) "
        "VALUES (?, ?, 0, ?, ?, ?, ?)",
        ((key, collection_id, *_values(rows[key], k)) for key in fresh),
    )
    conn.executemany(
        "UPDATE face_tails SET entry_score = ?, upto = ?, scores = ?, neighbours = ? WHERE face_key = ?",
        ((*_values(rows[key], k), key) for key in previous),
    )
    gone, new = [], []
    for key, tail in rows.items():
        now = set(tail.neighbours.tolist())
        gone += [(n, key) for n in before[key] - now]
        new += [(n, key) for n in now - before[key]]
    conn.executemany("DELETE FROM face_tail_refs WHERE neighbour_key = ? AND face_key = ?", gone)
    conn.executemany("INSERT INTO face_tail_refs(neighbour_key, face_key) VALUES (?, ?)", sorted(new))


def mark_stale(conn: sqlite3.Connection, collection_id: int, keys: Sequence[int]) -> None:
    """Drop these faces' scores and references; recompute them later (``stale``)."""
    for marks, chunk in in_chunks([int(k) for k in keys], conn):
        conn.execute(f"DELETE FROM face_tails WHERE face_key IN ({marks})", chunk)
        conn.execute(f"DELETE FROM face_tail_refs WHERE face_key IN ({marks})", chunk)
    conn.executemany(
        "INSERT INTO face_tails(face_key, collection_id, stale, scores, neighbours) VALUES (?, ?, 1, NULL, NULL)",
        ((k, collection_id) for k in keys),
    )


def forget(conn: sqlite3.Connection, collection_id: int, keys: Sequence[int]) -> list[int]:
    """In the transaction deleting faces ``keys``: mark stale every other face whose top K held
    one of them (no score derived from a deleted template stays); those faces' keys."""
    gone = {int(k) for k in keys}
    sql = "SELECT DISTINCT face_key FROM face_tail_refs WHERE neighbour_key IN ({marks})"
    holders = sorted({int(r[0]) for r in select_in(conn, sql, (), sorted(gone))} - gone)
    mark_stale(conn, collection_id, holders)
    for marks, chunk in in_chunks(sorted(gone), conn):
        conn.execute(f"DELETE FROM face_tail_refs WHERE neighbour_key IN ({marks})", chunk)
    return holders


def forget_collection(conn: sqlite3.Connection, collection_id: int) -> int:
    """Drop every statistic of the collection's faces (each is then computed afresh by a catch-up);
    how many faces had one."""
    conn.execute(
        "DELETE FROM face_tail_refs WHERE face_key IN (SELECT face_key FROM face_tails WHERE collection_id = ?)",
        (collection_id,),
    )
    return int(conn.execute("DELETE FROM face_tails WHERE collection_id = ?", (collection_id,)).rowcount)


def stale(conn: sqlite3.Connection, collection_id: int, limit: int, after_key: int = 0) -> list[int]:
    """Up to ``limit`` faces of the collection whose rows are stale (keys above ``after_key``, ascending)."""
    return [int(r[0]) for r in conn.execute(STALE_SQL, (collection_id, after_key, limit))]


def missing(conn: sqlite3.Connection, collection_id: int, after_key: int, limit: int) -> list[int]:
    """Up to ``limit`` faces of the collection (keys above ``after_key``, ascending) with no row or a
    stale one: what a catch-up pass computes."""
    sql = (
        "SELECT f.id FROM faces f LEFT JOIN face_tails t ON t.face_key = f.id "
        "WHERE f.collection_id = ? AND f.id > ? AND (t.face_key IS NULL OR t.stale = 1) ORDER BY f.id LIMIT ?"
    )
    return [int(r[0]) for r in conn.execute(sql, (collection_id, after_key, limit))]


def count_missing(conn: sqlite3.Connection, collection_id: int) -> int:
    """How many faces of the collection have no row or a stale one."""
    sql = (
        "SELECT count(*) FROM faces f LEFT JOIN face_tails t ON t.face_key = f.id "
        "WHERE f.collection_id = ? AND (t.face_key IS NULL OR t.stale = 1)"
    )
    return int(conn.execute(sql, (collection_id,)).fetchone()[0])


def pending_collections(conn: sqlite3.Connection) -> list[str]:
    """The names of the collections with at least one face with no row or a stale one."""
    sql = (
        "SELECT DISTINCT c.name FROM faces f JOIN collections c ON c.id = f.collection_id "
        "LEFT JOIN face_tails t ON t.face_key = f.id WHERE t.face_key IS NULL OR t.stale = 1 ORDER BY c.name"
    )
    return [str(r[0]) for r in conn.execute(sql)]


# What the background keeper reads each tick (service.tailkeeper), each an indexed lookup (a test
# reads their plans on SQLite and PostgreSQL): never a scan of every face.
BOUNDS_SQL = "SELECT (SELECT min(seq) FROM changes), (SELECT max(seq) FROM changes)"
CHANGES_SQL = "SELECT seq, collection_id, face_key, op FROM changes WHERE seq > ? ORDER BY seq LIMIT ?"
LACKING_SQL = (
    "SELECT f.id, f.collection_id FROM faces f LEFT JOIN face_tails t ON t.face_key = f.id "
    "WHERE (t.face_key IS NULL OR t.stale = 1) AND f.id IN ({marks})"
)
STALE_SQL = (
    "SELECT face_key FROM face_tails WHERE collection_id = ? AND stale = 1 AND face_key > ? ORDER BY face_key LIMIT ?"
)
COUNT_STALE_SQL = "SELECT count(*) FROM face_tails WHERE collection_id = ? AND stale = 1"
COUNT_ADDED_SQL = "SELECT count(*) FROM changes WHERE collection_id = ? AND seq > ? AND op = 'add'"


def change_log_bounds(conn: sqlite3.Connection) -> tuple[int, int]:
    """The oldest and the newest change's number over every collection ((0, 0) when none). Numbers
    grow with every face added or deleted and are never reused; entries go only with their
    collection, so an oldest entry past a remembered position means some were pruned after it."""
    first, end = conn.execute(BOUNDS_SQL).fetchone()
    return int(first or 0), int(end or 0)


def changes_after(conn: sqlite3.Connection, seq: int, limit: int) -> list[tuple[int, int, int, str]]:
    """Up to ``limit`` entries of the change log after ``seq``, oldest first:
    (number, collection id, face key, "add" or "del")."""
    return [(int(n), int(c), int(k), str(op)) for n, c, k, op in conn.execute(CHANGES_SQL, (seq, limit))]


def lacking(conn: sqlite3.Connection, keys: Sequence[int]) -> dict[int, list[int]]:
    """Of these face keys, those still stored with no row or a stale one, by collection id (ascending)."""
    out: dict[int, list[int]] = {}
    for key, collection_id in select_in(conn, LACKING_SQL, (), sorted(set(keys))):
        out.setdefault(int(collection_id), []).append(int(key))
    return {c: sorted(found) for c, found in out.items()}


def count_stale(conn: sqlite3.Connection, collection_id: int) -> int:
    """How many faces of the collection have stale rows (a deletion took a face their top K held)."""
    return int(conn.execute(COUNT_STALE_SQL, (collection_id,)).fetchone()[0])


def count_added_after(conn: sqlite3.Connection, collection_id: int, seq: int) -> int:
    """How many faces were added to the collection after change ``seq`` (deleted since or not)."""
    return int(conn.execute(COUNT_ADDED_SQL, (collection_id, seq)).fetchone()[0])


def collection_names(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    """The names of the collections with these ids that still exist."""
    sql = "SELECT id, name FROM collections WHERE id IN ({marks})"
    return {int(i): str(n) for i, n in select_in(conn, sql, (), list(ids))}


def last_key(conn: sqlite3.Connection, collection_id: int) -> int:
    """The largest face key stored in the collection (0 when empty)."""
    found = conn.execute("SELECT max(id) FROM faces WHERE collection_id = ?", (collection_id,)).fetchone()[0]
    return int(found or 0)


def present(conn: sqlite3.Connection, collection_id: int, keys: Sequence[int]) -> set[int]:
    """Which of these face keys are stored in the collection now."""
    sql = "SELECT id FROM faces WHERE collection_id = ? AND id IN ({marks})"
    return {int(r[0]) for r in select_in(conn, sql, (collection_id,), list(keys))}
