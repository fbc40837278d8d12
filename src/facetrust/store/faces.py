"""SQL of faces: their rows, their templates (sealed with the keyring when one is set) and the
change log (``changes``) that keeps the derived indexes in step (pruned by store/changelog.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetrust.errors import ConfigurationError
from facetrust.store import changelog, vacuums
from facetrust.store.inlist import in_chunks, select_in
from facetrust.store.rows import _FACE_COLUMNS, FaceRow, NewFace, _face

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.sealing import Keyring

__all__ = ["BULK_CACHE_KIB", "BULK_ROWS", "FaceTable", "Resealed"]

#: A connection that inserts at least ``BULK_ROWS`` faces in one call keeps ``BULK_CACHE_KIB`` of
#: page cache (SQLite's default is 2 MiB) from then on: the unique indexes of millions of faces and
#: images take a random page per insert, and a 2 MiB cache re-reads most of them from the OS
#: (bench/ingest_profile.py: at 1,000,000 faces the SQL cost per face halved with a bigger cache
#: and time-ordered ids). Only bulk writers pay its memory.
BULK_ROWS = 1000
BULK_CACHE_KIB = 256 * 1024


@dataclass(frozen=True)
class Resealed:
    """What one batch of a template rotation changed: templates and kept face crops re-sealed with
    the current key, and the last face key it looked at (0: there were none left)."""

    templates: int
    crops: int
    last_key: int


class FaceTable:
    """The faces' methods of ``Store`` (a mixin: the store gives it ``_conn`` and ``keyring``;
    ``_new_face_keys`` and ``_bulk_writer`` are SQLite's, which ``PostgresStore`` overrides)."""

    _conn: Callable[[], sqlite3.Connection]  # the store's: this thread's connection
    keyring: Keyring | None
    key_problem: str | None

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
            "expires_at, retained_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    f.expires_at if f.retained_until is None else f.retained_until,
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

    def faces_of_image(self, collection_id: int, image_id: str, conn: sqlite3.Connection) -> list[FaceRow]:
        """The faces stored in the collection from one image (its ``image_id``), in the order stored."""
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE image_id = ? AND collection_id = ? ORDER BY id"
        return [_face(row) for row in conn.execute(sql, (image_id, collection_id))]

    def faces_by_keys(
        self,
        collection_id: int,
        keys: Sequence[int],
        conn: sqlite3.Connection | None = None,
        *,
        users_only: bool = False,
    ) -> dict[int, FaceRow]:
        """The faces of ``keys`` still in the collection; with ``users_only``, only those associated
        with a user (the database leaves the others out: a user search reads no other face)."""
        having = " AND user_id IS NOT NULL" if users_only else ""
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE collection_id = ?{having} AND id IN ({{marks}})"
        faces = (_face(row) for row in select_in(conn or self._conn(), sql, (collection_id,), [int(k) for k in keys]))
        return {face.key: face for face in faces}

    def count_expired(self, collection_id: int, now: float, conn: sqlite3.Connection | None = None) -> int:
        """How many faces of the collection have expired by ``now`` and wait for the sweep. Read off the
        expiry index (the few faces past expiry), not the collection's: ``+`` keeps SQLite from the latter."""
        sql = "SELECT count(*) FROM faces WHERE expires_at <= ? AND +collection_id = ?"
        found = (conn or self._conn()).execute(sql, (now, collection_id)).fetchone()
        return int(found[0])

    def expired_keys(
        self, collection_id: int, keys: Sequence[int], now: float, conn: sqlite3.Connection | None = None
    ) -> set[int]:
        """Those of ``keys`` whose face has expired by ``now``."""
        sql = "SELECT id FROM faces WHERE collection_id = ? AND expires_at <= ? AND id IN ({marks})"
        return {int(r[0]) for r in select_in(conn or self._conn(), sql, (collection_id, now), [int(k) for k in keys])}

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
        if self.key_problem is not None:  # keys that cannot read this store's templates: write none under them
            raise ConfigurationError(f"{self.key_problem}; no template is written until then", setting="template_key")
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

    def reseal_batch(self, conn: sqlite3.Connection, after_key: int, limit: int) -> Resealed:
        """Re-seal up to ``limit`` templates after ``after_key``, and their faces' crops, with the
        keyring's current key."""
        from facetrust.store.crops import reseal_crops
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
        changed_crops = reseal_crops(conn, self.keyring, [(int(key), str(face_id)) for key, face_id, _ in rows])
        if changed or changed_crops:  # their old versions are reclaimed by the vacuum, as an erasure's rows
            vacuums.count_erasure(conn)
        return Resealed(changed, changed_crops, int(rows[-1][0]) if rows else 0)

    def delete_faces(self, conn: sqlite3.Connection, collection_id: int, keys: Sequence[int]) -> None:
        from facetrust.store.people import drop_summaries, keep_joined, must_links_of
        from facetrust.store.tailstats import forget

        forget(conn, collection_id, keys)  # no per-face statistic derived from these templates stays
        drop_summaries(conn, collection_id, keys)  # nor a cohesion of their people
        keep_joined(conn, collection_id, keys, must_links_of(conn, keys))  # a merge outlives its erased anchors
        gone = [int(k) for k in keys]
        for marks, chunk in in_chunks(gone, conn):  # a statement per key cost 8 s at 200,000
            conn.execute(f"DELETE FROM faces WHERE collection_id = ? AND id IN ({marks})", (collection_id, *chunk))
        conn.executemany(
            "INSERT INTO changes(collection_id, face_key, op) VALUES (?, ?, 'del')", [(collection_id, k) for k in gone]
        )
        if keys:
            vacuums.count_erasure(conn)

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

    def deleted_since(self, collection_id: int, seq: int, conn: sqlite3.Connection | None = None) -> bool:
        """Whether a face of the collection was deleted after change ``seq``."""
        found = (
            (conn or self._conn())
            .execute(
                "SELECT 1 FROM changes WHERE collection_id = ? AND seq > ? AND op = 'del' LIMIT 1", (collection_id, seq)
            )
            .fetchone()
        )
        return found is not None

    def change_log_reaches(self, collection_id: int, seq: int, conn: sqlite3.Connection | None = None) -> bool:
        """Whether the change log still holds every change of the collection after ``seq`` (not pruned
        past it: store/changelog.py). Ask after reading the changes."""
        return changelog.reaches(conn or self._conn(), collection_id, seq)

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
