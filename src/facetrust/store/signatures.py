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

Where the table lives: on PostgreSQL, in the shared database. On SQLite, in a file of its own
beside the main database (``ReplayFile``, ``replays.db`` in the data directory, 0600, WAL): a
check then never waits for the main database's write lock (held through a long import) and is
not fsynced (``synchronous=NORMAL``: a commit survives the process's crash, not the machine's;
the in-process cache it replaced survived neither). Every process on the data directory opens
the same file, and each upsert is atomic there, so the record stays shared.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from facetrust.errors import ConfigurationError
from facetrust.store.busy import BUSY_TIMEOUT_S
from facetrust.store.private import private_dir, private_file, tighten
from facetrust.store.threadconns import ThreadConnections

__all__ = [
    "DDL",
    "PRUNE_BATCH",
    "PRUNE_MARGIN_S",
    "REPLAYS_NAME",
    "ReplayFile",
    "admit",
    "prune",
    "replayed",
]

REPLAYS_NAME = "replays.db"  # on SQLite: the signatures seen, beside the database, outside its write lock

# Each signed request accepted within its clock-skew window, by the SHA-256 of its signature, when it
# was first accepted and how often presented. Rows past their window are pruned.
DDL = """
CREATE TABLE IF NOT EXISTS seen_signatures (
    digest    TEXT PRIMARY KEY,
    signed_at REAL NOT NULL,
    first_at  REAL NOT NULL,
    uses      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_signatures_by_time ON seen_signatures(signed_at);
"""

# A row is deleted this long after its window closed: a replica whose clock is behind the pruner's
# (by less than this) still finds it while it would accept the signature's date.
PRUNE_MARGIN_S = 60.0
PRUNE_BATCH = 1000  # rows deleted at most by one prune


def replayed(age_s: float) -> str:
    """The refusal of a signature first accepted ``age_s`` ago (past the repeat window; negative: by a
    clock that has since stepped back)."""
    if age_s < 0:
        return "Signature replayed: this signed request was accepted before (by a clock since set back); sign anew"
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
    if uses == 1 or abs(now - first) < repeat_s:  # a clock stepped back (or a replica behind) opens no window
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


class ReplayFile:
    """The SQLite file holding ``seen_signatures`` (``path``), one connection per thread, opened on
    first use (a process that never authenticates never creates it) and closed when its thread
    ends (store/threadconns.py) or when the file is closed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conns: ThreadConnections[sqlite3.Connection] = ThreadConnections()

    def __repr__(self) -> str:
        return f"ReplayFile({str(self.path)!r})"

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode, the table made if missing."""
        conn = self._conns.get()
        if conn is not None:
            return conn
        try:
            private_dir(self.path.parent)
            private_file(self.path)
            for suffix in ("-wal", "-shm"):  # SQLite gives new ones the file's mode
                tighten(self.path.with_name(self.path.name + suffix))
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # no fsync per commit (see the module's docstring)
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.executescript(DDL)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise ConfigurationError(f"Cannot open the replay record {self.path}: {exc}") from None
        return self._conns.put(conn)

    def open_connections(self) -> int:
        """How many connections to the file are open: one per live thread that used it."""
        return len(self._conns)

    def close(self) -> None:
        self._conns.close()
