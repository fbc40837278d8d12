"""Pruning the change log (``changes``), and what a reader needs to know it was pruned.

Every face added or deleted appends a numbered row to ``changes``; each replica's vector index
and the per-face statistics keeper follow it from the number they reached. Kept forever, it
grows by two rows for every face enrolled and erased, and keeps an erased face's key. The
retention sweep (service/retention.py) prunes it: rows older than ``keep_s`` go, except the newest
row of each collection (so ``last_change`` still names the number a collection is at); a kept row
older than the bound has its face key replaced by 0 (no face has key 0), so no erased face's key
outlives the bound.

A row's age is told by marks, not by a column: each prune records ``(now, the log's newest
number)`` at most every ``keep_s / MARKS`` seconds (in ``meta``, so no row pays for a time), and
deletes the rows up to the newest mark at least ``keep_s`` old. So a row goes between ``keep_s``
and ``keep_s * (1 + 1 / MARKS)`` after it was written, plus a sweep interval; the sweep's clock
alone dates them. A mark more than ``AHEAD_S`` ahead of ``now`` was written by a clock far ahead
and is dropped.

The log is pruned up to ``pruned_to`` (in ``meta``; ``store copy`` carries it): every row up to that
number is gone but each collection's newest at the time. A reader at position ``seq`` of a
collection still finds every later change of it when ``seq >= pruned_to``, or when the row ``seq``
itself is still there (it was its collection's newest at every prune that passed it, so nothing
of the collection after it was pruned): ``reaches``. Otherwise it rebuilds from the faces table.
Portable SQL (SQLite and PostgreSQL) through the store's connection methods, as ``store/vacuums.py``.
"""

from __future__ import annotations

import json
import sqlite3

__all__ = ["AHEAD_S", "CARRIED", "MARKS", "PRUNE_ROWS", "prune", "pruned_to", "reaches"]

MARKS = 8  # marks per keep_s: a row outlives the bound by at most an eighth of it (and a sweep)
AHEAD_S = 86400.0  # a mark further ahead of now was written by a clock far ahead (no replicas differ by a day)
PRUNE_ROWS = 200_000  # rows deleted by one prune at most (a backlog is worked off a sweep at a time)
_MARKS_KEY = "change_log_marks"
_PRUNED_KEY = "change_log_pruned_to"
CARRIED = (_MARKS_KEY, _PRUNED_KEY)  # ``meta`` rows a copy of the store carries with the change log


def _value(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _put(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def pruned_to(conn: sqlite3.Connection) -> int:
    """The number up to which the log was pruned (0: never pruned)."""
    return int(_value(conn, _PRUNED_KEY) or 0)


def reaches(conn: sqlite3.Connection, collection_id: int, seq: int) -> bool:
    """Whether the log still holds every change of the collection after ``seq``. Read it after the
    changes themselves: a prune between the two reads then says False, never True wrongly."""
    if seq >= pruned_to(conn):
        return True
    found = conn.execute("SELECT 1 FROM changes WHERE seq = ? AND collection_id = ?", (seq, collection_id))
    return seq > 0 and found.fetchone() is not None


def _marks(conn: sqlite3.Connection) -> list[tuple[float, int]]:
    try:
        stored = json.loads(_value(conn, _MARKS_KEY) or "[]")
        return [(float(at), int(seq)) for at, seq in stored]
    except (ValueError, TypeError):  # unreadable: start again (rows then go a bound later, never sooner)
        return []


def prune(conn: sqlite3.Connection, now: float, keep_s: float, *, limit: int = PRUNE_ROWS) -> int:
    """In ``conn``'s write transaction: mark the log's newest number at ``now`` (when no mark lies
    within ``keep_s / MARKS`` of it), and delete the rows up to the newest mark at least ``keep_s``
    old, at most ``limit`` of them, each collection's newest row kept with its face key zeroed. The
    number of rows deleted."""
    marks = [(at, seq) for at, seq in _marks(conn) if at <= now + AHEAD_S]
    (newest,) = conn.execute("SELECT max(seq) FROM changes").fetchone()
    if newest is not None and all(abs(now - at) >= keep_s / MARKS for at, _ in marks):
        marks.append((now, int(newest)))
    floor = pruned_to(conn)
    through = max([seq for at, seq in marks if at <= now - keep_s], default=0)
    deleted = 0
    if through > floor:
        cut = conn.execute(
            "SELECT seq FROM changes WHERE seq <= ? ORDER BY seq LIMIT 1 OFFSET ?", (through, limit - 1)
        ).fetchone()
        through = through if cut is None else int(cut[0])  # a backlog: the oldest ``limit`` rows now
        deleted = conn.execute(
            "DELETE FROM changes WHERE seq <= ? AND seq < "
            "(SELECT max(newer.seq) FROM changes newer WHERE newer.collection_id = changes.collection_id)",
            (through,),
        ).rowcount
        conn.execute("UPDATE changes SET face_key = 0 WHERE seq <= ? AND face_key <> 0", (through,))
        floor = through
        _put(conn, _PRUNED_KEY, str(floor))
    _put(conn, _MARKS_KEY, json.dumps([[at, seq] for at, seq in sorted(marks) if seq > floor]))
    return max(deleted, 0)
