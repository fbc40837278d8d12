"""The signatures seen: which signed requests were accepted, and when first, for every process sharing a store.

A request's SigV4 signature covers its X-Amz-Date, so it is valid only within the allowed clock
skew (``window_s``) of that date; within it, one row of ``seen_signatures`` per signature (keyed by
the SHA-256 of the signature) says when it was first accepted. ``admit`` decides in one statement
(an upsert that inserts a new row or counts one more use of the existing one, and returns when it
was first accepted and how many times it was presented), so of two replicas presented one
signature at once exactly one sees it first. A repeat within ``repeat_s`` of the first acceptance
is an honest SDK repeat (allowed); later it is a replay (refused). Rows past their window are
deleted a bounded batch at a time (``prune``), so the table holds about ``window_s`` of traffic.
Portable SQL (SQLite ≥ 3.35 and PostgreSQL share ``ON CONFLICT … DO UPDATE … RETURNING``).
"""

from __future__ import annotations

import sqlite3

__all__ = ["PRUNE_BATCH", "PRUNE_MARGIN_S", "admit", "prune", "replayed"]

# the table is made with the others (store/schema.py: ``seen_signatures``)

# A row is deleted this long after its window closed: a replica whose clock is behind the pruner's
# (by less than this) still finds it while it would accept the signature's date.
PRUNE_MARGIN_S = 60.0
PRUNE_BATCH = 1000  # rows deleted at most by one prune


def replayed(age_s: float) -> str:
    """The refusal of a signature first accepted ``age_s`` ago (past the repeat window)."""
    return f"Signature replayed: this signed request was first accepted {age_s:.0f} s ago; sign each request anew"


def admit(conn: sqlite3.Connection, digest: str, signed_at: float, now: float, repeat_s: float) -> str | None:
    """Record one presentation of the signature with SHA-256 ``digest``, signed at ``signed_at``;
    why it is refused (a replay), or None (its first use, or an honest repeat within ``repeat_s``).
    Runs as its own statement: call it outside a transaction, so it commits at once."""
    row = conn.execute(
        "INSERT INTO seen_signatures(digest, signed_at, first_at, uses) VALUES (?, ?, ?, 1) "
        "ON CONFLICT(digest) DO UPDATE SET uses = seen_signatures.uses + 1 RETURNING first_at, uses",
        (digest, signed_at, now),
    ).fetchall()[0]
    first, uses = float(row[0]), int(row[1])
    if uses == 1 or now - first < repeat_s:
        return None
    return replayed(now - first)


def prune(conn: sqlite3.Connection, now: float, window_s: float, limit: int = PRUNE_BATCH) -> int:
    """Delete at most ``limit`` rows whose window closed more than ``PRUNE_MARGIN_S`` before ``now``
    (an indexed range, oldest first); how many were deleted."""
    cur = conn.execute(
        "DELETE FROM seen_signatures WHERE digest IN "
        "(SELECT digest FROM seen_signatures WHERE signed_at < ? ORDER BY signed_at LIMIT ?)",
        (now - window_s - PRUNE_MARGIN_S, limit),
    )
    return max(int(cur.rowcount), 0)
