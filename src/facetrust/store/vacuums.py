"""What a vacuum is due for, kept in the store's ``meta`` rows, so every process over it agrees.

``erasures``: how many transactions deleted faces, a collection, a user or video jobs (each counts itself, in its own
transaction). ``vacuumed_erasures`` and ``vacuumed_at``: that count when the last vacuum began,
and when it ran (before the first vacuum, ``vacuumed_at`` is when a server first found erasures
due: its schedule starts there). A vacuum is due for the erasures counted since (``Backlog``). Portable SQL
through the store's connection methods, as ``leases``; no schema change (``meta`` is a
key-value table on both stores).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["Backlog", "backlog", "count_erasure", "erasures", "record", "start"]


@dataclass(frozen=True)
class Backlog:
    """``erasures``: transactions that erased something since the last vacuum began (0: nothing to
    reclaim); ``vacuumed_at``: when the last vacuum ran (None: never, as far as the store knows)."""

    erasures: int
    vacuumed_at: float | None


def _value(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def erasures(conn: sqlite3.Connection) -> int:
    """How many transactions have deleted faces, a collection, a user or video jobs in this store."""
    return int(_value(conn, "erasures") or 0)


def count_erasure(conn: sqlite3.Connection) -> None:
    """Count, in ``conn``'s transaction, one that deletes faces, a collection, a user or video jobs (or
    replaces templates: a rotation's batch, whose old versions PostgreSQL keeps until a vacuum):
    every process's ``retry_checkpoint`` so learns of erasures it did not make, to fold them out of
    the WAL, and a server's scheduled vacuum (service/vacuumer.py) that one is due."""
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('erasures', '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)"
    )


def backlog(conn: sqlite3.Connection) -> Backlog:
    """The erasures since the last vacuum, and when it ran."""
    at = _value(conn, "vacuumed_at")
    return Backlog(erasures(conn) - int(_value(conn, "vacuumed_erasures") or 0), None if at is None else float(at))


def start(conn: sqlite3.Connection, at: float) -> None:
    """Start the schedule at ``at`` where no vacuum is recorded (a store no server has vacuumed: the
    first vacuum comes an interval after, not at once); a recorded one is left as it is."""
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('vacuumed_at', ?) ON CONFLICT(key) DO NOTHING", (repr(float(at)),)
    )


def record(conn: sqlite3.Connection, covered: int, at: float) -> None:
    """Record, in ``conn``'s transaction, a vacuum that ran at ``at`` and began when ``covered``
    erasures had been counted (one counted after that read is left due for the next vacuum)."""
    for key, value in (("vacuumed_erasures", str(covered)), ("vacuumed_at", repr(float(at)))):
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
