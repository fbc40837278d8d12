"""Upgrades of a store made by an older facetrust, SQLite and PostgreSQL alike, run when it opens.

One write transaction (on PostgreSQL under the writer lock, so replicas starting together upgrade
once) reads the stored schema version, refuses a newer one, and runs every step after it. Stop
every replica of the older version before starting the new one: it writes the old tables.

Version 2: bulk ingestion's resume record (``ingested_images``) moves from a primary key on the
64-character hash to a 64-bit hash key with the full hash beside it (store/schema.py says why).
The old table is set aside, the new one made, its rows copied with their keys, the old one
dropped.

Version 3: ``faces.retained_until``, the end of a face's retention fixed at enrolment, apart from
its expiry (which a consent that ends sooner brings forward). Stored faces get their expiry as it.

Version 4: an image's resume record is erased with its last face (trigger ``ingested_erased_last``,
made by the schema script), no longer with its first: the old trigger is dropped.

Version 5: the kept answers of ``ClientRequestToken`` requests (``store/client_tokens.py``). Their
tables came with no new version at first, so a facetrust of version 4 opened such a store and
deleted users without forgetting their answers (a retried CreateUser was then answered from a
user that no longer existed). The step makes the tables where they are missing; from version 5 on,
an older facetrust refuses the store.

Version 6: the retention sweep prunes the change log (``store/changelog.py``), and a reader whose
position lies before the pruned part rebuilds instead of catching up. Nothing in the store
changes; the version is there so that a facetrust of version 5, which would catch its indexes up
across the pruned part and miss the changes that were there, refuses the store.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, cast

from facetrust.errors import ConfigurationError
from facetrust.store.busy import store_busy
from facetrust.store.client_tokens import DDL as CLIENT_TOKENS_DDL
from facetrust.store.ingested import hash_key
from facetrust.store.schema import RESUME_DDL, SCHEMA_VERSION

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.pg_conn import PgConnection

__all__ = ["upgrade"]

log = logging.getLogger(__name__)

_PAGE = 10_000  # rows copied per statement


def upgrade(conn: sqlite3.Connection, where: str, *, postgres: bool) -> None:
    """Bring the store on ``conn`` (named ``where`` in messages) to ``SCHEMA_VERSION``; nothing for a
    new store (the schema script makes it current). A store of a newer version is refused."""
    if not _has_table(conn, "meta", postgres) or _version(conn) == SCHEMA_VERSION:
        return  # new, or current: no write lock taken
    with store_busy(where):  # another process upgrading it for longer than the busy timeout
        conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)  # again, under the lock: another process may have upgraded it
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{where} has schema version {version}, newer than this facetrust ({SCHEMA_VERSION}); upgrade facetrust"
            )
        if version < 2:
            moved = _resume_record_v2(conn, postgres)
            log.info("%s: schema version %d -> 2, %d resume records rekeyed", where, version, moved)
        if version < 3:
            _retained_until_v3(conn, postgres)
            log.info("%s: schema version %d -> 3, faces' retention ends recorded", where, version)
        if version < 4:
            conn.execute("DROP TRIGGER IF EXISTS ingested_erased" + (" ON faces" if postgres else ""))
            if postgres:
                conn.execute("DROP FUNCTION IF EXISTS ingested_erased_fn()")
            if _has_table(conn, "faces", postgres):  # the new trigger in the same transaction: no moment without one
                conn.execute("CREATE INDEX IF NOT EXISTS faces_by_image ON faces(image_id)")
                _script(conn, RESUME_DDL, postgres)
            log.info("%s: schema version %d -> 4, resume records kept while an image has faces", where, version)
        if version < 5:
            if _has_table(conn, "faces", postgres):  # the answers' tables refer to collections and faces
                _script(conn, CLIENT_TOKENS_DDL, postgres)
            log.info("%s: schema version %d -> 5, ClientRequestToken answers kept", where, version)
        if version < 6:
            log.info("%s: schema version %d -> 6, the change log pruned by the retention sweep", where, version)
        if version < SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _resume_record_v2(conn: sqlite3.Connection, postgres: bool) -> int:
    """Version 1's ``ingested_images`` (keyed by the hash's text) rebuilt with hash keys; rows moved."""
    if not _has_table(conn, "ingested_images", postgres) or "hash_key" in _columns(conn, "ingested_images", postgres):
        return 0
    conn.execute("DROP TRIGGER IF EXISTS ingested_erased" + (" ON faces" if postgres else ""))
    conn.execute("DROP INDEX IF EXISTS ingested_by_image")  # index names are the schema's: the new table's
    conn.execute("ALTER TABLE ingested_images RENAME TO ingested_images_v1")
    _script(conn, RESUME_DDL, postgres)
    moved, after = 0, (-1, "")
    while True:  # in key order, a page at a time: not the whole table in memory
        rows = conn.execute(
            "SELECT collection_id, sha256, image_id, indexed_at FROM ingested_images_v1 "
            "WHERE (collection_id, sha256) > (?, ?) ORDER BY collection_id, sha256 LIMIT ?",
            (*after, _PAGE),
        ).fetchall()
        if not rows:
            break
        conn.executemany(
            "INSERT INTO ingested_images(collection_id, hash_key, sha256, image_id, indexed_at) VALUES (?, ?, ?, ?, ?)",
            [(c, hash_key(str(h)), h, i, t) for c, h, i, t in rows],
        )
        moved += len(rows)
        after = (int(rows[-1][0]), str(rows[-1][1]))
    conn.execute("DROP TABLE ingested_images_v1")
    return moved


def _retained_until_v3(conn: sqlite3.Connection, postgres: bool) -> None:
    """Version 3's ``faces.retained_until``. A stored face's retention end was not kept apart from its
    expiry, so its expiry stands in for it: a consent renewed later never moves the face past it."""
    if not _has_table(conn, "faces", postgres) or "retained_until" in _columns(conn, "faces", postgres):
        return  # made by the schema script, now or before
    kind = "DOUBLE PRECISION" if postgres else "REAL"  # as the schema script makes REAL on each (8 bytes)
    conn.execute(f"ALTER TABLE faces ADD COLUMN retained_until {kind}")
    conn.execute("UPDATE faces SET retained_until = expires_at")


def _version(conn: sqlite3.Connection) -> int:
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return 1 if found is None else int(found[0])  # none recorded: made before versions were


def _has_table(conn: sqlite3.Connection, table: str, postgres: bool) -> bool:
    if postgres:
        return bool(conn.execute("SELECT to_regclass(?) IS NOT NULL", (table,)).fetchone()[0])
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return found is not None


def _columns(conn: sqlite3.Connection, table: str, postgres: bool) -> set[str]:
    if postgres:
        sql = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?"
        )
        return {str(r[0]) for r in conn.execute(sql, (table,))}
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _script(conn: sqlite3.Connection, script: str, postgres: bool) -> None:
    """Run a schema script (SQLite's dialect) inside the open transaction, statement by statement."""
    if postgres:
        from facetrust.store.pg_dialect import ddl

        cast("PgConnection", conn).raw.execute(ddl(script).encode())
        return
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
