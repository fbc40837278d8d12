"""Copy a SQLite data directory's database (and its API keys) into an empty PostgreSQL store.

Every table is copied row by row as stored: ids and sequence numbers are kept (identity
sequences then continue after them), templates and crops stay sealed (their bytes are copied,
never opened), and the audit log is copied entry for entry, so its hash chain, and every head
recorded in the source's head file, verify on the copy. The whole copy is one transaction on
the target: it lands complete or not at all. Tables are found in the source's schema and copied
parents first (by their foreign keys), so tables added to the schema later are copied too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from facetrust.errors import ConfigurationError, ConflictError
from facetrust.store.anchor import AuditHead
from facetrust.store.anchor import head as audit_head
from facetrust.store.postgres import PostgresStore
from facetrust.store.sqlite import Store

__all__ = ["CopyReport", "copy_store", "source_tables"]

_BATCH = 1000
_SKIP = ("sqlite_sequence", "meta")  # SQLite's own; the target has its own schema version


@dataclass(frozen=True)
class CopyReport:
    """What was copied: rows per table, and the audit head both stores now share."""

    rows: dict[str, int]
    head: AuditHead
    keys: int = 0


def source_tables(conn: sqlite3.Connection) -> list[str]:
    """The source's tables, each after the tables its foreign keys reference."""
    names = [
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if str(r[0]) not in _SKIP
    ]
    parents = {n: {str(r[2]) for r in conn.execute(f"PRAGMA foreign_key_list({n})")} - {n} for n in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:  # pragma: no cover - a cycle of foreign keys: copy the rest as listed
            ready = [n for n in names if n not in ordered]
        ordered += ready
    return ordered


def _batches(conn: sqlite3.Connection, table: str) -> Iterator[tuple[list[str], list[tuple[object, ...]]]]:
    cur = conn.execute(f"SELECT * FROM {table}")
    columns = [d[0] for d in cur.description]
    while rows := cur.fetchmany(_BATCH):
        yield columns, [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def _check_empty(target: PostgresStore) -> None:
    conn = target.connection()
    for table in ("collections", "audit_log"):
        if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
            raise ConflictError(f"The target store is not empty (its table {table} has rows); copy into a new database")


def copy_store(
    source: Store, target: PostgresStore, also: Callable[[sqlite3.Connection], int] | None = None
) -> CopyReport:
    """Copy every table of ``source`` (SQLite) into ``target`` (PostgreSQL, empty) in one
    transaction; ``also(connection)`` copies more in it (the API keys: server/keys.py), its count
    in the report's ``keys``."""
    _check_empty(target)
    src = source.connection()
    counts: dict[str, int] = {}
    with source.snapshot(), target.transaction() as dst:
        target_tables = {
            str(r[0]) for r in dst.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        }
        for table in source_tables(src):
            if table not in target_tables:
                raise ConfigurationError(f"Table {table} of the source has no counterpart in the target's schema")
            counts[table] = 0
            for columns, rows in _batches(src, table):
                marks = ", ".join("?" * len(columns))
                dst.executemany(f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})", rows)
                counts[table] += len(rows)
        _continue_identities(dst)
        keys = also(dst) if also is not None else 0
        head = audit_head(dst)
    if head != audit_head(src):  # pragma: no cover - the copy ran in one snapshot of the source
        raise ConfigurationError(f"The copied audit log ends at {head}, the source's at {audit_head(src)}")
    return CopyReport(counts, head, keys)


def _continue_identities(dst: sqlite3.Connection) -> None:
    """Identity columns go on after the largest copied id (explicit ids do not advance them)."""
    rows = dst.execute(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND a.attidentity <> ''"
    ).fetchall()
    for table, column in rows:
        dst.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
        )
