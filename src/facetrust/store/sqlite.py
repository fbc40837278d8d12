"""SQLite store: the source of truth for collections, faces (metadata + embeddings) and users.

WAL journal, ``synchronous=FULL``: a call that returned has been committed durably, and a
transaction interrupted by ``kill -9`` leaves nothing behind. Each thread gets its own
connection, so readers never wait for the writer.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facetrust.errors import ConfigurationError
from facetrust.store import resume, video_jobs
from facetrust.store.anchor import DDL as AUDIT_DDL
from facetrust.store.anchor import AuditHead, HeadFile
from facetrust.store.anchor import head as audit_head
from facetrust.store.private import private_dir, private_file, tighten
from facetrust.store.schema import DDL, SCHEMA_VERSION
from facetrust.store.signatures import REPLAYS_NAME, ReplayFile, close_all
from facetrust.store.upgrade import upgrade

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from facetrust.store.sealing import Keyring

__all__ = ["HEADS_NAME", "REPLAYS_NAME", "CollectionRow", "FaceRow", "Store", "UserRow"]

log = logging.getLogger(__name__)

HEADS_NAME = "audit.heads"  # beside the database, outside it: the anchor of the audit log's head

_FACE_COLUMNS = (
    "id, face_id, image_id, external_image_id, user_id, box_left, box_top, box_width, box_height, "
    "confidence, brightness, sharpness, roll, yaw, pitch, created_at, expires_at"
)


@dataclass(frozen=True)
class CollectionRow:
    id: int
    name: str
    model: str
    purpose: str
    created_at: float


@dataclass(frozen=True)
class FaceRow:
    """One stored face (without its embedding)."""

    key: int
    face_id: str
    image_id: str
    external_image_id: str | None
    user_id: str | None
    box: tuple[float, float, float, float]  # left, top, width, height as ratios
    confidence: float
    brightness: float
    sharpness: float
    pose: tuple[float, float, float]  # roll, yaw, pitch
    created_at: float
    expires_at: float | None

    @classmethod
    def inserted(cls, key: int, face: NewFace, created_at: float) -> FaceRow:
        """The row ``insert_faces`` stores for ``face`` under ``key`` at ``created_at`` (no user yet),
        without reading it back: a bulk import answers with thousands of them per transaction."""
        return cls(
            key=key,
            face_id=face.face_id,
            image_id=face.image_id,
            external_image_id=face.external_image_id,
            user_id=None,
            box=face.box,
            confidence=face.confidence,
            brightness=face.brightness,
            sharpness=face.sharpness,
            pose=face.pose,
            created_at=created_at,
            expires_at=face.expires_at,
        )


@dataclass(frozen=True)
class NewFace:
    """A face to insert."""

    face_id: str
    image_id: str
    external_image_id: str | None
    box: tuple[float, float, float, float]
    confidence: float
    brightness: float
    sharpness: float
    pose: tuple[float, float, float]
    embedding: bytes
    expires_at: float | None = None


@dataclass(frozen=True)
class UserRow:
    user_id: str
    created_at: float
    face_count: int


def _face(row: sqlite3.Row) -> FaceRow:
    return FaceRow(
        key=row[0],
        face_id=row[1],
        image_id=row[2],
        external_image_id=row[3],
        user_id=row[4],
        box=(row[5], row[6], row[7], row[8]),
        confidence=row[9],
        brightness=row[10],
        sharpness=row[11],
        pose=(row[12], row[13], row[14]),
        created_at=row[15],
        expires_at=row[16],
    )


#: A connection that inserts at least ``BULK_ROWS`` faces in one call keeps ``BULK_CACHE_KIB`` of
#: page cache (SQLite's default is 2 MiB) from then on: the unique indexes of millions of faces and
#: images take a random page per insert, and a 2 MiB cache re-reads most of them from the OS
#: (bench/ingest_profile.py: at 1,000,000 faces the SQL cost per face halved with a bigger cache
#: and time-ordered ids). Only bulk writers pay its memory.
BULK_ROWS = 1000
BULK_CACHE_KIB = 256 * 1024

_CHUNK = 500  # SQLite caps bound parameters per statement; IN lists go in chunks of this size


def select_in(
    conn: sqlite3.Connection, sql: str, args: Sequence[object], values: Sequence[object]
) -> Iterator[sqlite3.Row]:
    """Rows of ``sql`` (which ends in ``IN ({marks})``) for all ``values``, a chunk at a time."""
    for start in range(0, len(values), _CHUNK):
        chunk = list(values[start : start + _CHUNK])
        yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))), (*args, *chunk))


class Store:
    """All SQL lives here. Methods that write must run inside ``transaction()``."""

    postgres = False  # the dialect under the SQL (PostgresStore: True)

    def __init__(self, path: Path, *, keyring: Keyring | None = None) -> None:
        self.path = path
        self.keyring = keyring
        self.heads = HeadFile(path.with_name(HEADS_NAME))
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._admitted = itertools.count(1)  # signatures admitted by this process: every PRUNE_EVERY-th prunes
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
        if not self.heads.exists():  # a store made before its head file existed: anchored where it stands
            self._anchor(audit_head(conn))
        tighten(self.heads.path)  # one left readable by an older version: 0600

    def where(self) -> str:
        """Where this store's rows live, for messages: its data directory."""
        return f"Data directory {self.path.parent}"

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.executescript("BEGIN IMMEDIATE;" + DDL + AUDIT_DDL + "COMMIT;")

    # -- connections and transactions ------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                private_dir(self.path.parent)
                private_file(self.path)
                for suffix in ("-wal", "-shm", "-journal"):  # SQLite gives new ones the database's mode
                    tighten(self.path.with_name(self.path.name + suffix))
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
            except (OSError, sqlite3.DatabaseError) as exc:
                raise ConfigurationError(f"Cannot open database {self.path}: {exc}") from None
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = audit_head(conn)
            yield conn
            after = audit_head(conn)  # this transaction's own appends, if any: nobody else writes meanwhile
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (I/O error, disk full): the original error is the
            # one to raise. A failed COMMIT leaves the transaction open: roll it back, or every
            # later BEGIN on this thread's connection would fail.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if after != before:
            self._anchor(after)

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
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:  # not when SQLite ended it itself after an error
                conn.execute("COMMIT")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for single reads outside a transaction."""
        return self._conn()

    def checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it, so erased pages leave no copy there."""
        self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    reclaimed = ""  # erased rows are overwritten in the erasure (secure_delete, then a WAL checkpoint)

    def vacuum(self) -> str:
        """Rewrite the database so no erased row's bytes remain in free pages; what ran."""
        self._conn().execute("VACUUM")
        self.checkpoint()
        return f"VACUUM of {self.path.name} and a WAL checkpoint"

    def close(self) -> None:
        close_all(self._all, self._lock)
        self._local = threading.local()
        self.replays.close()

    # -- collections ------------------------------------------------------------------------

    def insert_collection(self, conn: sqlite3.Connection, name: str, model: str, purpose: str) -> CollectionRow:
        now = time.time()
        cur = conn.execute(
            "INSERT INTO collections(name, model, purpose, created_at) VALUES (?, ?, ?, ?)", (name, model, purpose, now)
        )
        return CollectionRow(int(cur.lastrowid or 0), name, model, purpose, now)

    def get_collection(self, name: str, conn: sqlite3.Connection | None = None) -> CollectionRow | None:
        row = (
            (conn or self._conn())
            .execute("SELECT id, name, model, purpose, created_at FROM collections WHERE name = ?", (name,))
            .fetchone()
        )
        return CollectionRow(*row) if row else None

    def list_collections(self, after: str | None, limit: int) -> list[CollectionRow]:
        rows = (
            self._conn()
            .execute(
                "SELECT id, name, model, purpose, created_at FROM collections WHERE name > ? ORDER BY name LIMIT ?",
                (after or "", limit),
            )
            .fetchall()
        )
        return [CollectionRow(*r) for r in rows]

    def count_collections(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM collections").fetchone()[0])

    def delete_collection(self, conn: sqlite3.Connection, collection_id: int) -> int:
        faces = conn.execute("SELECT count(*) FROM faces WHERE collection_id = ?", (collection_id,)).fetchone()[0]
        conn.execute("DELETE FROM faces WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM users WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM changes WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))
        return int(faces)

    def counts(self, collection_id: int, conn: sqlite3.Connection | None = None) -> tuple[int, int]:
        c = conn or self._conn()
        faces = c.execute("SELECT count(*) FROM faces WHERE collection_id = ?", (collection_id,)).fetchone()[0]
        users = c.execute("SELECT count(*) FROM users WHERE collection_id = ?", (collection_id,)).fetchone()[0]
        return int(faces), int(users)

    # -- faces ------------------------------------------------------------------------------

    def _new_face_keys(self, conn: sqlite3.Connection, count: int) -> list[int]:
        """``count`` new face keys, ascending: inside this write transaction no one else inserts, and
        AUTOINCREMENT never reuses a key, so they continue from the largest ever used."""
        (used,) = conn.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'faces'), 0), "
            "coalesce((SELECT max(id) FROM faces), 0))"
        ).fetchone()
        return list(range(int(used) + 1, int(used) + 1 + count))

    def _bulk_writer(self, conn: sqlite3.Connection) -> None:
        """This connection writes bulk batches: give it a bigger page cache (SQLite's own, per connection)."""
        conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")

    def insert_faces(
        self, conn: sqlite3.Connection, collection_id: int, faces: Sequence[NewFace], *, now: float | None = None
    ) -> list[int]:
        """Insert the faces (and their ``changes`` rows), created at ``now`` (default: the time now); their keys."""
        now = time.time() if now is None else now
        if len(faces) >= BULK_ROWS:
            self._bulk_writer(conn)
        # One executemany per table (a bulk import inserts thousands of faces per transaction), with
        # the keys given, not read back row by row.
        keys = self._new_face_keys(conn, len(faces))
        conn.executemany(
            "INSERT INTO faces(id, face_id, collection_id, image_id, external_image_id, box_left, box_top, "
            "box_width, box_height, confidence, brightness, sharpness, roll, yaw, pitch, embedding, created_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    key,
                    f.face_id,
                    collection_id,
                    f.image_id,
                    f.external_image_id,
                    *f.box,
                    f.confidence,
                    f.brightness,
                    f.sharpness,
                    *f.pose,
                    self._seal(f.face_id, f.embedding),
                    now,
                    f.expires_at,
                )
                for key, f in zip(keys, faces, strict=True)
            ),
        )
        conn.executemany(
            "INSERT INTO changes(collection_id, face_key, op) VALUES (?, ?, 'add')", ((collection_id, k) for k in keys)
        )
        return keys

    def faces_by_ids(
        self, collection_id: int, face_ids: Sequence[str], conn: sqlite3.Connection | None = None
    ) -> dict[str, FaceRow]:
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection_id = ? AND face_id IN ({{marks}})"
        faces = (_face(row) for row in select_in(conn or self._conn(), sql, (collection_id,), face_ids))
        return {face.face_id: face for face in faces}

    def faces_by_keys(
        self, collection_id: int, keys: Sequence[int], conn: sqlite3.Connection | None = None
    ) -> dict[int, FaceRow]:
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection_id = ? AND id IN ({{marks}})"
        faces = (_face(row) for row in select_in(conn or self._conn(), sql, (collection_id,), [int(k) for k in keys]))
        return {face.key: face for face in faces}

    def list_faces(
        self, collection_id: int, *, after_key: int, limit: int, user_id: str | None = None
    ) -> list[FaceRow]:
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection_id = ? AND id > ?"
        args: list[object] = [collection_id, after_key]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [_face(r) for r in self._conn().execute(sql, args)]

    def _seal(self, face_id: str, plain: bytes) -> bytes:
        return self.keyring.seal(plain, face_id.encode()) if self.keyring is not None else plain

    def _open(self, face_id: str, blob: bytes) -> bytes:
        """The plain float32 bytes of a stored template (opened with the keyring when sealed)."""
        from facetrust.store.sealing import is_sealed

        if self.keyring is not None:
            return self.keyring.open(blob, face_id.encode())
        if is_sealed(blob):
            raise ConfigurationError(
                "Stored templates are encrypted, but no template key is configured "
                "(FACETRUST_TEMPLATE_KEY or the template_key_file setting)"
            )
        return blob

    def embedding(self, collection_id: int, key: int, conn: sqlite3.Connection | None = None) -> bytes | None:
        row = (
            (conn or self._conn())
            .execute("SELECT face_id, embedding FROM faces WHERE collection_id = ? AND id = ?", (collection_id, key))
            .fetchone()
        )
        return self._open(row[0], bytes(row[1])) if row else None

    def embeddings(
        self, collection_id: int, keys: Sequence[int] | None = None, conn: sqlite3.Connection | None = None
    ) -> Iterator[tuple[int, bytes]]:
        c = conn or self._conn()
        if keys is None:
            for key, face_id, blob in c.execute(
                "SELECT id, face_id, embedding FROM faces WHERE collection_id = ? ORDER BY id", (collection_id,)
            ):
                yield int(key), self._open(face_id, bytes(blob))
            return
        sql = "SELECT id, face_id, embedding FROM faces WHERE collection_id = ? AND id IN ({marks})"
        for key, face_id, blob in select_in(c, sql, (collection_id,), [int(k) for k in keys]):
            yield int(key), self._open(face_id, bytes(blob))

    def reseal_batch(self, conn: sqlite3.Connection, after_key: int, limit: int) -> tuple[int, int]:
        """Re-seal up to ``limit`` templates after ``after_key`` with the keyring's current key.

        Returns (templates changed, last key looked at; 0 when there are no more)."""
        from facetrust.store.sealing import is_sealed

        if self.keyring is None:
            raise ConfigurationError("No template key is configured: nothing to seal templates with")
        rows = conn.execute(
            "SELECT id, face_id, embedding FROM faces WHERE id > ? ORDER BY id LIMIT ?", (after_key, limit)
        ).fetchall()
        changed = 0
        for key, face_id, blob in rows:
            if self.keyring.sealed_with_current(bytes(blob)):
                continue
            plain = self.keyring.open(bytes(blob), face_id.encode()) if is_sealed(bytes(blob)) else bytes(blob)
            conn.execute("UPDATE faces SET embedding = ? WHERE id = ?", (self._seal(face_id, plain), key))
            changed += 1
        return changed, (int(rows[-1][0]) if rows else 0)

    def delete_faces(self, conn: sqlite3.Connection, collection_id: int, keys: Sequence[int]) -> None:
        from facetrust.store.tailstats import forget

        forget(conn, collection_id, keys)  # no per-face statistic derived from these templates stays
        for key in keys:
            conn.execute("DELETE FROM faces WHERE collection_id = ? AND id = ?", (collection_id, int(key)))
            conn.execute("INSERT INTO changes(collection_id, face_key, op) VALUES (?, ?, 'del')", (collection_id, key))

    def changes_since(
        self, collection_id: int, seq: int, conn: sqlite3.Connection | None = None
    ) -> list[tuple[int, int, str]]:
        return [
            (int(s), int(k), str(op))
            for s, k, op in (conn or self._conn()).execute(
                "SELECT seq, face_key, op FROM changes WHERE collection_id = ? AND seq > ? ORDER BY seq",
                (collection_id, seq),
            )
        ]

    def last_change(self, collection_id: int, conn: sqlite3.Connection | None = None) -> int:
        row = (
            (conn or self._conn())
            .execute("SELECT max(seq) FROM changes WHERE collection_id = ?", (collection_id,))
            .fetchone()
        )
        return int(row[0] or 0)

    def face_keys(self, collection_id: int, conn: sqlite3.Connection | None = None) -> list[int]:
        return [
            int(r[0])
            for r in (conn or self._conn()).execute("SELECT id FROM faces WHERE collection_id = ?", (collection_id,))
        ]

    # -- users ------------------------------------------------------------------------------

    def insert_user(self, conn: sqlite3.Connection, collection_id: int, user_id: str) -> None:
        conn.execute(
            "INSERT INTO users(collection_id, user_id, created_at) VALUES (?, ?, ?)",
            (collection_id, user_id, time.time()),
        )

    def get_user(self, collection_id: int, user_id: str, conn: sqlite3.Connection | None = None) -> UserRow | None:
        c = conn or self._conn()
        row = c.execute(
            "SELECT user_id, created_at FROM users WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)
        ).fetchone()
        if row is None:
            return None
        count = c.execute(
            "SELECT count(*) FROM faces WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)
        ).fetchone()[0]
        return UserRow(row[0], row[1], int(count))

    def delete_user(self, conn: sqlite3.Connection, collection_id: int, user_id: str) -> None:
        conn.execute(
            "UPDATE faces SET user_id = NULL WHERE collection_id = ? AND user_id = ?", (collection_id, user_id)
        )
        conn.execute("DELETE FROM users WHERE collection_id = ? AND user_id = ?", (collection_id, user_id))

    def list_users(self, collection_id: int, after: str | None, limit: int) -> list[UserRow]:
        rows = (
            self._conn()
            .execute(
                "SELECT u.user_id, u.created_at, (SELECT count(*) FROM faces f WHERE f.collection_id = u.collection_id "
                "AND f.user_id = u.user_id) FROM users u WHERE u.collection_id = ? AND u.user_id > ? "
                "ORDER BY u.user_id LIMIT ?",
                (collection_id, after or "", limit),
            )
            .fetchall()
        )
        return [UserRow(r[0], r[1], int(r[2])) for r in rows]

    def count_user_faces(self, collection_id: int) -> int:
        row = (
            self._conn()
            .execute("SELECT count(*) FROM faces WHERE collection_id = ? AND user_id IS NOT NULL", (collection_id,))
            .fetchone()
        )
        return int(row[0])

    def set_user(self, conn: sqlite3.Connection, collection_id: int, keys: Sequence[int], user_id: str | None) -> None:
        for key in keys:
            conn.execute(
                "UPDATE faces SET user_id = ? WHERE collection_id = ? AND id = ?", (user_id, collection_id, key)
            )

    # -- bulk ingestion's resume record (facetrust.ingest) ------------------------------------

    def record_ingested(
        self, conn: sqlite3.Connection, collection_id: int, sha256: str, image_id: str, now: float
    ) -> None:
        self.record_ingested_many(conn, collection_id, [(sha256, image_id)], now)

    def record_ingested_many(
        self, conn: sqlite3.Connection, collection_id: int, images: Sequence[tuple[str, str]], now: float
    ) -> None:
        """Record each ``(sha256, image_id)`` as indexed into the collection (two statements for a batch)."""
        resume.record(conn, collection_id, images, now)

    def ingested(self, collection_id: int, hashes: Sequence[str]) -> set[str]:
        """Which of ``hashes`` (SHA-256 of image bytes) are recorded as indexed into the collection."""
        wanted = set(hashes)
        keys = sorted({resume.hash_key(h) for h in wanted})
        return {str(row[0]) for row in select_in(self._conn(), resume.LOOKUP, (collection_id,), keys)} & wanted

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


def vector_from_blob(blob: bytes, dim: int) -> np.ndarray:
    import numpy as np

    vec = np.frombuffer(blob, dtype=np.float32)
    if vec.size != dim:
        raise ConfigurationError(f"Stored embedding has {vec.size} values; expected {dim}")
    return vec
