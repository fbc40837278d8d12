"""SQLite store: the source of truth for collections, faces (metadata + embeddings) and users.

WAL journal, ``synchronous=FULL``: a call that returned has been committed durably, and a
transaction interrupted by ``kill -9`` leaves nothing behind. Each thread gets its own
connection, so readers never wait for the writer; it is closed when its thread ends (a server's
worker threads come and go, store/threadconns.py) or when the store closes.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import ConfigurationError
from facetrust.store import busy, vacuums, video_jobs
from facetrust.store.anchor import DDL as AUDIT_DDL
from facetrust.store.anchor import RECENT_HEADS, AuditHead, HeadFile, disagreement
from facetrust.store.anchor import head as audit_head
from facetrust.store.collections import CollectionTable
from facetrust.store.faces import FaceTable
from facetrust.store.ingested import IngestedRecord
from facetrust.store.inlist import select_in
from facetrust.store.private import private_dir, private_file, tighten
from facetrust.store.rows import CollectionRow, FaceRow, NewFace, UserRow, vector_from_blob
from facetrust.store.schema import DDL, SCHEMA_VERSION
from facetrust.store.sealing import is_sealed
from facetrust.store.signatures import REPLAYS_NAME, ReplayFile
from facetrust.store.threadconns import ThreadConnections
from facetrust.store.upgrade import upgrade
from facetrust.store.users import UserTable

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.sealing import Keyring

# The rows (store/rows.py) are re-exported: callers import them from here, as before the split.
__all__ = [
    "HEADS_NAME",
    "REPLAYS_NAME",
    "SERVER_VACUUMS",
    "CollectionRow",
    "FaceRow",
    "NewFace",
    "Store",
    "UserRow",
    "select_in",
    "vector_from_blob",
]

log = logging.getLogger(__name__)

HEADS_NAME = "audit.heads"  # beside the database, outside it: the anchor of the audit log's head
KEY_CHECK_ROWS = 256  # the newest templates whose keys are checked at open
# what a receipt's storage statement adds to `facetrust store vacuum`, on either store
SERVER_VACUUMS = "a running server also runs it by itself within `vacuum_seconds` of an erasure, unless that is 0"


class Store(CollectionTable, FaceTable, UserTable, IngestedRecord):
    """Connections, transactions and the audit head's anchor; the SQL of each table group comes
    from its mixin (store/collections.py, faces.py, users.py, ingested.py). Methods that write
    must run inside ``transaction()``."""

    postgres = False  # the dialect under the SQL (PostgresStore: True)

    def __init__(self, path: Path, *, keyring: Keyring | None = None, check_anchors: bool = True) -> None:
        """``check_anchors`` false: the store is about to receive a copied chain (``store copy``'s
        target, whose head file may be its source's): its empty log is not checked against it."""
        self._closed = False
        self.path = path
        self.keyring = keyring
        self.key_problem: str | None = None  # why templates may not be written here (check_keyring)
        self.heads = HeadFile(path.with_name(HEADS_NAME))
        self._conns: ThreadConnections[sqlite3.Connection] = ThreadConnections()  # each thread's, till it ends
        self._admitted = itertools.count(1)  # signatures admitted by this process: every PRUNE_EVERY-th prunes
        # a checkpoint a reader kept from completing, or one a process killed after an erasure's commit never
        # ran (its WAL left behind, the erased rows' old pages still in facetrust.db): retry_checkpoint runs it
        self._checkpoint_due = _wal_left(path)
        self.replays = ReplayFile(path.with_name(REPLAYS_NAME))  # the signatures seen: their own file
        conn = self._conn()
        upgrade(conn, self.where(), postgres=self.postgres)  # a store of an older facetrust; a newer one refused
        self._create_schema(conn)
        with self.transaction():
            found = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if found is None:  # a new store
                conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            moved = video_jobs.move_legacy_matches(conn)  # once: results kept matches before their table
            if moved:
                log.info("moved the matches of %d video jobs into video_job_matches", moved)
        self._erasures_seen = self._erasures()  # the erasures before this open: folded, or due as above
        if not self.heads.exists():  # a store made before its head file existed: anchored where it stands
            self._anchor(audit_head(conn))
        tighten(self.heads.path)  # one left readable by an older version: 0600
        if check_anchors:
            self._check_anchored(conn)

    def _check_anchored(self, conn: sqlite3.Connection) -> None:
        """The newest heads of the head file must be in the log unchanged; where they are not (a
        database restored from an older copy, or altered) this store anchors nothing more, and says
        so at CRITICAL, so no head contradicting the recorded ones is appended (``audit-log verify``
        names the break)."""
        try:
            problem = disagreement(conn, self.heads.recent(RECENT_HEADS))
        except ValueError as exc:  # the head file itself was altered
            problem = str(exc)
        if problem is not None:
            log.critical(
                "AUDIT CHAIN BROKEN in %s: %s; nothing more is anchored in %s", self.where(), problem, self.heads.path
            )
            self.heads.halt(problem)

    def check_keyring(self) -> str | None:
        """Whether this keyring can read the newest stored templates; when it cannot (another key, or
        encryption off over sealed ones), why, and from then on this store refuses to write a
        template (``ConfigurationError``): a face written under such keys would be one that every
        search of its collection then fails on. Everything else stays open (the faces' metadata,
        the audit log, erasure). Plain templates under a key are no problem: sealing them is what
        ``templates rotate`` is for. (Commands that never touch a template, such as ``store copy``,
        open the store without a keyring and do not call this.)"""
        rows = self._conn().execute(f"SELECT embedding FROM faces ORDER BY id DESC LIMIT {KEY_CHECK_ROWS}").fetchall()
        sealed = {bytes(r[0])[4:12] for r in rows if is_sealed(bytes(r[0]))}
        problem = None
        if sealed and self.keyring is None:
            problem = (
                f"{self.where()} holds encrypted templates, but template encryption is off here; "
                "configure the key they were sealed with (template_key_file or FACETRUST_TEMPLATE_KEY)"
            )
        elif sealed and self.keyring is not None:
            unknown = sorted(k.hex() for k in sealed if not self.keyring.knows(k))
            if unknown:
                problem = (
                    f"{self.where()} holds templates sealed with key {', '.join(unknown)}, which is not "
                    "configured here; configure it (older keys follow the current one in the key file)"
                )
        self.key_problem = problem
        return problem

    def where(self) -> str:
        """Where this store's rows live, for messages: its data directory."""
        return f"Data directory {self.path.parent}"

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        with busy.store_busy(self.where()):  # the lock is waited for at the script's BEGIN, before any change
            conn.executescript("BEGIN IMMEDIATE;" + DDL + AUDIT_DDL + "COMMIT;")

    # -- connections and transactions ------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = self._conns.get()
        if conn is None:
            self._check_open()
            try:
                private_dir(self.path.parent)
                private_file(self.path)
                for suffix in ("-wal", "-shm", "-journal"):  # SQLite gives new ones the database's mode
                    tighten(self.path.with_name(self.path.name + suffix))
                conn = sqlite3.connect(
                    self.path, timeout=busy.BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
            except (OSError, sqlite3.DatabaseError) as exc:
                raise ConfigurationError(f"Cannot open database {self.path}: {exc}") from None
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute(f"PRAGMA busy_timeout={int(busy.BUSY_TIMEOUT_S * 1000)}")
            self._conns.put(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it."""
        conn = self._begin("BEGIN IMMEDIATE")
        try:
            before = audit_head(conn)
            yield conn
            after = audit_head(conn)  # this transaction's own appends, if any: nobody else writes meanwhile
            self._commit(conn)
        except BaseException:
            # SQLite may have rolled back already (I/O error, disk full): the original error is the
            # one to raise. A failed COMMIT leaves the transaction open: roll it back, or every
            # later BEGIN on this thread's connection would fail.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        busy.count_commit()
        if after != before:
            self._anchor(after)

    def _begin(self, sql: str) -> sqlite3.Connection:
        """This thread's connection, with the transaction ``sql`` begun on it."""
        conn = self._conn()
        with busy.store_busy(self.where()):
            conn.execute(sql)
        return conn

    def _commit(self, conn: sqlite3.Connection) -> None:
        """Commit the write transaction open on ``conn``."""
        conn.execute("COMMIT")

    def _anchor(self, current: AuditHead) -> None:
        """Append the audit head to the head file when this process's commit moved it (after the commit,
        so a rolled-back entry is never anchored; a crash in between only leaves the file one head
        behind). Entries other processes append are anchored, verified, by ``service/anchoring.py``."""
        try:
            self.heads.record(current)
        except OSError as exc:
            log.error("Cannot append the audit head to %s: %s", self.heads.path, exc)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one consistent state."""
        conn = self._begin("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:  # not when SQLite ended it itself after an error
                conn.execute("COMMIT")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for single reads outside a transaction."""
        return self._conn()

    def checkpoint(self) -> bool:
        """Fold the WAL into the database and truncate it, so erased pages leave no copy there. False
        when a reader holding an older snapshot kept it from completing within the busy timeout: it is
        then due again, and ``retry_checkpoint`` (a server's periodic step) runs it until it completes."""
        erasures = self._erasures()  # all committed before the checkpoint: folded by it when it completes
        row = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        done = row is None or int(row[0]) == 0
        self._checkpoint_due = not done
        if done:
            self._erasures_seen = erasures
        else:
            log.warning(
                "WAL checkpoint of %s blocked by a reader; erased rows stay in the WAL until it is retried", self.path
            )
        return done

    def retry_checkpoint(self) -> bool:
        """Run again a checkpoint that a reader kept from completing, or one an erasure committed by
        another process (``facetrust erase`` beside a server) has not run: killed between its commit
        and its checkpoint, it left the erased rows' old pages in the WAL and the database file, where
        this process would not look again; True when none is due (any more)."""
        if self._erasures() != self._erasures_seen:
            self._checkpoint_due = True
        return self.checkpoint() if self._checkpoint_due else True

    def _erasures(self) -> int:
        """How many transactions have erased something in this store (``vacuums.count_erasure``)."""
        return vacuums.erasures(self._conn())

    reclaimed = (
        f"after `facetrust store vacuum` (VACUUM; {SERVER_VACUUMS}): the erasure overwrote the erased rows "
        "themselves (secure_delete, then a WAL checkpoint), but copies of them that SQLite left in its pages' "
        "unused space when it moved rows between pages remain until then"
    )

    resealed = ""  # a rotation overwrites the rows it replaces (secure_delete) and then checkpoints the WAL

    def vacuum(self) -> str:
        """Rewrite the database so no erased row's bytes remain in free pages; what ran. Another
        process's write lock held past the busy timeout: ``StoreBusyError``, and nothing ran."""
        with busy.store_busy(self.where()):
            self._conn().execute("VACUUM")
        self.checkpoint()
        return f"VACUUM of {self.path.name} and a WAL checkpoint"

    def open_connections(self) -> int:
        """How many connections to the database are open: one per live thread that used it."""
        return len(self._conns)

    def close(self) -> None:
        self._closed = True
        self._conns.close()
        self.replays.close()

    def _check_open(self) -> None:
        """Refuse to open a connection once the store was closed: a service used after ``close()``
        says so instead of reopening connections that nothing would close."""
        if self._closed:
            raise ConfigurationError(f"{self.where()}: the store was closed; open the service again")

    # -- the signatures seen (server authentication, store/signatures.py) ----------------------

    def admit_signature(
        self, digest: str, signed_at: float, now: float, *, repeat_s: float, window_s: float
    ) -> str | None:
        """Record a presentation of the signature with SHA-256 ``digest`` (signed at ``signed_at``);
        why it is refused as a replay, or None. One statement, committed at once, on
        ``signatures_connection()``; every ``PRUNE_EVERY``-th call also deletes a bounded batch of
        signatures past ``window_s``, so the table cannot grow without bound."""
        from facetrust.store import signatures

        conn = self.signatures_connection()
        refused = signatures.admit(conn, digest, signed_at, now, repeat_s)
        if next(self._admitted) % PRUNE_EVERY == 0:
            signatures.prune(conn, now, window_s)
        return refused

    def signatures_connection(self) -> sqlite3.Connection:
        """The connection to the table of the signatures seen: on SQLite, the data directory's
        ``replays.db`` (store/signatures.py), outside the main database's write lock and fsync."""
        return self.replays.connection()


PRUNE_EVERY = 64  # one bounded prune (up to 1,000 rows) per 64 signatures admitted: 15 deletions per insertion at most


def _wal_left(path: Path) -> bool:
    """Whether the database at ``path`` has a WAL with something in it. Read once, by ``stat``: another
    process's close (SQLite's last connection) deletes the WAL at any moment, so a WAL seen by
    ``is_file`` may be gone when its size is read, which failed the store's open."""
    try:
        return path.with_name(path.name + "-wal").stat().st_size > 0
    except FileNotFoundError:  # none left behind, or folded and deleted just now
        return False
    except OSError as exc:  # a name too long, a symlink loop: the database cannot be opened either
        raise ConfigurationError(f"Cannot open database {path}: {exc}") from None
