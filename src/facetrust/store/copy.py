"""Copy one facetrust store into another, empty one: SQLite or PostgreSQL on either side.

One reader and one writer, whatever the stores: the reader takes the source's tables (each
after the tables its foreign keys reference, so tables added to the schema later are copied
too), their rows in batches and its id sequences, in one read snapshot; the writer puts them
into the target in one write transaction, so the copy lands complete or not at all. Rows go
as stored: ids and sequence numbers are kept (the target's sequences then continue after the
source's), templates and crops stay sealed (their bytes are copied, never opened), and the
audit log is copied entry for entry, so its hash chain verifies on the copy. What differs
between the engines (their catalogs, their sequences) is one ``_Catalog`` each.

API keys travel with the copy (the caller reads them: server/keys.py) into the target's keys
table in the same transaction: on PostgreSQL the ``keys`` table of the database, on SQLite the
data directory's ``keys.db``, attached to the transaction (both files in rollback-journal mode
while it runs, so SQLite commits them atomically together).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from facetrust.errors import ConfigurationError, ConflictError
from facetrust.store.anchor import AuditHead
from facetrust.store.anchor import head as audit_head
from facetrust.store.busy import BUSY_TIMEOUT_S
from facetrust.store.changelog import CARRIED
from facetrust.store.postgres import redact_error, redact_url
from facetrust.store.sealing import MAGIC
from facetrust.store.sqlite import Store

if TYPE_CHECKING:  # pragma: no cover
    from facetrust.store.pg_conn import PgConnection
    from facetrust.store.sealing import Keyring

__all__ = [
    "CopyReport",
    "KeyRows",
    "StoreWriter",
    "catalog_of",
    "check_sealing",
    "copy_store",
    "filled_tables",
    "holds_store",
    "ordered_tables",
    "refuse_filled",
]

log = logging.getLogger(__name__)

_BATCH = 1000
# Not copied: each store's own schema version (the target keeps its own), and the replay record
# of signatures seen in the last minutes (on SQLite it lives in replays.db, not in the store).
# Of ``meta``, only the change log's pruning record travels (``changelog.CARRIED``).
_OWN = ("meta", "seen_signatures")
_KEYS = "keys"  # PostgreSQL's API keys, beside the store's tables: they travel as ``KeyRows``
_SEALER = "keys_sealer"  # which server key seals them: the key store's own, recorded by whoever opens it
_SEALED = (("faces", "embedding"), ("face_crops", "crop"))  # columns whose bytes are sealed with the template key


@dataclass(frozen=True)
class CopyReport:
    """What was copied: rows per table, the audit head both stores now share, and API keys."""

    rows: dict[str, int]
    head: AuditHead
    keys: int = 0
    source_moved: int = 0  # entries the source's log gained while the copy ran (not in the copy)


@dataclass(frozen=True)
class KeyRows:
    """API keys as stored (secrets still sealed): their column names and rows."""

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


class _Catalog:
    """SQLite's catalog: tables, foreign keys, rows, AUTOINCREMENT sequences (``sqlite_sequence``)."""

    def tables(self, conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [str(r[0]) for r in rows if not str(r[0]).startswith("sqlite_") and str(r[0]) not in _OWN]

    def parents(self, conn: sqlite3.Connection, table: str) -> set[str]:
        return {str(r[2]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")} - {table}

    def rows(self, conn: sqlite3.Connection, table: str) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
        cur = conn.execute(f"SELECT * FROM {table}")
        columns = [d[0] for d in cur.description]
        while batch := cur.fetchmany(_BATCH):
            yield columns, [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in batch]

    def marks(self, conn: sqlite3.Connection) -> dict[str, int]:
        """The largest id each sequence has handed out (deleted rows' ids included)."""
        return {str(name): int(seq) for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence")}

    def continue_after(self, conn: sqlite3.Connection, marks: dict[str, int]) -> None:
        """New ids go on after ``marks`` (inserting explicit ids already moved them past the copied rows)."""
        for table, mark in marks.items():
            conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (mark, table))
            conn.execute(
                "INSERT INTO sqlite_sequence(name, seq) SELECT ?, ? WHERE NOT EXISTS "
                "(SELECT 1 FROM sqlite_sequence WHERE name = ?)",
                (table, mark, table),
            )


class _PgCatalog(_Catalog):
    """PostgreSQL's catalog (the connection's schema): identity columns are the sequences."""

    def tables(self, conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
        return [str(r[0]) for r in rows if str(r[0]) not in _OWN]

    def parents(self, conn: sqlite3.Connection, table: str) -> set[str]:
        rows = conn.execute(
            "SELECT p.relname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_class p ON p.oid = c.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = ?",
            (table,),
        )
        return {str(r[0]) for r in rows} - {table}

    def rows(self, conn: sqlite3.Connection, table: str) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
        raw = cast("PgConnection", conn).raw
        with raw.cursor(name=f"copy_{table}") as cur:  # server-side: a batch at a time, not the table in memory
            cur.itersize = _BATCH
            cur.execute(f"SELECT * FROM {table}")
            columns = [d.name for d in cur.description or ()]
            while batch := cur.fetchmany(_BATCH):
                yield columns, [tuple(row) for row in batch]

    def _identities(self, conn: sqlite3.Connection) -> list[tuple[str, str]]:
        return [
            (str(t), str(c))
            for t, c in conn.execute(
                "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND a.attidentity <> ''"
            )
        ]

    def marks(self, conn: sqlite3.Connection) -> dict[str, int]:
        found = {}
        for table, column in self._identities(conn):
            row = conn.execute(f"SELECT pg_sequence_last_value(pg_get_serial_sequence('{table}', '{column}'))")
            found[table] = int(row.fetchone()[0] or 0)
        return found

    def continue_after(self, conn: sqlite3.Connection, marks: dict[str, int]) -> None:
        """Identity columns go on after the largest of the copied ids and the source's mark
        (explicit ids do not advance them)."""
        for table, column in self._identities(conn):
            (largest,) = conn.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchone()
            last = max(int(largest), marks.get(table, 0))  # called with it: marks() reads it back in a later copy
            called = "true" if last > 0 else "false"
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), {max(last, 1)}, {called})")


_SQLITE, _POSTGRES = _Catalog(), _PgCatalog()


def catalog_of(store: Store) -> _Catalog:
    return _POSTGRES if store.postgres else _SQLITE


def ordered_tables(catalog: _Catalog, conn: sqlite3.Connection) -> list[str]:
    """The tables, each after the tables its foreign keys reference."""
    names = catalog.tables(conn)
    parents = {n: catalog.parents(conn, n) for n in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:  # pragma: no cover - a cycle of foreign keys: copy the rest as listed
            ready = [n for n in names if n not in ordered]
        ordered += ready
    return ordered


def filled_tables(catalog: _Catalog, conn: sqlite3.Connection, also: Sequence[str] = ()) -> list[str]:
    """The tables (and ``also``) that hold rows: a copy's target must have none."""
    tables = [t for t in catalog.tables(conn) if t != _SEALER]
    return [t for t in (*tables, *also) if conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]


def holds_store(url: str) -> bool:
    """Whether the PostgreSQL database at ``url`` holds a facetrust store (its audit log table);
    ``ConfigurationError`` when it cannot be reached."""
    conn = _pg_connect(url)
    try:
        return "audit_log" in _POSTGRES.tables(conn)
    finally:
        conn.close()


def refuse_filled(db_path: Path, keys_file: Path, url: str | None) -> None:
    """Refuse, before anything is written, a target that holds rows: the SQLite store ``db_path``
    and ``keys_file`` (read only, when they exist), or the PostgreSQL database at ``url``."""
    if url is not None:
        conn = _pg_connect(url)
        try:
            busy = filled_tables(_POSTGRES, conn)
        finally:
            conn.close()
    else:
        busy = [f"{path.name}: {t}" for path in (db_path, keys_file) if path.is_file() for t in _filled_tables_of(path)]
    if busy:
        raise ConflictError(
            f"The target store is not empty (its table {busy[0]} has rows); copy into a new database or an "
            "empty data directory; nothing was written"
        )


# A database whose last write was cut short (a copy killed in or right after its commit) has its
# journal beside it, which a read-only connection may not roll back or delete: SQLite refuses it so.
_INTERRUPTED = (sqlite3.SQLITE_READONLY_ROLLBACK, sqlite3.SQLITE_READONLY_RECOVERY)


def _filled_tables_of(path: Path) -> list[str]:
    """The tables with rows of the SQLite database ``path``, read only; read-write where SQLite must
    first recover a write that was cut short (rolled back, or its journal deleted once committed),
    which it does on any open that may write, and which ends with the database as last committed."""
    try:
        try:
            return _tables_with_rows(path, "ro")
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorcode not in _INTERRUPTED:
                raise
            return _tables_with_rows(path, "rw")
    except sqlite3.DatabaseError as exc:
        raise ConflictError(f"The target {path} is not an empty facetrust store: {exc}") from None


def _tables_with_rows(path: Path, mode: str) -> list[str]:
    with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode={mode}", uri=True)) as conn:  # a URI: absolute
        return filled_tables(_SQLITE, conn)


def _pg_connect(url: str) -> sqlite3.Connection:
    from facetrust.store.pg_conn import connect

    try:
        return cast(sqlite3.Connection, connect(url))
    except sqlite3.OperationalError as exc:
        raise ConfigurationError(
            f"Cannot open the PostgreSQL store {redact_url(url)}: {redact_error(str(exc), url)}", setting="store"
        ) from None


def check_sealing(source: Store, keyring: Keyring | None) -> None:
    """Refuse a copy whose sealed templates or crops the configured template keys cannot open:
    the copy keeps their bytes, so whoever uses the target needs the key that sealed them."""
    conn = source.connection()
    for table, column in _SEALED:
        for (key_id,) in conn.execute(
            f"SELECT DISTINCT substr({column}, 5, 8) FROM {table} WHERE substr({column}, 1, 4) = ?", (MAGIC,)
        ):
            if keyring is None or not keyring.knows(bytes(key_id)):
                raise ConfigurationError(
                    f"The source's {table} are sealed with template key {bytes(key_id).hex()}, which is not "
                    "configured here: run the copy with the template key the target will be used with "
                    "(FACETRUST_TEMPLATE_KEY or the template_key_file setting), the one that sealed them",
                    setting="template_key",
                )


class StoreWriter:
    """The target of a copy: ``store``, written in one transaction; ``keys_file`` (SQLite) is
    the data directory's keys.db, attached to it (on PostgreSQL keys live in the database)."""

    def __init__(self, store: Store, keys_file: Path | None = None) -> None:
        self.store = store
        self.catalog = catalog_of(store)
        self._keys_file = keys_file
        self.keys_table = _KEYS if keys_file is None else f"keystore.{_KEYS}"
        self.committed = False

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self._keys_file is None:
            with self.store.transaction() as conn:  # anchors the new head in the store's head file
                yield conn
            self.committed = True
            return
        self.store.close()  # the journal mode changes only while no other connection is open
        conn = sqlite3.connect(self.store.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if str(mode).lower() != "delete":
                raise ConflictError(f"The target store {self.store.path} is in use by another process; stop it first")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("ATTACH DATABASE ? AS keystore", (str(self._keys_file),))
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")  # both files or neither (a super-journal spans them)
                self.committed = True
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:  # committed: what follows must not fail the copy (the caller would take it for lost)
                self.store.heads.record(audit_head(conn))
            except OSError as exc:
                log.error("Cannot append the audit head to %s: %s", self.store.heads.path, exc)
        finally:
            try:
                conn.execute("PRAGMA journal_mode=WAL")  # as the store runs it; its next open sets it too
            except sqlite3.Error as exc:  # pragma: no cover - the store's next connection sets WAL again
                log.warning("Cannot set %s back to WAL: %s", self.store.path, exc)
            conn.close()


def copy_store(
    source: Store,
    target: StoreWriter,
    keys: KeyRows | None = None,
    log: Callable[[sqlite3.Connection, CopyReport], None] | None = None,
) -> CopyReport:
    """Copy every table of ``source`` and the API keys ``keys`` into ``target``, which must be
    empty, in one transaction; ``log(connection, report)`` runs last inside it (the audit entry
    of the copy). The report's head is the copied chain's, the source's head."""
    reader = catalog_of(source)
    counts: dict[str, int] = {}
    with source.snapshot() as src, target.transaction() as dst:
        busy = filled_tables(target.catalog, dst, also=[target.keys_table] if target.keys_table != _KEYS else [])
        if busy:
            raise ConflictError(
                f"The target store is not empty (its table {busy[0]} has rows); copy into a new database "
                "or an empty data directory"
            )
        have = set(target.catalog.tables(dst))
        for table in ordered_tables(reader, src):
            if table in (_KEYS, _SEALER):
                continue
            if table not in have:
                raise ConfigurationError(f"Table {table} of the source has no counterpart in the target's schema")
            counts[table] = 0
            for columns, rows in reader.rows(src, table):
                _insert(dst, table, columns, rows)
                counts[table] += len(rows)
        target.catalog.continue_after(dst, reader.marks(src))
        _carry_meta(src, dst, CARRIED)
        if keys is not None and keys.rows:
            _insert(dst, target.keys_table, keys.columns, keys.rows)
        report = CopyReport(counts, audit_head(dst), 0 if keys is None else len(keys.rows))
        if report.head != audit_head(src):  # pragma: no cover - the copy ran in one snapshot of the source
            raise ConfigurationError(f"The copied audit log ends at {report.head}, the source's at {audit_head(src)}")
        if log is not None:
            log(dst, report)
    return report


def _carry_meta(src: sqlite3.Connection, dst: sqlite3.Connection, keys: Sequence[str]) -> None:
    """Copy the source's ``meta`` rows ``keys`` (those that describe copied rows: how far the change
    log was pruned, so an index snapshot before it is rebuilt on the copy as on the source)."""
    for key in keys:
        row = src.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None:
            dst.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(row[0])),
            )


def _insert(conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})", rows)
